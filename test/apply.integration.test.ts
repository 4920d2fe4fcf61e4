// `apply` against the real API server: the label the election file asks for, the requests it takes, and each refusal in one sentence.

import { readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { startExtraApiServer } from '../tools/control-plane.ts';
import { runCli } from './support/cli.ts';
import { admin, controlPlane, createNamespace, documentedRole, podEnv } from './support/cluster.ts';
import { tempDir } from './support/election.ts';
import { matrix } from './support/matrix.ts';

const files = tempDir('apply');
function electionFile(name: string, text: string): string {
  const path = join(files, name);
  writeFileSync(path, text);
  return path;
}
const leaderFile = electionFile('leader.toml', '[election]\nleader = true\nfollower = false\nfinished = true\n');
const followerFile = electionFile('follower.toml', '[election]\nleader = false\nfollower = true\nfinished = true\n');
const runningFile = electionFile('running.toml', '[election]\nleader = true\nfollower = false\nfinished = false\n');

let namespace: string;
let sa: { dir: string };
let podNumber = 0;
/** A new pod for each test, so tests do not see each other's labels. */
async function freshPod(labels: Record<string, string> = { app: 'redis' }) {
  const name = `redis-${++podNumber}`;
  await admin().createPod(namespace, name, labels);
  return { name, env: podEnv(namespace, name, sa.dir) };
}

beforeAll(async () => {
  namespace = await createNamespace('apply');
  sa = await admin().serviceAccount(namespace);
});

describe('apply, as the documented service account', () => {
  it('labels the election winner leader and leaves other labels alone', async () => {
    const pod = await freshPod({ app: 'redis', tier: 'db' });
    const run = await runCli(['apply', '--config', leaderFile], pod.env);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(await admin().podLabels(namespace, pod.name)).toEqual({ app: 'redis', tier: 'db', role: 'leader' });
    expect(run.stderr).toContain(`pod ${namespace}/${pod.name}: role=leader (had none)`);
    expect(run.stdout).toBe('');
    // A promotion: the group's list, this pod's conditional write, and the RolePromoted event.
    expect(run.requests).toBe(3);
  });

  it('labels a follower follower', async () => {
    const pod = await freshPod({ app: 'redis', role: 'leader' });
    const run = await runCli(['apply', '-c', followerFile], pod.env);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(await admin().podLabels(namespace, pod.name)).toEqual({ app: 'redis', role: 'follower' });
  });

  it('removes the role while the election is not finished', async () => {
    const pod = await freshPod({ app: 'redis', role: 'leader' });
    const run = await runCli(['apply', '-c', runningFile], pod.env);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(await admin().podLabels(namespace, pod.name)).toEqual({ app: 'redis' });
    expect(run.stderr).toContain('removed role (was leader)');
  });

  it('sends one request and writes nothing when the label is already right', async () => {
    const pod = await freshPod({ app: 'redis', role: 'leader' });
    const before = (await admin().core.readNamespacedPod({ namespace, name: pod.name })).metadata!.resourceVersion;
    const run = await runCli(['apply', '-c', leaderFile], pod.env);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.requests).toBe(1);
    expect((await admin().core.readNamespacedPod({ namespace, name: pod.name })).metadata!.resourceVersion).toBe(before);
  });

  it('writes the key and values the file names, and lets environment and flags override them', async () => {
    // Two keys and three leader values in turn: what the Role alone allows. Under the policy its parameters
    // name one key and two values (test/rbac.integration.test.ts runs a custom key there).
    const ns = await createNamespace('scheme');
    const mounts = (await admin().serviceAccount(ns, documentedRole().rules, { policy: false })).dir;
    await admin().createPod(ns, 'redis-0', { app: 'redis' });
    const pod = { name: 'redis-0', env: podEnv(ns, 'redis-0', mounts) };
    const namespace = ns;
    const custom = electionFile('custom.toml', '[election]\nleader = true\nfollower = false\nfinished = true\n[label]\nkey = "example.com/db-role"\nleader = "primary"\nfollower = "replica"\n');
    expect((await runCli(['apply', '-c', custom], pod.env)).exitCode).toBe(0);
    expect(await admin().podLabels(namespace, pod.name)).toEqual({ app: 'redis', 'example.com/db-role': 'primary' });

    const byEnv = await runCli(['apply', '-c', custom], { ...pod.env, HAB_POD_ROLE_LEADER_VALUE: 'main' , HAB_POD_ROLE_FORCE: 'true' });
    expect(byEnv.exitCode, byEnv.stderr).toBe(0);
    expect(await admin().podLabels(namespace, pod.name)).toEqual({ app: 'redis', 'example.com/db-role': 'main' });

    const byFlag = await runCli(['apply', '-c', custom, '--label-key', 'db-role', '--leader-value', 'writer'], { ...pod.env, HAB_POD_ROLE_LEADER_VALUE: 'main' });
    expect(byFlag.exitCode, byFlag.stderr).toBe(0);
    // Only the configured key is touched: the old key stays as it was.
    expect(await admin().podLabels(namespace, pod.name)).toEqual({ app: 'redis', 'example.com/db-role': 'main', 'db-role': 'writer' });
  });

  it('refuses a role key that holds someone else\'s value, unless forced', async () => {
    const pod = await freshPod({ app: 'redis' });
    const run = await runCli(['apply', '-c', leaderFile, '--label-key', 'app'], pod.env);
    expect(run.exitCode).toBe(65);
    expect(run.stderr).toMatch(/already has app=redis, which is neither "leader" nor "follower".*--force/);
    expect(await admin().podLabels(namespace, pod.name)).toEqual({ app: 'redis' });
  });

  it('says which sources it used with --verbose, and never prints the token', async () => {
    const pod = await freshPod();
    const run = await runCli(['apply', '-c', leaderFile, '--verbose'], pod.env);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stderr).toContain('from=POD_NAME');
    expect(run.stderr).toContain('namespace_from=POD_NAMESPACE');
    expect(run.stderr).toContain(`service account in ${sa.dir}/${pod.name}`);
    expect(run.stderr + run.stdout).not.toContain(admin().podMount(namespace, pod.name).token);
  });

  it('finds the namespace in the service-account directory and the name in HOSTNAME', async () => {
    const pod = await freshPod();
    const { POD_NAME: _n, POD_NAMESPACE: _ns, ...env } = pod.env;
    const run = await runCli(['apply', '-c', followerFile, '-v'], { ...env, HOSTNAME: pod.name });
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stderr).toContain(`namespace_from=${sa.dir}/${pod.name}/namespace`);
    expect(await admin().podLabels(namespace, pod.name)).toMatchObject({ role: 'follower' });
  });
});

