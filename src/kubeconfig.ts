// Finds the credentials to use (a kubeconfig, or the pod's service account) through client-node's KubeConfig.

import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node/dist/config.js';
import type { Credentials, CredentialsHandoff, ResolvedCredentials } from './credentials.ts';
import { ExitCode, HabPodRoleError } from './errors.ts';

export interface CredentialInputs {
  kubeconfig?: string | undefined;
  env: Record<string, string | undefined>;
  serviceAccountDir: string;
  home?: string;
}

const configError = (message: string) => new HabPodRoleError(ExitCode.config, message);

/**
 * An explicit kubeconfig (flag, then KUBECONFIG) wins; inside a pod the service account comes next,
 * so a stray ~/.kube/config in an image cannot redirect the tool to another cluster.
 */
export function loadCredentials(inputs: CredentialInputs): Credentials {
  const explicit = inputs.kubeconfig ?? inputs.env.KUBECONFIG;
  if (explicit !== undefined && explicit.trim() !== '') {
    const files = explicit.split(':').filter((f) => f !== '');
    return fromKubeconfigFiles(files, inputs.kubeconfig !== undefined ? '--kubeconfig' : 'KUBECONFIG');
  }
  if (inputs.env.KUBERNETES_SERVICE_HOST) return inCluster(inputs.env, inputs.serviceAccountDir);
  const home = join(inputs.home ?? homedir(), '.kube', 'config');
  if (existsSync(home)) return fromKubeconfigFiles([home], '~/.kube/config');
  throw configError(
    'No Kubernetes credentials found: run inside a pod with a service-account token mounted, or pass --kubeconfig (or set KUBECONFIG).',
  );
}

function inCluster(env: Record<string, string | undefined>, dir: string): Credentials {
  const host = env.KUBERNETES_SERVICE_HOST!;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!port) throw configError('KUBERNETES_SERVICE_HOST is set but KUBERNETES_SERVICE_PORT is not; both come from the pod environment, so set both or pass --kubeconfig.');
  for (const file of ['token', 'ca.crt']) {
    if (!existsSync(join(dir, file))) {
      throw configError(
        `No service-account ${file} at ${join(dir, file)}: mount the token (automountServiceAccountToken: true) or point --service-account-dir at it.`,
      );
    }
  }
  const kubeConfig = new KubeConfig();
  const server = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
  // The same cluster and user client-node's loadFromCluster builds, with the directory made configurable:
  // the tokenFile provider re-reads the token once the copy it holds is a minute old, so rotation works.
  kubeConfig.loadFromClusterAndUser(
    { name: 'inCluster', server, caFile: join(dir, 'ca.crt'), skipTLSVerify: false },
    { name: 'inClusterUser', authProvider: { name: 'tokenFile', config: { tokenFile: join(dir, 'token') } } },
  );
  return fromKubeConfig(kubeConfig, server, `service account in ${dir}`, join(dir, 'token'));
}

function fromKubeconfigFiles(files: string[], source: string): Credentials {
  const kubeConfig = new KubeConfig();
  for (const [i, file] of files.entries()) {
    if (!existsSync(file)) throw configError(`The kubeconfig ${file} (from ${source}) does not exist: fix the path or unset it.`);
    const layer = new KubeConfig();
    try {
      layer.loadFromFile(file);
    } catch (error) {
      throw new HabPodRoleError(ExitCode.config, `The kubeconfig ${file} cannot be read as a kubeconfig: ${firstLine(error)}.`, { cause: error });
    }
    // Like kubectl, the first file that names a current context decides it.
    if (i === 0) kubeConfig.mergeConfig(layer);
    else kubeConfig.mergeConfig(layer, Boolean(kubeConfig.currentContext));
  }
  const context = kubeConfig.currentContext;
  if (!context || !kubeConfig.getContextObject(context)) {
    throw configError(`The kubeconfig from ${source} has no usable current context: run \`kubectl config use-context NAME\` or pass a kubeconfig that sets one.`);
  }
  const cluster = kubeConfig.getCurrentCluster();
  if (!cluster) throw configError(`The current context "${context}" in the kubeconfig from ${source} names no cluster: fix the kubeconfig.`);
  if (cluster.skipTLSVerify) {
    // Writing leader labels to an unverified server would let anyone on the path decide where writes go.
    throw configError(`The kubeconfig cluster "${cluster.name}" sets insecure-skip-tls-verify; hab-pod-role only talks to a verified API server, so give the cluster its certificate-authority.`);
  }
  return fromKubeConfig(kubeConfig, cluster.server, `${source} (${files.join(':')}), context ${context}`);
}

/** client-node fills in the CA, client certificate and Authorization header (running exec plugins, re-reading token files). */
function fromKubeConfig(kubeConfig: KubeConfig, server: string, source: string, tokenFile?: string): Credentials {
  const resolve = async (): Promise<ResolvedCredentials> => {
    const opts: { ca?: Buffer | string; cert?: Buffer | string; key?: Buffer | string; servername?: string; headers?: Record<string, unknown> } = {};
    await kubeConfig.applyToHTTPSOptions(opts);
    const text = (v: Buffer | string | undefined) => (v === undefined ? undefined : v.toString());
    const header = opts.headers?.Authorization;
    return { ca: text(opts.ca), cert: text(opts.cert), key: text(opts.key), servername: opts.servername, authorization: header === undefined ? undefined : String(header) };
  };
  return {
    server,
    source,
    resolve,
    handoff: async (): Promise<CredentialsHandoff> => {
      const { authorization, ...tls } = await resolve();
      // A token file is handed over by path, so the other process reads rotated tokens itself.
      return { server, source, ...tls, ...(tokenFile ? { tokenFile } : { authorization }) };
    },
  };
}

function firstLine(error: unknown): string {
  return String((error as Error)?.message ?? error).split('\n')[0]!.replace(/\.$/, '');
}
