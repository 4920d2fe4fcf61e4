// The account's confinement, against the real API server: what the policy refuses, that the policy (not RBAC)
// refuses it, what the tool makes of a refusal, and the README's objects applied as they are.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadAllYaml } from '@kubernetes/client-node';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './support/cli.ts';
import { admin, controlPlane, createNamespace, documentedRole, podEnv, documentedRbac, repoRoot } from './support/cluster.ts';
import { electionText, tempDir, writeElection } from './support/election.ts';
import { eventually } from './support/eventually.ts';
import { matrix } from './support/matrix.ts';

const files = tempDir('rbac');
const leaderFile = writeElection(join(files, 'leader.toml'), electionText('leader'));
const kubectl = (...args: string[]) => execa(join(controlPlane().binDir, 'kubectl'), [`--kubeconfig=${controlPlane().kubeconfig}`, ...args], { reject: false });

/** A namespace with the tool's account (with or without the policy), and a numbered pair of pods in it for each case. */
async function accountNamespace(prefix: string, policy: boolean) {
  const namespace = await createNamespace(prefix);
  const mounts = (await admin().serviceAccount(namespace, documentedRole().rules, { policy })).dir;
  const owner = await admin().createOwner(namespace, 'redis');
  let pairs = 0;
  return {
    namespace,
    mounts,
    /** This member's pod and a peer in its group; writes go out with the token bound to `own`. */
    async pair(peerLabels: Record<string, string> = { app: 'redis' }) {
      const n = ++pairs;
      const [own, peer] = [`own-${n}`, `peer-${n}`];
      await admin().createPod(namespace, own, { app: 'redis' }, owner);
      await admin().createPod(namespace, peer, peerLabels, owner);
      return { own, peer, token: admin().podMount(namespace, own).token };
    },
  };
}

