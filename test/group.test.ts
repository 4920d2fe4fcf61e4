// Pure group logic: membership, the writes of a promotion, fences, claims and who yields in a contest.

import { describe, expect, it } from 'vitest';
import { claimAnnotation, claimOf, controllerOf, fenceAnnotation, fenceOwner, fenceWrite, groupMembers, ownLabelWrite, peerOf, planPromotion, promotionWrites, yieldsTo } from '../src/group.ts';
import type { Pod } from '../src/pod.ts';
import { defaultLabelScheme } from '../src/labels.ts';

function pod(name: string, { owner, role, rv = '1' }: { owner?: string; role?: string; rv?: string } = {}): Pod {
  return {
    metadata: {
      name,
      resourceVersion: rv,
      labels: role ? { app: 'redis', role } : { app: 'redis' },
      ownerReferences: owner ? [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'redis', uid: owner, controller: true }] : undefined,
    },
  };
}

describe('groupMembers', () => {
  const pods = [pod('redis-0', { owner: 'a' }), pod('redis-1', { owner: 'a' }), pod('other-0', { owner: 'b' }), pod('bare')];
  it('defaults to the pods with the same controller', () => {
    expect(groupMembers(pods, pods[0]!, {}).map((p) => p.metadata!.name)).toEqual(['redis-0', 'redis-1']);
  });
  it('takes every pod the selector chose', () => {
    expect(groupMembers(pods, pods[0]!, { selector: 'app=redis' })).toHaveLength(4);
  });
  it('is the pod alone when it has no controller and no selector', () => {
    expect(groupMembers(pods, pods[3]!, {}).map((p) => p.metadata!.name)).toEqual(['bare']);
  });
  it('ignores owner references that are not the controller', () => {
    const p: Pod = { metadata: { name: 'x', ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'c', uid: 'c', controller: false }] } };
    expect(controllerOf(p)).toBeUndefined();
  });
});

describe('planPromotion', () => {
  it('fences every other member, demotes the stale leaders, and writes each on the version it was read at', () => {
    const members = [pod('redis-0', { role: 'leader', rv: '10' }), pod('redis-1', { role: 'follower', rv: '11' }), pod('redis-2', { rv: '12' }), pod('redis-3', { role: 'leader', rv: '13' })];
    expect(planPromotion(members, 'redis-1', defaultLabelScheme)).toEqual({
      selfIsLeader: false,
      staleLeaders: ['redis-0', 'redis-3'],
      peers: [
        { name: 'redis-0', resourceVersion: '10', demote: true },
        { name: 'redis-2', resourceVersion: '12', demote: false },
        { name: 'redis-3', resourceVersion: '13', demote: true },
      ],
    });
  });
  it('knows when this member already leads alone', () => {
    const plan = planPromotion([pod('redis-0', { role: 'leader' }), pod('redis-1', { role: 'follower' })], 'redis-0', defaultLabelScheme);
    expect(plan.selfIsLeader).toBe(true);
    expect(plan.staleLeaders).toEqual([]);
  });
});

describe('contested leadership', () => {
  const member = (name: string, { role, fence, claim, ready, deleting }: { role?: string; fence?: string; claim?: string; ready?: boolean; deleting?: boolean } = {}): Pod => ({
    metadata: {
      name,
      labels: role ? { role } : {},
      annotations: { ...(fence ? { 'hab-pod-role/fence': fence } : {}), ...(claim ? { 'hab-pod-role/leader-claim': claim } : {}) },
      ...(deleting ? { deletionTimestamp: new Date(0) } : {}),
    },
    ...(ready === undefined ? {} : { status: { conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] } }),
  });

  it('names the promoter of a fence', () => {
    expect(fenceOwner('redis-1/mabc12')).toBe('redis-1');
    expect(fenceOwner(undefined)).toBeUndefined();
  });

  it('leaves the label with the member holding it, and takes it when nobody does', () => {
    const self = member('redis-0', { fence: 'redis-1/x' });
    expect(yieldsTo([self, member('redis-1', { role: 'leader' }), member('redis-2', { role: 'follower' })], self, defaultLabelScheme)).toBe('redis-1');
    expect(yieldsTo([self, member('redis-1', { role: 'follower' }), member('redis-2')], self, defaultLabelScheme)).toBeUndefined();
  });

  it('takes the label from a holder that cannot serve, unless it cannot serve either', () => {
    const self = member('redis-0', { ready: true });
    expect(yieldsTo([self, member('redis-1', { role: 'leader', ready: false })], self, defaultLabelScheme)).toBeUndefined();
    expect(yieldsTo([self, member('redis-1', { role: 'leader', deleting: true })], self, defaultLabelScheme)).toBeUndefined();
    expect(yieldsTo([self, member('redis-1', { role: 'leader', ready: true })], self, defaultLabelScheme)).toBe('redis-1');
    const unready = member('redis-0', { ready: false });
    expect(yieldsTo([unready, member('redis-1', { role: 'leader', ready: false })], unready, defaultLabelScheme)).toBe('redis-1');
    // No readiness reported at all (no kubelet has said anything yet) is not "unready".
    expect(yieldsTo([member('redis-0'), member('redis-1', { role: 'leader' })], member('redis-0'), defaultLabelScheme)).toBe('redis-1');
  });

  it('reads a claim: held with the label, waiting while it names the fence on its pod, unknown once a newer promotion fenced it', () => {
    expect(claimOf(member('a', { role: 'leader', claim: 'none' }), defaultLabelScheme)).toBe('holds');
    expect(claimOf(member('a', { fence: 'b/1', claim: 'b/1' }), defaultLabelScheme)).toBe('waits');
    expect(claimOf(member('a', { fence: 'c/2', claim: 'b/1' }), defaultLabelScheme)).toBeNull();
    expect(claimOf(member('a', { claim: 'none' }), defaultLabelScheme)).toBe('waits');
    expect(claimOf(member('a', { role: 'leader' }), defaultLabelScheme)).toBeNull();
    expect(claimOf(member('a', { role: 'follower', fence: 'b/1' }), defaultLabelScheme)).toBeNull();
  });
});

