// Retrying inside a deadline: the backoff, Retry-After, the retry loop and the start-up grace after an outage.
import { describe, expect, it } from 'vitest';
import { backoffDelay, retryAfterMs, StartupGrace, withRetries } from '../src/retry.ts';

describe('backoffDelay', () => {
  it('grows exponentially up to the cap, scaled by jitter', () => {
    expect([0, 1, 2, 3, 10].map((n) => backoffDelay(n, 100, 1000, () => 0.999999))).toEqual([99, 199, 399, 799, 999]);
    expect(backoffDelay(5, 100, 1000, () => 0)).toBe(0);
    expect(backoffDelay(5000, 100, 1000, () => 0.5)).toBe(500);
  });
});

describe('retryAfterMs', () => {
  it('reads seconds and HTTP dates', () => {
    expect(retryAfterMs('3', 0)).toBe(3000);
    expect(retryAfterMs('0', 0)).toBe(0);
    expect(retryAfterMs(new Date(10_000).toUTCString(), 4000)).toBe(6000);
    expect(retryAfterMs(undefined, 0)).toBeUndefined();
    expect(retryAfterMs('soon', 0)).toBeUndefined();
  });
});

describe('withRetries', () => {
  // A fake clock: sleeping advances it, so the deadline logic is tested without waiting.
  function clock() {
    let now = 1000;
    const slept: number[] = [];
    return { slept, now: () => now, sleep: async (ms: number) => { slept.push(ms); now += ms; } };
  }
  const giveUp = (error: unknown, attempts: number) => new Error(`gave up after ${attempts}: ${String(error)}`);

  it('retries what classify allows and returns the first success', async () => {
    const c = clock();
    let calls = 0;
    const result = await withRetries(async () => { if (++calls < 3) throw new Error('flaky'); return 'ok'; }, {
      deadline: 100_000, baseDelayMs: 100, maxDelayMs: 1000, classify: () => ({ retry: true }), onDeadline: giveUp, random: () => 0.5, ...c,
    });
    expect(result).toBe('ok');
    expect(calls).toBe(3);
    expect(c.slept).toEqual([50, 100]);
  });

  it('rethrows at once what classify refuses', async () => {
    const c = clock();
    await expect(withRetries(async () => { throw new Error('fatal'); }, {
      deadline: 100_000, baseDelayMs: 100, maxDelayMs: 1000, classify: () => ({ retry: false }), onDeadline: giveUp, ...c,
    })).rejects.toThrow('fatal');
    expect(c.slept).toEqual([]);
  });

  it('waits at least as long as the server asks', async () => {
    const c = clock();
    let calls = 0;
    await withRetries(async () => { if (++calls === 1) throw new Error('429'); return 1; }, {
      deadline: 100_000, baseDelayMs: 100, maxDelayMs: 1000, classify: () => ({ retry: true, notBeforeMs: 2500 }), onDeadline: giveUp, random: () => 0.1, ...c,
    });
    expect(c.slept).toEqual([2500]);
  });

  it('gives up with onDeadline when the next wait would pass the deadline', async () => {
    const c = clock();
    await expect(withRetries(async () => { throw new Error('down'); }, {
      deadline: 1000 + 1000, baseDelayMs: 200, maxDelayMs: 5000, classify: () => ({ retry: true }), onDeadline: giveUp, random: () => 0.999, ...c,
    })).rejects.toThrow(/gave up after 3: Error: down/);
    expect(c.slept).toEqual([199, 399]);
  });
});

describe('StartupGrace', () => {
  it('covers refusals only after an outage, for the grace from the first refusal', () => {
    const grace = new StartupGrace(10_000);
    expect(grace.covers(0)).toBe(false);
    grace.serverDown();
    expect(grace.covers(1000)).toBe(true);
    expect(grace.covers(10_999)).toBe(true);
    expect(grace.covers(11_000)).toBe(false);
  });

  it('ends when the server answers, and starts afresh with every outage (not only the first)', () => {
    const grace = new StartupGrace(10_000);
    grace.serverDown();
    expect(grace.covers(0)).toBe(true);
    grace.serverAnswered();
    expect(grace.covers(1000)).toBe(false);
    grace.serverDown();
    expect(grace.covers(60_000)).toBe(true);
    expect(grace.covers(69_999)).toBe(true);
    expect(grace.covers(70_000)).toBe(false);
    // A refusal that outlasted one grace, then another outage: a new grace.
    grace.serverDown();
    expect(grace.covers(80_000)).toBe(true);
  });
});
