import { describe, expect, it } from 'vitest';
import type { Pod } from '../src/kube.ts';
import { defaultLabelScheme } from '../src/labels.ts';
import { formatTable, leaderProblem, statusRows } from '../src/status.ts';

const pod = (name: string, role?: string, extra: Partial<Pod> = {}): Pod => ({
  metadata: { name, labels: role ? { role } : {}, annotations: { 'hab-pod-role/role-changed-at': '2026-11-21T10:00:00.000Z' } },
  status: { phase: 'Running', podIP: '10.1.0.5', conditions: [{ type: 'Ready', status: 'True' }] },
  ...extra,
});

describe('status', () => {
  it('sorts members by name, numbers as numbers', () => {
    expect(statusRows([pod('redis-10'), pod('redis-2'), pod('redis-1')], defaultLabelScheme).map((r) => r.name)).toEqual(['redis-1', 'redis-2', 'redis-10']);
  });
  it('accepts exactly one leader', () => {
    expect(leaderProblem(statusRows([pod('a', 'leader'), pod('b', 'follower')], defaultLabelScheme), defaultLabelScheme)).toBeUndefined();
  });
  it('names zero and several leaders', () => {
    expect(leaderProblem(statusRows([pod('a', 'follower')], defaultLabelScheme), defaultLabelScheme)).toMatch(/^No pod of the group carries role=leader/);
    expect(leaderProblem(statusRows([pod('a', 'leader'), pod('b', 'leader')], defaultLabelScheme), defaultLabelScheme)).toMatch(/^2 pods carry role=leader \(a, b\)/);
  });
  it('prints an aligned table', () => {
    const terminating = pod('redis-1', undefined, { metadata: { name: 'redis-1', deletionTimestamp: new Date(0) }, status: { phase: 'Running' } });
    expect(formatTable(statusRows([pod('redis-0', 'leader'), terminating], defaultLabelScheme), defaultLabelScheme)).toBe(
      'NAME      ROLE     PHASE         READY   IP         ROLE CHANGED\n' +
      'redis-0   leader   Running       yes     10.1.0.5   2026-11-21T10:00:00.000Z\n' +
      'redis-1   -        Terminating   no      -          -\n',
    );
  });
});
