// The Habitat plans and the Redis example's manifests, checked without Habitat: syntax, a build-phase run, a server dry run.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadAllYaml } from '@kubernetes/client-node';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { admin, controlPlane, documentedRole, repoRoot } from './support/cluster.ts';
import { electionText, tempDir, writeElection } from './support/election.ts';

const plans = ['plans/hab-pod-role/plan.sh', 'examples/redis/plan.sh'];

describe('Habitat plans', () => {
  it.each(plans)('%s is valid bash', (plan) => {
    execFileSync('bash', ['-n', join(repoRoot, plan)]);
  });

  it('the tool plan builds a self-contained package whose bin/hab-pod-role runs on the Node of its deps', async () => {
    const work = tempDir('plan');
    // What `hab pkg build` provides: the plan's directory, a source cache, a prefix, and fix_interpreter
    // (here pointing at the Node running these tests, standing in for core/node).
    const harness = `
      set -euo pipefail
      PLAN_CONTEXT=${repoRoot}/plans/hab-pod-role
      HAB_CACHE_SRC_PATH=${work}/src
      fix_interpreter() { sed -i "1s|^#!.*|#!${process.execPath}|" "$1"; }
      source "$PLAN_CONTEXT/plan.sh"
      pkg_prefix=${work}/pkgs/$pkg_origin/$pkg_name/$pkg_version/20261121000000
      pkg_dirname=$pkg_name-$pkg_version
      do_download; do_verify; do_unpack
      cd "$HAB_CACHE_SRC_PATH/$pkg_dirname"
      do_build
      do_install
      echo "$pkg_prefix"`;
    // The build keeps the machine's environment (npm needs its CA and registry settings), as hab pkg build does.
    const built = await execa('bash', ['-c', harness], { reject: false, stdin: 'ignore' });
    expect(built.exitCode, built.stderr).toBe(0);
    const prefix = built.stdout.trim().split('\n').at(-1)!;
    expect(prefix).toContain('/pkgs/core/hab-pod-role/0.1.0/');
    const bin = join(prefix, 'bin/hab-pod-role');
    expect(readFileSync(bin, 'utf8').split('\n')[0]).toBe(`#!${process.execPath}`);

    // Run from elsewhere, with no node_modules anywhere near: everything it needs is in the package.
    const version = await execa(bin, ['--version'], { cwd: work, reject: false });
    expect(version.stdout).toBe(JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')).version);
    const file = writeElection(join(work, 'election.toml'), electionText('follower'));
    const dryRun = await execa(bin, ['apply', '-c', file, '--dry-run', '--pod', 'redis-1', '-n', 'db'], { cwd: work, reject: false });
    expect(dryRun.exitCode, dryRun.stderr).toBe(0);
    expect(JSON.parse(dryRun.stdout)).toEqual({ namespace: 'db', pod: 'redis-1', patch: { metadata: { labels: { role: 'follower' } } } });
  }, 180_000);

  it('the plan version is the npm package version', () => {
    const version = /^pkg_version=(.*)$/m.exec(readFileSync(join(repoRoot, 'plans/hab-pod-role/plan.sh'), 'utf8'))?.[1];
    expect(version).toBe(JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')).version);
  });
});

describe('the Redis example manifests', () => {
  const kubectl = (...args: string[]) =>
    execa(join(controlPlane().binDir, 'kubectl'), [`--kubeconfig=${controlPlane().kubeconfig}`, ...args], { reject: false });

  it('pass a server-side dry run against the real API server', async () => {
    // The namespace the example's rbac.yaml is printed for (its policy is bound to it by name); the Redis
    // example test may have created it already.
    const ns = 'redis';
    await admin().createNamespace(ns).catch((error: { code?: number }) => {
      if (error?.code !== 409) throw error;
    });
    const result = await kubectl('apply', '--server-side', '--dry-run=server', '-k', join(repoRoot, 'examples/redis/kubernetes'), '-n', ns);
    expect(result.exitCode, result.stderr).toBe(0);
    for (const object of ['serviceaccount/hab-pod-role', 'role.rbac.authorization.k8s.io/hab-pod-role', 'rolebinding.rbac.authorization.k8s.io/hab-pod-role',
      'configmap/hab-pod-role', 'validatingadmissionpolicy.admissionregistration.k8s.io/hab-pod-role.redis',
      'validatingadmissionpolicybinding.admissionregistration.k8s.io/hab-pod-role.redis',
      'service/redis-hab', 'service/redis-leader', 'service/redis-follower', 'statefulset.apps/redis']) {
      expect(result.stdout).toContain(`${object} serverside-applied (server dry run)`);
    }
  });

  it('grant exactly the Role the README documents', () => {
    const docs = loadAllYaml(readFileSync(join(repoRoot, 'examples/redis/kubernetes/rbac.yaml'), 'utf8')) as { kind: string; rules?: unknown }[];
    expect(docs.find((d) => d.kind === 'Role')?.rules).toEqual(documentedRole().rules);
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
