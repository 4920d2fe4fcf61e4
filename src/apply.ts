// One pass of the data flow: election file -> role -> label plan -> at most two API calls.

import { readElectionFile, type Election } from './election.ts';
import { configError, dataError } from './errors.ts';
import { resolvePodIdentity, type PodIdentity } from './identity.ts';
import { claimAnnotation, claimValue, fenceWrite, groupMembers, ownLabelWrite, peerOf, planPromotion, promotionWrites, yieldsTo, type GroupSpec, type PodWrite } from './group.ts';
import { failureMessage, lostRace, statusOf } from './api-errors.ts';
import type { KubeClient } from './kube.ts';
import type { Pod } from './pod.ts';
import { ForeignLabelError, labelPatch, planLabel, type LabelPlan, type LabelScheme } from './labels.ts';
import type { Logger } from './log.ts';
import { backoffDelay } from './retry.ts';
import { desiredLabel, overridesOf, validateOptions, type CommonOptions, type DesiredLabel, type DryRun, type Overrides } from './settings.ts';

/** Everything a run decided before touching the network. */
export interface ApplyRequest extends DesiredLabel {
  configPath: string;
  /** Flags and environment, kept to apply to a newer election file exactly as to the first. */
  overrides: Overrides;
  identity: PodIdentity;
  dryRun: DryRun;
  force: boolean;
  serviceAccountDir: string;
}

export interface ApplyOutcome {
  identity: PodIdentity;
  plan: LabelPlan;
  dryRun: DryRun;
  /** Other members that lost a stale leader value to this run. */
  demoted: string[];
  requestsSent: number;
  /** The writes sent, exactly as sent (own pod and peers, with their preconditions); none for a client dry run. */
  writes: PodWrite[];
  /** The member this one left the leader value with, though its own election says it leads (see `yieldsTo`). */
  yieldedTo?: string;
  /** Whether this run found that contest new, and recorded it (the claim on its pod, RoleContested Events). */
  contestRecorded?: boolean;
  /** A yielding member found a rival's promotion still in flight and left the free label alone: ask again after this. */
  waitMs?: number;
}

/** Checks everything that can be checked without the network, so bad input changes nothing. */
export function prepareApply(options: CommonOptions, log: Logger): ApplyRequest {
  const { configPath, dryRun, serviceAccountDir } = validateOptions(options);
  const overrides = overridesOf(options);
  const asked = desiredLabel(readElectionFile(configPath), overrides, configPath);
  const identity = resolvePodIdentity(options, serviceAccountDir);
  log.debug('pod identity', { pod: identity.name, from: identity.nameSource, namespace: identity.namespace, namespace_from: identity.namespaceSource });
  log.debug('election', { ...asked.election, label: asked.value === null ? `${asked.scheme.key} removed` : `${asked.scheme.key}=${asked.value}` });
  return { configPath, overrides, ...asked, identity, dryRun, force: options.force, serviceAccountDir };
}

/**
 * Labels as `request` says, then reads the election file again and labels again while it asks for
 * something else. Two runs for one pod (an init and a reconfigure hook racing) both read after their
 * last write, so the run that writes last also reads last: the label ends as the newest file says.
 * `deadline` (epoch ms) bounds all of it: after it, the label is left as last read.
 */
export async function applyNewest(client: KubeClient, request: ApplyRequest, log: Logger, deadline: number): Promise<{ outcome: ApplyOutcome; request: ApplyRequest }> {
  let requestsSent = 0;
  for (;;) {
    const outcome = await applyLabel(client, request, log, deadline);
    requestsSent += outcome.requestsSent;
    const settled = { outcome: { ...outcome, requestsSent }, request };
    if (request.dryRun !== 'none') return settled;
    let newer: DesiredLabel;
    try {
      newer = desiredLabel(readElectionFile(request.configPath), request.overrides, request.configPath);
    } catch (error) {
      // The file was good a moment ago; a rewrite in progress gets its own hook run when it lands.
      log.warn(`the election file changed after labelling and cannot be read now; leaving the label as it was read: ${(error as Error).message}`);
      return settled;
    }
    if (newer.value === request.value && JSON.stringify(newer.scheme) === JSON.stringify(request.scheme)) return settled;
    if (Date.now() >= deadline) {
      log.warn('the election file keeps changing; leaving the label as it was last read (the next hook run applies the newest)');
      return settled;
    }
    log.info(`the election file changed while labelling; labelling again as it now says (${describeOutcome(outcome)})`);
    request = { ...request, ...newer };
  }
}

