// What a request needs to reach the API server, in a form that can be handed from one process to another.

import { readFileSync, statSync } from 'node:fs';

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
