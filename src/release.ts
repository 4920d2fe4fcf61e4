// Gives back the memory a burst of labelling left behind, once the resident has gone quiet after it.

/**
 * V8 grows its young generation while a process is busy and shrinks it only in a full collection, and
 * the garbage of the burst (the passes' responses, closed connections' buffers and TLS state) waits for
 * one too; a resident that then idles for weeks has no allocation left to start one. That was 4 MiB of
 * the npm package's private memory after 50 failovers and 8.5 MiB after 200 (measured as bench section 3
 * drives them), while its live heap stayed at 6.5 MiB; one full collection, about 10 ms once the work is
 * done, gives it back. Every `busy()` moves the collection `quietMs` later, so it never runs between the
 * writes of a failover.
 */
export function releaseWhenQuiet(quietMs: number, collect: () => void = collectGarbage): { busy(): void; stop(): void } {
  let timer: NodeJS.Timeout | undefined;
  return {
    busy() {
      clearTimeout(timer);
      timer = setTimeout(() => {
        timer = undefined;
        collect();
      }, quietMs).unref();
    },
    stop() {
      clearTimeout(timer);
      timer = undefined;
    },
  };
}

let gc: ((options: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void) | undefined;

/**
 * A full collection that also shrinks the heap ("last resort": what V8 does under memory pressure). The
 * collector is reachable from a context made after --expose-gc is set; node:vm is loaded only then.
 */
export function collectGarbage(): void {
  if (!gc) {
    process.getBuiltinModule('node:v8').setFlagsFromString('--expose-gc');
    gc = process.getBuiltinModule('node:vm').runInNewContext('gc') as typeof gc;
    process.getBuiltinModule('node:v8').setFlagsFromString('--no-expose-gc');
  }
  gc!({ type: 'major', execution: 'sync', flavor: 'last-resort' });
}
