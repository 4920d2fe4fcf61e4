// A promotion in a group on the real API server: demote before promote, Events and timestamps, groups by owner or selector.

import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Owner } from '../tools/kube-admin.ts';
import { runCli } from './support/cli.ts';
import { admin, createNamespace, podEnv } from './support/cluster.ts';
import { electionText, tempDir, writeElection } from './support/election.ts';
import { matrix } from './support/matrix.ts';
import { LabelRecorder } from './support/recorder.ts';
import { invalidSelectors, validSelectors } from './support/selectors.ts';

const dir = tempDir('group');
const leaderFile = writeElection(join(dir, 'leader.toml'), electionText('leader'));
const followerFile = writeElection(join(dir, 'follower.toml'), electionText('follower'));

let namespace: string;
let saDir: string;
let owner: Owner;
const apply = (pod: string, file: string, extra: string[] = []) => runCli(['apply', '-c', file, ...extra], podEnv(namespace, pod, saDir));
const roles = async (...pods: string[]) => Object.fromEntries(await Promise.all(pods.map(async (p) => [p, (await admin().podLabels(namespace, p)).role ?? null])));

beforeAll(async () => {
  namespace = await createNamespace('group');
  saDir = (await admin().serviceAccount(namespace)).dir;
  owner = await admin().createOwner(namespace, 'redis');
  const other = await admin().createOwner(namespace, 'other');
  for (const name of ['redis-0', 'redis-1', 'redis-2']) await admin().createPod(namespace, name, { app: 'redis' }, owner);
  // Another group's leader, in the same namespace: not ours to touch.
  await admin().createPod(namespace, 'other-0', { app: 'other', role: 'leader' }, other);
});

describe('demote before promote', () => {
  it('the new leader removes the stale leader first, then labels itself, and both are on record', async () => {
    expect((await apply('redis-0', leaderFile)).exitCode).toBe(0);
    expect((await apply('redis-1', followerFile)).exitCode).toBe(0);
    const recorder = new LabelRecorder(namespace, (pod) => pod.startsWith('redis-'));
    await recorder.start();
    // redis-0 is partitioned: its hook never runs again. redis-1 wins the next election.
    const run = await apply('redis-1', leaderFile);
    recorder.stop();
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stderr).toContain(`pod ${namespace}/redis-1: role=leader (was follower); demoted stale leader redis-0`);
    expect(await roles('redis-0', 'redis-1', 'redis-2', 'other-0')).toEqual({ 'redis-0': null, 'redis-1': 'leader', 'redis-2': null, 'other-0': 'leader' });

    const demotion = recorder.changes.find((c) => c.pod === 'redis-0' && c.role === null)!;
    const promotion = recorder.changes.find((c) => c.pod === 'redis-1' && c.role === 'leader')!;
    expect(demotion.resourceVersion).toBeLessThan(promotion.resourceVersion);
    expect(recorder.changes.some((c) => c.pod === 'other-0')).toBe(false);
    expect(recorder.violations).toEqual([]);
    recorder.assertComplete();
  });

  it('sends one LIST, one write per other member, one for itself, and one event per role change', async () => {
    await apply('redis-2', followerFile);
    const run = await apply('redis-2', leaderFile);
    expect(run.exitCode, run.stderr).toBe(0);
    // list + 2 peers (one demotion, one fence) + self, then RolePromoted and RoleDemoted.
    expect(run.requests).toBe(6);
    const again = await apply('redis-2', leaderFile);
    expect(again.requests).toBe(1);
  });

  it('records promotions and demotions as Events and stamps the time of the change', async () => {
    const events = await admin().core.listNamespacedEvent({ namespace, fieldSelector: 'involvedObject.name=redis-1' });
    const reasons = events.items.map((e) => `${e.reason}: ${e.message}`);
    expect(reasons).toContain('RolePromoted: role=leader set by this member: the election finished and this member won');
    expect(reasons).toContain(`RoleDemoted: role=leader removed by pod ${namespace}/redis-2, which the election made leader`);
    const annotations = (await admin().core.readNamespacedPod({ namespace, name: 'redis-1' })).metadata?.annotations ?? {};
    expect(Date.parse(annotations['hab-pod-role/role-changed-at']!)).toBeGreaterThan(Date.now() - 60_000);
  });

  it('a member that follows demotes only itself, never its peers', async () => {
    const run = await apply('redis-2', followerFile);
    expect(run.exitCode).toBe(0);
    expect(run.requests).toBe(3); // get, patch, RoleDemoted
    expect(await roles('redis-0', 'redis-1', 'redis-2')).toEqual({ 'redis-0': null, 'redis-1': null, 'redis-2': 'follower' });
  });
});

