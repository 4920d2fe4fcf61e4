// The memory of one idle `run --watch` wrapper, from /proc/PID/smaps_rollup: `node bench/resident-memory.ts [COMMAND...]`.
// COMMAND is how to start the tool (default: this Node and dist/hab-pod-role.mjs; a single executable works too).

import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildControlPlane, startControlPlane, stopControlPlane } from '../tools/control-plane.ts';
import { KubeAdmin, podEnv } from '../tools/kube-admin.ts';
import { electionText, tempDir } from '../test/support/election.ts';
import { eventually } from '../test/support/eventually.ts';
import { dropFromPageCache, medianRollup, mib, smapsRollup, type Rollup } from './memory.ts';
import { boundService, boundStdio, childEnv } from './children.ts';

const repoRoot = resolve(fileURLToPath(import.meta.url), '../..');
const tool = process.argv.length > 2 ? process.argv.slice(2) : [process.execPath, join(repoRoot, 'dist/hab-pod-role.mjs')];
const settleSeconds = Number(process.env.RESIDENT_SETTLE_SECONDS ?? 20);
const samples = Number(process.env.RESIDENT_SAMPLES ?? 5);
const ns = 'resident';

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
  dropFromPageCache(tool[0]!);
  wrapper = spawn(tool[0]!, [...tool.slice(1), 'run', '-c', file, ...boundService], {
    env: childEnv(podEnv(ns, 'redis-0', account.dir, plane.server)),
    stdio: [boundStdio[0], 'ignore', 'inherit'],
    detached: true,
  });
  await eventually(async () => (await admin.core.readNamespacedPod({ namespace: ns, name: 'redis-0' })).metadata?.labels?.role === 'leader', { what: 'the wrapper labelling its pod' });
  await new Promise((r) => setTimeout(r, settleSeconds * 1000));
  const taken: Rollup[] = [];
  for (let i = 0; i < samples; i++) {
    taken.push(smapsRollup(wrapper.pid!));
    await new Promise((r) => setTimeout(r, 1000));
  }
  const m = medianRollup(taken);
  console.log(`${tool.join(' ')} run --watch, leader, ${settleSeconds} s idle, median of ${samples}:`);
  console.log(`RSS ${mib(m.rss)}, PSS ${mib(m.pss)}, private ${mib(m.private)}, anonymous ${mib(m.anonymous)}`);
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
