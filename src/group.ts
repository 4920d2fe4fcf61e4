// Pure logic of a service group: who belongs to it, the writes that make a member leader without a second one, and who yields.

import type { MetadataPatch, Pod } from './pod.ts';
import type { LabelScheme } from './labels.ts';

/** Annotations the tool writes: when the role last changed, and the fence a promotion leaves on every peer. */
export const changedAtAnnotation = 'hab-pod-role/role-changed-at';
export const fenceAnnotation = 'hab-pod-role/fence';
/**
 * On a member's own pod while its election says it leads: the fence its pod carried when it said so last
 * (`none` for no fence). A promotion against the pod replaces the fence, so a claim that no longer matches
 * it was made before that promotion and is not known to stand: its member may be gone.
 */
export const claimAnnotation = 'hab-pod-role/leader-claim';

export interface GroupSpec {
  /** A label selector naming the group; without one, the pods controlled by the same owner as this pod. */
  selector?: string | undefined;
}

/** The controller (StatefulSet, ReplicaSet, ...) that owns a pod, if any. */
export function controllerOf(pod: Pod): string | undefined {
  return pod.metadata?.ownerReferences?.find((ref) => ref.controller)?.uid;
}

/**
 * The members of this pod's group among `pods`: with a selector, all of them (the API server selected
 * them); otherwise those with the same controller. A pod being deleted is still a member: a stuck
 * Terminating old leader must lose its label like any other.
 */
export function groupMembers(pods: Pod[], self: Pod, spec: GroupSpec): Pod[] {
  if (spec.selector) return pods;
  const owner = controllerOf(self);
  if (owner === undefined) return pods.filter((p) => p.metadata?.name === self.metadata?.name);
  return pods.filter((p) => controllerOf(p) === owner);
}

export interface PeerWrite {
  name: string;
  /** The version the write is conditional on: it fails (409) if the pod changed since the list. */
  resourceVersion: string;
  demote: boolean;
}

/**
 * The writes that make `self` leader. Every other member is written with a precondition: a stale leader
 * loses the leader value, the rest get a fence. Two members promoting at once therefore each write the
 * other, and the second write of the pair fails; a member that lists after a rival's promotion sees it
 * and demotes it first. Either way no two of them carry the leader value at once.
 */
export function planPromotion(members: Pod[], selfName: string, scheme: LabelScheme): { peers: PeerWrite[]; selfIsLeader: boolean; staleLeaders: string[] } {
  const peers: PeerWrite[] = [];
  const staleLeaders: string[] = [];
  let selfIsLeader = false;
  for (const pod of members) {
    const peer = peerOf(pod, scheme);
    if (peer.name === selfName) {
      selfIsLeader = peer.demote;
      continue;
    }
    if (peer.demote) staleLeaders.push(peer.name);
    peers.push(peer);
  }
  return { peers, selfIsLeader, staleLeaders };
}

/** What a promotion writes to one member as it was read: a leader loses the value, conditional on that version. */
export function peerOf(pod: Pod, scheme: LabelScheme): PeerWrite {
  return { name: pod.metadata?.name ?? '', resourceVersion: pod.metadata?.resourceVersion ?? '', demote: pod.metadata?.labels?.[scheme.key] === scheme.leader };
}

/** The member whose promotion left this fence (a fence is `<promoter>/<unique>`; pod names hold no '/'). */
export function fenceOwner(fence: string | undefined): string | undefined {
  return fence?.split('/')[0];
}

/** The claim value a member writes now: the fence on its pod, which the next promotion against it replaces. */
export function claimValue(pod: Pod): string {
  return pod.metadata?.annotations?.[fenceAnnotation] ?? 'none';
}

/** What a member's own annotations say of its election: it holds the leader value, it waits for it, or nothing known. */
export function claimOf(pod: Pod, scheme: LabelScheme): 'holds' | 'waits' | null {
  const claim = pod.metadata?.annotations?.[claimAnnotation];
  if (claim === undefined) return null;
  if (pod.metadata?.labels?.[scheme.key] === scheme.leader) return 'holds';
  return claim === claimValue(pod) ? 'waits' : null;
}

