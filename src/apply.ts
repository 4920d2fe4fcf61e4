// One pass of the data flow: election file -> role -> label plan -> at most two API calls.

import type { Credentials } from './credentials.ts';
import { readElectionFile, type Election } from './election.ts';
import { ExitCode, HabPodRoleError } from './errors.ts';
import { resolvePodIdentity, type PodIdentity } from './identity.ts';
import { KubeClient } from './kube.ts';
import { ForeignLabelError, labelPatch, labelValueFor, planLabel, roleFor, type LabelPlan, type LabelScheme } from './labels.ts';
import type { Logger } from './log.ts';
import { chooseLabelScheme, validateOptions, type CommonOptions, type DryRun } from './settings.ts';

/** Everything a run decided before touching the network. */
export interface ApplyRequest {
  configPath: string;
  election: Election;
  scheme: LabelScheme;
  /** The label value the election asks for; null removes the key. */
  value: string | null;
  identity: PodIdentity;
  dryRun: DryRun;
  force: boolean;
  serviceAccountDir: string;
}

export interface ApplyOutcome {
  identity: PodIdentity;
  plan: LabelPlan;
  dryRun: DryRun;
  requestsSent: number;
}

/** Checks everything that can be checked without the network, so bad input changes nothing. */
export async function prepareApply(options: CommonOptions, log: Logger): Promise<ApplyRequest> {
  const { configPath, dryRun, serviceAccountDir } = validateOptions(options);
  const file = await readElectionFile(configPath);
  const scheme = chooseLabelScheme(file.label, options, configPath);
  const value = labelValueFor(roleFor(file.election), scheme);
  const identity = resolvePodIdentity(options, serviceAccountDir);
  log.debug('pod identity', { pod: identity.name, from: identity.nameSource, namespace: identity.namespace, namespace_from: identity.namespaceSource });
  log.debug('election', { ...file.election, label: value === null ? `${scheme.key} removed` : `${scheme.key}=${value}` });
  return { configPath, election: file.election, scheme, value, identity, dryRun, force: options.force, serviceAccountDir };
}

/** What a client dry run prints: the patch does not depend on the pod's labels, so nothing is read to show it. */
export function clientDryRun(request: ApplyRequest): { text: string; outcome: ApplyOutcome } {
  const patch = labelPatch(request.scheme.key, request.value);
  return {
    text: `${JSON.stringify({ namespace: request.identity.namespace, pod: request.identity.name, patch })}\n`,
    outcome: { identity: request.identity, plan: { key: request.scheme.key, from: undefined, to: request.value, patch }, dryRun: 'client', requestsSent: 0 },
  };
}

/** GET the pod, and PATCH its role label only if it differs (always, for a server dry run). */
export async function applyLabel(client: KubeClient, request: Pick<ApplyRequest, 'identity' | 'scheme' | 'value' | 'force' | 'dryRun'>): Promise<ApplyOutcome> {
  const { identity, scheme, value: to, dryRun } = request;
  const sentBefore = client.requestsSent;
  const pod = await client.getPod(identity.namespace, identity.name);
  const plan = planFor(pod.metadata?.labels, identity, scheme, to, request.force);
  // A server dry run always sends the patch: proving the server (and RBAC) would accept it is its purpose.
  const patch = plan.patch ?? (dryRun === 'server' ? labelPatch(scheme.key, to) : undefined);
  if (patch) {
    const patched = await client.patchPodLabels(identity.namespace, identity.name, patch, { dryRun: dryRun === 'server' });
    const now = patched.metadata?.labels?.[scheme.key];
    if ((now ?? null) !== to) {
      throw new HabPodRoleError(ExitCode.software, `The API server accepted the patch but the pod's label ${scheme.key} is ${now ?? 'absent'}, not ${to ?? 'absent'}; a mutating webhook may be rewriting it.`);
    }
  }
  return { identity, plan, dryRun, requestsSent: client.requestsSent - sentBefore };
}

/** A client for one run, with the deadline and timeouts the options give. */
export function connect(credentials: Credentials, reload: () => Credentials, options: Pick<CommonOptions, 'timeout' | 'requestTimeout'>, log: Logger): KubeClient {
  return new KubeClient({
    credentials,
    reloadCredentials: reload,
    timeoutSeconds: options.timeout,
    requestTimeoutMs: options.requestTimeout * 1000,
    log,
  });
}

function planFor(labels: Record<string, string> | undefined, identity: PodIdentity, scheme: LabelScheme, to: string | null, force: boolean): LabelPlan {
  try {
    return planLabel(labels, scheme, to, force);
  } catch (error) {
    if (!(error instanceof ForeignLabelError)) throw error;
    throw new HabPodRoleError(
      ExitCode.dataError,
      `Pod ${identity.namespace}/${identity.name} already has ${error.key}=${error.value}, which is neither "${scheme.leader}" nor "${scheme.follower}", so the key belongs to something else; choose another label key, or pass --force to overwrite it.`,
    );
  }
}

/** The line a successful run leaves on stderr. */
export function describeOutcome({ identity, plan, dryRun }: ApplyOutcome): string {
  const pod = `pod ${identity.namespace}/${identity.name}`;
  const was = plan.from === undefined ? 'had none' : `was ${plan.from}`;
  const target = plan.to === null ? `no ${plan.key} label` : `${plan.key}=${plan.to}`;
  const suffix = dryRun === 'server' ? ' (server dry run, nothing persisted)' : '';
  if (dryRun === 'client') return `${pod}: would set ${target} (client dry run, nothing sent)`;
  if (!plan.patch) return `${pod}: already ${target}${suffix}`;
  return `${pod}: ${plan.to === null ? `removed ${plan.key} (${was})` : `${target} (${was})`}${suffix}`;
}
