// Keeps the pod's role label equal to what the newest good election file says, for as long as the service runs.

import { failureMessage } from './api-errors.ts';
import { applyLabel, describeOutcome, type ApplyOutcome, type ApplyRequest } from './apply.ts';
import { readElectionFile, roleFor } from './election.ts';
import { claimOf, fenceAnnotation, fenceOwner, yieldsTo } from './group.ts';
import type { KubeClient } from './kube.ts';
import type { Pod } from './pod.ts';
import type { Logger } from './log.ts';
import { releaseWhenQuiet } from './release.ts';
import { desiredLabel, labelValueFor } from './settings.ts';
import { watchFile, watchGroup, watchPod } from './watch.ts';

export interface Keeper {
  stop(): void;
}

type Target = Pick<ApplyRequest, 'configPath' | 'overrides' | 'identity' | 'scheme' | 'value' | 'election' | 'group'>;

/**
 * How long a fence from a promotion not yet finished keeps a member from taking a free label: the promoter is
 * about to label itself, and one that lost a conflict lists and writes again first, which on a loaded node
 * takes more than a second. The bound only matters for a promoter that died half way.
 */
const promotionInFlightMs = 5000;
/**
 * An election file that cannot be read is reported once it has stayed so this long: until then it may be a
 * rewrite in progress. A good file is applied at once, however soon after the last change.
 */
const fileQuietMs = 100;
/**
 * A change of this pod's label that its election does not explain is put right after this pause: in a failover
 * the new leader often demotes this pod a moment before this member's Supervisor renders its own new file,
 * and then it is no drift.
 */
const driftSettleMs = 60;
/** How long after its last pass the resident collects what the passes left (see release.ts). */
const releaseQuietMs = 5000;

