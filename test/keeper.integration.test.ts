// `run --watch` on the real API server: following the election file, repairing drift, rotated tokens, missing RBAC, a server going away.

import { execFileSync } from 'node:child_process';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startExtraApiServer } from '../tools/control-plane.ts';
import { runCli, startCli, type RunningCli } from './support/cli.ts';
import { admin, controlPlane, createNamespace, documentedRole, podEnv } from './support/cluster.ts';
import { electionText, renameElection, tempDir, writeElection } from './support/election.ts';
import { eventually } from './support/eventually.ts';
import { FaultProxy } from './support/fault-proxy.ts';
import { matrix } from './support/matrix.ts';

let namespace: string;
let saDir: string;
let pods = 0;
const running: RunningCli[] = [];

beforeAll(async () => {
  namespace = await createNamespace('keeper');
  saDir = (await admin().serviceAccount(namespace)).dir;
});

afterEach(async () => {
  for (const r of running.splice(0)) {
    r.signalGroup('SIGTERM');
    await r.exited;
  }
});

/** A pod and `run` for it, with a long-running service, its election file starting as `state`. */
async function member(state: Parameters<typeof electionText>[0], server = controlPlane().server) {
  const name = `redis-${++pods}`;
  await admin().createPod(namespace, name, { app: 'redis' });
  const file = writeElection(join(tempDir('keeper'), 'election.toml'), electionText(state));
  const cli = startCli(['run', '-c', file, '--timeout', '5', '--', 'sleep', '600'], podEnv(namespace, name, saDir, server));
  running.push(cli);
  const role = () => admin().podLabels(namespace, name).then((labels) => labels.role ?? null);
  return { name, file, cli, role };
}

const becomes = (role: () => Promise<string | null>, want: string | null, what: string) =>
  eventually(async () => (await role()) === want, { what });

/**
 * Waits for the start's closing line. The start's own labelling re-reads the file after its write and
 * takes a change made before then itself; from that line on, changes are the keeper's.
 */
const started = (m: { cli: RunningCli }, role: string) =>
  eventually(() => new RegExp(`: role=${role} \\(had none\\) requests=\\d+`).test(m.cli.stderr()), { what: 'the start done' });

describe('run --watch keeps the label in step with the election file', () => {
  it('follows a file rewritten in place', async () => {
    const m = await member('follower');
    await becomes(m.role, 'follower', 'the first label');
    writeElection(m.file, electionText('leader'));
    await becomes(m.role, 'leader', 'promotion');
    writeElection(m.file, electionText('running'));
    await becomes(m.role, null, 'removal while an election runs');
  });

  it('follows a file renamed over the old one, the last state winning', async () => {
    const m = await member('leader');
    await becomes(m.role, 'leader', 'the first label');
    await started(m, 'leader');
    for (const state of ['running', 'follower', 'standalone', 'leader', 'follower'] as const) renameElection(m.file, electionText(state));
    await becomes(m.role, 'follower', 'the last state');
    // The log line follows the write that made the label visible. Each state is applied as it is read, so the
    // write before it may have removed the label (running, standalone) or set it (leader).
    await eventually(() => /role=follower \((was .*|had none)\) after the election file changed/.test(m.cli.stderr()), { what: 'the change being logged' });
  });

  it('reports a broken file and ignores it until a good one arrives', async () => {
    matrix.inputs();
    const m = await member('leader');
    await becomes(m.role, 'leader', 'the first label');
    writeElection(m.file, '[election]\nleader = tru');
    await eventually(() => m.cli.stderr().includes('invalid TOML'), { what: 'the broken file being reported' });
    expect(m.cli.stderr()).toContain('Ignored until a valid file arrives; the label stays as it is.');
    expect(await m.role()).toBe('leader');
    writeElection(m.file, electionText('follower'));
    await becomes(m.role, 'follower', 'the good file applied');
  });
});

