// The election file: parsing and checks of the TOML the Supervisor renders, fuzzed, and the role each election result asks for.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { maxElectionFileBytes, parseElectionFile, readElectionFile, roleFor, type Election } from '../src/election.ts';
import { ExitCode, HabPodRoleError } from '../src/errors.ts';
import { mutateElectionFile, seeded } from './support/random.ts';
import { matrix } from './support/matrix.ts';

const file = 'election.toml';

/** The error `fn` fails with; every call is one bad input tried. */
function failure(fn: () => unknown): HabPodRoleError {
  matrix.inputs();
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(HabPodRoleError);
    return error as HabPodRoleError;
  }
  throw new Error('expected a failure');
}

describe('parseElectionFile', () => {
  it('reads the rendered template', () => {
    const text = '[election]\nleader = true\nfollower = false\nfinished = true\n\n[label]\nkey = "example.com/role"\nleader = "primary"\nfollower = "replica"\n';
    expect(parseElectionFile(text, file)).toEqual({
      election: { leader: true, follower: false, finished: true },
      label: { key: 'example.com/role', leader: 'primary', follower: 'replica' },
      group: { selector: undefined },
    });
  });

  it('reads an optional group selector', () => {
    expect(parseElectionFile('[election]\nleader = true\nfollower = false\nfinished = true\n[group]\nselector = "app=redis"\n', file).group).toEqual({ selector: 'app=redis' });
  });

  it('takes the [label] table as optional', () => {
    expect(parseElectionFile('[election]\nleader = false\nfollower = true\nfinished = true\n', file)).toEqual({
      election: { leader: false, follower: true, finished: true },
      label: { key: undefined, leader: undefined, follower: undefined },
      group: { selector: undefined },
    });
  });

  it('refuses a file without `finished` (exit 65), naming the template line to add: the Supervisor renders it during elections too', () => {
    const error = failure(() => parseElectionFile('[election]\nleader = false\nfollower = true\n', file));
    expect(error.exitCode).toBe(ExitCode.dataError);
    expect(error.exitCode).toBe(65);
    expect(error.message).toBe('election.toml: election.finished is missing; add the line "finished = {{svc.election_is_finished}}" to the [election] table of the template that renders it.');
  });

  it('names the template line of any missing [election] key', () => {
    expect(failure(() => parseElectionFile('[election]\nleader = true\nfinished = true\n', file)).message).toContain('add the line "follower = {{svc.me.follower}}"');
  });

  it('reports broken TOML with file, 1-based line and column', () => {
    // What Handlebars renders for an undefined value: nothing.
    const error = failure(() => parseElectionFile('[election]\nleader = \nfollower = true\n', file));
    expect(error.exitCode).toBe(ExitCode.dataError);
    expect(error.message).toMatch(/^election\.toml:2:10: invalid TOML: Unexpected character/);
    expect(error.message).not.toContain('\n');
  });

  it.each([
    ['[election]\nleader = true\nfollower = true\nfinished = true\n', /leader and election.follower are both true/],
    ['[election]\nleader = "true"\nfollower = false\nfinished = true\n', /election\.leader must be true or false, not the string "true"/],
    ['[election]\nleader = 1\nfollower = false\nfinished = true\n', /election\.leader must be true or false, not number 1/],
    ['[election]\nfollower = false\n', /election\.leader is missing/],
    ['[election]\nleader = true\nfollower = false\nleeder = true\n', /unknown key "election\.leeder"; the allowed keys in \[election\] are leader, follower, finished/],
    ['[election]\nleader = true\nfollower = false\nfinished = true\n[labels]\n', /unknown key "labels"; the allowed keys are election, label, group/],
    ['[election]\nleader = true\nfollower = false\nfinished = true\n[group]\nselectr = "app=redis"\n', /unknown key "group\.selectr"/],
    ['[label]\nkey = "role"\n', /the \[election\] table is missing/],
    ['election = true\n', /"election" must be a table/],
    ['[election]\nleader = true\nfollower = false\nfinished = []\n', /finished must be true or false, not an array/],
    ['[election]\nleader = true\nfollower = false\nfinished = true\n[label]\nkey = 3\n', /label\.key must be a string, not number 3/],
    ['[election]\nleader = true\nfollower = false\nfinished = true\n[label]\nleader = { a = 1 }\n', /label\.leader must be a string, not a table/],
    ['[election]\nleader = true\nleader = false\n', /^election\.toml:3:15: invalid TOML: Can't redefine existing key;/],
  ])('rejects %j', (text, why) => {
    const error = failure(() => parseElectionFile(text, file));
    expect(error.exitCode).toBe(ExitCode.dataError);
    expect(error.message).toMatch(why);
  });
});

describe('readElectionFile', () => {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'hab-pod-role-election-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, data: string | Buffer) => {
    const path = join(dir, name);
    writeFileSync(path, data);
    return path;
  };
  const rejects = (path: string, why: RegExp) => {
    const error = failure(() => readElectionFile(path));
    expect(error.exitCode).toBe(ExitCode.dataError);
    expect(error.message).toMatch(why);
  };

  it('reads a good file', () => {
    const path = write('good.toml', '[election]\nleader = true\nfollower = false\nfinished = true\n');
    expect(readElectionFile(path).election.leader).toBe(true);
  });
  it('reads a file of exactly the size limit', () => {
    const head = '[election]\nleader = true\nfollower = false\nfinished = true\n';
    const path = write('limit.toml', head + '#'.repeat(maxElectionFileBytes - head.length - 1) + '\n');
    expect(readElectionFile(path).election.leader).toBe(true);
  });
  it('refuses a file one byte over the limit, without reading the rest', () => {
    rejects(write('big.toml', '[election]\n' + '#'.repeat(maxElectionFileBytes) + '\n'), /larger than 64 KiB/);
    rejects(write('huge.toml', Buffer.alloc(64 * 1024 * 1024, 0x23)), /larger than 64 KiB/);
  });
  it('refuses a pipe instead of blocking on it', () => {
    const path = join(dir, 'fifo.toml');
    execFileSync('mkfifo', [path]);
    rejects(path, /not a regular file/);
  });
  it('names a missing file', () => rejects(join(dir, 'nope.toml'), /nope\.toml: the election file does not exist; check --config/));
  it('names a directory', () => {
    mkdirSync(join(dir, 'adir'));
    return rejects(join(dir, 'adir'), /is a directory/);
  });
  it('names an empty file', () => rejects(write('empty.toml', '\n  \n'), /is empty/));
  it('names a file that is not UTF-8', () => rejects(write('latin1.toml', Buffer.from([0x5b, 0xe9, 0x5d])), /not valid UTF-8/));
  it('names an unreadable file', () => {
    const path = write('secret.toml', '[election]\n');
    chmodSync(path, 0o000);
    if (process.getuid?.() !== 0) return rejects(path, /cannot be read by this user/);
    // Root reads anything through CAP_DAC_OVERRIDE: read it from a process without that capability, as a
    // service user would be.
    matrix.inputs();
    const source = new URL('../src/election.ts', import.meta.url).href;
    const script = `try { (await import(${JSON.stringify(source)})).readElectionFile(${JSON.stringify(path)}); } catch (e) { console.log(JSON.stringify({ code: e.exitCode, message: e.message })); }`;
    const out = execFileSync('setpriv', ['--bounding-set', '-dac_override,-dac_read_search', process.execPath, '--input-type=module', '-e', script], { encoding: 'utf8' });
    const { code, message } = JSON.parse(out) as { code: number; message: string };
    expect(code).toBe(ExitCode.dataError);
    expect(message).toMatch(/secret\.toml: the election file cannot be read by this user/);
  });
});

