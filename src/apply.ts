// One pass of the data flow: election file -> role -> label plan -> at most two API calls.

import { loadCredentials } from './credentials.ts';
import { readElectionFile } from './election.ts';
import { ExitCode, HabPodRoleError } from './errors.ts';
import { resolvePodIdentity, type PodIdentity } from './identity.ts';
import { KubeClient } from './kube.ts';
import { ForeignLabelError, labelPatch, labelValueFor, planLabel, roleFor, type LabelPlan, type LabelScheme } from './labels.ts';
import type { Logger } from './log.ts';
import { chooseLabelScheme, validateOptions, type CommonOptions, type DryRun } from './settings.ts';

export interface ApplyOutcome {
  identity: PodIdentity;
  plan: LabelPlan;
  dryRun: DryRun;
  requestsSent: number;
}

export async function apply(options: CommonOptions, log: Logger, stdout: (text: string) => void): Promise<ApplyOutcome> {
  // Everything that can be checked without the network is checked first, so bad input changes nothing.
  const { configPath, dryRun, serviceAccountDir } = validateOptions(options);
  const file = await readElectionFile(configPath);
  const scheme = chooseLabelScheme(file.label, options, configPath);
  const to = labelValueFor(roleFor(file.election), scheme);
  const identity = resolvePodIdentity(options, serviceAccountDir);
  log.debug('pod identity', { pod: identity.name, from: identity.nameSource, namespace: identity.namespace, namespace_from: identity.namespaceSource });
  log.debug('election', { ...file.election, label: to === null ? `${scheme.key} removed` : `${scheme.key}=${to}` });

  if (dryRun === 'client') {
    // The patch does not depend on the pod's current labels, so nothing needs to be read to show it.
    const patch = labelPatch(scheme.key, to);
    stdout(`${JSON.stringify({ namespace: identity.namespace, pod: identity.name, patch })}\n`);
    return { identity, plan: { key: scheme.key, from: undefined, to, patch }, dryRun, requestsSent: 0 };
  }

  const credentialInputs = { kubeconfig: options.kubeconfig, env: process.env, serviceAccountDir };
  const credentials = loadCredentials(credentialInputs);
  log.debug('credentials', { from: credentials.source, server: credentials.server });
  const client = new KubeClient({
    credentials,
    reloadCredentials: () => loadCredentials(credentialInputs),
    deadline: Date.now() + options.timeout * 1000,
    timeoutSeconds: options.timeout,
    requestTimeoutMs: options.requestTimeout * 1000,
    log,
  });
  try {
    const pod = await client.getPod(identity.namespace, identity.name);
    const plan = planFor(pod.metadata?.labels, identity, scheme, to, options.force);
    // A server dry run always sends the patch: proving the server (and RBAC) would accept it is its purpose.
    const patch = plan.patch ?? (dryRun === 'server' ? labelPatch(scheme.key, to) : undefined);
    if (patch) {
      const patched = await client.patchPodLabels(identity.namespace, identity.name, patch, { dryRun: dryRun === 'server' });
      const now = patched.metadata?.labels?.[scheme.key];
      if ((now ?? null) !== to) {
        throw new HabPodRoleError(ExitCode.software, `The API server accepted the patch but the pod's label ${scheme.key} is ${now ?? 'absent'}, not ${to ?? 'absent'}; a mutating webhook may be rewriting it.`);
      }
    }
    return { identity, plan, dryRun, requestsSent: client.requestsSent };
  } finally {
    client.close();
  }
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
