// Pure logic of a service group: who belongs to it, and the writes that make a member leader without a second one.

import type { Pod } from './kube.ts';
import type { LabelScheme } from './labels.ts';

/** Annotations the tool writes: when the role last changed, and the fence a promotion leaves on every peer. */
export const changedAtAnnotation = 'hab-pod-role/role-changed-at';
export const fenceAnnotation = 'hab-pod-role/fence';

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
    const name = pod.metadata?.name ?? '';
    const isLeader = pod.metadata?.labels?.[scheme.key] === scheme.leader;
    if (name === selfName) {
      selfIsLeader = isLeader;
      continue;
    }
    if (isLeader) staleLeaders.push(name);
    peers.push({ name, resourceVersion: pod.metadata?.resourceVersion ?? '', demote: isLeader });
  }
  return { peers, selfIsLeader, staleLeaders };
}
