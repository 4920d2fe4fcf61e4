// A process's memory from /proc/PID/smaps_rollup, in KiB: what it costs the machine beyond the pages it shares.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { quantile } from './quantile.ts';

export interface Rollup {
  rss: number;
  pss: number;
  /** Private_Clean + Private_Dirty: pages no other process maps (for a single executable, its own file's pages too). */
  private: number;
  anonymous: number;
}

export function smapsRollup(pid: number): Rollup {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return { rss: field('Rss'), pss: field('Pss'), private: field('Private_Clean') + field('Private_Dirty'), anonymous: field('Anonymous') };
}

/** Each field's median over several samples (the benchmark's one median: see quantile.ts). */
export function medianRollup(samples: Rollup[]): Rollup {
  const median = (key: keyof Rollup) => quantile(samples.map((s) => s[key]), 0.5);
  return { rss: median('rss'), pss: median('pss'), private: median('private'), anonymous: median('anonymous') };
}

export const mib = (kb: number) => `${(kb / 1024).toFixed(1)} MiB`;

/**
 * Drops `file`'s pages from the page cache (GNU dd's nocache), so the loader reads it in as after a
 * reboot. A file just written (a fresh build, a copy) sits in the cache as large folios, which map
 * whole into each process that runs it: 15 MiB more RSS for an empty single executable, measured.
 */
export function dropFromPageCache(file: string): void {
  execFileSync('dd', [`if=${file}`, 'iflag=nocache', 'count=0', 'status=none']);
}