/** What a client dry run prints: the patch does not depend on the pod's labels, so nothing is read to show it. */
export function clientDryRun(request: ApplyRequest): { text: string; outcome: ApplyOutcome } {
  const patch = labelPatch(request.scheme.key, request.value);
  return {
    text: `${JSON.stringify({ namespace: request.identity.namespace, pod: request.identity.name, patch })}\n`,
    outcome: { identity: request.identity, plan: { key: request.scheme.key, from: undefined, to: request.value, patch }, dryRun: 'client', demoted: [], requestsSent: 0, writes: [] },
  };
}

/**
 * Brings this pod's label to `value`. Following, or being routable as neither, concerns this pod alone:
 * GET it, PATCH it if it differs. Leading concerns the group: see `promote`.
 */
export async function applyLabel(client: KubeClient, request: LabelRequest, log: Logger, deadline: number): Promise<ApplyOutcome> {
  return request.value !== null && request.value === request.scheme.leader ? promote(client, request, log, deadline) : setOwnLabel(client, request, log, deadline);
}

/**
 * What `applyLabel` needs to know. `rivals` says what a promotion does about another member carrying the
 * leader value: a claim (a run started by a hook, or an election file that just changed to leader)
 * demotes it; a member whose label a promotion took while its file said leader all along leaves it
 * with the holder (see `yieldsTo`).
 */
export type LabelRequest = Pick<ApplyRequest, 'identity' | 'scheme' | 'value' | 'force' | 'dryRun' | 'election' | 'group'> & {
  rivals?: 'demote' | 'yield';
  /**
   * For a yielding member: how long a rival's promotion that the group's list shows in flight (it fenced
   * members, but its promoter does not carry the label yet) keeps this member from the free label.
   */
  promotionInFlight?: (members: Pod[]) => number;
};

/** Following, or routable as neither: GET this pod, plan its one write (if any), send it. */
async function setOwnLabel(client: KubeClient, request: LabelRequest, log: Logger, deadline: number): Promise<ApplyOutcome> {
  const { identity, scheme, value: to, dryRun } = request;
  const sentBefore = client.requestsSent;
  const pod = await client.getPod(identity.namespace, identity.name, deadline);
  const plan = planFor(pod.metadata?.labels, identity, scheme, to, request.force);
  // A server dry run always sends the patch: proving the server (and RBAC) would accept it is its purpose.
  const write = ownLabelWrite(pod, scheme, to, plan.patch !== undefined || dryRun === 'server', new Date().toISOString());
  if (write) {
    const patched = await client.patchPod(identity.namespace, write.pod, write.patch, { dryRun: dryRun === 'server', deadline });
    checkWritten(patched, scheme.key, to);
    if (plan.patch && plan.from === scheme.leader && dryRun === 'none') {
      await recordEvents(client, log, deadline, [roleEvent(pod, 'RoleDemoted', `${scheme.key}=${scheme.leader} removed by this member: ${electionState(request.election)}`, identity)]);
    }
  }
  return { identity, plan, dryRun, demoted: [], requestsSent: client.requestsSent - sentBefore, writes: write ? [write] : [] };
}

/**
 * Makes this pod leader, demote before promote, in rounds of list, plan, send: one LIST of the group;
 * the writes (`promotionWrites`); a conditional write to every other member (a stale leader loses the
 * leader value, the others get a fence), then one to this pod. A claim's write to a member that changed
 * since the list (409) is made again on that member as it is now; any other write that finds its pod
 * changed starts the round again from a fresh list; a demotion that cannot be made at all fails the run
 * before this pod is promoted.
 */
