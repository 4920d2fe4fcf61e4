// Giving memory back after a burst of labelling: one collection once the resident is quiet, and a real one.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { collectGarbage, releaseWhenQuiet } from '../src/release.ts';

describe('releaseWhenQuiet', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('collects once, quietMs after the last busy(), never in between', () => {
    vi.useFakeTimers();
    const collect = vi.fn();
    const release = releaseWhenQuiet(5000, collect);
    release.busy();
    vi.advanceTimersByTime(4000);
    release.busy(); // another pass of the same failover
    vi.advanceTimersByTime(4000);
    expect(collect).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1000);
    expect(collect).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(60_000);
    expect(collect).toHaveBeenCalledTimes(1); // quiet stays quiet: nothing more to collect
    release.busy();
    vi.advanceTimersByTime(5000);
    expect(collect).toHaveBeenCalledTimes(2);
  });

  it('collects nothing once stopped', () => {
    vi.useFakeTimers();
    const collect = vi.fn();
    const release = releaseWhenQuiet(5000, collect);
    release.busy();
    release.stop();
    vi.advanceTimersByTime(10_000);
    expect(collect).not.toHaveBeenCalled();
  });
});

describe('collectGarbage', () => {
  it('runs a full collection, without leaving gc() to the program', async () => {
    let ref: WeakRef<object> | undefined;
    (() => {
      ref = new WeakRef({ unreachable: true });
    })();
    // A WeakRef's target is kept until the job that made it ends.
    await new Promise((resolve) => setImmediate(resolve));
    collectGarbage();
    expect(ref!.deref()).toBeUndefined();
    expect((globalThis as { gc?: unknown }).gc).toBeUndefined();
    collectGarbage(); // the collector is kept: a second call works the same
  });
});
