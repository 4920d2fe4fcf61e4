// `hab-pod-role run`, shaped like tini's main: label the pod, start the service, keep the label while it runs, wait, return its status.

import { setFlagsFromString } from 'node:v8';
import { failureMessage, userError } from './api-errors.ts';
import { applyLabel, applyNewest, describeOutcome, prepareApply, type ApplyRequest } from './apply.ts';
import { connect } from './connect.ts';
import { ExitCode, HabPodRoleError, usageError } from './errors.ts';
import { keepLabel } from './keeper.ts';
import type { KubeClient } from './kube.ts';
import type { LogFormat, Logger } from './log.ts';
import type { CommonOptions } from './settings.ts';
import { holdSignals, signalExitCode, startService } from './spawn.ts';

export interface RunOptions extends CommonOptions {
  watch: boolean;
  startOnLabelError: boolean;
  logFormat: LogFormat;
  verbose: boolean;
  '--'?: (string | number)[];
}

export async function run(options: RunOptions, log: Logger): Promise<number> {
  const command = (options['--'] ?? []).map(String);
  if (command.length === 0) {
    throw usageError('run needs the service command after --, as in: hab-pod-role run --config FILE -- redis-server /path/to/redis.config.');
  }
  if (options.dryRun !== undefined) throw usageError('--dry-run goes with apply; run always labels and starts the service.');
  // This process waits beside the service for months and does little work when it wakes. V8's optimising
  // compilers would still compile its hot paths after a few hundred elections, for ~13 MiB that never comes
  // back (measured); the interpreter and baseline code are fast enough for a label write now and then.
  setFlagsFromString('--no-opt');
  setFlagsFromString('--no-maglev');

  let client: KubeClient | undefined;
  // Closing the client ends the requests under way and the retries still to come: the labelling stops.
  const held = holdSignals(() => client?.close());
  let labelled: Labelled;
  try {
    labelled = await label(options, log, (opened) => {
      client = opened;
      if (held.received()) opened.close();
    }, () => held.received() !== undefined);
  } catch (error) {
    held.release();
    const signal = held.received();
    if (signal) return signalExitCode(signal);
    throw error;
  }
  const signal = held.received();
  if (signal) {
    held.release();
    client?.close();
    return signalExitCode(signal);
  }
  // No await in between: a signal is either held above or forwarded to the service from here on.
  const service = startService(command, log);
  held.release();
  const keeper = options.watch && client && labelled.request ? keepLabel(client, labelled.request, log) : undefined;
  if (!keeper) client?.close();
  const exitCode = await service.exited;
  keeper?.stop();
  client?.close();
  return exitCode;
}

/** What labelling leaves for the keeper; no request when the run could not even tell what to label (--start-on-label-error). */
interface Labelled {
  request?: ApplyRequest;
}

/**
 * Labels the pod exactly as `apply` does. With --start-on-label-error a failure is logged instead, after
 * removing this pod's leader value if that can be done; `opened` is given the client as soon as there is one.
 */
async function label(options: RunOptions, log: Logger, opened: (client: KubeClient) => void, interrupted: () => boolean): Promise<Labelled> {
  let request: ApplyRequest | undefined;
  let client: KubeClient | undefined;
  try {
    request = prepareApply(options, log);
    client = (await connect(options, request.serviceAccountDir, log)).client;
    opened(client);
    const applied = await applyNewest(client, request, log, client.deadline());
    request = applied.request;
    log.info(describeOutcome(applied.outcome), { requests: applied.outcome.requestsSent });
    return { request };
  } catch (caught) {
    const error = userError(caught);
    // A usage error means the hook itself is wrong: starting the service would hide that.
    if (interrupted() || !options.startOnLabelError || !(error instanceof HabPodRoleError) || error.exitCode === ExitCode.usage) throw error;
    log.error(error.message);
    log.warn('starting the service anyway (--start-on-label-error)');
    if (client && request) await dropLeaderValue(client, request, log);
    return request ? { request } : {};
  }
}

/**
 * Before a member starts without the label it should have, it must at least not keep a leader value from
 * an earlier life: a restarted container keeps its pod's labels, and a demoted leader would still get writes.
 */
async function dropLeaderValue(client: KubeClient, request: ApplyRequest, log: Logger): Promise<void> {
  if (request.value === request.scheme.leader) return;
  try {
    const outcome = await applyLabel(client, { ...request, value: null, dryRun: 'none' }, log, client.deadline(5));
    if (outcome.plan.from === request.scheme.leader) log.warn(describeOutcome(outcome));
  } catch (error) {
    log.error(`could not remove this pod's leader value either: ${failureMessage(error)}`);
  }
}