type Target = 'own' | 'peer';
const image = (name: string) => ({ spec: { containers: [{ name: 'main', image: name }] } });
const forbidden: [string, Target, unknown, Record<string, string>, RegExp][] = [
  ["a peer's image", 'peer', image('attacker/redis'), {}, /may not change the spec of pod peer-\d+ \(containers, images, tolerations\)/],
  ['its own image', 'own', image('attacker/redis'), {}, /may not change the spec of pod own-\d+/],
  ["a peer's deadline (activeDeadlineSeconds: it kills the pod)", 'peer', { spec: { activeDeadlineSeconds: 60 } }, {}, /may not change the spec of pod peer-\d+/],
  ["a peer's other label", 'peer', { metadata: { labels: { app: 'attacker' } } }, {}, /may change no label of pod peer-\d+ but role \(the key the policy was printed for: hab-pod-role rbac --namespace \S+\), and this write changes app$/],
  ['its own other label', 'own', { metadata: { labels: { tier: 'db' } } }, {}, /may change no label of pod own-\d+ but role .*, and this write changes tier$/],
  ['a foreign annotation on its own pod', 'own', { metadata: { annotations: { 'example.com/note': 'x' } } }, {}, /may change no annotation of pod own-\d+ outside hab-pod-role\/, and this write changes example\.com\/note$/],
  ['a foreign annotation on a peer', 'peer', { metadata: { annotations: { 'example.com/note': 'x' } } }, {}, /may change no annotation of pod peer-\d+ outside hab-pod-role\//],
  ['the leader value on a peer', 'peer', { metadata: { labels: { role: 'leader' } } }, {}, /pod peer-\d+ is not the pod the token of hab-pod-role is bound to \(own-\d+\): there it may only remove role=leader, and this write sets role=leader$/],
  ['the follower value on a peer', 'peer', { metadata: { labels: { role: 'follower' } } }, {}, /there it may only remove role=leader, and this write sets role=follower$/],
  ["removing a peer's follower value", 'peer', { metadata: { labels: { role: null } } }, { role: 'follower' }, /there it may only remove role=leader, and this write removes role=follower$/],
  ['a value the policy does not name, on its own pod', 'own', { metadata: { labels: { role: 'boss' } } }, {}, /on its own pod hab-pod-role may set role only to leader or follower \(the values the policy was printed for: hab-pod-role rbac --namespace \S+\) or remove it, and this write sets role=boss$/],
  ["another of the tool's annotations on a peer", 'peer', { metadata: { annotations: { 'hab-pod-role/claim': 'x' } } }, {}, /there it may only write hab-pod-role\/fence and hab-pod-role\/role-changed-at, and this write changes hab-pod-role\/claim$/],
  ["a peer's owner", 'peer', { metadata: { ownerReferences: null } }, {}, /may not change the owner references or finalizers of pod peer-\d+$/],
  ['a finalizer on its own pod', 'own', { metadata: { finalizers: ['example.com/hold'] } }, {}, /may not change the owner references or finalizers of pod own-\d+$/],
];

describe('the admission policy, as the tool\'s account with a token bound to its pod', () => {
  let confined: Awaited<ReturnType<typeof accountNamespace>>;
  let roleOnly: Awaited<ReturnType<typeof accountNamespace>>;
  beforeAll(async () => {
    [confined, roleOnly] = await Promise.all([accountNamespace('policy', true), accountNamespace('roleonly', false)]);
  });

  it.each(forbidden)('refuses %s, which the Role alone allows', async (_what, target, patch, peerLabels, message) => {
    const inConfined = await confined.pair({ app: 'redis', ...peerLabels });
    const refused = await admin().patchAs(inConfined.token, confined.namespace, inConfined[target], patch);
    expect(refused.status, refused.message).toBe(403);
    expect(refused.message).toMatch(new RegExp(`^pods "${inConfined[target]}" is forbidden: ValidatingAdmissionPolicy 'hab-pod-role.${confined.namespace}' with binding 'hab-pod-role.${confined.namespace}' denied request: `));
    expect(refused.message).toMatch(message);

    // The same write, by the same kind of token, where the policy is not installed: RBAC lets it through.
    const inRoleOnly = await roleOnly.pair({ app: 'redis', ...peerLabels });
    const allowed = await admin().patchAs(inRoleOnly.token, roleOnly.namespace, inRoleOnly[target], patch);
    expect(allowed.status, allowed.message).toBe(200);
  });

  it('refuses every write with a token bound to no pod, saying to use the pod\'s own', async () => {
    const { own } = await confined.pair();
    const unbound = await admin().mintToken(confined.namespace, 'hab-pod-role');
    const refused = await admin().patchAs(unbound, confined.namespace, own, { metadata: { labels: { role: 'follower' } } });
    expect(refused.status).toBe(403);
    expect(refused.message).toContain(`denied request: the token of system:serviceaccount:${confined.namespace}:hab-pod-role is not bound to a pod, so the policy cannot tell its own pod from the others; use the token the kubelet mounts in the pod (or kubectl create token --bound-object-kind Pod)`);
  });

  it('allows what the protocol writes: any role value it names and any hab-pod-role/ annotation on its own pod; on a peer, the demotion', async () => {
    const { own, peer, token } = await confined.pair({ app: 'redis', role: 'leader' });
    const ns = confined.namespace;
    for (const patch of [
      { metadata: { labels: { role: 'follower' } } },
      { metadata: { labels: { role: 'leader' }, annotations: { 'hab-pod-role/role-changed-at': 'now', 'hab-pod-role/claim': 'x' } } },
      { metadata: { labels: { role: null }, annotations: { 'hab-pod-role/claim': null } } },
    ]) {
      const result = await admin().patchAs(token, ns, own, patch);
      expect(result.status, result.message).toBe(200);
    }
    // What a promotion sends a stale leader (src/apply.ts), then a fence alone.
    const demotion = await admin().patchAs(token, ns, peer, { metadata: { labels: { role: null }, annotations: { 'hab-pod-role/fence': `${own}/1`, 'hab-pod-role/role-changed-at': 'now' } } });
    expect(demotion.status, demotion.message).toBe(200);
    const fence = await admin().patchAs(token, ns, peer, { metadata: { annotations: { 'hab-pod-role/fence': `${own}/2` } } });
    expect(fence.status, fence.message).toBe(200);
    expect(await admin().podLabels(ns, peer)).toEqual({ app: 'redis' });
  });
});

describe('the tool under the policy', () => {
  it('a refusal is one sentence naming the policy and what it refused, exit 77, and nothing changes', async () => {
    matrix.fault();
    const ns = await createNamespace('refused');
    const mounts = (await admin().serviceAccount(ns)).dir;
    await admin().createPod(ns, 'redis-0', { app: 'redis' });
    const run = await runCli(['apply', '-c', leaderFile, '--label-key', 'db-role'], podEnv(ns, 'redis-0', mounts));
    expect(run.exitCode).toBe(77);
    expect(run.stderr.trim()).toBe(
      `hab-pod-role: error: The admission policy hab-pod-role.${ns} refused to patch pod "redis-0" in namespace "${ns}": hab-pod-role may change no label of pod redis-0 but role (the key the policy was printed for: hab-pod-role rbac --namespace ${ns}), and this write changes db-role.`,
    );
    const labels = await admin().podLabels(ns, 'redis-0');
    matrix.unwantedWrites(labels['db-role'] === undefined ? 0 : 1);
    expect(labels).toEqual({ app: 'redis' });
  });

  it('with a token bound to no pod: 77, saying to use the pod\'s own token', async () => {
    matrix.fault();
    const ns = await createNamespace('unbound');
    await admin().serviceAccount(ns);
    await admin().createPod(ns, 'redis-0', { app: 'redis' });
    const unbound = await admin().mountToken(ns, 'hab-pod-role');
    const run = await runCli(['apply', '-c', leaderFile], { ...podEnv(ns, 'redis-0', '/'), HAB_POD_ROLE_SERVICE_ACCOUNT_DIR: unbound.dir });
    expect(run.exitCode).toBe(77);
    expect(run.stderr.trim()).toMatch(new RegExp(`^hab-pod-role: error: The admission policy hab-pod-role\\.${ns} refused to patch pod "redis-0" in namespace "${ns}": the token of system:serviceaccount:${ns}:hab-pod-role is not bound to a pod, .*kubectl create token --bound-object-kind Pod\\)\\.$`));
    expect(await admin().podLabels(ns, 'redis-0')).toEqual({ app: 'redis' });
  });

  it('writes a label key and values of your choosing once the policy names them', async () => {
    const ns = await createNamespace('custom');
    const scheme = { key: 'example.com/db-role', leader: 'primary', follower: 'replica' };
    const mounts = (await admin().serviceAccount(ns, documentedRole().rules, { scheme })).dir;
    const owner = await admin().createOwner(ns, 'db');
    await admin().createPod(ns, 'db-0', { app: 'db', 'example.com/db-role': 'primary' }, owner);
    await admin().createPod(ns, 'db-1', { app: 'db' }, owner);
    const file = writeElection(join(files, 'custom.toml'), `${electionText('leader')}[label]\nkey = "example.com/db-role"\nleader = "primary"\nfollower = "replica"\n`);
    const run = await runCli(['apply', '-c', file], podEnv(ns, 'db-1', mounts));
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stderr).toContain('demoted stale leader db-0');
    expect(await admin().podLabels(ns, 'db-0')).toEqual({ app: 'db' });
    expect(await admin().podLabels(ns, 'db-1')).toEqual({ app: 'db', 'example.com/db-role': 'primary' });
    // The default key is now the one refused.
    const role = await runCli(['apply', '-c', leaderFile], podEnv(ns, 'db-1', mounts));
    expect(role.exitCode).toBe(77);
    expect(role.stderr).toContain(`but example.com/db-role (the key the policy was printed for: hab-pod-role rbac --namespace ${ns} --label-key example.com/db-role --leader-value primary --follower-value replica)`);
  });

  it('leans on no other object: with the namespace\'s ConfigMaps deleted, every writer still writes', async () => {
    // A binding with parameters refuses every write it matches while they are missing, by any user: the API
    // server looks them up before the matchConditions that pick the tool's account.
    const ns = await createNamespace('noparams');
    const mounts = (await admin().serviceAccount(ns)).dir;
    await admin().createPod(ns, 'redis-0', { app: 'redis' });
    expect((await kubectl('delete', 'configmaps', '--all', '-n', ns)).exitCode).toBe(0);
    // A second of writes after the deletion, long past the moment the API server's informers see it.
    for (let i = 0; i < 10; i++) {
      const byAdmin = await kubectl('label', 'pod', 'redis-0', '-n', ns, '--overwrite', `tier=t${i}`);
      expect(byAdmin.exitCode, byAdmin.stderr).toBe(0);
      await new Promise((r) => setTimeout(r, 100));
    }
    const run = await runCli(['apply', '-c', leaderFile], podEnv(ns, 'redis-0', mounts));
    expect(run.exitCode, run.stderr).toBe(0);
    expect(await admin().podLabels(ns, 'redis-0')).toEqual({ app: 'redis', tier: 't9', role: 'leader' });
  });
});