describe('dry runs', () => {
  it('client: prints the patch and sends nothing, even without credentials', async () => {
    const run = await runCli(['apply', '-c', leaderFile, '--dry-run', '--pod', 'p', '--namespace', 'n'], {});
    expect(run.exitCode, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({ namespace: 'n', pod: 'p', patch: { metadata: { labels: { role: 'leader' } } } });
    expect(run.requests).toBe(0);
  });

  it('server: the API server validates the patch and persists nothing', async () => {
    const pod = await freshPod({ app: 'redis', role: 'follower' });
    const before = (await admin().core.readNamespacedPod({ namespace, name: pod.name })).metadata!.resourceVersion;
    const run = await runCli(['apply', '-c', leaderFile, '--dry-run=server'], pod.env);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stderr).toContain('server dry run, nothing persisted');
    expect(run.requests).toBe(2);
    expect((await admin().core.readNamespacedPod({ namespace, name: pod.name })).metadata!.resourceVersion).toBe(before);
    expect(await admin().podLabels(namespace, pod.name)).toEqual({ app: 'redis', role: 'follower' });
  });
});

describe('help and version', () => {
  it.each([
    [['--help'], 'Commands:'],
    [['-h'], 'Commands:'],
    [['apply', '--help'], '--config'],
    [['run', '-h'], '--start-on-label-error'],
    [['status', '--help'], '--output'],
  ])('%j prints the usage on stdout and exits 0', async (args, shows) => {
    const result = await runCli(args, {});
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^hab-pod-role /);
    expect(result.stdout).toContain(shows);
    expect(result.stderr).toBe('');
  });
  it('--help after -- belongs to the service, not to the tool', async () => {
    const result = await runCli(['run', '-c', leaderFile, '--no-watch', '--dry-run', '--', 'redis-server', '--help'], {});
    expect(result.stderr).toContain('--dry-run goes with apply');
  });
  it('--version prints the package version', async () => {
    const result = await runCli(['--version'], {});
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe(JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version);
  });
});

