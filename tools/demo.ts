// `make demo`: the Redis example on a real control plane, narrated: election, replication, failover, the Service following.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { RedisExample } from '../test/support/redis-example.ts';
import { eventually } from '../test/support/eventually.ts';
import { buildControlPlane, startControlPlane, stopControlPlane, type ControlPlane } from './control-plane.ts';

const repoRoot = resolve(fileURLToPath(import.meta.url), '../..');
const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const say = (s: string) => console.log(`\n${bold(`== ${s}`)}`);
const show = (text: string) => console.log(text.trimEnd().replace(/^/gm, '   '));

if (process.getuid?.() !== 0) {
  console.error('demo: each Redis member gets a network namespace of its own (as a pod has), which needs root; run it as root.');
  process.exit(77);
}

const clusterDir = mkdtempSync(join(tmpdir(), 'hab-pod-role-demo-'));
// Everything the demo creates (service-account copies, package and service directories) goes under this
// directory and is removed with it.
process.env.TMPDIR = clusterDir;
let example: RedisExample | undefined;
try {
  say('A real control plane on this machine: etcd, kube-apiserver, kube-controller-manager');
  const plane = await startControlPlane({ dir: clusterDir, binDir: buildControlPlane() });
  console.log(`   API server ${plane.server}`);

  say('kubectl apply --server-side -k examples/redis/kubernetes; a kubelet stand-in gives each pod an IP');
  example = await RedisExample.start(plane, 'redis', 1);
  show((await example.kubectl('get', 'statefulset,services,pods', '-o', 'wide')).stdout);

  say('The Supervisors elect redis-0. Each member\'s run hook: hab-pod-role run -- redis-server');
  await example.elect('redis-0');
  await eventually(async () => Object.values(await example!.probe()).every(Boolean), { what: 'Redis answering', timeoutMs: 30_000 });
  await eventually(async () => (await example!.kubelet.readyEndpoints('redis-follower')).length === 2, { what: 'the follower endpoints' });
  show(example.members.get('redis-0')!.output.filter((l) => l.includes('hab-pod-role:')).join('\n'));
  await table(plane, example);

  await example.replicating('redis-0');
  say('A write through redis-leader, acknowledged by both replicas, read back through redis-follower');
  await narrate(example, 'redis-leader', 'set', 'greeting', 'hello from the leader');
  await narrate(example, 'redis-leader', 'wait', '2', '1000');
  await narrate(example, 'redis-follower', 'get', 'greeting');

  say('redis-0 fails. Its pod keeps role=leader: a dead member cannot clean its own label');
  await example.fail('redis-0');
  await example.probe();
  await table(plane, example);

  say('The survivors hold an election: the Supervisor renders the templates but runs no hook until it finishes');
  console.log(`   ${JSON.stringify(await example.elect(undefined, 'running'))}`);
  await eventually(async () => Object.values(await example!.roles()).filter((r) => r !== null).length === 1, { what: 'the residents taking the survivors\' labels off' });
  console.log('   each resident hab-pod-role run read finished = false and took its pod\'s label off: routable as neither');
  await table(plane, example);

  say('redis-1 wins; the Supervisor re-renders config and runs each survivor\'s reconfigure hook, once');
  console.log(`   ${JSON.stringify(await example.elect('redis-1'))}`);
  await eventually(async () => (await example!.kubelet.readyEndpoints('redis-leader')).map((e) => e.pod).join() === 'redis-1', { what: 'the leader Service switching' });
  show(example.members.get('redis-1')!.output.filter((l) => l.includes('reconfigure')).join('\n'));
  await table(plane, example);

  await example.replicating('redis-1');
  await example.probe();
  say('Writes go to the new leader and replicate; the data from before the failover is there');
  await narrate(example, 'redis-leader', 'get', 'greeting');
  await narrate(example, 'redis-leader', 'set', 'after', 'the failover');
  await eventually(async () => (await example!.redisVia('redis-follower', 'get', 'after')) === 'the failover', { what: 'replication to redis-2' });
  await narrate(example, 'redis-follower', 'get', 'after');
  show((await example.kubectl('get', 'events', '--field-selector', 'reason=RoleDemoted', '-o', 'custom-columns=POD:.involvedObject.name,REASON:.reason,MESSAGE:.message')).stdout);

  say('Done: stopping the members, the network and the control plane');
} finally {
  await example?.stop();
  await stopControlPlane(clusterDir);
  rmSync(clusterDir, { recursive: true, force: true });
}

/** The tool's own view of the group, and the Services' endpoints as the EndpointSlice controller sees them. */
async function table(plane: ControlPlane, ex: RedisExample) {
  const status = await execa(process.execPath, [join(repoRoot, 'dist/hab-pod-role.mjs'), 'status', '--pod', 'redis-1', '-n', ex.namespace, '--kubeconfig', plane.kubeconfig], { reject: false });
  console.log(`   $ hab-pod-role status          (exit ${status.exitCode})`);
  show(status.stdout);
  if (status.stderr) show(status.stderr);
  for (const service of ['redis-leader', 'redis-follower']) {
    const endpoints = await ex.kubelet.readyEndpoints(service);
    console.log(`   ${service.padEnd(15)} -> ${endpoints.map((e) => `${e.pod} (${e.ip})`).join(', ') || '(no ready endpoint)'}`);
  }
}

async function narrate(ex: RedisExample, service: string, ...args: string[]) {
  console.log(`   $ redis-cli -h ${service} ${args.join(' ')}`);
  show(await ex.redisVia(service, ...args));
}
