// `make demo`: the Redis example as real containers on a real node, narrated: election, replication, a failover, the Services following.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { commandLine, RedisOnNode } from '../test/support/redis-node.ts';
import { eventually } from '../test/support/eventually.ts';
import { buildControlPlane, startControlPlane, stopControlPlane, type ControlPlane } from './control-plane.ts';
import { NodeBusyError } from './node.ts';

const repoRoot = resolve(fileURLToPath(import.meta.url), '../..');
const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const say = (s: string) => console.log(`\n${bold(`== ${s}`)}`);
const show = (text: string) => console.log(text.trimEnd().replace(/^/gm, '   '));

if (process.getuid?.() !== 0) {
  console.error('demo: the real node (containerd, cgroups, a bridge) needs root; run it as root.');
  process.exit(77);
}

const clusterDir = mkdtempSync(join(tmpdir(), 'hab-pod-role-demo-'));
// Everything the demo creates (the image's layout, the volumes, the package build) goes under this
// directory and is removed with it.
process.env.TMPDIR = clusterDir;
let example: RedisOnNode | undefined;
let code = 0;
try {
  say('A real control plane and node on this machine: etcd, kube-apiserver, controller manager, scheduler; containerd, kubelet, kube-proxy');
  const plane = await startControlPlane({ dir: clusterDir, binDir: buildControlPlane(), node: { scratchDir: clusterDir } });
  console.log(`   API server ${plane.server}, node ${plane.node!.name} Ready after ${plane.node!.timings['kube-proxy synced']} s`);

  say('The image, laid out as `hab pkg export container` lays it out; static hostPath volumes; kubectl apply -k examples/redis/kubernetes');
  example = await RedisOnNode.start(plane, plane.node!);
  show((await example.kubectl('get', 'statefulset,services,pods,pvc', '-o', 'wide')).stdout);

  say('Each container\'s PID 1 is a hab-launch stand-in running the Supervisor; told the election (the demo stands in for gossip), they run hab-pod-role run -- redis-server');
  console.log(`   ${JSON.stringify(await example.elect('redis-0'))}`);
  await eventually(async () => (await example!.readyEndpoints('redis-follower')).length === 2, { what: 'the follower endpoints', timeoutMs: 60_000 });
  show((await example.output('redis-0')).split('\n').filter((l) => l.includes('hab-pod-role')).join('\n'));
  await table(plane, example);

  await example.replicating('redis-0');
  say('A write through redis-leader\'s ClusterIP, acknowledged by both replicas, read back through redis-follower\'s');
  await narrate(example, 'redis-leader', ['set', 'greeting', 'hello from the leader'], ['wait', '2', '1000']);
  await narrate(example, 'redis-follower', ['get', 'greeting']);

  say('kubectl delete pod redis-0: the kubelet sends TERM to the Supervisor, which stops Redis (it saves) and exits');
  const deleted = Date.now();
  const old = await example.running('redis-0');
  await example.admin.core.deleteNamespacedPod({ namespace: example.namespace, name: 'redis-0' });
  await example.running('redis-0', { uid: old.metadata!.uid! });
  console.log(`   gone and re-created by the StatefulSet in ${((Date.now() - deleted) / 1000).toFixed(1)} s (grace period 30 s)`);
  await table(plane, example);

  say('The survivors hold an election: the Supervisor renders the templates but runs no hook until it finishes');
  console.log(`   ${JSON.stringify(await example.elect(undefined, 'running', ['redis-1', 'redis-2']))}`);
  await eventually(async () => Object.values(await example!.roles()).every((r) => r === null), { what: 'the residents taking the survivors\' labels off' });
  console.log('   each resident hab-pod-role run read finished = false and took its pod\'s label off: routable as neither');
  await table(plane, example);

  say('redis-1 wins; the new redis-0 joins and learns it is a follower');
  console.log(`   ${JSON.stringify(await example.elect('redis-1', 'finished', ['redis-1', 'redis-2']))}`);
  console.log(`   ${JSON.stringify(await example.elect('redis-1'))}`);
  await eventually(async () => (await example!.readyEndpoints('redis-leader')).map((e) => e.pod).join() === 'redis-1', { what: 'the leader Service switching', timeoutMs: 60_000 });
  await eventually(async () => (await example!.readyEndpoints('redis-follower')).length === 2, { what: 'both followers Ready', timeoutMs: 60_000 });
  show((await example.output('redis-1')).split('\n').filter((l) => l.includes('reconfigure')).join('\n'));
  await table(plane, example);

  await example.replicating('redis-1');
  say('Writes go to the new leader and replicate; the data from before the failover is there');
  await narrate(example, 'redis-leader', ['get', 'greeting']);
  await narrate(example, 'redis-leader', ['set', 'after', 'the failover'], ['wait', '2', '1000']);
  await narrate(example, 'redis-follower', ['get', 'after']);

  say('Done: deleting the example, stopping the node and the control plane, undoing what the node changed');
} catch (error) {
  if (!(error instanceof NodeBusyError)) throw error;
  console.error(`demo: ${error.message}`);
  code = 75;
} finally {
  await example?.stop();
  await stopControlPlane(clusterDir);
  rmSync(clusterDir, { recursive: true, force: true });
}
process.exit(code);

/** The tool's own view of the group, and the Services' endpoints as the EndpointSlice controller sees them. */
async function table(plane: ControlPlane, ex: RedisOnNode) {
  const status = await execa(process.execPath, [join(repoRoot, 'dist/hab-pod-role.mjs'), 'status', '--pod', 'redis-1', '-n', ex.namespace, '--kubeconfig', plane.kubeconfig], { reject: false });
  console.log(`   $ hab-pod-role status          (exit ${status.exitCode})`);
  show(status.stdout);
  if (status.stderr) show(status.stderr);
  for (const service of ['redis-leader', 'redis-follower']) {
    const endpoints = await ex.readyEndpoints(service);
    console.log(`   ${service.padEnd(15)} -> ${endpoints.map((e) => `${e.pod} (${e.ip})`).join(', ') || '(no ready endpoint)'}`);
  }
}

/** Commands on one connection to a Service; its name is resolved here to its ClusterIP (the cluster runs no DNS). */
async function narrate(ex: RedisOnNode, service: string, ...commands: string[][]) {
  console.log(`   $ redis-cli -h ${service}   # ${await ex.clusterIp(service)}, resolved by the demo`);
  const replies = await ex.pipeVia(service, commands);
  commands.forEach((c, i) => console.log(`   > ${commandLine(c)}\n   ${replies[i]}`));
}
