// Election files as the Supervisor renders them from config/election.toml.

import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type State = 'leader' | 'follower' | 'running' | 'standalone';

export function electionText(state: State, label = ''): string {
  const flags = {
    leader: [true, false, true],
    follower: [false, true, true],
    running: [true, false, false], // an election under way keeps the old flags
    standalone: [false, false, true],
  }[state];
  return `[election]\nleader = ${flags[0]}\nfollower = ${flags[1]}\nfinished = ${flags[2]}\n${label}`;
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `hab-pod-role-${prefix}-`));
}

export function writeElection(path: string, text: string): string {
  writeFileSync(path, text);
  return path;
}

/** Writes a new file and renames it over the old one, as some writers do (the Supervisor rewrites in place, as writeElection does). */
export function renameElection(path: string, text: string): string {
  const next = `${path}.tmp-${process.hrtime.bigint()}`;
  writeFileSync(next, text);
  renameSync(next, path);
  return path;
}
