// The election file: the TOML the Supervisor renders, parsed and checked before anything touches the API.

import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import TOML from '@iarna/toml';
import { dataError, HabPodRoleError } from './errors.ts';
import { labelSelectorProblem } from './labels.ts';

/** What the Supervisor knows about this member's election. */
export interface Election {
  leader: boolean;
  follower: boolean;
  /**
   * Required: the Supervisor renders templates on every tick, also while an election runs or has no
   * quorum (only hooks wait), so a file without this key cannot be taken for a finished election.
   */
  finished: boolean;
}

/** What a member can be routable as. */
export type Role = 'leader' | 'follower';

/** The `[label]` table: each field overrides the default unless a flag or environment variable does. */
export interface LabelOverrides {
  key?: string;
  leader?: string;
  follower?: string;
}

export interface ElectionFile {
  election: Election;
  label: LabelOverrides;
  /** `[group] selector`: the label selector of the pods that share this election. */
  group: { selector?: string | undefined };
}

type Table = Record<string, unknown>;

const fixTemplate = 'fix the template that renders it';
/** The template line that renders each [election] key, for the message that asks for a missing one. */
const templateLines: Record<string, string> = {
  leader: 'leader = {{svc.me.leader}}',
  follower: 'follower = {{svc.me.follower}}',
  finished: 'finished = {{svc.election_is_finished}}',
};

/** Parses and checks an election file's text; `source` names the file in messages. */
export function parseElectionFile(text: string, source: string): ElectionFile {
  let doc: Table;
  try {
    doc = TOML.parse(text) as Table;
  } catch (error) {
    throw tomlError(error, source);
  }
  const tables = checkKeys(doc, '', ['election', 'label', 'group'], source);
  const election = tableAt(tables, 'election', source, { required: true });
  const label = tableAt(tables, 'label', source, { required: false });
  const group = tableAt(tables, 'group', source, { required: false });

  checkKeys(election, 'election.', ['leader', 'follower', 'finished'], source);
  checkKeys(label, 'label.', ['key', 'leader', 'follower'], source);
  checkKeys(group, 'group.', ['selector'], source);

  const parsed: ElectionFile = {
    election: {
      leader: electionFlag(election, 'leader', source),
      follower: electionFlag(election, 'follower', source),
      finished: electionFlag(election, 'finished', source),
    },
    label: {
      key: stringAt(label, 'label.', 'key', source),
      leader: stringAt(label, 'label.', 'leader', source),
      follower: stringAt(label, 'label.', 'follower', source),
    },
    group: { selector: stringAt(group, 'group.', 'selector', source) },
  };
  const selectorProblem = parsed.group.selector ? labelSelectorProblem(parsed.group.selector) : undefined;
  if (selectorProblem) throw dataError(`${source}: group.selector: ${selectorProblem}; ${fixTemplate}.`);
  if (parsed.election.leader && parsed.election.follower) {
    throw dataError(`${source}: election.leader and election.follower are both true; a member is one or the other, ${fixTemplate}.`);
  }
  return parsed;
}

/** The Supervisor renders a few lines; anything this large is the wrong file (or a runaway template). */
export const maxElectionFileBytes = 64 * 1024;

/**
 * Reads and parses the election file at `path`. Synchronous on purpose: a hook reads one small file
 * before anything else can happen, and fs/promises would add its own load time to every start.
 */
export function readElectionFile(path: string): ElectionFile {
  let bytes: Buffer;
  try {
    bytes = readAtMost(path, maxElectionFileBytes + 1);
  } catch (error) {
    throw error instanceof HabPodRoleError ? error : unreadable(error, path);
  }
  if (bytes.length > maxElectionFileBytes) {
    throw dataError(`${path}: the election file is larger than ${maxElectionFileBytes / 1024} KiB, far beyond the few lines the Supervisor renders; check that --config names the election file.`);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw dataError(`${path}: the election file is not valid UTF-8; ${fixTemplate}.`);
  }
  if (text.trim() === '') {
    // The Supervisor writes files whole, so an empty one means the template rendered nothing.
    throw dataError(`${path}: the election file is empty; ${fixTemplate} (it needs an [election] table).`);
  }
  return parseElectionFile(text, path);
}

