// Who am I: the pod name and namespace to label, and where each came from (told with --verbose).

import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { ExitCode, HabPodRoleError } from './errors.ts';
import { isDnsLabel, isDnsSubdomain } from './labels.ts';

export interface PodIdentity {
  name: string;
  namespace: string;
  nameSource: string;
  namespaceSource: string;
}

export interface IdentityInputs {
  flagPod?: string | undefined;
  flagNamespace?: string | undefined;
  env: Record<string, string | undefined>;
  /** Contents of the service account's namespace file, if there is one. */
  serviceAccountNamespace?: string | undefined;
  serviceAccountDir: string;
  hostname?: string | undefined;
}

/** Precedence: flags, then the downward API's variables, then what the container itself knows. */
export function choosePodIdentity(inputs: IdentityInputs): PodIdentity {
  const nonEmpty = (v: string | undefined) => (v === undefined || v.trim() === '' ? undefined : v.trim());
  const nameChoice =
    pick(nonEmpty(inputs.flagPod), '--pod') ??
    pick(nonEmpty(inputs.env.POD_NAME), 'POD_NAME') ??
    // A pod's hostname is its name unless spec.hostname overrides it; a wrong guess ends in a clear 404.
    pick(nonEmpty(inputs.env.HOSTNAME), 'HOSTNAME') ??
    pick(nonEmpty(inputs.hostname), 'the host name');
  const namespaceChoice =
    pick(nonEmpty(inputs.flagNamespace), '--namespace') ??
    pick(nonEmpty(inputs.env.POD_NAMESPACE), 'POD_NAMESPACE') ??
    // The kubelet writes this file without a trailing newline, but copies made by hand often have one.
    pick(nonEmpty(inputs.serviceAccountNamespace), join(inputs.serviceAccountDir, 'namespace'));
  if (!nameChoice) {
    throw new HabPodRoleError(ExitCode.config, 'Cannot tell which pod this is: set POD_NAME from the downward API (fieldRef metadata.name) or pass --pod.');
  }
  if (!namespaceChoice) {
    throw new HabPodRoleError(
      ExitCode.config,
      'Cannot tell which namespace this pod is in: set POD_NAMESPACE from the downward API (fieldRef metadata.namespace) or pass --namespace.',
    );
  }
  // Refused here, before any request: a host name like "Build_Box" means this is not a pod at all.
  if (!isDnsSubdomain(nameChoice.value)) {
    throw new HabPodRoleError(ExitCode.config, `"${nameChoice.value}" (from ${nameChoice.source}) is not a valid pod name, so this does not look like a pod: set POD_NAME from the downward API (fieldRef metadata.name) or pass --pod.`);
  }
  if (!isDnsLabel(namespaceChoice.value)) {
    throw new HabPodRoleError(ExitCode.config, `"${namespaceChoice.value}" (from ${namespaceChoice.source}) is not a valid namespace name: set POD_NAMESPACE from the downward API (fieldRef metadata.namespace) or pass --namespace.`);
  }
  return { name: nameChoice.value, nameSource: nameChoice.source, namespace: namespaceChoice.value, namespaceSource: namespaceChoice.source };
}

function pick(value: string | undefined, source: string) {
  return value === undefined ? undefined : { value, source };
}

/** Gathers the inputs from this process and container, then chooses. */
export function resolvePodIdentity(flags: { pod?: string | undefined; namespace?: string | undefined }, serviceAccountDir: string): PodIdentity {
  let serviceAccountNamespace: string | undefined;
  try {
    serviceAccountNamespace = readFileSync(join(serviceAccountDir, 'namespace'), 'utf8');
  } catch {
    serviceAccountNamespace = undefined; // not in a pod, or the token is not mounted: other sources decide
  }
  return choosePodIdentity({
    flagPod: flags.pod,
    flagNamespace: flags.namespace,
    env: process.env,
    serviceAccountNamespace,
    serviceAccountDir,
    hostname: hostname(),
  });
}
