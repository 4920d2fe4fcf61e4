// What `hab-pod-role rbac` prints: the README block, the example's file, and the policy's names, binding and label.

import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadAllYaml } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { HabPodRoleError } from '../src/errors.ts';
import { changedAtAnnotation, fenceAnnotation } from '../src/group.ts';
import { annotationPrefix, policyName, rbacManifest, rbacObjects, type RbacOptions } from '../src/rbac.ts';
import { plain } from '../src/yaml.ts';
import { documentedRbac } from '../tools/kube-admin.ts';

const repoRoot = resolve(import.meta.dirname, '..');
const defaults: RbacOptions = { namespace: 'default', serviceAccount: 'hab-pod-role', policy: true };

describe('hab-pod-role rbac', () => {
  it('is what the README shows, for the defaults', () => {
    expect(documentedRbac()).toBe(rbacManifest(defaults));
  });

  it('is what the Redis example applies, for its namespace', () => {
    expect(readFileSync(join(repoRoot, 'examples/redis/kubernetes/rbac.yaml'), 'utf8')).toBe(rbacManifest({ ...defaults, namespace: 'redis' }));
  });

  it('prints YAML that reads back as the objects it was built from', () => {
    const request = { namespace: 'db', serviceAccount: 'db-labeller', scheme: { key: 'example.com/db-role', leader: 'primary', follower: 'replica' }, policy: true };
    const text = rbacManifest({ ...defaults, namespace: 'db', serviceAccount: 'db-labeller', labelKey: 'example.com/db-role', leaderValue: 'primary', followerValue: 'replica' });
    expect(loadAllYaml(text)).toEqual(plain(rbacObjects(request)));
    expect((loadAllYaml(text) as { kind: string }[]).map((d) => d.kind)).toEqual(['ServiceAccount', 'Role', 'RoleBinding', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding']);
  });

  it('names the cluster-scoped objects after namespace and account, so each namespace installs its own', () => {
    const names = (namespace: string) =>
      (loadAllYaml(rbacManifest({ ...defaults, namespace })) as { kind: string; metadata: { name: string } }[])
        .filter((d) => d.kind.startsWith('ValidatingAdmissionPolicy'))
        .map((d) => d.metadata.name);
    expect(names('a')).toEqual(['hab-pod-role.a', 'hab-pod-role.a']);
    expect(names('b')).toEqual(['hab-pod-role.b', 'hab-pod-role.b']);
    expect(policyName({ namespace: 'b', serviceAccount: 'x.y' })).toBe('x.y.b');
  });

  it('binds the policy to its namespace and account, with the label written in and no parameters', () => {
    const docs = loadAllYaml(rbacManifest({ ...defaults, namespace: 'db', labelKey: 'db-role', leaderValue: 'primary' })) as Record<string, any>[];
    const policy = docs.find((d) => d.kind === 'ValidatingAdmissionPolicy')!;
    const binding = docs.find((d) => d.kind === 'ValidatingAdmissionPolicyBinding')!;
    expect(policy.spec.matchConditions).toEqual([{ name: 'tool-service-account', expression: "request.userInfo.username == 'system:serviceaccount:db:hab-pod-role'" }]);
    expect(binding.spec.matchResources).toEqual({ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'db' } } });
    // Parameters are looked up before matchConditions: while missing, a binding would refuse every writer's pod write.
    expect(policy.spec.paramKind).toBeUndefined();
    expect(binding.spec.paramRef).toBeUndefined();
    const variable = (name: string) => policy.spec.variables.find((v: { name: string }) => v.name === name).expression;
    expect([variable('key'), variable('leader'), variable('follower')]).toEqual(["'db-role'", "'primary'", "'follower'"]);
    // Written in once: the validations read the variables, and name no label key or value of their own.
    expect(JSON.stringify(policy.spec.validations.map((v: { expression: string }) => v.expression))).not.toMatch(/db-role|primary|'follower'/);
  });

  it('lets peers get exactly the annotations a promotion writes there', () => {
    expect([fenceAnnotation, changedAtAnnotation].every((a) => a.startsWith(annotationPrefix))).toBe(true);
    const policy = (loadAllYaml(rbacManifest(defaults)) as Record<string, any>[]).find((d) => d.kind === 'ValidatingAdmissionPolicy')!;
    expect(policy.spec.variables.find((v: { name: string }) => v.name === 'peerAnnotations').expression).toBe(`['${fenceAnnotation}', '${changedAtAnnotation}']`);
  });

  it('without the policy: the ServiceAccount, Role and RoleBinding alone', () => {
    const docs = loadAllYaml(rbacManifest({ ...defaults, policy: false })) as { kind: string }[];
    expect(docs.map((d) => d.kind)).toEqual(['ServiceAccount', 'Role', 'RoleBinding']);
  });

  it.each([
    [{ namespace: 'No_Such' }, /^--namespace: "No_Such" is not a namespace name/],
    [{ serviceAccount: 'A' }, /^--service-account: "A" is not a service account name/],
    [{ labelKey: 'kubernetes.io/role' }, /^--label-key: label key "kubernetes.io\/role" is under a prefix Kubernetes reserves/],
    [{ leaderValue: 'x', followerValue: 'x' }, /^--leader-value\/--follower-value: the leader and follower values are both "x"/],
  ])('refuses %j with one sentence, exit 64', (options, message) => {
    const error = (() => {
      try {
        rbacManifest({ ...defaults, ...options });
      } catch (caught) {
        return caught as HabPodRoleError;
      }
    })();
    expect(error).toBeInstanceOf(HabPodRoleError);
    expect(error!.exitCode).toBe(64);
    expect(error!.message).toMatch(message);
  });
});
