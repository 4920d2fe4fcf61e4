// The Habitat plans and the Redis example's manifests: a build as hab-plan-build does it, a run as an exported image does it, a server dry run.

import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import TOML from '@iarna/toml';
import { loadAllYaml } from '@kubernetes/client-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { admin, controlPlane, documentedRole, repoRoot } from './support/cluster.ts';
import { electionText } from './support/election.ts';
import { kubectl } from './support/kubectl.ts';
import { buildPlan, exportImage, hookPath, onDisk, runHook, type Built } from './support/habitat.ts';
import { renderTemplate } from './support/supervisor.ts';

const isRoot = process.getuid?.() === 0;
/** A skipped suite says why in its name, so the report shows it. */
const needsRoot = isRoot ? '' : ' (skipped: needs root for a mount namespace and chroot)';

const plans = ['plans/hab-pod-role/plan.sh', 'examples/redis/plan.sh'];

describe('Habitat plans', () => {
  it.each(plans)('%s is valid bash', (plan) => {
    execFileSync('bash', ['-n', join(repoRoot, plan)]);
  });

  it('the plan version is the npm package version', () => {
    const version = /^pkg_version=(.*)$/m.exec(readFileSync(join(repoRoot, 'plans/hab-pod-role/plan.sh'), 'utf8'))?.[1];
    expect(version).toBe(JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')).version);
  });
});

// Building and exporting need a mount namespace and chroot: root only, skipped (and reported skipped) otherwise.
describe.runIf(isRoot)(`the hab-plan-build stand-in${needsRoot}`, () => {
  it('runs do_build in the plan\'s directory when there is no pkg_source, and fix_interpreter rewrites only lines matching #!.*<bin>', async () => {
    const plan = join(repoRoot, 'test/fixtures/plans/interpreter');
    const built = await buildPlan(plan, 'acme');
    expect(built.exitCode, built.output).toBe(0);
    const file = (name: string) => readFileSync(onDisk(built, `${built.prefix}/${name}`), 'utf8');
    expect(file('build-dir').trim()).toBe(plan);
    // `#!/usr/bin/env node` has no "bin/node" in it: left as it is, and an image has no /usr/bin/env.
    expect(file('bin/env-line').split('\n')[0]).toBe('#!/usr/bin/env node');
    expect(file('bin/node-line').split('\n')[0]).toMatch(/^#!\/hab\/pkgs\/core\/node20\/20\.12\.1\/\d{14}\/bin\/node$/);
  }, 120_000);
});

describe.runIf(isRoot)(`the tool plan, built as hab-plan-build builds it and run as an exported image runs it${needsRoot}`, () => {
  let built: Built;
  let image: string;
  const version = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')).version;

  beforeAll(async () => {
    // An origin of the user's own: HAB_ORIGIN decides it, whatever the plan says.
    built = await buildPlan(join(repoRoot, 'plans/hab-pod-role'), 'acme');
  }, 300_000);

  it('builds in hab-plan-build\'s phases and directories, into /hab/pkgs/acme/hab-pod-role', () => {
    expect(built.exitCode, built.output).toBe(0);
    expect(built.prefix).toMatch(new RegExp(`^/hab/pkgs/acme/hab-pod-role/${version.replaceAll('.', '\\.')}/\\d{14}$`));
    expect(readFileSync(onDisk(built, `${built.prefix}/IDENT`), 'utf8').trim()).toBe(built.prefix.replace('/hab/pkgs/', ''));
  });

  it('installs bin/hab-pod-role as one executable: no interpreter line, and no core/node among its dependencies', () => {
    const bin = readFileSync(onDisk(built, `${built.prefix}/bin/hab-pod-role`));
    expect(bin.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
    const tdeps = readFileSync(onDisk(built, `${built.prefix}/TDEPS`), 'utf8').split('\n').filter(Boolean);
    expect(tdeps.map((d) => d.split('/').slice(0, 2).join('/')).sort()).toEqual(['core/gcc-libs', 'core/glibc']);
  });

  describe('in an image holding only /hab and busybox at /bin', () => {
    beforeAll(() => {
      if (built.exitCode === 0) image = exportImage(built);
    });
    const hook = (script: string) => runHook(image, hookPath(built), script);

    it('has no /usr/bin/env and no node, as an exported image has none', async () => {
      const result = await hook('ls /usr/bin/env; command -v node || echo "no node"; echo "$PATH"');
      expect(result.stdout.split('\n')).toEqual(['no node', hookPath(built)]);
      expect(result.stderr).toContain('/usr/bin/env: No such file or directory');
    });

    it('hab-pod-role --version and --help work from a hook', async () => {
      const versionResult = await hook('exec hab-pod-role --version');
      expect(versionResult.exitCode, versionResult.stderr).toBe(0);
      expect(versionResult.stdout).toBe(version);
      const help = await hook('exec hab-pod-role --help');
      expect(help.exitCode, help.stderr).toBe(0);
      for (const command of ['apply', 'run', 'status']) expect(help.stdout).toContain(`hab-pod-role ${command}`);
    });

    it('hab-pod-role apply --dry-run=client prints the patch from a hook', async () => {
      writeFileSync(join(image, 'election.toml'), electionText('follower'));
      const dryRun = await hook('exec hab-pod-role apply -c /election.toml --dry-run=client --pod redis-1 -n db');
      expect(dryRun.exitCode, dryRun.stderr).toBe(0);
      expect(JSON.parse(dryRun.stdout)).toEqual({ namespace: 'db', pod: 'redis-1', patch: { metadata: { labels: { role: 'follower' } } } });
    });

    it('hab-pod-role run starts its prepare step from the executable alone', async () => {
      writeFileSync(join(image, 'election.toml'), electionText('follower'));
      // No credentials in the image: the prepare step (the same executable, started again) must get far
      // enough to say so, and the service must not start.
      const result = await hook('exec hab-pod-role run -c /election.toml --pod redis-1 -n db --timeout 1 -- /bin/echo started');
      expect(result.stdout).not.toContain('started');
      expect(result.stderr).toMatch(/hab-pod-role: error: .*(service account|credentials|KUBERNETES_SERVICE_HOST)/i);
    });
  });
});

describe('the Redis example as Habitat and core/redis see it', () => {
  const example = join(repoRoot, 'examples/redis');
  const templates = ['config/redis.config', 'config/election.toml', 'hooks/run', 'hooks/reconfigure', 'hooks/health-check'];
  const text = (file: string) => readFileSync(join(example, file), 'utf8');
  const depsWith = (origin: string) => execFileSync('bash', ['-c', 'source plan.sh; printf "%s\\n" "${pkg_deps[@]}"'], { cwd: example, env: { ...process.env, HAB_ORIGIN: origin }, encoding: 'utf8' }).trim().split('\n');

  it('depends on hab-pod-role under the origin it is built with (the core origin has none)', () => {
    expect(depsWith('acme')).toEqual(['core/redis', 'acme/hab-pod-role']);
    for (const file of ['plans/hab-pod-role/plan.sh', 'plans/hab-pod-role/README.md', 'examples/redis/README.md', 'README.md', ...templates.map((t) => `examples/redis/${t}`)]) {
      expect(readFileSync(join(repoRoot, file), 'utf8'), file).not.toContain('core/hab-pod-role');
    }
  });

  it('names only its dependencies in pkgPathFor, which renders "" for anything else', () => {
    const deps = depsWith('acme');
    const named = templates.flatMap((t) => [...text(t).matchAll(/pkgPathFor "([^"]+)"/g)].map((m) => m[1]!));
    expect(named.length).toBeGreaterThan(0);
    for (const ident of named) expect(deps.some((d) => d === ident || d.startsWith(`${ident}/`)), ident).toBe(true);
  });

  // core/redis is 4.0.14. The names Redis 5 gave replication (replicaof, replica-*, min-replicas-*,
  // REPLICAOF) are not in it; these are, with the version that brought each (tests run Debian's 7.0,
  // which accepts them all, so only this list can tell).
  const redis4Directives: Record<string, string> = {
    bind: '1.0', port: '1.0', dir: '1.0', dbfilename: '1.0', save: '1.0', slaveof: '1.0', appendonly: '1.1',
    'min-slaves-to-write': '2.8', 'min-slaves-max-lag': '2.8', 'protected-mode': '3.2',
  };
  const redis4Commands: Record<string, string> = { slaveof: '1.0', 'config set': '2.0', 'info replication': '2.6', ping: '1.0' };
  const redis4ConfigSet = ['save', 'appendonly', 'min-slaves-to-write', 'min-slaves-max-lag'];
  const cfg = TOML.parse(readFileSync(join(example, 'default.toml'), 'utf8')) as Record<string, unknown>;
  const render = (file: string, role: 'leader' | 'follower', overrides: Record<string, unknown> = {}) => renderTemplate(text(file), {
    cfg: { ...cfg, ...overrides },
    pkg: { svc_config_path: '/hab/svc/redis-leader/config', svc_data_path: '/hab/svc/redis-leader/data' },
    svc: { me: { leader: role === 'leader', follower: role === 'follower' }, leader: { sys: { ip: '198.18.0.10' }, cfg }, election_is_finished: true },
    __pkgPaths: { 'core/redis': '/hab/pkgs/core/redis/4.0.14/20200101000000' },
  });
  const settings = [{}, { save: [], appendonly: 'yes', min_slaves_to_write: 1 }];

  it.each(['leader', 'follower'] as const)('renders redis.config for a %s with directives Redis 4.0.14 has, one save point per line', (role) => {
    for (const overrides of settings) {
      const lines = render('config/redis.config', role, overrides).split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
      for (const line of lines) expect(Object.keys(redis4Directives), line).toContain(line.split(' ')[0]);
      for (const save of lines.filter((l) => l.startsWith('save '))) expect(save).toMatch(/^save (\d+ \d+|"")$/);
      expect(lines.some((l) => l.startsWith('slaveof '))).toBe(role === 'follower');
    }
  });

  it.each(['leader', 'follower'] as const)('calls only redis-cli commands Redis 4.0.14 has in the hooks of a %s', (role) => {
    for (const hook of ['hooks/reconfigure', 'hooks/health-check']) {
      const rendered = render(hook, role).replaceAll('$cli', '/hab/pkgs/core/redis/4.0.14/20200101000000/bin/redis-cli -p 6379');
      const calls = [...rendered.matchAll(/redis-cli -p \d+ ([a-z-]+(?: [a-z-]+){0,2})/g)].map((m) => m[1]!);
      expect(calls.length, hook).toBeGreaterThan(0);
      for (const call of calls) {
        const command = Object.keys(redis4Commands).find((c) => call === c || call.startsWith(`${c} `) || call.split(' ')[0] === c);
        expect(command, `${hook}: redis-cli ${call}`).toBeDefined();
        if (command === 'config set') expect(redis4ConfigSet, `${hook}: redis-cli ${call}`).toContain(call.split(' ')[2]);
      }
    }
  });
});

describe('the Redis example manifests', () => {
  it('pass a server-side dry run against the real API server', async () => {
    // The namespace the example's rbac.yaml is printed for (its policy is bound to it by name); the Redis
    // example test may have created it already.
    const ns = 'redis';
    await admin().createNamespace(ns).catch((error: { code?: number }) => {
      if (error?.code !== 409) throw error;
    });
    // --force-conflicts: the Redis example test may have the same objects live, its image set by another field manager.
    const result = await kubectl(controlPlane(), ['apply', '--server-side', '--force-conflicts', '--dry-run=server', '-k', join(repoRoot, 'examples/redis/kubernetes'), '-n', ns], { reject: false });
    expect(result.exitCode, result.stderr).toBe(0);
    for (const object of ['serviceaccount/hab-pod-role', 'role.rbac.authorization.k8s.io/hab-pod-role', 'rolebinding.rbac.authorization.k8s.io/hab-pod-role',
      'validatingadmissionpolicy.admissionregistration.k8s.io/hab-pod-role.redis',
      'validatingadmissionpolicybinding.admissionregistration.k8s.io/hab-pod-role.redis',
      'service/redis-hab', 'service/redis-leader', 'service/redis-follower', 'statefulset.apps/redis']) {
      expect(result.stdout).toContain(`${object} serverside-applied (server dry run)`);
    }
  });

  it('grant exactly the Role the README documents', () => {
    const docs = loadAllYaml(readFileSync(join(repoRoot, 'examples/redis/kubernetes/rbac.yaml'), 'utf8')) as { kind: string; rules?: unknown }[];
    expect(docs.find((d) => d.kind === 'Role')?.rules).toEqual(documentedRole().rules);
  });

  it('declare the Supervisor\'s ports (9638 over TCP and UDP, 9631) and probe readiness at its health endpoint', () => {
    const docs = [...loadAllYaml(readFileSync(join(repoRoot, 'examples/redis/kubernetes/statefulset.yaml'), 'utf8')), ...loadAllYaml(readFileSync(join(repoRoot, 'examples/redis/kubernetes/services.yaml'), 'utf8'))] as {
      kind: string; metadata: { name: string };
      spec: { ports?: { port: number; protocol?: string }[]; template?: { spec: { containers: { ports: { name: string; containerPort: number; protocol?: string }[]; readinessProbe: { exec?: unknown; httpGet?: { path: string; port: string | number } } }[] } } };
    }[];
    const container = docs.find((d) => d.kind === 'StatefulSet')!.spec.template!.spec.containers[0]!;
    const ports = (list: { containerPort?: number; port?: number; protocol?: string }[]) => list.map((p) => `${p.containerPort ?? p.port}/${p.protocol ?? 'TCP'}`).sort();
    for (const wanted of ['9631/TCP', '9638/TCP', '9638/UDP']) {
      expect(ports(container.ports)).toContain(wanted);
      expect(ports(docs.find((d) => d.metadata.name === 'redis-hab')!.spec.ports!)).toContain(wanted);
    }
    // An exec probe runs in the image, whose PATH (busybox, hab, the primary package) has no redis-cli.
    expect(container.readinessProbe.exec).toBeUndefined();
    const service = /^pkg_name=(.*)$/m.exec(readFileSync(join(repoRoot, 'examples/redis/plan.sh'), 'utf8'))![1];
    expect(container.readinessProbe.httpGet!.path).toBe(`/services/${service}/default/health`);
    expect(container.ports.find((p) => p.name === container.readinessProbe.httpGet!.port || p.containerPort === container.readinessProbe.httpGet!.port)?.containerPort).toBe(9631);
  });

  it('select the leader and followers on the role values of the example election file', () => {
    const services = loadAllYaml(readFileSync(join(repoRoot, 'examples/redis/kubernetes/services.yaml'), 'utf8')) as { metadata: { name: string }; spec: { selector: Record<string, string> } }[];
    const selector = (name: string) => services.find((s) => s.metadata.name === name)!.spec.selector;
    const election = readFileSync(join(repoRoot, 'examples/redis/config/election.toml'), 'utf8');
    expect(election).toMatch(/key = "role"\nleader = "leader"\nfollower = "follower"/);
    expect(selector('redis-leader')).toEqual({ app: 'redis', role: 'leader' });
    expect(selector('redis-follower')).toEqual({ app: 'redis', role: 'follower' });
  });
});