/** Whether a pod can serve the leader Service: not being deleted, and not reported unready. */
function serving(pod: Pod): boolean {
  return !pod.metadata?.deletionTimestamp && !pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'False');
}

/**
 * Whom a member leaves the label with (undefined: it takes the label) when a rival's promotion took it while
 * its own election kept saying it leads: the member carrying it now. So two members whose elections both
 * say they lead do not take the label from each other in turn: the newest claim keeps it until it ends.
 * Never a holder that cannot serve (being deleted, or reported unready while this pod is not): the leader
 * Service has no endpoint then anyway, and that is how a partitioned holder loses the label.
 */
export function yieldsTo(members: Pod[], self: Pod, scheme: LabelScheme): string | undefined {
  const holder = members.find((p) => p.metadata?.name !== self.metadata?.name && p.metadata?.labels?.[scheme.key] === scheme.leader);
  if (!holder) return undefined;
  return serving(holder) || !serving(self) ? holder.metadata?.name : undefined;
}

/** One write as it is sent: the pod and the merge patch (a resourceVersion in it makes the write conditional). */
export interface PodWrite {
  pod: string;
  patch: MetadataPatch;
  /** A peer's write that removes its leader value. */
  demotes?: boolean;
}

/**
 * Sets (or, with null, removes) the role label and stamps `now` as the time of the change. `claim` is the
 * claim annotation's new value: set with the leader value, removed with any other.
 */
export function rolePatch(key: string, value: string | null, claim: string | null, now: string): MetadataPatch {
  return { metadata: { labels: { [key]: value }, annotations: { [changedAtAnnotation]: now, [claimAnnotation]: claim } } };
}

/**
 * The write that brings this pod to `to` when it does not lead (follows, or is routable as neither), or
 * undefined when nothing needs sending. `relabel` says the label differs (or a server dry run wants the
 * patch checked anyway); a pod that no longer leads also withdraws its claim, even when its label was taken already.
 */
export function ownLabelWrite(pod: Pod, scheme: LabelScheme, to: string | null, relabel: boolean, now: string): PodWrite | undefined {
  const name = pod.metadata?.name ?? '';
  if (relabel) return { pod: name, patch: rolePatch(scheme.key, to, null, now) };
  if (pod.metadata?.annotations?.[claimAnnotation] !== undefined) return { pod: name, patch: { metadata: { annotations: { [claimAnnotation]: null } } } };
  return undefined;
}

/** A promotion's write to one peer: the round's fence, and for a leader also the removal of its value and the time stamp. */
export function fenceWrite(peer: PeerWrite, scheme: LabelScheme, fence: string, now: string): PodWrite {
  return {
    pod: peer.name,
    demotes: peer.demote,
    patch: {
      metadata: {
        resourceVersion: peer.resourceVersion,
        annotations: { [fenceAnnotation]: fence, ...(peer.demote ? { [changedAtAnnotation]: now } : {}) },
        ...(peer.demote ? { labels: { [scheme.key]: null } } : {}),
      },
    },
  };
}

/**
 * The writes of one promotion round, in the order they are sent: every peer of `planPromotion` gets the
 * round's `fence` (a stale leader also loses the leader value and gets the time stamp), then this pod
 * gets the leader value and its claim. Each is conditional on the version listed.
 */
export function promotionWrites(promotion: ReturnType<typeof planPromotion>, self: Pod, scheme: LabelScheme, fence: string, now: string): { peers: PodWrite[]; self: PodWrite } {
  const peers = promotion.peers.map((peer) => fenceWrite(peer, scheme, fence, now));
  const own = rolePatch(scheme.key, scheme.leader, claimValue(self), now);
  return { peers, self: { pod: self.metadata?.name ?? '', patch: { metadata: { resourceVersion: self.metadata?.resourceVersion ?? '', ...own.metadata } } } };
}
