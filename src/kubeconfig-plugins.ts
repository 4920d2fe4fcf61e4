// What a kubeconfig user needs client-node's authenticators for: exec plugins and auth-provider (OIDC, ...).

import { KubeConfig } from '@kubernetes/client-node/dist/config.js';
import { newClusters, newUsers } from '@kubernetes/client-node/dist/config_types.js';
import type { ResolvedCredentials } from './credentials.ts';

type Fields = Record<string, unknown>;

/**
 * Resolves the credentials of one cluster and user (their kubeconfig fields, paths already absolute) through
 * client-node, which runs an exec plugin again when its token expires and refreshes an OIDC token.
 */
export function pluginResolver(clusterName: string, cluster: Fields, user: Fields): () => Promise<ResolvedCredentials> {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromClusterAndUser(newClusters([{ name: clusterName, cluster }])[0]!, newUsers([{ name: 'user', user }])[0]!);
  return async () => {
    const opts: { ca?: Buffer | string; cert?: Buffer | string; key?: Buffer | string; servername?: string; headers?: Record<string, unknown> } = {};
    await kubeConfig.applyToHTTPSOptions(opts);
    const text = (v: Buffer | string | undefined) => (v === undefined ? undefined : v.toString());
    const header = opts.headers?.Authorization;
    return { ca: text(opts.ca), cert: text(opts.cert), key: text(opts.key), servername: opts.servername, authorization: header === undefined ? undefined : String(header) };
  };
}