describe('drift repair', () => {
  it('puts back a label changed or removed by hand, and says so', async () => {
    matrix.fault(2);
    const m = await member('leader');
    await becomes(m.role, 'leader', 'the first label');
    await labelByHand(m.name, 'follower');
    await becomes(m.role, 'leader', 'the hand-made change undone');
    expect(m.cli.stderr()).toContain('changed by someone else, restoring it');
    await labelByHand(m.name, null);
    await becomes(m.role, 'leader', 'the hand-removed label restored');
  });
});

describe('credentials', () => {
  it('uses a rotated token from the next request on, after the old one stopped working', async () => {
    matrix.fault();
    const ns = await createNamespace('rotate');
    const account = await admin().serviceAccount(ns);
    await admin().createPod(ns, 'redis-0', { app: 'redis' });
    const file = writeElection(join(tempDir('rotate'), 'election.toml'), electionText('follower'));
    const cli = startCli(['run', '-c', file, '--', 'sleep', '600'], podEnv(ns, 'redis-0', account.dir));
    running.push(cli);
    await eventually(async () => (await admin().podLabels(ns, 'redis-0')).role === 'follower', { what: 'the first label' });

    // Recreating the service account invalidates every token it had; the kubelet then swaps in a new one.
    await admin().core.deleteNamespacedServiceAccount({ namespace: ns, name: 'hab-pod-role' });
    await admin().core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'hab-pod-role' } } });
    const old = admin().podMount(ns, 'redis-0');
    const fresh = await admin().mintToken(ns, 'hab-pod-role', { pod: 'redis-0' });
    writeFileSync(join(old.dir, 'token.new'), fresh);
    renameSync(join(old.dir, 'token.new'), join(old.dir, 'token'));

    // The old token is dead (once the API server's cache of successful authentications, about 10 s, lets go):
    // a run that still had it is refused.
    const stale = tempDir('stale-token');
    mkdirSync(join(stale, 'redis-0'));
    writeFileSync(join(stale, 'redis-0', 'token'), old.token);
    writeFileSync(join(stale, 'redis-0', 'ca.crt'), controlPlane().caPem);
    await eventually(async () => (await runCli(['apply', '-c', file], podEnv(ns, 'redis-0', stale))).exitCode === 77, { what: 'the old token being refused', timeoutMs: 40_000, intervalMs: 1000 });

    writeElection(file, electionText('leader'));
    await eventually(async () => (await admin().podLabels(ns, 'redis-0')).role === 'leader', { what: 'a change made with the new token' });
    expect(cli.stderr()).not.toContain(old.token);
    expect(cli.stderr()).not.toContain(fresh);
  });
});

describe('RBAC', () => {
  it('without watch, the service still runs and the missing rule is named', async () => {
    matrix.fault();
    const ns = await createNamespace('nowatch');
    const rules = documentedRole().rules.map((rule) => ({ ...rule, verbs: rule.verbs.filter((verb) => verb !== 'watch') }));
    const account = await admin().serviceAccount(ns, rules);
    await admin().createPod(ns, 'redis-0', { app: 'redis' });
    const file = writeElection(join(tempDir('nowatch'), 'election.toml'), electionText('leader'));
    const cli = startCli(['run', '-c', file, '--', 'sleep', '600'], podEnv(ns, 'redis-0', account.dir));
    running.push(cli);
    await eventually(() => cli.stderr().includes(`may not watch pods in namespace "${ns}"`), { what: 'the missing rule being named' }).catch((e: Error) => { throw new Error(`${e.message}; stderr: ${cli.stderr()}`); });
    expect(cli.stderr()).toContain('verbs: ["watch"]');
    expect(await admin().podLabels(ns, 'redis-0')).toMatchObject({ role: 'leader' });
    expect(() => process.kill(cli.pid, 0)).not.toThrow();
  });
});

