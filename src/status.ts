// `hab-pod-role status`: the group's pods and their roles, and whether exactly one of them leads.

import { changedAtAnnotation, claimOf } from './group.ts';
import type { Pod } from './pod.ts';
import type { LabelScheme } from './labels.ts';

export interface StatusRow {
  name: string;
  role: string | null;
  phase: string;
  ready: boolean;
  ip: string | null;
  changedAt: string | null;
  terminating: boolean;
  /** What the member's own annotation says of its election: it leads and holds the label, or leads and waits for it. */
  claim: 'holds' | 'waits' | null;
}

export function statusRows(members: Pod[], scheme: LabelScheme): StatusRow[] {
  return members
    .map((pod) => ({
      name: pod.metadata?.name ?? '',
      role: pod.metadata?.labels?.[scheme.key] ?? null,
      phase: pod.status?.phase ?? 'Unknown',
      ready: pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
      ip: pod.status?.podIP ?? null,
      changedAt: pod.metadata?.annotations?.[changedAtAnnotation] ?? null,
      terminating: Boolean(pod.metadata?.deletionTimestamp),
      claim: claimOf(pod, scheme),
    }))
    .sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
}

/** Why the group is not safe to route writes to, or undefined when exactly one pod leads and no other's election says it does. */
export function leaderProblem(rows: StatusRow[], scheme: LabelScheme): string | undefined {
  const leaders = rows.filter((r) => r.role === scheme.leader).map((r) => r.name);
  const claimants = rows.filter((r) => r.claim !== null).map((r) => r.name);
  if (leaders.length > 1) return `${leaders.length} pods carry ${scheme.key}=${scheme.leader} (${leaders.join(', ')}): the leader Service sends writes to all of them; run the elected leader's hook, which demotes the others.`;
  if (claimants.length > 1) {
    const holder = leaders.length === 1 ? `${leaders[0]} carries ${scheme.key}=${scheme.leader}` : `none of them carries ${scheme.key}=${scheme.leader} yet`;
    return `Leadership is contested: the elections of ${claimants.length} members say they lead (${claimants.join(', ')}): ${holder}, and the others wait until it no longer does. The Habitat members disagree (a restarted old leader starting from its cache, or a member cut off from the ring); see the RoleContested events of these pods.`;
  }
  if (leaders.length === 0) return `No pod of the group carries ${scheme.key}=${scheme.leader}: the leader Service has no endpoint until the elected leader's hook runs.`;
  return undefined;
}

export function formatTable(rows: StatusRow[], scheme: LabelScheme): string {
  const header = ['NAME', scheme.key.toUpperCase(), 'PHASE', 'READY', 'IP', 'ROLE CHANGED'];
  const lines = rows.map((r) => [r.name, r.role ?? '-', r.terminating ? 'Terminating' : r.phase, r.ready ? 'yes' : 'no', r.ip ?? '-', r.changedAt ?? '-']);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  return [header, ...lines].map((cells) => cells.map((c, i) => c.padEnd(widths[i]!)).join('   ').trimEnd()).join('\n') + '\n';
}
