// The status rows, the one-leader check and its messages, and the table.

import { describe, expect, it } from 'vitest';
import type { Pod } from '../src/pod.ts';
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
  it('names the members whose elections say they lead, when more than one does', () => {
    const claim = (name: string, role: string | undefined, value: string) =>
      pod(name, role, { metadata: { name, labels: role ? { role } : {}, annotations: { 'hab-pod-role/leader-claim': value, 'hab-pod-role/fence': 'redis-1/f' } } });
    const rows = statusRows([claim('redis-0', undefined, 'redis-1/f'), claim('redis-1', 'leader', 'none'), pod('redis-2', 'follower')], defaultLabelScheme);
    expect(rows.map((r) => r.claim)).toEqual(['waits', 'holds', null]);
    expect(leaderProblem(rows, defaultLabelScheme)).toMatch(/^Leadership is contested: the elections of 2 members say they lead \(redis-0, redis-1\): redis-1 carries role=leader, and the others wait until it no longer does\./);
    // A claim older than the promotion that fenced its pod is not known to stand: its member may be gone.
    const stale = statusRows([claim('redis-0', undefined, 'redis-2/old'), claim('redis-1', 'leader', 'none')], defaultLabelScheme);
    expect(leaderProblem(stale, defaultLabelScheme)).toBeUndefined();
    // Two leaders are worse than a contest, and said first.
    expect(leaderProblem(statusRows([claim('a', 'leader', 'none'), claim('b', 'leader', 'none')], defaultLabelScheme), defaultLabelScheme)).toMatch(/^2 pods carry role=leader/);
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