describe('the command\'s code', () => {
  it('is a chunk of its own, which a hook running apply never loads', () => {
    // What `apply` loads: the entry, the command line it imports for every command but `run`, and whatever
    // those import statically (a dynamic import() loads only when its command runs).
    const dist = join(repoRoot, 'dist');
    const loaded = new Set<string>();
    const visit = (file: string) => {
      if (loaded.has(file)) return;
      loaded.add(file);
      const text = readFileSync(file, 'utf8');
      for (const [, path] of text.matchAll(/from\s*"(\.\/[^"]+)"/g)) visit(join(file, '..', path!));
    };
    visit(join(dist, 'hab-pod-role.mjs'));
    const cli = /import\("(\.\/chunks\/cli-[^"]+)"\)/.exec(readFileSync(join(dist, 'hab-pod-role.mjs'), 'utf8'))![1]!;
    visit(join(dist, cli));
    const marker = 'tool-service-account';
    expect([...loaded].filter((f) => readFileSync(f, 'utf8').includes(marker))).toEqual([]);
    const rbacChunk = /import\("(\.\/rbac-[^"]+)"\)/.exec(readFileSync(join(dist, cli), 'utf8'))![1]!;
    expect(readFileSync(join(dist, 'chunks', rbacChunk), 'utf8')).toContain(marker);
  });
});