async function promote(client: KubeClient, request: LabelRequest, log: Logger, deadline: number): Promise<ApplyOutcome> {
  const { identity, scheme, dryRun } = request;
  const sentBefore = client.requestsSent;
  const write = { dryRun: dryRun === 'server', deadline };
  // Demotions made in a round that then lost a race still happened: they are reported and recorded.
  const demoted = new Map<string, Pod>();
  const demotionEvents = () =>
    [...demoted.values()].map((m) => roleEvent(m, 'RoleDemoted', `${scheme.key}=${scheme.leader} removed by pod ${identity.namespace}/${identity.name}, which the election made leader`, identity));
  const outcome = (plan: LabelPlan, writes: PodWrite[], more: Pick<ApplyOutcome, 'yieldedTo' | 'contestRecorded' | 'waitMs'> = {}): ApplyOutcome =>
    ({ identity, plan, dryRun, demoted: [...demoted.keys()], requestsSent: client.requestsSent - sentBefore, writes, ...more });
  // Only a member that writes gives way to a rival; a dry run shows the promotion it would make.
  const yielding = request.rivals === 'yield' && dryRun === 'none';
  for (let round = 1; ; round++) {
    try {
      const { self, members } = await readGroup(client, identity, request.group, deadline);
      const plan = planFor(self.metadata?.labels, identity, scheme, scheme.leader, request.force);
      const holder = yielding ? yieldsTo(members, self, scheme) : undefined;
      if (holder !== undefined) {
        const claim = await recordYield(client, request, self, members.find((m) => m.metadata?.name === holder)!, log, deadline);
        return outcome({ ...plan, patch: undefined }, claim ? [claim] : [], { yieldedTo: holder, contestRecorded: claim !== undefined });
      }
      // The list can show what the watch has not yet: a rival's promotion that demoted the holder and has
      // yet to label its member. Taking the label now would only have it taken again.
      const waitMs = yielding ? (request.promotionInFlight?.(members) ?? 0) : 0;
      if (waitMs > 0) return outcome({ ...plan, patch: undefined }, [], { waitMs });
      const promotion = planPromotion(members, identity.name, scheme);
      if (promotion.selfIsLeader && promotion.staleLeaders.length === 0 && dryRun !== 'server') {
        // Another run for this pod (a racing hook, or the resident) finished the promotion after this one
        // demoted someone: this run still owes the record of its demotions.
        if (dryRun === 'none') await recordEvents(client, log, deadline, demotionEvents());
        return outcome(plan, []);
      }
      // A fence value never repeats, so even a member with nothing to change gets a new resourceVersion.
      const fence = `${identity.name}/${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
      const now = new Date().toISOString();
      const writes = promotionWrites(promotion, self, scheme, fence, now);
      await Promise.all(writes.peers.map(async (planned) => {
        let peer = planned;
        let pod = members.find((m) => m.metadata?.name === planned.pod)!;
        for (let reads = 0; ; reads++) {
          try {
            await client.patchPod(identity.namespace, peer.pod, peer.patch, write);
            if (peer.demotes) demoted.set(peer.pod, pod);
            return;
          } catch (error) {
            // A member deleted since the list carries no label and can promote nothing: it needs no fence.
            if (statusOf(error) === 404) return;
            if (!lostRace(error) || request.rivals === 'yield' || reads >= peerRereads) throw error;
          }
          // The member changed since the list (in a failover, the old leader removing its own label at that
          // moment). A claim writes it as it is now, on the version a read of it returns, as a fresh list would
          // have it do; the read goes to etcd at once, where the API server may hold a fresh list back up to
          // 100 ms (its watch cache waiting for etcd's progress notice). A yielding member lists again instead:
          // the member may hold the label now, and then it yields.
          const fresh = await client.getPod(identity.namespace, planned.pod, deadline).catch((error: unknown) => {
            if (statusOf(error) === 404) return undefined;
            throw error;
          });
          if (!fresh) return;
          pod = fresh;
          peer = fenceWrite(peerOf(fresh, scheme), scheme, fence, now);
        }
      }));
      const patched = await client.patchPod(identity.namespace, writes.self.pod, writes.self.patch, write);
      checkWritten(patched, scheme.key, scheme.leader);
      if (dryRun === 'none') {
        await recordEvents(client, log, deadline, [
          ...(plan.patch ? [roleEvent(self, 'RolePromoted', `${scheme.key}=${scheme.leader} set by this member: ${electionState(request.election)}`, identity)] : []),
          ...demotionEvents(),
        ]);
      }
      return outcome({ ...plan, patch: plan.patch ?? labelPatch(scheme.key, scheme.leader) }, [...writes.peers, writes.self]);
    } catch (error) {
      if (!lostRace(error) || Date.now() >= deadline) throw error;
      log.debug('a group member changed during the promotion; starting again from a fresh list', { round });
      // This pod's own write lost (or a yielding member's write, or a member kept changing): most often two
      // members promoting against each other, which need the random, growing gap to part.
      await new Promise((resolve) => setTimeout(resolve, backoffDelay(round - 1, 20, 800, Math.random)));
    }
  }
}

/** How often a claim reads a member again whose fence lost a race, before it starts the round again. */
const peerRereads = 3;

/** This pod and the members of its group, from one LIST (plus a GET if a selector leaves this pod out). */
export async function readGroup(client: KubeClient, identity: PodIdentity, group: GroupSpec, deadline: number): Promise<{ self: Pod; members: Pod[] }> {
  const pods = await client.listPods(identity.namespace, group.selector, deadline);
  const self = pods.find((p) => p.metadata?.name === identity.name) ?? (await client.getPod(identity.namespace, identity.name, deadline));
  const members = groupMembers(pods, self, group);
  return { self, members: members.some((m) => m.metadata?.name === identity.name) ? members : [...members, self] };
}

/**
 * Records on this pod that its election says it leads while `holder` carries the label, and, the first
 * time for that holder's promotion, a RoleContested Event on both pods. Returns the write when it was the
 * first time. Only this pod is written (its claim annotation, conditional on the version just listed): a
 * 409 starts the caller's round again.
 */
async function recordYield(client: KubeClient, request: LabelRequest, self: Pod, holder: Pod, log: Logger, deadline: number): Promise<PodWrite | undefined> {
  const { identity, scheme } = request;
  const claim = claimValue(self);
  if (self.metadata?.annotations?.[claimAnnotation] === claim) return undefined;
  const write: PodWrite = { pod: identity.name, patch: { metadata: { resourceVersion: self.metadata?.resourceVersion ?? '', annotations: { [claimAnnotation]: claim } } } };
  await client.patchPod(identity.namespace, write.pod, write.patch, { dryRun: false, deadline });
  const other = `pod ${identity.namespace}/${holder.metadata?.name}`;
  const me = `pod ${identity.namespace}/${identity.name}`;
  await recordEvents(client, log, deadline, [
    roleEvent(self, 'RoleContested', `Leadership is contested: the election of this member says it leads, and so does the election of ${other}, which carries ${scheme.key}=${scheme.leader} since a promotion took it from this member; this member waits, and takes the label back when ${other} no longer carries it.`, identity, 'Warning'),
    roleEvent(holder, 'RoleContested', `Leadership is contested: the election of ${me} says it leads too; it waits until this pod no longer carries ${scheme.key}=${scheme.leader}.`, identity, 'Warning'),
  ]);
  return write;
}

function checkWritten(patched: Pod, key: string, to: string | null): void {
  const now = patched.metadata?.labels?.[key];
  if ((now ?? null) !== to) {
    throw configError(`The API server accepted the patch but the pod's label ${key} is ${now ?? 'absent'}, not ${to ?? 'absent'}; a mutating webhook may be rewriting it, so exempt the label key from it or choose another key.`);
  }
}

function electionState(e: Election): string {
  if (!e.finished) return 'an election is running or has no quorum';
  if (e.leader) return 'the election finished and this member won';
  if (e.follower) return 'the election finished and this member follows';
  return 'this member is not in a leader election (standalone)';
}

function roleEvent(pod: Pod, reason: 'RolePromoted' | 'RoleDemoted' | 'RoleContested', message: string, actor: PodIdentity, type: 'Normal' | 'Warning' = 'Normal'): Record<string, unknown> {
  const now = new Date().toISOString();
  const name = pod.metadata?.name ?? '';
  return {
    metadata: { generateName: `${name}.`, namespace: pod.metadata?.namespace },
    involvedObject: { apiVersion: 'v1', kind: 'Pod', namespace: pod.metadata?.namespace, name, uid: pod.metadata?.uid },
    reason,
    message,
    type,
    source: { component: 'hab-pod-role' },
    reportingComponent: 'hab-pod-role',
    reportingInstance: actor.name,
    firstTimestamp: now,
    lastTimestamp: now,
    count: 1,
  };
}

/** Events are a record for people, not part of the protocol: a failure is logged, never fatal. */
async function recordEvents(client: KubeClient, log: Logger, deadline: number, events: Record<string, unknown>[]): Promise<void> {
  const results = await Promise.allSettled(events.map((e) => client.createEvent(String((e.metadata as { namespace: string }).namespace), e, deadline)));
  for (const r of results) if (r.status === 'rejected') log.warn(`could not record an event: ${failureMessage(r.reason)}`);
}

function planFor(labels: Record<string, string> | undefined, identity: PodIdentity, scheme: LabelScheme, to: string | null, force: boolean): LabelPlan {
  try {
    return planLabel(labels, scheme, to, force);
  } catch (error) {
    if (!(error instanceof ForeignLabelError)) throw error;
    throw dataError(
      `Pod ${identity.namespace}/${identity.name} already has ${error.key}=${error.value}, which is neither "${scheme.leader}" nor "${scheme.follower}", so the key belongs to something else; choose another label key, or pass --force to overwrite it.`,
    );
  }
}

/** The line a successful run leaves on stderr. */
export function describeOutcome({ identity, plan, dryRun, demoted }: ApplyOutcome): string {
  const pod = `pod ${identity.namespace}/${identity.name}`;
  const was = plan.from === undefined ? 'had none' : `was ${plan.from}`;
  const target = plan.to === null ? `no ${plan.key} label` : `${plan.key}=${plan.to}`;
  const suffix = dryRun === 'server' ? ' (server dry run, nothing persisted)' : '';
  if (dryRun === 'client') return `${pod}: would set ${target} (client dry run, nothing sent)`;
  const stale = demoted.length ? `; demoted stale leader ${demoted.join(', ')}` : '';
  if (!plan.patch) return `${pod}: already ${target}${stale}${suffix}`;
  return `${pod}: ${plan.to === null ? `removed ${plan.key} (${was})` : `${target} (${was})`}${stale}${suffix}`;
}
