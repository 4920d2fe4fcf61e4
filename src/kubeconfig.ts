// Credentials from kubeconfig files, through client-node's KubeConfig (exec plugins, OIDC, client certificates).

import { existsSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node/dist/config.js';
import type { Credentials, ResolvedCredentials } from './credentials.ts';
import { configError } from './errors.ts';

export function fromKubeconfigFiles(files: string[], source: string): Credentials {
  const kubeConfig = new KubeConfig();
  for (const [i, file] of files.entries()) {
    if (!existsSync(file)) throw configError(`The kubeconfig ${file} (from ${source}) does not exist: fix the path or unset it.`);
    const layer = new KubeConfig();
    try {
      layer.loadFromFile(file);
    } catch (error) {
      throw configError(`The kubeconfig ${file} cannot be read as a kubeconfig: ${firstLine(error)}.`, error);
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
function fromKubeConfig(kubeConfig: KubeConfig, server: string, source: string): Credentials {
  const resolve = async (): Promise<ResolvedCredentials> => {
    const opts: { ca?: Buffer | string; cert?: Buffer | string; key?: Buffer | string; servername?: string; headers?: Record<string, unknown> } = {};
    await kubeConfig.applyToHTTPSOptions(opts);
    const text = (v: Buffer | string | undefined) => (v === undefined ? undefined : v.toString());
    const header = opts.headers?.Authorization;
    return { ca: text(opts.ca), cert: text(opts.cert), key: text(opts.key), servername: opts.servername, authorization: header === undefined ? undefined : String(header) };
  };
  return { server, source, resolve };
}

function firstLine(error: unknown): string {
  return String((error as Error)?.message ?? error).split('\n')[0]!.replace(/\.$/, '');
}