describe('the README\'s objects', () => {
  it('are what `hab-pod-role rbac` prints, and the command refuses a bad option in one sentence', async () => {
    const printed = await runCli(['rbac'], {}, { stripFinalNewline: false });
    expect(printed.exitCode, printed.stderr).toBe(0);
    expect(printed.stdout).toBe(documentedRbac());
    expect(printed.stderr).toBe('');
    const rbacOnly = await runCli(['rbac', '--no-policy', '-n', 'db'], {});
    expect((loadAllYaml(rbacOnly.stdout) as { kind: string }[]).map((d) => d.kind)).toEqual(['ServiceAccount', 'Role', 'RoleBinding']);
    matrix.inputs();
    const bad = await runCli(['rbac', '--label-key', 'a b'], {});
    expect(bad.exitCode).toBe(64);
    expect(bad.stderr.trim()).toMatch(/^hab-pod-role: error: --label-key: label key "a b" must be letters, digits/);
    expect(bad.stdout).toBe('');
  });

  it('apply as they are on a fresh control plane, and the whole protocol runs under them', async () => {
    // The `default` namespace is the block's own; no other test uses it.
    const block = join(files, 'readme-rbac.yaml');
    writeFileSync(block, documentedRbac());
    const applied = await kubectl('apply', '-f', block);
    expect(applied.exitCode, applied.stderr).toBe(0);
    expect(applied.stdout).toContain('validatingadmissionpolicy.admissionregistration.k8s.io/hab-pod-role.default created');
    expect(applied.stdout).toContain('validatingadmissionpolicybinding.admissionregistration.k8s.io/hab-pod-role.default created');

    const owner = await admin().createOwner('default', 'redis');
    const mounts = tempDir('default-mounts');
    for (const pod of ['redis-0', 'redis-1']) {
      await admin().createPod('default', pod, { app: 'redis', ...(pod === 'redis-0' ? { role: 'leader' } : {}) }, owner);
      await admin().mountToken('default', 'hab-pod-role', pod, join(mounts, pod));
    }
    // Server dry runs, repeated until the API server has loaded the new policy.
    const token = readFileSync(join(mounts, 'redis-1', 'token'), 'utf8');
    const dryRun = async (pod: string, role: string) => (await admin().patchAs(token, 'default', pod, { metadata: { labels: { role } } }, { dryRun: true })).status;
    await eventually(async () => (await dryRun('redis-0', 'follower')) === 403 && (await dryRun('redis-1', 'follower')) === 200, { what: 'the policy refusing a write to a peer, and allowing one to its own pod' });
    const run = await runCli(['apply', '-c', leaderFile], podEnv('default', 'redis-1', mounts));
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stderr).toContain('demoted stale leader redis-0');
    expect(await admin().podLabels('default', 'redis-0')).toEqual({ app: 'redis' });
    expect(await admin().podLabels('default', 'redis-1')).toEqual({ app: 'redis', role: 'leader' });
    const events = await admin().core.listNamespacedEvent({ namespace: 'default', fieldSelector: 'reason=RoleDemoted' });
    expect(events.items.map((e) => e.involvedObject.name)).toEqual(['redis-0']);
  });
});
