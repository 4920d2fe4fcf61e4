// Complete and validate: flag, environment and file precedence, dry-run and timeout values, and the desired label.

import { describe, expect, it } from 'vitest';
import { ExitCode, HabPodRoleError } from '../src/errors.ts';
import { parseElectionFile } from '../src/election.ts';
import { chooseLabelScheme, desiredLabel, labelValueFor, overridesOf, parseDryRun, validateOptions, type CommonOptions } from '../src/settings.ts';
import { matrix } from './support/matrix.ts';

const base: CommonOptions = { config: 'e.toml', timeout: 30, requestTimeout: 10, force: false };

/** The exit code `fn` fails with (0 if it does not); every call is one bad input tried. */
function codeOf(fn: () => unknown): number {
  matrix.inputs();
  try {
    fn();
  } catch (error) {
    if (error instanceof HabPodRoleError) return error.exitCode;
    throw error;
  }
  return 0;
}

describe('chooseLabelScheme: defaults < file < flags and environment', () => {
  it('uses the defaults when nothing is said', () => {
    expect(chooseLabelScheme({}, base, 'e.toml')).toEqual({ key: 'role', leader: 'leader', follower: 'follower' });
  });
  it('takes the file over the defaults, and flags over the file', () => {
    const file = { key: 'example.com/role', leader: 'primary', follower: 'replica' };
    expect(chooseLabelScheme(file, base, 'e.toml')).toEqual(file);
    expect(chooseLabelScheme(file, { ...base, labelKey: 'db-role', followerValue: 'standby' }, 'e.toml')).toEqual({
      key: 'db-role', leader: 'primary', follower: 'standby',
    });
  });
  it('blames a bad flag with 64 and a bad file entry with 65', () => {
    expect(codeOf(() => chooseLabelScheme({}, { ...base, labelKey: 'kubernetes.io/role' }, 'e.toml'))).toBe(ExitCode.usage);
    expect(codeOf(() => chooseLabelScheme({ key: 'kubernetes.io/role' }, base, 'e.toml'))).toBe(ExitCode.dataError);
    expect(codeOf(() => chooseLabelScheme({ leader: 'x'.repeat(64) }, base, 'e.toml'))).toBe(ExitCode.dataError);
    expect(codeOf(() => chooseLabelScheme({}, { ...base, followerValue: 'leader' }, 'e.toml'))).toBe(ExitCode.usage);
    expect(codeOf(() => chooseLabelScheme({ follower: 'leader' }, base, 'e.toml'))).toBe(ExitCode.dataError);
  });
  it('says which input is wrong', () => {
    expect(() => chooseLabelScheme({ key: 'a b' }, base, 'e.toml')).toThrow(/^e\.toml: label\.key: label key "a b" must be/);
    expect(() => chooseLabelScheme({}, { ...base, leaderValue: '' }, 'e.toml')).toThrow(/^--leader-value: a role label value must not be empty/);
  });
});

describe('validateOptions', () => {
  it('requires an election file', () => {
    expect(codeOf(() => validateOptions({ ...base, config: undefined }))).toBe(ExitCode.usage);
  });
  it('rejects a timeout that is not a positive number', () => {
    expect(() => validateOptions({ ...base, timeout: Number.NaN })).toThrow(/--timeout must be a positive number of seconds/);
    expect(() => validateOptions({ ...base, requestTimeout: 0 })).toThrow(/--request-timeout/);
  });
  it('defaults the service-account directory', () => {
    expect(validateOptions(base).serviceAccountDir).toBe('/var/run/secrets/kubernetes.io/serviceaccount');
  });
});

describe('parseDryRun', () => {
  it.each([[undefined, 'none'], ['', 'client'], ['client', 'client'], ['server', 'server'], ['none', 'none']] as const)('%j -> %s', (v, want) => {
    expect(parseDryRun(v)).toBe(want);
  });
  it('rejects anything else', () => {
    expect(codeOf(() => parseDryRun('serverside'))).toBe(ExitCode.usage);
  });
});

describe('desiredLabel: one step from a parsed election file to the label', () => {
  it('maps roles through the label scheme, and no role to removal', () => {
    const scheme = { key: 'x/role', leader: 'primary', follower: 'replica' };
    expect(labelValueFor('leader', scheme)).toBe('primary');
    expect(labelValueFor('follower', scheme)).toBe('replica');
    expect(labelValueFor(undefined, scheme)).toBeNull();
  });

  it('applies the overrides to the file\'s [label] and [group], and the election to the value', () => {
    const file = parseElectionFile('[election]\nleader = true\nfollower = false\nfinished = true\n[label]\nkey = "db-role"\nleader = "primary"\n[group]\nselector = "app=redis"\n', 'e.toml');
    expect(desiredLabel(file, {}, 'e.toml')).toEqual({
      election: { leader: true, follower: false, finished: true },
      scheme: { key: 'db-role', leader: 'primary', follower: 'follower' },
      value: 'primary',
      group: { selector: 'app=redis' },
    });
    const flags = overridesOf({ ...base, labelKey: 'role', leaderValue: 'main', groupSelector: 'tier=db' });
    expect(flags).toEqual({ labelKey: 'role', leaderValue: 'main', followerValue: undefined, groupSelector: 'tier=db' });
    expect(desiredLabel(file, flags, 'e.toml')).toMatchObject({ scheme: { key: 'role', leader: 'main', follower: 'follower' }, value: 'main', group: { selector: 'tier=db' } });
  });

  it('asks for no key while an election runs', () => {
    const file = parseElectionFile('[election]\nleader = true\nfollower = false\nfinished = false\n', 'e.toml');
    expect(desiredLabel(file, {}, 'e.toml').value).toBeNull();
  });
});
