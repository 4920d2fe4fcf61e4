// `make demo`: three members of a service group on a real control plane, labelled by hab-pod-role through a failover.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { buildControlPlane, startControlPlane, stopControlPlane } from './control-plane.ts';
import { KubeAdmin, podEnv } from './kube-admin.ts';

const repoRoot = resolve(fileURLToPath(import.meta.url), '../..');
const cli = join(repoRoot, 'dist/hab-pod-role.mjs');
const members = ['redis-0', 'redis-1', 'redis-2'];
const namespace = 'demo';

const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const say = (s: string) => console.log(`\n${bold(`== ${s}`)}`);

/** What the Supervisor renders from config/election.toml for one member. */
function electionFile(dir: string, member: string, leader: string | undefined, finished = true): string {
  const path = join(dir, `${member}.toml`);
  writeFileSync(path, `[election]\nleader = ${member === leader}\nfollower = ${leader !== undefined && member !== leader}\nfinished = ${finished}\n`);
  return path;
}

const clusterDir = mkdtempSync(join(tmpdir(), 'hab-pod-role-demo-'));
try {
  say('Starting etcd, kube-apiserver and kube-controller-manager on loopback');
  const binDir = buildControlPlane();
  const plane = await startControlPlane({ dir: clusterDir, binDir });
  const kubectl = (...args: string[]) =>
    execFileSync(join(binDir, 'kubectl'), [`--kubeconfig=${plane.kubeconfig}`, '-n', namespace, ...args], { encoding: 'utf8' });
  console.log(`API server ${plane.server} (Kubernetes ${kubectl('version', '-o', 'json').match(/"gitVersion": "([^"]+)"/g)?.at(-1)?.split('"')[3]})`);

  say('Three pods of a StatefulSet-like group, and the service account with the README\'s Role (pods get, patch)');
  const admin = new KubeAdmin(plane);
  await admin.createNamespace(namespace);
  const account = await admin.serviceAccount(namespace);
  for (const m of members) await admin.createPod(namespace, m, { app: 'redis' });
  process.stdout.write(kubectl('get', 'pods', '-L', 'role'));

  const files = mkdtempSync(join(tmpdir(), 'hab-pod-role-demo-files-'));
  const hook = async (member: string, file: string) => {
    console.log(`$ hab-pod-role apply --config ${member}.toml      # the hook of ${member}`);
    const run = await execa(process.execPath, [cli, 'apply', '--config', file], {
      env: podEnv(namespace, member, account.dir, plane.server),
      reject: false,
      all: true,
    });
    console.log(`${run.all}\n(exit ${run.exitCode})`);
  };

  say('The Supervisor elects redis-0; each member\'s hook runs hab-pod-role');
  for (const m of members) await hook(m, electionFile(files, m, 'redis-0'));
  process.stdout.write(kubectl('get', 'pods', '-L', 'role'));

  say('redis-0 dies and a new election starts: the survivors become routable as neither while it runs');
  for (const m of members.slice(1)) await hook(m, electionFile(files, m, 'redis-0', false));
  process.stdout.write(kubectl('get', 'pods', '-L', 'role'));
  console.log('(redis-0 is down, so its own hook cannot run: its label is as it left it)');

  say('redis-0 rejoins as a follower, redis-1 wins');
  for (const m of ['redis-0', 'redis-1', 'redis-2']) await hook(m, electionFile(files, m, 'redis-1'));
  process.stdout.write(kubectl('get', 'pods', '-L', 'role'));

  say('A broken election file is refused with one sentence and exit 65; the pod keeps its label');
  const broken = join(files, 'redis-2.toml');
  writeFileSync(broken, '[election]\nleader = \nfollower = true\n');
  await hook('redis-2', broken);
  process.stdout.write(kubectl('get', 'pods', '-L', 'role'));

  say('Done: stopping the control plane');
  rmSync(files, { recursive: true, force: true });
  rmSync(account.dir, { recursive: true, force: true });
} finally {
  await stopControlPlane(clusterDir);
  rmSync(clusterDir, { recursive: true, force: true });
}