describe('failures: one sentence, a documented code, nothing changed', () => {
  it('65 for a broken election file, before any API call', async () => {
    const pod = await freshPod({ app: 'redis', role: 'follower' });
    const broken = electionFile('broken.toml', '[election]\nleader = \nfollower = false\n');
    const run = await runCli(['apply', '-c', broken], pod.env);
    matrix.inputs();
    const after = await admin().podLabels(namespace, pod.name);
    matrix.unwantedWrites(after.role === 'follower' ? 0 : 1);
    expect(run.exitCode).toBe(65);
    expect(run.stderr.trim()).toBe(`hab-pod-role: error: ${broken}:2:10: invalid TOML: Unexpected character, expecting string, number, datetime, boolean, inline array or inline table; fix the template that renders it.`);
    expect(await admin().podLabels(namespace, pod.name)).toEqual({ app: 'redis', role: 'follower' });
  });

  it('78 for a pod that does not exist, telling the user to set POD_NAME', async () => {
    matrix.inputs();
    // With the token of a pod that does exist: the one the kubelet mounts names its own pod.
    const { env } = await freshPod();
    const run = await runCli(['apply', '-c', leaderFile], { ...env, POD_NAME: 'no-such-pod' });
    expect(run.exitCode).toBe(78);
    expect(run.stderr.trim()).toBe(
      `hab-pod-role: error: The pod "no-such-pod" in namespace "${namespace}" does not exist; set POD_NAME and POD_NAMESPACE from the downward API (fieldRef metadata.name and metadata.namespace) or pass --pod and --namespace.`,
    );
  });

  it('78 when there are no credentials at all', async () => {
    matrix.inputs();
    const run = await runCli(['apply', '-c', leaderFile], { POD_NAME: 'p', POD_NAMESPACE: 'n' });
    expect(run.exitCode).toBe(78);
    expect(run.stderr).toMatch(/No Kubernetes credentials found/);
  });

  it('64 for a usage mistake', async () => {
    matrix.inputs(2);
    const run = await runCli(['apply', '-c', leaderFile, '--no-such-flag'], {});
    expect(run.exitCode).toBe(64);
    expect(run.stderr.trim()).toBe('hab-pod-role: error: Unknown argument: --no-such-flag; see hab-pod-role --help.');
    const positional = await runCli(['apply', 'extra'], {});
    expect(positional.exitCode).toBe(64);
    expect(positional.stderr.trim()).toBe('hab-pod-role: error: Unknown argument: extra; see hab-pod-role --help.');
  });

  it('64 for an unknown or missing command, naming the commands', async () => {
    matrix.inputs(2);
    const unknown = await runCli(['aply', '-c', leaderFile], {});
    expect(unknown.exitCode).toBe(64);
    expect(unknown.stderr.trim()).toBe('hab-pod-role: error: Unknown command: aply; name one of apply, run, status or rbac (see hab-pod-role --help).');
    const none = await runCli([], {});
    expect(none.exitCode).toBe(64);
    expect(none.stderr.trim()).toBe('hab-pod-role: error: Name a command: apply, run, status or rbac; see hab-pod-role --help.');
  });

  describe('each verb of the documented Role is needed, and its absence is named', () => {
    const without = (resource: string, verb: string) =>
      documentedRole().rules
        .map((rule) => (rule.resources?.includes(resource) ? { ...rule, verbs: rule.verbs.filter((v) => v !== verb) } : rule))
        .filter((rule) => rule.verbs.length > 0);
    const forbidden = (ns: string, verb: string, resource: string) =>
      `hab-pod-role: error: Forbidden: system:serviceaccount:${ns}:hab-pod-role may not ${verb} ${resource} in namespace "${ns}"; add the RBAC rule {apiGroups: [""], resources: ["${resource}"], verbs: ["${verb}"]} to a Role in "${ns}" bound to it (see the README's RBAC section).`;

    it.each([
      ['pods', 'patch', leaderFile],
      ['pods', 'patch', followerFile],
      ['pods', 'list', leaderFile],
      ['pods', 'get', followerFile],
    ])('without %s %s: 77 and the label stays (%s)', async (resource, verb, file) => {
      const ns = await createNamespace('rbac');
      const account = await admin().serviceAccount(ns, without(resource, verb));
      await admin().createPod(ns, 'redis-0', { app: 'redis', role: 'leader' === basename(file, '.toml') ? 'follower' : 'leader' });
      const before = await admin().podLabels(ns, 'redis-0');
      for (const dryRun of [[], ['--dry-run=server']]) {
        matrix.fault();
        const run = await runCli(['apply', '-c', file, ...dryRun], podEnv(ns, 'redis-0', account.dir));
        expect(run.exitCode).toBe(77);
        expect(run.stderr.trim()).toBe(forbidden(ns, verb, resource));
      }
      const after = await admin().podLabels(ns, 'redis-0');
      matrix.unwantedWrites(JSON.stringify(after) === JSON.stringify(before) ? 0 : 1);
      expect(after).toEqual(before);

      await admin().setRoleRules(ns, documentedRole().rules);
      const granted = await runCli(['apply', '-c', file], podEnv(ns, 'redis-0', account.dir));
      expect(granted.exitCode, granted.stderr).toBe(0);
    });

    it('without events create: the promotion is made, and the missing rule is named in a warning', async () => {
      matrix.fault();
      const ns = await createNamespace('rbac');
      const account = await admin().serviceAccount(ns, without('events', 'create'));
      await admin().createPod(ns, 'redis-0', { app: 'redis' });
      const run = await runCli(['apply', '-c', leaderFile], podEnv(ns, 'redis-0', account.dir));
      expect(run.exitCode, run.stderr).toBe(0);
      expect(run.stderr).toContain(`hab-pod-role: warning: could not record an event: Forbidden: system:serviceaccount:${ns}:hab-pod-role may not create events in namespace "${ns}"`);
      expect(await admin().podLabels(ns, 'redis-0')).toMatchObject({ role: 'leader' });
    });
  });

  it('77 when the API server rejects the token', async () => {
    matrix.fault();
    const pod = await freshPod();
    const badDir = tempDir('badsa');
    writeFileSync(join(badDir, 'token'), 'not-a-valid-token');
    writeFileSync(join(badDir, 'ca.crt'), controlPlane().caPem);
    const run = await runCli(['apply', '-c', leaderFile], { ...pod.env, HAB_POD_ROLE_SERVICE_ACCOUNT_DIR: badDir });
    expect(run.exitCode).toBe(77);
    expect(run.stderr).toMatch(/rejected the credentials .* \(401 Unauthorized\), also after re-reading them/);
    expect(run.stderr).not.toContain('not-a-valid-token');
  });

  it('69 within the deadline when the API server is stopped; a run started while it is down succeeds once it is back', async () => {
    const pod = await freshPod({ app: 'redis', role: 'follower' });
    const apiserver = await startExtraApiServer(controlPlane().dir);
    const env = podEnv(namespace, pod.name, sa.dir, apiserver.server);
    try {
      expect((await runCli(['apply', '-c', runningFile], env)).exitCode).toBe(0);
      await apiserver.stop();
      const started = Date.now();
      const down = await runCli(['apply', '-c', leaderFile, '--timeout', '2'], env);
      // The deadline is a promise to the hook that called it: the run ends around it, not long after.
      expect(Date.now() - started).toBeLessThan(15_000);
      matrix.fault(2); // down past the deadline, and down at the start of a run that then succeeds
      expect(down.exitCode).toBe(69);
      expect(down.stderr).toMatch(/did not answer successfully within --timeout 2s \(last error: ECONNREFUSED/);
      expect(await admin().podLabels(namespace, pod.name)).toEqual({ app: 'redis' });

      // Started while the server is still down, which comes back before this run's deadline.
      const waiting = runCli(['apply', '-c', leaderFile, '--timeout', '60'], env);
      await new Promise((r) => setTimeout(r, 1000));
      await apiserver.restart();
      const back = await waiting;
      expect(back.exitCode, back.stderr).toBe(0);
      expect(back.stderr).toMatch(/retrying attempt=\d+ .*ECONNREFUSED/);
      expect(await admin().podLabels(namespace, pod.name)).toEqual({ app: 'redis', role: 'leader' });
    } finally {
      await apiserver.stop();
    }
  });

  it('78 for an API server whose certificate the CA does not vouch for, without retrying', async () => {
    matrix.fault(2); // the wrong CA, with and without NODE_TLS_REJECT_UNAUTHORIZED=0
    const pod = await freshPod();
    const otherCa = tempDir('otherca');
    const { execFileSync } = await import('node:child_process');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=other',
      '-keyout', join(otherCa, 'ca.key'), '-out', join(otherCa, 'ca.crt')], { stdio: 'ignore' });
    writeFileSync(join(otherCa, 'token'), admin().podMount(namespace, pod.name).token);
    const run = await runCli(['apply', '-c', leaderFile], { ...pod.env, HAB_POD_ROLE_SERVICE_ACCOUNT_DIR: otherCa });
    expect(run.exitCode).toBe(78);
    expect(run.stderr).toMatch(/presented a certificate that cannot be verified \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\)/);
    expect(run.stderr).not.toMatch(/retrying/);
    // Node's global switch does not turn verification off either.
    const anyway = await runCli(['apply', '-c', leaderFile], { ...pod.env, HAB_POD_ROLE_SERVICE_ACCOUNT_DIR: otherCa, NODE_TLS_REJECT_UNAUTHORIZED: '0' });
    expect(anyway.exitCode).toBe(78);
    expect(await admin().podLabels(namespace, pod.name)).toEqual({ app: 'redis' });
  });

  describe('kubeconfig problems: 78 and what to do', () => {
    const kubeconfig = (text: string) => {
      const path = join(files, `kubeconfig-${Math.random().toString(36).slice(2)}`);
      writeFileSync(path, text);
      return path;
    };
    const cluster = () => `clusters: [{name: c, cluster: {server: ${controlPlane().server}, certificate-authority: ${controlPlane().caFile}}}]`;

    it.each([
      ['a kubeconfig that does not exist', () => '/nonexistent/kubeconfig', /The kubeconfig \/nonexistent\/kubeconfig \(from --kubeconfig\) does not exist: fix the path or unset it\./],
      ['no current context', () => kubeconfig(`apiVersion: v1\nkind: Config\n${cluster()}\nusers: [{name: u, user: {token: x}}]\ncontexts: [{name: ctx, context: {cluster: c, user: u}}]\n`), /has no usable current context: run `kubectl config use-context NAME`/],
      ['insecure-skip-tls-verify', () => kubeconfig(`apiVersion: v1\nkind: Config\ncurrent-context: ctx\nclusters: [{name: c, cluster: {server: ${controlPlane().server}, insecure-skip-tls-verify: true}}]\nusers: [{name: u, user: {token: x}}]\ncontexts: [{name: ctx, context: {cluster: c, user: u}}]\n`), /sets insecure-skip-tls-verify; hab-pod-role only talks to a verified API server/],
    ])('%s', async (_what, path, message) => {
      matrix.inputs();
      const run = await runCli(['apply', '-c', leaderFile, '--kubeconfig', path(), '--pod', 'p', '-n', namespace], {});
      expect(run.exitCode).toBe(78);
      expect(run.stderr.trim().split('\n')).toHaveLength(1);
      expect(run.stderr).toMatch(message);
    });
  });
});