/** Up to `limit` bytes of a regular file; a FIFO or device is refused, since reading one could block or never end. */
function readAtMost(path: string, limit: number): Buffer {
  // Non-blocking, or opening a FIFO would wait for a writer; regular files read the same either way.
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const stat = fstatSync(fd);
    // A directory is left to the read below, which fails with EISDIR and is named as one.
    if (!stat.isFile() && !stat.isDirectory()) throw dataError(`${path}: the election file is not a regular file (a pipe or device); check --config and that the plan renders it from config/.`);
    const buffer = Buffer.alloc(limit);
    let length = 0;
    for (let n = -1; n !== 0 && length < limit; length += n) n = readSync(fd, buffer, length, limit - length, null);
    return buffer.subarray(0, length);
  } finally {
    closeSync(fd);
  }
}

function unreadable(error: unknown, path: string): HabPodRoleError {
  const code = (error as NodeJS.ErrnoException).code;
  const why =
    code === 'ENOENT' ? 'does not exist'
    : code === 'EISDIR' ? 'is a directory, not a file'
    : code === 'EACCES' ? 'cannot be read by this user'
    : `cannot be read (${code ?? String(error)})`;
  return dataError(`${path}: the election file ${why}; check --config and that the plan renders it from config/.`, error);
}

function tomlError(error: unknown, source: string): HabPodRoleError {
  const e = error as { line?: number; col?: number; message?: string };
  if (typeof e.line !== 'number' || typeof e.col !== 'number') {
    return dataError(`${source}: the election file is not valid TOML; ${fixTemplate}.`, error);
  }
  // @iarna/toml counts from 0 and appends its own position and a code frame to the first line.
  const reason = (e.message ?? '').split('\n')[0]!.replace(/ at row \d+, col \d+, pos \d+:$/, '');
  return dataError(`${source}:${e.line + 1}:${e.col + 1}: invalid TOML: ${reason}; ${fixTemplate}.`, error);
}

function checkKeys(table: Table, prefix: string, allowed: string[], source: string): Table {
  for (const key of Object.keys(table)) {
    if (!allowed.includes(key)) {
      throw dataError(`${source}: unknown key "${prefix}${key}"; the allowed keys${prefix ? ` in [${prefix.slice(0, -1)}]` : ''} are ${allowed.join(', ')}.`);
    }
  }
  return table;
}

function tableAt(doc: Table, name: string, source: string, { required }: { required: boolean }): Table {
  const value = doc[name];
  if (value === undefined) {
    if (required) throw dataError(`${source}: the [${name}] table is missing; ${fixTemplate}.`);
    return {};
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Date) {
    throw dataError(`${source}: "${name}" must be a table ([${name}]), not ${describe(value)}.`);
  }
  return value as Table;
}

function electionFlag(table: Table, key: string, source: string): boolean {
  const value = table[key];
  if (value === undefined) {
    throw dataError(`${source}: election.${key} is missing; add the line "${templateLines[key]}" to the [election] table of the template that renders it.`);
  }
  if (typeof value !== 'boolean') {
    throw dataError(`${source}: election.${key} must be true or false, not ${describe(value)}; ${fixTemplate}.`);
  }
  return value;
}

function stringAt(table: Table, prefix: string, key: string, source: string): string | undefined {
  const value = table[key];
  if (value === undefined || typeof value === 'string') return value;
  throw dataError(`${source}: ${prefix}${key} must be a string, not ${describe(value)}.`);
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Date) return 'a date';
  if (typeof value === 'object' && value !== null) return 'a table';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  return `${typeof value} ${String(value)}`;
}

/**
 * The role this member should be routable as: only the winner of a finished election leads, and only
 * a member of a finished election follows. Anything else (election running, no quorum, standalone
 * topology) is neither, so no Service sends it traffic it cannot serve.
 */
export function roleFor(election: Election): Role | undefined {
  if (!election.finished) return undefined;
  if (election.leader) return 'leader';
  if (election.follower) return 'follower';
  return undefined;
}
