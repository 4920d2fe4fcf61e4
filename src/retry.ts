// Retrying inside a deadline: capped, jittered exponential backoff that honours a server's Retry-After.

/** What to do after a failed attempt: give up (rethrow) or try again, at the earliest after `notBeforeMs`. */
export type RetryVerdict = { retry: false } | { retry: true; notBeforeMs?: number };

export interface RetryPolicy {
  /** Epoch milliseconds after which no attempt starts. */
  deadline: number;
  baseDelayMs: number;
  maxDelayMs: number;
  classify: (error: unknown) => RetryVerdict;
  onRetry?: (error: unknown, delayMs: number, attempt: number) => void;
  /** Thrown in place of the last error when the deadline leaves no room for another attempt. */
  onDeadline: (lastError: unknown, attempts: number) => Error;
  now?: () => number;
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/** "Full jitter" (AWS architecture blog): spreads retries of many pods failing together across the window. */
export function backoffDelay(attempt: number, baseDelayMs: number, maxDelayMs: number, random: () => number): number {
  const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

/** Parses Retry-After (seconds or an HTTP date) into milliseconds from `now`; undefined when absent or unreadable. */
export function retryAfterMs(header: string | undefined, now: number): number | undefined {
  if (header === undefined || header.trim() === '') return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

export async function withRetries<T>(attempt: (attemptNumber: number) => Promise<T>, policy: RetryPolicy): Promise<T> {
  const now = policy.now ?? Date.now;
  const random = policy.random ?? Math.random;
  const sleep = policy.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  for (let n = 0; ; n++) {
    try {
      return await attempt(n);
    } catch (error) {
      const verdict = policy.classify(error);
      if (!verdict.retry) throw error;
      // A server's Retry-After wins over a shorter backoff; the deadline still bounds both.
      const delay = Math.max(backoffDelay(n, policy.baseDelayMs, policy.maxDelayMs, random), verdict.notBeforeMs ?? 0);
      if (now() + delay >= policy.deadline) throw policy.onDeadline(error, n + 1);
      policy.onRetry?.(error, delay, n + 1);
      await sleep(delay);
    }
  }
}

/**
 * A restarted API server answers before its authentication and RBAC caches are filled, refusing everyone
 * for a few seconds. So after an outage, refusals are taken for that start-up for a while (from the first
 * one on); an answer that gets through ends it, and every new outage starts it afresh.
 */
export class StartupGrace {
  private down = false;
  private until: number | undefined;
  private readonly graceMs: number;

  constructor(graceMs: number) {
    this.graceMs = graceMs;
  }

  /** The server was unreachable or failing. */
  serverDown(): void {
    this.down = true;
    this.until = undefined;
  }

  /** The server answered a request successfully: a refusal from now on is meant. */
  serverAnswered(): void {
    this.down = false;
    this.until = undefined;
  }

  /** Whether a refusal at `now` may still be the start-up after an outage. */
  covers(now: number): boolean {
    if (!this.down) return false;
    this.until ??= now + this.graceMs;
    return now < this.until;
  }
}
