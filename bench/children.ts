// What the benchmark starts ends with it, also when it is killed (no finally runs then).

/**
 * The service a `run` wrapper hands off to: `cat` on a pipe only the benchmark holds. When the benchmark
 * ends, however it ends, the pipe closes, `cat` exits, and `run` exits with it. Spawn with `boundStdio`.
 */
export const boundService = ['--', 'cat'];
export const boundStdio: ['pipe', 'ignore', 'ignore'] = ['pipe', 'ignore', 'ignore'];

/** An idle floor process's script: it wakes once a second only to see whether its parent is gone. */
export const idleScript = 'const parent = process.ppid; setInterval(() => { if (process.ppid !== parent) process.exit(); }, 1000);';

/**
 * The environment of a process the benchmark starts: PATH, this run's TMPDIR (so the npm package's
 * compile cache, in $TMPDIR/node-compile-cache, goes with the run's directory), and `extra`.
 */
export function childEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: process.env.PATH!, TMPDIR: process.env.TMPDIR!, ...extra };
}
