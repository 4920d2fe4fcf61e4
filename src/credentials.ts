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

/** Everything another process needs to use the same credentials. */
export interface CredentialsHandoff extends ResolvedCredentials {
  server: string;
  source: string;
  /** In a pod: the projected token, re-read when the kubelet rotates it (then `authorization` is unset). */
  tokenFile?: string | undefined;
}

export interface Credentials {
  server: string;
  /** Where they came from, for --verbose; never the secret itself. */
  source: string;
  /** Resolves them for the next request: a rotated token file is read again. */
  resolve(): Promise<ResolvedCredentials>;
  handoff(): Promise<CredentialsHandoff>;
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
  return credentialsFromHandoff({ server, source: `service account in ${dir}`, ca: readFileSync(join(dir, 'ca.crt'), 'utf8'), tokenFile: join(dir, 'token') });
}

/** Credentials from a handoff, without loading a Kubernetes client library: what the resident `run` wrapper uses. */
export function credentialsFromHandoff(handoff: CredentialsHandoff): Credentials {
  const readToken = handoff.tokenFile ? tokenFileReader(handoff.tokenFile) : undefined;
  const { server, source, tokenFile: _file, ...resolved } = handoff;
  return {
    server,
    source,
    resolve: async () => (readToken ? { ...resolved, authorization: `Bearer ${readToken()}` } : resolved),
    handoff: async () => handoff,
  };
}

/** Reads a token file again whenever it changed on disk (the kubelet swaps in a rotated token by renaming). */
function tokenFileReader(path: string): () => string {
  let cached: { stamp: string; token: string } | undefined;
  return () => {
    const s = statSync(path);
    const stamp = `${s.ino}:${s.mtimeMs}:${s.size}`;
    if (cached?.stamp !== stamp) cached = { stamp, token: readFileSync(path, 'utf8').trim() };
    return cached.token;
  };
}
