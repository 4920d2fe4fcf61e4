// The API server misbehaving, through a fault-injecting proxy in front of the real one: the tool does the safe thing.

import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { readElectionFile } from '../src/election.ts';
import { desiredLabel } from '../src/settings.ts';
import { runCli } from './support/cli.ts';
import { admin, controlPlane, createNamespace, podEnv } from './support/cluster.ts';
import { electionText, renameElection, tempDir, writeElection } from './support/election.ts';
import { eventually } from './support/eventually.ts';
import { FaultProxy } from './support/fault-proxy.ts';
import { matrix } from './support/matrix.ts';
import { mutateElectionFile, seeded } from './support/random.ts';

const dir = tempDir('faults');
const leaderFile = writeElection(join(dir, 'leader.toml'), electionText('leader'));
const followerFile = writeElection(join(dir, 'follower.toml'), electionText('follower'));
let namespace: string;
let saDir: string;
let proxy: FaultProxy;
let pods = 0;

beforeAll(async () => {
  namespace = await createNamespace('faults');
  saDir = (await admin().serviceAccount(namespace)).dir;
  proxy = await new FaultProxy(controlPlane()).start();
});
afterAll(() => proxy?.stop());
beforeEach(() => proxy.reset());

async function viaProxy(file: string, extra: string[] = [], labels: Record<string, string> = { app: 'redis' }) {
  const pod = `redis-${++pods}`;
  await admin().createPod(namespace, pod, labels);
  const run = await runCli(['apply', '-c', file, ...extra], podEnv(namespace, pod, saDir, proxy.url));
  return { pod, run, role: (await admin().podLabels(namespace, pod)).role };
}

describe('transient failures are retried within the deadline', () => {
  beforeEach(() => matrix.fault());

  it('429 with Retry-After: waits as long as the server asks, then succeeds', async () => {
    proxy.inject({ status: 429, retryAfter: '1', reason: 'TooManyRequests' });
    const { run, role } = await viaProxy(followerFile);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(role).toBe('follower');
    const [first, second] = proxy.seen;
    expect(first!.answer).toBe('429');
    // Honouring the header is the behaviour under test: the retry may not come sooner.
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(1000);
    expect(run.stderr).toMatch(/GET pods failed, retrying attempt=1 in_ms=1\d{3} error="429 TooManyRequests"/);
  });

  it.each([500, 502, 503, 504])('%i: retried', async (status) => {
    proxy.inject({ status }, { status });
    const { run, role } = await viaProxy(followerFile);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(role).toBe('follower');
    expect(proxy.seen.map((s) => s.answer).slice(0, 3)).toEqual([String(status), String(status), 'passed']);
  });

  it('a connection reset: retried', async () => {
    proxy.inject({ reset: true });
    const { run, role } = await viaProxy(followerFile);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(role).toBe('follower');
    expect(run.stderr).toContain('ECONNRESET');
  });

  it('a response that never comes: the request times out and is retried', async () => {
    proxy.inject({ stall: true });
    const { run, role } = await viaProxy(followerFile, ['--request-timeout', '1']);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(role).toBe('follower');
    expect(run.stderr).toMatch(/TimeoutError no answer within 1000 ms|no answer within 1000 ms/);
  });

  it('a slow response inside the request timeout is simply waited for', async () => {
    proxy.inject({ delayMs: 1500 });
    const { run, role } = await viaProxy(followerFile, ['--request-timeout', '5']);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(role).toBe('follower');
    expect(run.stderr).not.toContain('retrying');
  });

  it('a 401 makes it read the credentials again and retry once', async () => {
    proxy.inject({ status: 401, reason: 'Unauthorized' });
    const { run, role } = await viaProxy(followerFile);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(role).toBe('follower');
  });

  it('a 409 on the promotion starts it again from a fresh list', async () => {
    proxy.inject({ method: 'PATCH', fault: { status: 409, reason: 'Conflict' } });
    const { run, role } = await viaProxy(leaderFile, ['--verbose']);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(role).toBe('leader');
    expect(run.stderr).toContain('starting again from a fresh list');
    // Two lists of the group: the round that lost the race, and the one that won.
    expect(proxy.seen.filter((s) => s.method === 'GET' && /\/pods(\?|$)/.test(s.path)).length).toBe(2);
  });
});