describe('groups by selector', () => {
  it('uses [group] selector instead of the owner', async () => {
    const ns = await createNamespace('selector');
    const account = await admin().serviceAccount(ns);
    await admin().createPod(ns, 'a-0', { app: 'a', role: 'leader' });
    await admin().createPod(ns, 'a-1', { app: 'a' });
    await admin().createPod(ns, 'b-0', { app: 'b', role: 'leader' });
    const file = writeElection(join(dir, 'selector.toml'), electionText('leader', '[group]\nselector = "app=a"\n'));
    const run = await runCli(['apply', '-c', file], podEnv(ns, 'a-1', account.dir));
    expect(run.exitCode, run.stderr).toBe(0);
    expect((await admin().podLabels(ns, 'a-0')).role).toBeUndefined();
    expect((await admin().podLabels(ns, 'a-1')).role).toBe('leader');
    expect((await admin().podLabels(ns, 'b-0')).role).toBe('leader');
  });

  it('refuses a bad selector with 65 before any request, naming the file', async () => {
    matrix.inputs(2);
    const file = writeElection(join(dir, 'bad-selector.toml'), electionText('leader', '[group]\nselector = "app in (a"\n'));
    const run = await runCli(['apply', '-c', file, '--verbose'], podEnv(namespace, 'redis-0', saDir));
    expect(run.exitCode).toBe(65);
    expect(run.stderr).toContain(`error: ${file}: group.selector: "app in (a" is not a label selector requirement`);
    expect(run.stderr).not.toContain('api request');
    const flag = await runCli(['apply', '-c', leaderFile, '--group-selector', 'éapp=a'], podEnv(namespace, 'redis-0', saDir));
    expect(flag.exitCode).toBe(64);
    expect(flag.stderr.trim()).toBe('hab-pod-role: error: --group-selector: label key "éapp" must be letters, digits, \'-\', \'_\' or \'.\', starting and ending with a letter or digit (with an optional DNS prefix and \'/\').');
  });

  it('the local check agrees with the API server on every selector of the unit tests', async () => {
    const apiAccepts = async (selector: string) =>
      admin().core.listNamespacedPod({ namespace, labelSelector: selector }).then(() => true, (e: { code?: number }) => {
        if (e.code !== 400) throw e;
        return false;
      });
    for (const selector of validSelectors) expect(await apiAccepts(selector), selector).toBe(true);
    for (const [selector] of invalidSelectors) expect(await apiAccepts(selector), selector).toBe(false);
  });
});

describe('status', () => {
  it('shows the group and exits 0 with exactly one leader, 1 otherwise', async () => {
    expect((await apply('redis-0', leaderFile)).exitCode).toBe(0);
    const ok = await runCli(['status'], podEnv(namespace, 'redis-1', saDir));
    expect(ok.exitCode, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^NAME\s+ROLE\s+PHASE\s+READY\s+IP\s+ROLE CHANGED\nredis-0\s+leader\s+Pending\s+no\s+-\s+20\d\d-/);
    expect(ok.stdout).not.toContain('other-0');

    const json = JSON.parse((await runCli(['status', '-o', 'json'], podEnv(namespace, 'redis-1', saDir))).stdout) as { pods: { name: string; role: string | null }[] };
    expect(json.pods.map((p) => [p.name, p.role])).toEqual([['redis-0', 'leader'], ['redis-1', null], ['redis-2', 'follower']]);

    await admin().core.patchNamespacedPod({ namespace, name: 'redis-1', body: [{ op: 'add', path: '/metadata/labels/role', value: 'leader' }] });
    const two = await runCli(['status'], podEnv(namespace, 'redis-1', saDir));
    expect(two.exitCode).toBe(1);
    expect(two.stderr).toContain('2 pods carry role=leader (redis-0, redis-1)');

    await runCli(['apply', '-c', followerFile], podEnv(namespace, 'redis-0', saDir));
    await runCli(['apply', '-c', followerFile], podEnv(namespace, 'redis-1', saDir));
    const none = await runCli(['status'], podEnv(namespace, 'redis-1', saDir));
    expect(none.exitCode).toBe(1);
    expect(none.stderr).toContain('No pod of the group carries role=leader');
  });
});
