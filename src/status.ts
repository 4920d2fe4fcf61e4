// `hab-pod-role status`: the group's pods and their roles, and whether exactly one of them leads.

import { changedAtAnnotation } from './group.ts';
import type { Pod } from './kube.ts';
import type { LabelScheme } from './labels.ts';

export interface StatusRow {
  name: string;
  role: string | null;
  phase: string;
  ready: boolean;
  ip: string | null;
  changedAt: string | null;
  terminating: boolean;
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
    }))
    .sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
}

/** Why the group is not safe to route writes to, or undefined when exactly one pod leads. */
export function leaderProblem(rows: StatusRow[], scheme: LabelScheme): string | undefined {
  const leaders = rows.filter((r) => r.role === scheme.leader).map((r) => r.name);
  if (leaders.length === 1) return undefined;
  if (leaders.length === 0) return `No pod of the group carries ${scheme.key}=${scheme.leader}: the leader Service has no endpoint until the elected leader's hook runs.`;
  return `${leaders.length} pods carry ${scheme.key}=${scheme.leader} (${leaders.join(', ')}): the leader Service sends writes to all of them; run the elected leader's hook, which demotes the others.`;
}

export function formatTable(rows: StatusRow[], scheme: LabelScheme): string {
  const header = ['NAME', scheme.key.toUpperCase(), 'PHASE', 'READY', 'IP', 'ROLE CHANGED'];
  const lines = rows.map((r) => [r.name, r.role ?? '-', r.terminating ? 'Terminating' : r.phase, r.ready ? 'yes' : 'no', r.ip ?? '-', r.changedAt ?? '-']);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  return [header, ...lines].map((cells) => cells.map((c, i) => c.padEnd(widths[i]!)).join('   ').trimEnd()).join('\n') + '\n';
}
