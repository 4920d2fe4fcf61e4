// Pure label syntax: keys, values and selectors as Kubernetes checks them, and the plan and patch for one pod.

import { describe, expect, it } from 'vitest';
import { defaultLabelScheme, ForeignLabelError, labelKeyProblem, labelSelectorProblem, labelValueProblem, planLabel } from '../src/labels.ts';
import { matrix } from './support/matrix.ts';
import { invalidSelectors, validSelectors } from './support/selectors.ts';

describe('label key syntax', () => {
  it.each(['role', 'app.kubernetes-io_x', 'example.com/role', 'a', 'a.b-c/D_e.f', `${'a'.repeat(63)}`, `${'a'.repeat(253)}/r`])('accepts %s', (key) => {
    expect(labelKeyProblem(key)).toBeUndefined();
  });
  it.each([
    ['', /empty name/],
    ['example.com/', /empty name/],
    ['-role', /must be letters/],
    ['role-', /must be letters/],
    ['ro le', /must be letters/],
    ['a'.repeat(64), /longer than 63/],
    ['Example.com/role', /lowercase DNS subdomain/],
    ['exa_mple.com/role', /lowercase DNS subdomain/],
    [`${'a'.repeat(254)}/role`, /lowercase DNS subdomain/],
    ['a/b/c', /must be letters/],
    ['kubernetes.io/role', /reserves/],
    ['node-role.kubernetes.io/leader', /reserves/],
    ['k8s.io/role', /reserves/],
    ['x.k8s.io/role', /reserves/],
  ])('rejects %j', (key, why) => {
    matrix.inputs();
    expect(labelKeyProblem(key)).toMatch(why);
  });
  it('does not treat a lookalike domain as reserved', () => {
    expect(labelKeyProblem('notkubernetes.io/role')).toBeUndefined();
  });
});

describe('label value syntax', () => {
  it.each(['leader', 'Primary-1', 'a.b_c', 'x'.repeat(63)])('accepts %s', (value) => {
    expect(labelValueProblem(value)).toBeUndefined();
  });
  it.each([
    ['', /must not be empty/],
    ['x'.repeat(64), /longer than 63/],
    ['lead er', /must be letters/],
    ['_leader', /must be letters/],
    ['leader/x', /must be letters/],
    ['lëader', /must be letters/],
  ])('rejects %j', (value, why) => {
    matrix.inputs();
    expect(labelValueProblem(value)).toMatch(why);
  });
});

describe('planLabel', () => {
  const scheme = defaultLabelScheme;
  it('patches only the role key when the value differs', () => {
    const plan = planLabel({ app: 'redis', role: 'follower' }, scheme, 'leader', false);
    expect(plan).toEqual({ key: 'role', from: 'follower', to: 'leader', patch: { metadata: { labels: { role: 'leader' } } } });
  });
  it('sends null to remove the key', () => {
    expect(planLabel({ role: 'leader' }, scheme, null, false).patch).toEqual({ metadata: { labels: { role: null } } });
  });
  it('plans nothing when the pod already says it', () => {
    expect(planLabel({ role: 'leader' }, scheme, 'leader', false).patch).toBeUndefined();
    expect(planLabel({ app: 'redis' }, scheme, null, false).patch).toBeUndefined();
    expect(planLabel(undefined, scheme, null, false).patch).toBeUndefined();
  });
  it('refuses a key that holds a value of someone else, unless forced', () => {
    expect(() => planLabel({ role: 'redis' }, scheme, 'leader', false)).toThrow(ForeignLabelError);
    expect(planLabel({ role: 'redis' }, scheme, 'leader', true).patch).toEqual({ metadata: { labels: { role: 'leader' } } });
  });
});

describe('label selector syntax', () => {
  it.each(validSelectors)('accepts %j', (selector) => {
    expect(labelSelectorProblem(selector)).toBeUndefined();
  });
  it.each(invalidSelectors)('rejects %j', (selector, why) => {
    matrix.inputs();
    expect(labelSelectorProblem(selector)).toMatch(why);
  });
});
