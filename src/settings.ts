// Complete and validate: flags, environment and the election file become the settings of one run.

import { defaultServiceAccountDir } from './credentials.ts';
import { roleFor, type Election, type ElectionFile, type LabelOverrides, type Role } from './election.ts';
import { ExitCode, HabPodRoleError, usageError } from './errors.ts';
import type { GroupSpec } from './group.ts';
import { defaultLabelScheme, labelKeyProblem, labelSelectorProblem, labelValueProblem, type LabelScheme } from './labels.ts';

export type DryRun = 'none' | 'client' | 'server';

/** Options as the command line parser hands them over (environment variables already folded in). */
export interface CommonOptions {
  config?: string | undefined;
  labelKey?: string | undefined;
  leaderValue?: string | undefined;
  followerValue?: string | undefined;
  groupSelector?: string | undefined;
  pod?: string | undefined;
  namespace?: string | undefined;
  kubeconfig?: string | undefined;
  serviceAccountDir?: string | undefined;
  timeout: number;
  requestTimeout: number;
  dryRun?: string | undefined;
  force: boolean;
}

export const defaults = {
  timeoutSeconds: 30,
  requestTimeoutSeconds: 10,
  serviceAccountDir: defaultServiceAccountDir,
};

/** Checks what needs no file and no network. */
export function validateOptions(options: CommonOptions): { configPath: string; dryRun: DryRun; serviceAccountDir: string } {
  if (options.config === undefined || options.config.trim() === '') {
    throw usageError('No election file given: pass --config PATH (in a hook, {{pkg.svc_config_path}}/election.toml).');
  }
  for (const [flag, value] of [['--timeout', options.timeout], ['--request-timeout', options.requestTimeout]] as const) {
    if (!Number.isFinite(value) || value <= 0) throw usageError(`${flag} must be a positive number of seconds, not "${value}".`);
  }
  checkGroupSelectorOption(options);
  return { configPath: options.config, dryRun: parseDryRun(options.dryRun), serviceAccountDir: options.serviceAccountDir ?? defaults.serviceAccountDir };
}

/** A number of seconds as typed on the command line or in the environment; a usage error quotes what was typed. */
export function parseSeconds(flag: string, typed: unknown): number {
  const value = typeof typed === 'number' ? typed : typeof typed === 'string' && typed.trim() !== '' ? Number(typed) : Number.NaN;
  if (!Number.isFinite(value) || value <= 0) throw usageError(`${flag} must be a positive number of seconds, not "${String(typed)}".`);
  return value;
}

/** A bad --group-selector (or HAB_POD_ROLE_GROUP_SELECTOR) is a usage error, found before any request. */
export function checkGroupSelectorOption(options: Pick<CommonOptions, 'groupSelector'>): void {
  const problem = options.groupSelector ? labelSelectorProblem(options.groupSelector) : undefined;
  if (problem) throw usageError(`--group-selector: ${problem}.`);
}

export function parseDryRun(value: string | undefined): DryRun {
  if (value === undefined || value === 'none' || value === 'false') return 'none';
  if (value === '' || value === 'client' || value === 'true') return 'client';
  if (value === 'server') return 'server';
  throw usageError(`--dry-run takes "client" or "server", not "${value}".`);
}

const schemeFields = [
  { field: 'key', flag: '--label-key', option: 'labelKey', check: labelKeyProblem },
  { field: 'leader', flag: '--leader-value', option: 'leaderValue', check: labelValueProblem },
  { field: 'follower', flag: '--follower-value', option: 'followerValue', check: labelValueProblem },
] as const;

/**
 * Defaults < the file's [label] table < environment < flags. A bad value is a usage error (64) when
 * a flag or variable gave it, a data error (65) when the file did, so the message points at the culprit.
 */
export function chooseLabelScheme(fromFile: LabelOverrides, options: Overrides, file: string): LabelScheme {
  const scheme = { ...defaultLabelScheme };
  for (const { field, flag, option, check } of schemeFields) {
    const flagValue = options[option];
    const value = flagValue ?? fromFile[field] ?? defaultLabelScheme[field];
    const problem = check(value);
    if (problem) {
      throw flagValue !== undefined
        ? usageError(`${flag}: ${problem}.`)
        : new HabPodRoleError(ExitCode.dataError, `${file}: label.${field}: ${problem}.`);
    }
    scheme[field] = value;
  }
  if (scheme.leader === scheme.follower) {
    const fromFlags = options.leaderValue !== undefined || options.followerValue !== undefined;
    const message = `the leader and follower values are both "${scheme.leader}", so Services could not tell them apart; make them differ.`;
    throw fromFlags ? usageError(`--leader-value/--follower-value: ${message}`) : new HabPodRoleError(ExitCode.dataError, `${file}: ${message}`);
  }
  return scheme;
}

/** What flags and environment say about the label and the group: taken once, when a run is prepared. */
export type Overrides = Pick<CommonOptions, 'labelKey' | 'leaderValue' | 'followerValue' | 'groupSelector'>;

export function overridesOf(options: Overrides): Overrides {
  const { labelKey, leaderValue, followerValue, groupSelector } = options;
  return { labelKey, leaderValue, followerValue, groupSelector };
}

/** What the pod should carry: the election, how the role is written, the value it asks for (null: no key), the group. */
export interface DesiredLabel {
  election: Election;
  scheme: LabelScheme;
  value: string | null;
  group: GroupSpec;
}

/**
 * The one step from a parsed election file to the desired label, used alike by `apply`, the resident
 * keeper and `status`: the file's [label] and [group] under the overrides, the value its election asks for.
 */
export function desiredLabel(file: ElectionFile, overrides: Overrides, source: string): DesiredLabel {
  const scheme = chooseLabelScheme(file.label, overrides, source);
  return { election: file.election, scheme, value: labelValueFor(roleFor(file.election), scheme), group: { selector: overrides.groupSelector ?? file.group.selector } };
}

/** The label value for a role, or null when the key must be absent. */
export function labelValueFor(role: Role | undefined, scheme: LabelScheme): string | null {
  return role === undefined ? null : scheme[role];
}
