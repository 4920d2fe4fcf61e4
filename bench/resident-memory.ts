// The memory of one idle `run --watch` wrapper, from /proc/PID/smaps_rollup: `node bench/resident-memory.ts [COMMAND...]`.
// COMMAND is how to start the tool (default: this Node and dist/hab-pod-role.mjs; a single executable works too).

import { spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildControlPlane, startControlPlane, stopControlPlane } from '../tools/control-plane.ts';
import { KubeAdmin, podEnv } from '../tools/kube-admin.ts';
import { electionText, tempDir } from '../test/support/election.ts';
import { eventually } from '../test/support/eventually.ts';

const repoRoot = resolve(fileURLToPath(import.meta.url), '../..');
const tool = process.argv.length > 2 ? process.argv.slice(2) : [process.execPath, join(repoRoot, 'dist/hab-pod-role.mjs')];
const settleSeconds = Number(process.env.RESIDENT_SETTLE_SECONDS ?? 20);
const samples = Number(process.env.RESIDENT_SAMPLES ?? 5);
const ns = 'resident';

/** The fields of smaps_rollup that say what the process costs the machine, in KiB. */
function rollup(pid: number): Record<'Rss' | 'Pss' | 'Private' | 'Anonymous', number> {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return { Rss: field('Rss'), Pss: field('Pss'), Private: field('Private_Clean') + field('Private_Dirty'), Anonymous: field('Anonymous') };
}

const dir = tempDir('resident');
// Everything else the measurement creates (the token mounts) goes under it too, and is removed with it.
process.env.TMPDIR = dir;
const clusterDir = join(dir, 'cluster');
let wrapper: ReturnType<typeof spawn> | undefined;
try {
  const plane = await startControlPlane({ dir: clusterDir, binDir: buildControlPlane() });
  const admin = new KubeAdmin(plane);
  await admin.createNamespace(ns);
  const account = await admin.serviceAccount(ns);
  const owner = await admin.createOwner(ns, 'redis');
  await admin.createPod(ns, 'redis-0', { app: 'redis' }, owner);
  const file = join(dir, 'election.toml');
  writeFileSync(file, electionText('leader'));
  wrapper = spawn(tool[0]!, [...tool.slice(1), 'run', '-c', file, '--', 'sleep', '1000000'], {
    env: { PATH: process.env.PATH!, ...podEnv(ns, 'redis-0', account.dir, plane.server) },
    stdio: ['ignore', 'ignore', 'inherit'],
    detached: true,
  });
  await eventually(async () => (await admin.core.readNamespacedPod({ namespace: ns, name: 'redis-0' })).metadata?.labels?.role === 'leader', { what: 'the wrapper labelling its pod' });
  await new Promise((r) => setTimeout(r, settleSeconds * 1000));
  const taken: ReturnType<typeof rollup>[] = [];
  for (let i = 0; i < samples; i++) {
    taken.push(rollup(wrapper.pid!));
    await new Promise((r) => setTimeout(r, 1000));
  }
  const median = (key: keyof ReturnType<typeof rollup>) => taken.map((t) => t[key]).sort((a, b) => a - b)[Math.floor(taken.length / 2)]!;
  const mib = (kb: number) => `${(kb / 1024).toFixed(1)} MiB`;
  console.log(`${tool.join(' ')} run --watch, leader, ${settleSeconds} s idle, median of ${samples}:`);
  console.log(`RSS ${mib(median('Rss'))}, PSS ${mib(median('Pss'))}, private ${mib(median('Private'))}, anonymous ${mib(median('Anonymous'))}`);
} finally {
  if (wrapper?.pid) {
    try {
      process.kill(-wrapper.pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  await stopControlPlane(clusterDir);
  rmSync(dir, { recursive: true, force: true });
}