describe('parseElectionFile under random mutation', () => {
  const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
  it(`never crashes: every input parses or fails with one 65 sentence naming the file (seed ${seed})`, () => {
    const rng = seeded(seed);
    let rejected = 0;
    for (let i = 0; i < 3000; i++) {
      const text = mutateElectionFile(rng);
      try {
        const parsed = parseElectionFile(text, 'election.toml');
        expect(typeof parsed.election.leader).toBe('boolean');
      } catch (error) {
        if (!(error instanceof HabPodRoleError)) throw new Error(`input ${JSON.stringify(text)} threw ${String(error)}`);
        expect(error.exitCode).toBe(ExitCode.dataError);
        expect(error.message.startsWith('election.toml')).toBe(true);
        expect(error.message).not.toContain('\n');
        rejected++;
      }
    }
    matrix.inputs(rejected);
    // The mutations must mostly break the file, or the test would prove little.
    expect(rejected).toBeGreaterThan(1500);
  });
});

describe('roleFor: the label decision table', () => {
  const cases: [Election, 'leader' | 'follower' | undefined][] = [
    [{ finished: true, leader: true, follower: false }, 'leader'],
    [{ finished: true, leader: false, follower: true }, 'follower'],
    // standalone topology: both flags stay false
    [{ finished: true, leader: false, follower: false }, undefined],
    // an election running or without quorum keeps the previous flags: they must not route traffic
    [{ finished: false, leader: true, follower: false }, undefined],
    [{ finished: false, leader: false, follower: true }, undefined],
    [{ finished: false, leader: false, follower: false }, undefined],
  ];
  it.each(cases)('%o -> %s', (election, role) => {
    expect(roleFor(election)).toBe(role);
  });
});
