// Notices change: the election file (rewritten in place or renamed over) and the pod's own labels on the API server.

import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { brief, type KubeClient, type Pod } from './kube.ts';
import type { PodIdentity } from './identity.ts';
import type { Logger } from './log.ts';
import { backoffDelay } from './retry.ts';

/**
 * Calls `onChange` once things settle after the file changes. The directory is watched, not the file:
 * a file renamed over the old one is a new inode that a watch on the old one would never see.
 */
export function watchFile(path: string, onChange: () => void, debounceMs: number): { close(): void } {
  const name = basename(path);
  let timer: NodeJS.Timeout | undefined;
  const watcher: FSWatcher = watch(dirname(path), { persistent: false }, (_event, filename) => {
    if (filename !== null && filename !== name) return;
    clearTimeout(timer);
    timer = setTimeout(onChange, debounceMs);
  });
  return {
    close() {
      clearTimeout(timer);
      watcher.close();
    },
  };
}

/**
 * Reports the pod as the API server sees it: once read, then on every change, for as long as it runs.
 * A dropped connection is re-established with backoff; an expired watch (410) starts from a fresh read,
 * and every fresh read is reported too, so a change missed while disconnected is still noticed.
 */
export function watchPod(client: KubeClient, identity: PodIdentity, onPod: (pod: Pod) => void, log: Logger, watchSeconds = 300): { stop(): void } {
  const abort = new AbortController();
  const loop = async () => {
    for (let failures = 0; !abort.signal.aborted; ) {
      try {
        client.renewDeadline();
        const pod = await client.getPod(identity.namespace, identity.name);
        onPod(pod);
        let version = pod.metadata?.resourceVersion ?? '';
        for (;;) {
          const result = await client.watchPod(identity.namespace, identity.name, version, onPod, { signal: abort.signal, watchSeconds });
          failures = 0;
          if (result.expired) break; // read afresh: the version we had is gone
          version = result.resourceVersion;
        }
      } catch (error) {
        if (abort.signal.aborted) return;
        const delay = backoffDelay(failures++, 500, 30_000, Math.random) + 100;
        log.warn(`Watching pod ${identity.namespace}/${identity.name} failed, retrying in ${delay} ms: ${(error as Error).message ?? brief(error)}`);
        await new Promise((resolve) => setTimeout(resolve, delay).unref());
      }
    }
  };
  void loop();
  return { stop: () => abort.abort() };
}