export function keepLabel(client: KubeClient, start: Target, log: Logger, options: { watchSeconds?: number } = {}): Keeper {
  const { identity, scheme } = start;
  const self = `pod ${identity.namespace}/${identity.name}`;
  let value = start.value;
  let election = start.election;
  // A change of the file to leader is a claim: its pass demotes whoever leads. A member whose label a rival's
  // promotion then took (`takenBy`) while its file kept saying leader makes no claim again: it leaves the
  // label with whoever holds it (`yieldsTo`) and takes it only once no one does. Any other loss of the label
  // (a person, another tool) is drift, put right as before.
  let claims = 0;
  let claimsApplied = 0;
  let takenBy: string | undefined;
  let running = false;
  let again = false;
  // Why the folded pass runs: a file change that arrives while another pass holds the lock is still
  // logged as a file change, not as whatever started the pass it was folded into.
  let queuedReason: string | undefined;
  // Repairs in quick succession mean someone outside the protocol keeps undoing this label (a person, another
  // tool): back off instead of fighting it write for write.
  let repairs = 0;
  let lastRepair = 0;
  // What this member knows of its pod and, while its election says it leads, of its group.
  let own: Pod | undefined;
  // Every promotion's fence on a member of the group: when this member first saw it, and whether its
  // promoter has been seen carrying the label since (then that promotion is done).
  const fences = new Map<string, { seenAt: number; led: boolean }>();
  let members: Pod[] = [];
  let group: { stop(): void } | undefined;
  let freeCheck: NodeJS.Timeout | undefined;
  let freeCheckAt = Infinity;
  // A free check that came due while a pass ran: made once the pass has ended, which may have taken the label.
  let freeCheckOwed = false;
  // A failed pass is owed. The pod watch can stay open while writes fail (a burst of 5xx longer than
  // --timeout, a refusal that ends), so the pass is also tried again on a timer, backing off, until one succeeds.
  let failedPasses = 0;
  let retry: NodeJS.Timeout | undefined;
  const contestedBy = new Map<string, string>();
  const release = releaseWhenQuiet(releaseQuietMs);

  const report = (outcome: ApplyOutcome, reason: string) => {
    if (outcome.yieldedTo !== undefined && outcome.contestRecorded) {
      log.warn(`leadership is contested: the election of this member says it leads, and so does the election of pod ${identity.namespace}/${outcome.yieldedTo}, which carries ${scheme.key}=${scheme.leader} since a promotion took it from ${self}; waiting, and taking the label back when it no longer carries it (RoleContested recorded on both pods)`);
    }
    if (!outcome.plan.patch) return;
    if (reason === 'label drift') {
      repairs = Date.now() - lastRepair < 30_000 ? repairs + 1 : 1;
      lastRepair = Date.now();
    }
    log.info(`${describeOutcome(outcome)} after ${reason}`, { requests: outcome.requestsSent });
  };

  // One write at a time, in order; whatever arrives meanwhile is folded into one more pass with the newest state.
  const reconcile = async (reason: string) => {
    if (running) {
      again = true;
      queuedReason = reason;
      return;
    }
    running = true;
    queuedReason = undefined;
    try {
      do {
        again = false;
        if (queuedReason) [reason, queuedReason] = [queuedReason, undefined];
        const claim = claims;
        const rivals = claim === claimsApplied && takenBy !== undefined ? 'yield' : 'demote';
        const wait = rivals === 'yield' && value === scheme.leader ? promotionInFlight() : 0;
        if (wait > 0) {
          scheduleFreeCheck(wait);
          continue;
        }
        try {
          // The key is ours by now (we labelled it at start), so a hand-made value under it is put right, not refused.
          const inFlight = (pods: Pod[]) => {
            noteFences(pods);
            return promotionInFlight();
          };
          const outcome = await applyLabel(client, { identity, scheme, value, election, group: start.group, force: true, dryRun: 'none', rivals, promotionInFlight: inFlight }, log, client.deadline());
          if (outcome.waitMs) scheduleFreeCheck(outcome.waitMs);
          claimsApplied = claim;
          failedPasses = 0;
          clearTimeout(retry);
          report(outcome, reason);
        } catch (error) {
          // Also retried when the pod watch reconnects and reads the pod afresh, whichever comes first.
          const delayS = Math.min(30, 2 ** failedPasses++);
          log.error(`${failureMessage(error)} (after ${reason}; will retry in ${delayS} s, or when the API server answers again)`);
          clearTimeout(retry);
          retry = setTimeout(() => void reconcile(reason), delayS * 1000).unref();
        }
      } while (again);
    } finally {
      running = false;
      release.busy();
      if (freeCheckOwed) {
        freeCheckOwed = false;
        scheduleFreeCheck(0);
      }
    }
  };

  /**
   * Reads the election file; applies it if it changed. Says whether it did. The read is synchronous, so
   * reads cannot interleave: the last one sets `value`, and `reconcile` folds overlapping passes into it.
   * Read before the writes have `settled`, a file that cannot be read is a write in progress, not reported:
   * the next change, or the read once they settle, reads it again. One that can be read is applied at once,
   * even if the Supervisor is still writing it: a file cut short is refused unless it holds every [election]
   * key with its whole value (each is required, and `tru` is no TOML value), so the election read is the
   * whole file's; what it may lack is a table after it, which the running wrapper does not apply ([label] and
   * [group] are taken at start; the warning about a changed [label] waits for the settled read).
   */
  const fileChanged = async (settled = true): Promise<boolean> => {
    try {
      const desired = desiredLabel(readElectionFile(start.configPath), start.overrides, start.configPath);
      // The value the file asks for, written as the wrapper started: key, values and group stay until it restarts.
      const next = labelValueFor(roleFor(desired.election), scheme);
      if (settled && JSON.stringify(desired.scheme) !== JSON.stringify(scheme)) {
        log.warn('the [label] table changed; the running wrapper keeps the key and values it started with until it restarts');
      }
      election = desired.election;
      if (next === value) return false;
      value = next;
      repairs = 0;
      takenBy = undefined;
      if (value === scheme.leader) claims++;
      // A member that no longer leads stops following its group at once; one that now leads starts once its
      // claim's pass has written: the watch's list and its connection would only compete with the promotion's
      // own list and writes, and the claim needs neither (it demotes whoever leads).
      if (value !== scheme.leader) followGroup();
      await reconcile('the election file changed');
      followGroup();
      return true;
    } catch (error) {
      // Half-written or broken: never applied. The last good state stays on the pod until a good file arrives.
      if (!settled) return false;
      log.error(`${(error as Error).message} Ignored until a valid file arrives; the label stays as it is.`);
      return false;
    }
  };

  /**
   * Notes when a promotion fenced this pod (for a moment after, the promoter is about to label itself), and
   * when a promotion took this pod's leader value: the same write removes the label and replaces the fence.
   */
  const ownSeen = (pod: Pod) => {
    const fence = pod.metadata?.annotations?.[fenceAnnotation];
    const leads = pod.metadata?.labels?.[scheme.key] === scheme.leader;
    const promoter = fenceOwner(fence);
    if (leads) takenBy = undefined;
    else if (value === scheme.leader && promoter !== undefined && promoter !== identity.name) {
      // Seen first without the label the run started with: only a promotion since then can have taken it.
      const led = own ? own.metadata?.labels?.[scheme.key] === scheme.leader : start.value === scheme.leader;
      if (led && fence !== own?.metadata?.annotations?.[fenceAnnotation]) takenBy = promoter;
    }
    own = pod;
  };

  const podSeen = (pod: Pod) => {
    ownSeen(pod);
    const current = pod.metadata?.labels?.[scheme.key] ?? null;
    if (current === value) return;
    if (running) {
      again = true; // seen mid-write: one more pass reads the pod afresh and settles it
      return;
    }
    const delay = Math.max(driftSettleMs, repairs === 0 || Date.now() - lastRepair >= 30_000 ? 0 : Math.min(10_000, 250 * 2 ** (repairs - 1)));
    running = true; // hold other passes back until this one runs
    setTimeout(() => {
      running = false;
      void (async () => {
        if (await fileChanged()) return;
        // A file change while this pass was held: its write is what moved the label, no hand did.
        const reason = queuedReason ?? (value === scheme.leader ? takeReason() : 'label drift');
        if (reason === 'label drift') log.warn(`label ${scheme.key} on ${self} is ${current ?? 'absent'}, not ${value ?? 'absent'}: changed by someone else, restoring it`);
        await reconcile(reason);
      })();
    }, delay).unref();
  };

  /**
   * Notes the fences on the group's pods, and which promoters carry the label. Any member's fence counts,
   * not only this pod's: a promotion that demoted the holder may have lost its race for this pod's fence
   * (this pod's own claim write changed it), and still be about to label its member.
   */
  const noteFences = (pods: Pod[]) => {
    const now = Date.now();
    const present = new Set(pods.map((p) => p.metadata?.annotations?.[fenceAnnotation]).filter((f) => f !== undefined));
    for (const fence of fences.keys()) if (!present.has(fence)) fences.delete(fence);
    for (const fence of present) if (!fences.has(fence)) fences.set(fence, { seenAt: now, led: false });
    const leaders = new Set(pods.filter((p) => p.metadata?.labels?.[scheme.key] === scheme.leader).map((p) => p.metadata?.name));
    for (const [fence, state] of fences) if (leaders.has(fenceOwner(fence))) state.led = true;
  };

  /**
   * How long to wait before taking a label no rival holds: a promotion that fenced a member and has not
   * labelled its own yet is about to, and racing it would only move the label twice. One whose promoter
   * has carried the label since is done (its claim ended after), so there is nothing to wait for.
   */
  const promotionInFlight = (): number => {
    let wait = 0;
    for (const [fence, state] of fences) {
      if (state.led || fenceOwner(fence) === identity.name) continue;
      wait = Math.max(wait, state.seenAt + promotionInFlightMs - Date.now());
    }
    return wait;
  };

  /** Why this member (its election saying it leads) takes the label: a rival's claim ended, or its own label was undone. */
  const takeReason = (): string => {
    if (takenBy === undefined) return 'label drift';
    return members.some((p) => p.metadata?.labels?.[scheme.key] === scheme.leader) ? 'the leader of the group cannot serve' : 'the group lost its leader';
  };

  /**
   * While its election says it leads, a member follows its group: holding the label, it sees a rival
   * that waits for it (and says so); without it, it takes the label as soon as no rival holds it.
   */
  const groupSeen = (pods: Pod[]) => {
    members = pods;
    const me = pods.find((p) => p.metadata?.name === identity.name);
    if (me) ownSeen(me);
    noteFences(pods);
    if (!own || value !== scheme.leader) return;
    const holding = own.metadata?.labels?.[scheme.key] === scheme.leader;
    for (const peer of pods) {
      const name = peer.metadata?.name ?? '';
      const waits = holding && name !== identity.name && claimOf(peer, scheme) === 'waits';
      // Once per promotion it waits for (its fence), so a third claimant's promotion is reported again.
      const since = peer.metadata?.annotations?.[fenceAnnotation] ?? '';
      if (waits && contestedBy.get(name) !== since) {
        contestedBy.set(name, since);
        log.warn(`leadership is contested: the election of pod ${identity.namespace}/${name} says it leads too; it waits while ${self} keeps ${scheme.key}=${scheme.leader} (the Habitat members disagree: a restarted old leader starting from its cache, or a member cut off from the ring; hab-pod-role status names both)`);
      } else if (claimOf(peer, scheme) !== 'waits' && contestedBy.delete(name)) {
        log.info(`pod ${identity.namespace}/${name} no longer waits for ${scheme.key}=${scheme.leader}; the contest is over`);
      }
    }
    // At once: a promotion that is about to take the free label shows in its fences, on the members the watch
    // reports and in the list the promotion reads first, and `reconcile` waits it out.
    if (!holding && takenBy !== undefined) scheduleFreeCheck(0);
  };

  /**
   * Takes the label, `delayMs` from now, if no rival holds it (`reconcile` waits out a promotion in flight).
   * A check due sooner replaces one due later: the later one is only the end of a wait, checked again anyway.
   */
  const scheduleFreeCheck = (delayMs: number) => {
    const at = Date.now() + delayMs;
    if (freeCheck && freeCheckAt <= at) return;
    clearTimeout(freeCheck);
    freeCheckAt = at;
    freeCheck = setTimeout(() => {
      freeCheck = undefined;
      freeCheckAt = Infinity;
      if (running) {
        freeCheckOwed = true;
        return;
      }
      if (!own || value !== scheme.leader || takenBy === undefined || own.metadata?.labels?.[scheme.key] === scheme.leader) return;
      if (yieldsTo(members, own, scheme) === undefined) void reconcile(takeReason());
    }, delayMs).unref();
  };

  /** Follows the group exactly while the election says this member leads. */
  const followGroup = () => {
    if (value === scheme.leader && !group) {
      group = watchGroup(client, identity, start.group, groupSeen, log, options.watchSeconds);
    } else if (value !== scheme.leader && group) {
      group.stop();
      group = undefined;
      clearTimeout(freeCheck);
      freeCheck = undefined;
      freeCheckAt = Infinity;
      freeCheckOwed = false;
      contestedBy.clear();
    }
  };

  const file = watchFile(start.configPath, (settled) => void fileChanged(settled), fileQuietMs);
  // The file was read before this watch began: read it once more, so a change in between is not missed.
  void fileChanged();
  const pod = watchPod(client, identity, podSeen, log, options.watchSeconds);
  followGroup();
  // The start's own garbage (labelling, the modules it evaluated) goes the same way.
  release.busy();
  return {
    stop() {
      file.close();
      pod.stop();
      group?.stop();
      clearTimeout(freeCheck);
      clearTimeout(retry);
      release.stop();
    },
  };
}
