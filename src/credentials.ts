// What a request needs to reach the API server, and a pod's own: its service account's token and CA.

import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { configError } from './errors.ts';

export const defaultServiceAccountDir = '/var/run/secrets/kubernetes.io/serviceaccount';

/** TLS material and the Authorization header for one request. */
export interface ResolvedCredentials {
  ca?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
  servername?: string | undefined;
  authorization?: string | undefined;
}

export interface Credentials {
  server: string;
  /** Where they came from, for --verbose; never the secret itself. */
  source: string;
  /** Resolves them for the next request: a rotated token file is read again, an exec plugin runs again when its token expires. */
  resolve(): Promise<ResolvedCredentials>;
}

/**
 * A pod's own credentials, read as client-node's loadFromCluster reads them (the same files, https
 * unless the port is 80, 8080 or 8001, brackets around an IPv6 host), and refused over plain http.
 */
export function inCluster(env: Record<string, string | undefined>, dir: string): Credentials {
  const host = env.KUBERNETES_SERVICE_HOST!;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!port) throw configError('KUBERNETES_SERVICE_HOST is set but KUBERNETES_SERVICE_PORT is not; both come from the pod environment, so set both or pass --kubeconfig.');
  for (const file of ['token', 'ca.crt']) {
    if (!existsSync(join(dir, file))) {
      throw configError(`No service-account ${file} at ${join(dir, file)}: mount the token (automountServiceAccountToken: true) or point --service-account-dir at it.`);
    }
  }
  const scheme = ['80', '8080', '8001'].includes(port) ? 'http' : 'https';
  const server = `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const ca = readFileSync(join(dir, 'ca.crt'), 'utf8');
  const readToken = tokenFileReader(join(dir, 'token'));
  return { server, source: `service account in ${dir}`, resolve: async () => ({ ca, authorization: `Bearer ${readToken()}` }) };
}

/** Reads a token file again whenever it changed on disk (the kubelet swaps in a rotated token by renaming). */
export function tokenFileReader(path: string): () => string {
  let cached: { stamp: string; token: string } | undefined;
  return () => {
    const s = statSync(path);
    const stamp = `${s.ino}:${s.mtimeMs}:${s.size}`;
    if (cached?.stamp !== stamp) cached = { stamp, token: readFileSync(path, 'utf8').trim() };
    return cached.token;
  };
}
