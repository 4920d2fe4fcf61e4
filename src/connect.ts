// Finds the credentials a run uses (a kubeconfig, or the pod's service account) and opens the one client on them.

import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { inCluster, type Credentials } from './credentials.ts';
import { configError } from './errors.ts';
import { KubeClient } from './kube.ts';
import type { Logger } from './log.ts';
import type { CommonOptions } from './settings.ts';

export interface CredentialInputs {
  kubeconfig?: string | undefined;
  env: Record<string, string | undefined>;
  serviceAccountDir: string;
  home?: string;
}

/**
 * An explicit kubeconfig (flag, then KUBECONFIG) wins; inside a pod the service account comes next,
 * so a stray ~/.kube/config in an image cannot redirect the tool to another cluster. The Kubernetes
 * client library is loaded only when a kubeconfig is used: a pod's hook never pays for it.
 */
export async function loadCredentials(inputs: CredentialInputs): Promise<Credentials> {
  const explicit = inputs.kubeconfig ?? inputs.env.KUBECONFIG;
  if (explicit !== undefined && explicit.trim() !== '') {
    const { fromKubeconfigFiles } = await import('./kubeconfig.ts');
    return fromKubeconfigFiles(explicit.split(':').filter((f) => f !== ''), inputs.kubeconfig !== undefined ? '--kubeconfig' : 'KUBECONFIG');
  }
  if (inputs.env.KUBERNETES_SERVICE_HOST) return inCluster(inputs.env, inputs.serviceAccountDir);
  const home = join(inputs.home ?? homedir(), '.kube', 'config');
  if (existsSync(home)) {
    const { fromKubeconfigFiles } = await import('./kubeconfig.ts');
    return fromKubeconfigFiles([home], '~/.kube/config');
  }
  throw configError('No Kubernetes credentials found: run inside a pod with a service-account token mounted, or pass --kubeconfig (or set KUBECONFIG).');
}

/** A client for one run: credentials found as the options say (and found again after a 401), the options' timeouts. */
export async function connect(options: Pick<CommonOptions, 'kubeconfig' | 'timeout' | 'requestTimeout'>, serviceAccountDir: string, log: Logger): Promise<{ client: KubeClient; credentials: Credentials }> {
  const inputs = { kubeconfig: options.kubeconfig, env: process.env, serviceAccountDir };
  const credentials = await loadCredentials(inputs);
  log.debug('credentials', { from: credentials.source, server: credentials.server });
  return { credentials, client: openClient(credentials, () => loadCredentials(inputs), options, log) };
}

/** A client on credentials already in hand: `timeout` bounds each operation, `requestTimeout` each request (seconds). */
export function openClient(credentials: Credentials, reload: () => Promise<Credentials>, options: { timeout: number; requestTimeout: number }, log: Logger): KubeClient {
  return new KubeClient({
    credentials,
    reloadCredentials: reload,
    timeoutSeconds: options.timeout,
    requestTimeoutMs: options.requestTimeout * 1000,
    log,
  });
}
