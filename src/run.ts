// `run`, first step, in a short-lived process: label the pod exactly as `apply` does, then hand the resident what it needs.

import { applyLabel, applyNewest, describeOutcome, prepareApply, type ApplyRequest } from './apply.ts';
import { connect } from './connect.ts';
import type { CredentialsHandoff } from './credentials.ts';
import { ExitCode, HabPodRoleError, usageError } from './errors.ts';
import type { KubeClient } from './kube.ts';
import type { LogFormat, Logger } from './log.ts';
import type { CommonOptions } from './settings.ts';

export interface RunOptions extends CommonOptions {
  watch: boolean;
  startOnLabelError: boolean;
  logFormat: LogFormat;
  verbose: boolean;
  '--'?: (string | number)[];
}

/** What the resident wrapper is told, as JSON on a pipe: never through the environment, never in a file. */
export interface RunHandoff {
  command: string[];
  watch: boolean;
  logFormat: LogFormat;
  verbose: boolean;
  timeout: number;
  requestTimeout: number;
  /** Absent when the run could not even tell what to label (only with --start-on-label-error). */
  target?: Pick<ApplyRequest, 'configPath' | 'overrides' | 'identity' | 'scheme' | 'value' | 'election' | 'group'>;
  credentials?: CredentialsHandoff;
}

export async function prepareRun(options: RunOptions, log: Logger): Promise<RunHandoff> {
  const command = (options['--'] ?? []).map(String);
  if (command.length === 0) {
    throw usageError('run needs the service command after --, as in: hab-pod-role run --config FILE -- redis-server /path/to/redis.config.');
  }
  if (options.dryRun !== undefined) throw usageError('--dry-run goes with apply; run always labels and starts the service.');

  let request: ApplyRequest | undefined;
  let credentials: CredentialsHandoff | undefined;
  let client: KubeClient | undefined;
  try {
    request = prepareApply(options, log);
    const connected = await connect(options, request.serviceAccountDir, log);
    client = connected.client;
    credentials = await connected.credentials.handoff();
    const applied = await applyNewest(client, request, log);
    request = applied.request;
    log.info(describeOutcome(applied.outcome), { requests: applied.outcome.requestsSent });
  } catch (error) {
    // A usage error means the hook itself is wrong: starting the service would hide that.
    if (!options.startOnLabelError || !(error instanceof HabPodRoleError) || error.exitCode === ExitCode.usage) throw error;
    log.error(error.message);
    log.warn('starting the service anyway (--start-on-label-error)');
    if (client && request) await dropLeaderValue(client, request, log);
  } finally {
    client?.close();
  }
  const { configPath, overrides, identity, scheme, value, election, group } = request ?? {};
  return {
    command,
    watch: options.watch,
    logFormat: options.logFormat,
    verbose: options.verbose,
    timeout: options.timeout,
    requestTimeout: options.requestTimeout,
    ...(request ? { target: { configPath: configPath!, overrides: overrides!, identity: identity!, scheme: scheme!, value: value!, election: election!, group: group! } } : {}),
    ...(credentials ? { credentials } : {}),
  };
}

/**
 * Before a member starts without the label it should have, it must at least not keep a leader value from
 * an earlier life: a restarted container keeps its pod's labels, and a demoted leader would still get writes.
 */
async function dropLeaderValue(client: KubeClient, request: ApplyRequest, log: Logger): Promise<void> {
  if (request.value === request.scheme.leader) return;
  try {
    client.renewDeadline(5);
    const outcome = await applyLabel(client, { ...request, value: null, dryRun: 'none' }, log);
    if (outcome.plan.from === request.scheme.leader) log.warn(describeOutcome(outcome));
  } catch (error) {
    log.error(`could not remove this pod's leader value either: ${(error as Error).message}`);
  }
}