describe('a claim whose write to a member loses a race to that member', () => {
  beforeEach(() => matrix.fault());

  // In a failover the old leader removes its own label while the new leader's fence is on its way; anything
  // else may change a member meanwhile too. Either way the member is read again and written as it is now.
  const cases = [
    { what: 'the old leader labelling itself follower meanwhile', change: { op: 'replace', path: '/metadata/labels/role', value: 'follower' }, after: 'follower', demoted: false },
    { what: 'the old leader changed otherwise meanwhile, still leading', change: { op: 'add', path: '/metadata/annotations', value: { touched: 'yes' } }, after: undefined, demoted: true },
  ];
  for (const [i, { what, change, after, demoted }] of cases.entries()) {
    it(`${what}: its fence is written on the version read again, without listing the group again`, async () => {
      const app = `fenced-${i}`;
      const old = `${app}-old`;
      await admin().createPod(namespace, old, { app, role: 'leader' });
      const file = writeElection(join(dir, `${app}.toml`), electionText('leader', `[group]\nselector = "app=${app}"\n`));
      proxy.inject({
        method: 'PATCH',
        path: new RegExp(`/pods/${old}(\\?|$)`),
        fault: { status: 409, reason: 'Conflict' },
        before: async () => {
          await admin().core.patchNamespacedPod({ namespace, name: old, body: [change] });
        },
      });
      const { pod, run, role } = await viaProxy(file, ['--verbose'], { app });
      expect(run.exitCode, run.stderr).toBe(0);
      expect(role).toBe('leader');
      const stale = await admin().core.readNamespacedPod({ namespace, name: old });
      expect(stale.metadata?.labels?.role).toBe(after);
      expect(stale.metadata?.annotations?.['hab-pod-role/fence']).toMatch(new RegExp(`^${pod}/`));
      expect(run.stderr).not.toContain('starting again from a fresh list');
      const lists = proxy.seen.filter((s) => s.method === 'GET' && /\/pods(\?|$)/.test(s.path));
      expect(lists).toHaveLength(1);
      expect(proxy.seen.filter((s) => s.method === 'GET' && new RegExp(`/pods/${old}$`).test(s.path))).toHaveLength(1);
      const events = await admin().core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${old},source=hab-pod-role` });
      expect(events.items.map((e) => e.reason)).toEqual(demoted ? ['RoleDemoted'] : []);
    });
  }
});

describe('an API server coming back from a restart', () => {
  beforeEach(() => matrix.fault());

  it('refuses for a moment while its caches fill: 403 right after an outage is retried', async () => {
    proxy.inject({ reset: true }, { status: 403, reason: 'Forbidden' }, { status: 401, reason: 'Unauthorized' }, { status: 403, reason: 'Forbidden' });
    const { run, role } = await viaProxy(followerFile);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(role).toBe('follower');
    expect(proxy.seen.map((s) => s.answer).slice(0, 5)).toEqual(['reset', '403', '401', '403', 'passed']);
  });

  it('a refusal that lasts past the deadline is reported as one (77), not as unavailability', async () => {
    proxy.inject({ reset: true }, ...Array.from({ length: 60 }, () => ({ status: 403, reason: 'Forbidden' })));
    const { run, role } = await viaProxy(followerFile, ['--timeout', '2']);
    expect(run.exitCode).toBe(77);
    expect(run.stderr).toMatch(/error: Forbidden: .* may not get pods/);
    expect(role).toBeUndefined();
  });

  it('without an outage first, a 403 is final at once', async () => {
    proxy.inject({ status: 403, reason: 'Forbidden' });
    const { run } = await viaProxy(followerFile);
    expect(run.exitCode).toBe(77);
    expect(proxy.seen).toHaveLength(1);
  });
});

describe('a promotion raced by another run for the same pod', () => {
  beforeEach(() => matrix.fault());

  it('still records the demotion it made when the other run finishes the promotion', async () => {
    // The resident and a reconfigure hook can both promote this pod. This run demotes the stale leader,
    // then loses the race for its own pod to the other run, and finds the promotion done on its next list.
    await admin().createPod(namespace, 'stale', { app: 'raced', role: 'leader' });
    const pod = 'raced-1';
    await admin().createPod(namespace, pod, { app: 'raced' });
    const file = writeElection(join(dir, 'raced.toml'), electionText('leader', '[group]\nselector = "app=raced"\n'));
    proxy.inject({
      method: 'PATCH',
      path: new RegExp(`/pods/${pod}(\\?|$)`),
      fault: { status: 409, reason: 'Conflict' },
      before: async () => {
        await admin().core.patchNamespacedPod({ namespace, name: pod, body: [{ op: 'add', path: '/metadata/labels/role', value: 'leader' }] });
      },
    });
    const run = await runCli(['apply', '-c', file], podEnv(namespace, pod, saDir, proxy.url));
    expect(run.exitCode, run.stderr).toBe(0);
    expect((await admin().podLabels(namespace, 'stale')).role).toBeUndefined();
    // The tool's own Events (the scheduler records FailedScheduling for these pods, which no node takes).
    const events = await admin().core.listNamespacedEvent({ namespace, fieldSelector: 'involvedObject.name=stale,source=hab-pod-role' });
    expect(events.items.map((e) => e.reason)).toEqual(['RoleDemoted']);
  });
});

describe('two runs for the same pod at once', () => {
  beforeEach(() => matrix.fault());

  it('the label ends as the newest election file says, whichever run writes last', async () => {
    // An init hook reads the file, and its write is slow to land; meanwhile the Supervisor renders a new
    // result and the reconfigure hook applies it quickly. The slow write lands last, with the old result.
    const pod = 'twice-1';
    await admin().createPod(namespace, pod, { app: 'twice', role: 'follower' });
    const file = writeElection(join(dir, 'twice.toml'), electionText('standalone'));
    proxy.inject({ method: 'PATCH', fault: { delayMs: 1500 } });
    const slow = runCli(['apply', '-c', file], podEnv(namespace, pod, saDir, proxy.url));
    await eventually(() => proxy.seen.some((s) => s.method === 'PATCH'), { what: 'the slow run sending its write' });
    renameElection(file, electionText('follower'));
    const quick = await runCli(['apply', '-c', file], podEnv(namespace, pod, saDir, controlPlane().server));
    expect(quick.exitCode, quick.stderr).toBe(0);
    const late = await slow;
    expect(late.exitCode, late.stderr).toBe(0);
    expect(late.stderr).toContain('the election file changed while labelling');
    expect((await admin().podLabels(namespace, pod)).role).toBe('follower');
  });
});

describe('persistent failures end in time, with 69, and change nothing', () => {
  beforeEach(() => matrix.fault());

  it('503 until the deadline: 69 naming the last error', async () => {
    proxy.inject(...Array.from({ length: 50 }, () => ({ status: 503 })));
    const { run, role } = await viaProxy(followerFile, ['--timeout', '2']);
    expect(run.exitCode).toBe(69);
    expect(run.stderr).toMatch(/did not answer successfully within --timeout 2s \(last error: 503 Injected\)/);
    expect(role).toBeUndefined();
    matrix.unwantedWrites(proxy.seen.filter((s) => s.method !== 'GET').length);
    expect(proxy.seen.every((s) => s.method === 'GET')).toBe(true);
  });

  it('a promotion whose demotion writes keep failing does not promote itself', async () => {
    // A group of its own, so the number of PATCHes does not depend on what other tests created.
    await admin().createPod(namespace, 'stale-leader', { app: 'stale', role: 'leader' });
    const selector = writeElection(join(dir, 'selector.toml'), electionText('leader', '[group]\nselector = "app=stale"\n'));
    proxy.inject(...Array.from({ length: 500 }, () => ({ method: 'PATCH', fault: { status: 503 } })));
    const { run, role } = await viaProxy(selector, ['--timeout', '2'], { app: 'stale' });
    expect(run.exitCode).toBe(69);
    expect(role).toBeUndefined();
    matrix.unwantedWrites(proxy.seen.filter((s) => s.method === 'PATCH' && s.answer === 'passed').length);
    expect((await admin().podLabels(namespace, 'stale-leader')).role).toBe('leader');
  });
});

describe('broken election files through the CLI', () => {
  const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
  it(`never a crash, never a stack trace, never a request for a rejected file (seed ${seed})`, async () => {
    const rng = seeded(seed);
    const pod = `redis-${++pods}`;
    await admin().createPod(namespace, pod, { app: 'redis' });
    let rejected = 0;
    for (let i = 0; i < 60; i++) {
      const file = writeElection(join(dir, `fuzz-${i}.toml`), mutateElectionFile(rng));
      proxy.reset();
      // --force: a valid mutant may rename the role values, and the guard rail (also 65) is not under test here.
      const run = await runCli(['apply', '-c', file, '--timeout', '5', '--force'], podEnv(namespace, pod, saDir, proxy.url));
      if (run.exitCode === 65) {
        matrix.inputs();
        matrix.unwantedWrites(proxy.seen.filter((s) => s.method !== 'GET').length);
      }
      expect(run.stderr).not.toMatch(/^\s+at /m);
      // A valid mutant that renames the key or values asks for a label the namespace's admission policy does
      // not allow: the API server refuses the write, and the tool says so in one sentence.
      if (run.exitCode === 77) {
        // Only a label the policy's parameters do not name (the default key and values) may be refused.
        const asked = desiredLabel(readElectionFile(file), {}, file);
        expect(asked.scheme.key !== 'role' || (asked.value !== null && !['leader', 'follower'].includes(asked.value)), `${file} asks for ${asked.scheme.key}=${asked.value}`).toBe(true);
        expect(run.stderr.trim()).toMatch(new RegExp(`^hab-pod-role: error: The admission policy hab-pod-role\\.${namespace} refused to patch pod "${pod}" in namespace "${namespace}": [^\\n]+\\.$`));
        continue;
      }
      expect([0, 65], run.stderr).toContain(run.exitCode);
      if (run.exitCode === 65) {
        rejected++;
        expect(run.stderr.trim().split('\n')).toHaveLength(1);
        expect(run.stderr).toContain(file);
        expect(proxy.seen, 'a rejected file sent nothing to the API server').toEqual([]);
      }
    }
    expect(rejected).toBeGreaterThan(30);
  }, 120_000);
});