describe('the writes, exactly as sent', () => {
  const now = '2026-12-01T00:00:00.000Z';
  it('a promotion: every peer fenced on the version listed, a stale leader also demoted, then this pod with its claim', () => {
    const members = [pod('redis-0', { role: 'follower', rv: '7' }), pod('redis-1', { role: 'leader', rv: '8' }), pod('redis-2', { rv: '9' })];
    members[0]!.metadata!.annotations = { [fenceAnnotation]: 'redis-1/abc' };
    const writes = promotionWrites(planPromotion(members, 'redis-0', defaultLabelScheme), members[0]!, defaultLabelScheme, 'redis-0/xyz', now);
    expect(writes.peers).toEqual([
      { pod: 'redis-1', demotes: true, patch: { metadata: { resourceVersion: '8', annotations: { [fenceAnnotation]: 'redis-0/xyz', 'hab-pod-role/role-changed-at': now }, labels: { role: null } } } },
      { pod: 'redis-2', demotes: false, patch: { metadata: { resourceVersion: '9', annotations: { [fenceAnnotation]: 'redis-0/xyz' } } } },
    ]);
    expect(writes.self).toEqual({
      pod: 'redis-0',
      patch: { metadata: { resourceVersion: '7', labels: { role: 'leader' }, annotations: { 'hab-pod-role/role-changed-at': now, [claimAnnotation]: 'redis-1/abc' } } },
    });
  });

  it('a member read again after its write lost a race: fenced on the new version, demoted only if it still leads', () => {
    const stepped = pod('redis-1', { role: 'follower', rv: '12' });
    expect(fenceWrite(peerOf(stepped, defaultLabelScheme), defaultLabelScheme, 'redis-0/xyz', now)).toEqual({
      pod: 'redis-1', demotes: false, patch: { metadata: { resourceVersion: '12', annotations: { [fenceAnnotation]: 'redis-0/xyz' } } },
    });
    const leading = pod('redis-1', { role: 'leader', rv: '13' });
    expect(fenceWrite(peerOf(leading, defaultLabelScheme), defaultLabelScheme, 'redis-0/xyz', now)).toEqual({
      pod: 'redis-1', demotes: true, patch: { metadata: { resourceVersion: '13', annotations: { [fenceAnnotation]: 'redis-0/xyz', 'hab-pod-role/role-changed-at': now }, labels: { role: null } } },
    });
  });

  it('a member that does not lead: the label and the time, its claim withdrawn; nothing when nothing changes', () => {
    const follower = pod('redis-0', { role: 'leader' });
    expect(ownLabelWrite(follower, defaultLabelScheme, 'follower', true, now)).toEqual({
      pod: 'redis-0',
      patch: { metadata: { labels: { role: 'follower' }, annotations: { 'hab-pod-role/role-changed-at': now, [claimAnnotation]: null } } },
    });
    expect(ownLabelWrite(follower, defaultLabelScheme, 'follower', false, now)).toBeUndefined();
    follower.metadata!.annotations = { [claimAnnotation]: 'none' };
    expect(ownLabelWrite(follower, defaultLabelScheme, 'follower', false, now)).toEqual({ pod: 'redis-0', patch: { metadata: { annotations: { [claimAnnotation]: null } } } });
  });
});
