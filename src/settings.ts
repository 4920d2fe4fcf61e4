// Complete and validate: flags, environment and the election file become the settings of one run.

import { defaultServiceAccountDir } from './credentials.ts';
import type { LabelOverrides } from './election.ts';
import { ExitCode, HabPodRoleError, usageError } from './errors.ts';
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
export function chooseLabelScheme(fromFile: LabelOverrides, options: CommonOptions, file: string): LabelScheme {
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