describe('the API server going away', () => {
  it('keeps the service running, and the label is right once the server is back', async () => {
    matrix.fault();
    const apiserver = await startExtraApiServer(controlPlane().dir);
    try {
      const m = await member('follower', apiserver.server);
      await becomes(m.role, 'follower', 'the first label');
      await apiserver.stop();
      writeElection(m.file, electionText('leader'));
      await eventually(() => /will retry in \d+ s, or when the API server answers again\)/.test(m.cli.stderr()), { what: 'the failed write being reported' });
      await apiserver.restart();
      // The write is owed: the keeper's retry or the pod watch reconnecting makes it, whichever comes first.
      await becomes(m.role, 'leader', 'the label after the restart');
      // The service never noticed: the wrapper is still running it.
      expect(() => process.kill(m.cli.pid, 0)).not.toThrow();
    } finally {
      await apiserver.stop();
    }
  });
});

describe('writes failing while the watch stays open', () => {
  it('tries the failed write again on its own, without waiting for the pod watch to reconnect', async () => {
    matrix.fault();
    const proxy = await new FaultProxy(controlPlane()).start();
    try {
      const m = await member('follower', proxy.url);
      await started(m, 'follower');
      // Every write fails for longer than --timeout (5 s); reads and the open watch pass.
      proxy.inject(...Array.from({ length: 1000 }, () => ({ method: 'PATCH', fault: { status: 503, reason: 'ServiceUnavailable' } })));
      writeElection(m.file, electionText('leader'));
      await eventually(() => /will retry in 1 s, or when the API server answers again\)/.test(m.cli.stderr()), { what: 'the failed write being reported' });
      proxy.reset();
      await becomes(m.role, 'leader', 'the owed write made');
      // Nothing reopened the pod's own watch: the write was retried by the keeper, not by a reconnect.
      expect(proxy.seen.filter((s) => isOwnWatch(s.path, m.name))).toEqual([]);
    } finally {
      await proxy.stop();
    }
  });
});

describe('a claim and the watch of its group', () => {
  it('follows the group once the claim has written, not beside the promotion', async () => {
    const proxy = await new FaultProxy(controlPlane()).start();
    try {
      const m = await member('follower', proxy.url);
      await started(m, 'follower');
      // The pod's own watch open first: its first sighting (the follower label) landing during the promotion
      // would rightly make the keeper pass once more, and that pass's list is not the group watch's.
      await eventually(() => proxy.seen.some((s) => isOwnWatch(s.path, m.name)), { what: 'the pod\'s own watch open' });
      proxy.reset();
      writeElection(m.file, electionText('leader'));
      await becomes(m.role, 'leader', 'promotion');
      const pods = `/api/v1/namespaces/${namespace}/pods`;
      const groupWatch = () => proxy.seen.findIndex((s) => s.path.startsWith(`${pods}?`) && new URLSearchParams(s.path.split('?')[1]).has('watch') && !s.path.includes('fieldSelector'));
      await eventually(() => groupWatch() !== -1, { what: 'the group watch opened' });
      const own = proxy.seen.findIndex((s) => s.method === 'PATCH' && s.path.startsWith(`${pods}/${m.name}?`));
      // The promotion's list, then its write; the group watch's list and the watch itself only after.
      const lists = proxy.seen.flatMap((s, i) => (s.method === 'GET' && s.path === pods ? [i] : []));
      expect(lists).toHaveLength(2);
      expect(lists[0]).toBeLessThan(own);
      expect(own).toBeLessThan(lists[1]!);
      expect(lists[1]).toBeLessThan(groupWatch());
    } finally {
      await proxy.stop();
    }
  });
});

/** Whether a request through the proxy opened the watch of pod `name` alone. */
function isOwnWatch(path: string, name: string): boolean {
  const query = new URLSearchParams(path.split('?')[1] ?? '');
  return query.has('watch') && query.get('fieldSelector') === `metadata.name=${name}`;
}

/** `kubectl label --overwrite` by an administrator (null removes the label). */
async function labelByHand(pod: string, value: string | null) {
  execFileSync(join(controlPlane().binDir, 'kubectl'), [
    `--kubeconfig=${controlPlane().kubeconfig}`, '-n', namespace, 'label', 'pod', pod, '--overwrite', value === null ? 'role-' : `role=${value}`,
  ], { stdio: 'ignore' });
}
