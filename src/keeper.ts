// Keeps the pod's role label equal to what the newest good election file says, for as long as the service runs.

import { applyLabel, describeOutcome, type ApplyRequest } from './apply.ts';
import { readElectionFile } from './election.ts';
import type { KubeClient, Pod } from './kube.ts';
import { labelValueFor, roleFor } from './labels.ts';
import type { Logger } from './log.ts';
import { watchFile, watchPod } from './watch.ts';

export interface Keeper {
  stop(): void;
}

type Target = Pick<ApplyRequest, 'configPath' | 'identity' | 'scheme' | 'value' | 'election' | 'group'>;

export function keepLabel(client: KubeClient, start: Target, log: Logger, options: { debounceMs?: number; watchSeconds?: number } = {}): Keeper {
  const debounceMs = options.debounceMs ?? 20;
  const settleMs = debounceMs * 3;
  let value = start.value;
  let election = start.election;
  let running = false;
  let again = false;
  // Why the folded pass runs: a file change that arrives while another pass holds the lock is still
  // logged as a file change, not as whatever started the pass it was folded into.
  let queuedReason: string | undefined;
  // Repairs in quick succession mean someone keeps undoing this label: typically a peer acting on a stale
  // election file, which its Supervisor will correct. Back off instead of fighting it write for write.
  let repairs = 0;
  let lastRepair = 0;

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
        client.renewDeadline();
        try {
          // The key is ours by now (we labelled it at start), so a hand-made value under it is put right, not refused.
          const outcome = await applyLabel(client, { identity: start.identity, scheme: start.scheme, value, election, group: start.group, force: true, dryRun: 'none' }, log);
          if (outcome.plan.patch) log.info(`${describeOutcome(outcome)} after ${reason}`, { requests: outcome.requestsSent });
        } catch (error) {
          // The pod watch reads the pod again when it reconnects, and that retries this.
          log.error(`${(error as Error).message} (after ${reason}; will retry when the API server answers again)`);
        }
      } while (again);
    } finally {
      running = false;
    }
  };

  /**
   * Reads the election file; applies it if it changed. Says whether it did. The read is synchronous, so
   * reads cannot interleave: the last one sets `value`, and `reconcile` folds overlapping passes into it.
   */
  const fileChanged = async (): Promise<boolean> => {
    try {
      const file = readElectionFile(start.configPath);
      const next = labelValueFor(roleFor(file.election), start.scheme);
      const { key, leader, follower } = file.label;
      if ((key ?? start.scheme.key) !== start.scheme.key || (leader ?? start.scheme.leader) !== start.scheme.leader || (follower ?? start.scheme.follower) !== start.scheme.follower) {
        log.warn('the [label] table changed; the running wrapper keeps the key and values it started with until it restarts');
      }
      election = file.election;
      if (next === value) return false;
      value = next;
      repairs = 0;
      await reconcile('the election file changed');
      return true;
    } catch (error) {
      // Half-written or broken: never applied. The last good state stays on the pod until a good file arrives.
      log.error(`${(error as Error).message} Ignored until a valid file arrives; the label stays as it is.`);
      return false;
    }
  };

  const podSeen = (pod: Pod) => {
    const current = pod.metadata?.labels?.[start.scheme.key] ?? null;
    if (current === value) return;
    if (running) {
      again = true; // seen mid-write: one more pass reads the pod afresh and settles it
      return;
    }
    const now = Date.now();
    repairs = now - lastRepair < 30_000 ? repairs + 1 : 0;
    lastRepair = now;
    // At least a little later than a file change would be noticed: in a failover the new leader often
    // demotes this pod just before this member reads its own new election file, and then it is no drift.
    const delay = Math.max(settleMs, repairs === 0 ? 0 : Math.min(10_000, 250 * 2 ** (repairs - 1)));
    running = true; // hold other passes back until this one runs
    setTimeout(() => {
      running = false;
      void (async () => {
        if (await fileChanged()) return;
        if (queuedReason) {
          // The file changed while this pass was held: its write is what moved the label, no hand did.
          await reconcile(queuedReason);
          return;
        }
        log.warn(`label ${start.scheme.key} on pod ${start.identity.namespace}/${start.identity.name} is ${current ?? 'absent'}, not ${value ?? 'absent'}: changed by someone else, restoring it`);
        await reconcile('label drift');
      })();
    }, delay).unref();
  };

  const file = watchFile(start.configPath, () => void fileChanged(), debounceMs);
  // The file was read before this watch began: read it once more, so a change in between is not missed.
  void fileChanged();
  const pod = watchPod(client, start.identity, podSeen, log, options.watchSeconds);
  return {
    stop() {
      file.close();
      pod.stop();
    },
  };
}
