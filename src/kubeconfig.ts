// Credentials from kubeconfig files, merged as kubectl merges them; client-node only for what needs its authenticators.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { load } from 'js-yaml';
import { tokenFileReader, type Credentials, type ResolvedCredentials } from './credentials.ts';
import { configError } from './errors.ts';

/** A kubeconfig entry's fields as the file spells them (`certificate-authority`, `client-key-data`, ...). */
export type Fields = Record<string, unknown>;

export interface Kubeconfig {
  currentContext: string | undefined;
  /** By name; relative file paths already made absolute against the file that named them. */
  clusters: Map<string, Fields>;
  users: Map<string, Fields>;
  contexts: Map<string, { cluster: string; user: string | undefined }>;
}

/** The user fields read here; any other (exec, auth-provider, ...) is client-node's to apply. */
const ownUserFields = new Set(['token', 'tokenFile', 'client-certificate', 'client-certificate-data', 'client-key', 'client-key-data']);
const pathFields = new Set(['certificate-authority', 'client-certificate', 'client-key', 'tokenFile']);
/**
 * User fields whose effect is more than a credential: they are refused, not passed over, because a request
 * sent without them would act as the underlying user (impersonation dropped) or as nobody (basic auth).
 */
const unsupportedUserFields = ['as', 'as-uid', 'as-groups', 'as-user-extra', 'username', 'password'];

export async function fromKubeconfigFiles(files: string[], source: string): Promise<Credentials> {
  const layers = files.map((file) => {
    if (!existsSync(file)) throw configError(`The kubeconfig ${file} (from ${source}) does not exist: fix the path or unset it.`);
    try {
      return parseKubeconfig(load(readFileSync(file, 'utf8')), dirname(file));
    } catch (error) {
      throw configError(`The kubeconfig ${file} cannot be read as a kubeconfig: ${firstLine(error)}.`, error);
    }
  });
  const { context, clusterName, cluster, user } = currentEndpoint(mergeKubeconfigs(layers), source);
  const where = `${source} (${files.join(':')}), context ${context}`;
  const server = String(cluster.server).replace(/\/$/, '');
  const unsupported = unsupportedUserFields.filter((field) => user?.[field] != null);
  if (unsupported.length > 0) {
    throw configError(`The kubeconfig user of context ${context} sets ${unsupported.join(', ')}: hab-pod-role sends neither impersonation nor basic authentication, and would act as another identity than the one meant; use a kubeconfig with the account's own credentials (a token, a client certificate or an exec plugin).`);
  }
  if (user && Object.entries(user).some(([field, value]) => value != null && !ownUserFields.has(field))) {
    // Loaded only here: the library is large, and most kubeconfigs need nothing of it.
    const { pluginResolver } = await import('./kubeconfig-plugins.ts');
    return { server, source: where, resolve: pluginResolver(clusterName, cluster, user) };
  }
  return { server, source: where, resolve: ownResolver(cluster, user ?? {}) };
}

/**
 * One file's clusters, users and contexts, checked as client-node checks them (a name each, a cluster a
 * server, a context a cluster), with relative paths made absolute against the file's directory as kubectl does.
 */
export function parseKubeconfig(doc: unknown, directory: string): Kubeconfig {
  if (doc == null || typeof doc !== 'object') throw new Error('it holds no YAML mapping');
  const d = doc as Fields;
  const list = (key: string) => (Array.isArray(d[key]) ? (d[key] as (Fields | null)[]) : []);
  const absolute = (fields: Fields) =>
    Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, pathFields.has(k) && typeof v === 'string' && v !== '' && !isAbsolute(v) ? join(directory, v) : v]));
  const named = <T>(key: string, read: (e: Fields, i: number) => T) => {
    const out = new Map<string, T>();
    list(key).forEach((e, i) => {
      if (!e?.name) throw new Error(`${key}[${i}].name is missing`);
      // Within one file as across files, the first entry of a name is the one kubectl uses.
      if (!out.has(String(e.name))) out.set(String(e.name), read(e, i));
    });
    return out;
  };
  return {
    currentContext: typeof d['current-context'] === 'string' && d['current-context'] !== '' ? d['current-context'] : undefined,
    clusters: named('clusters', (e, i) => {
      const cluster = e.cluster as Fields | undefined;
      if (!cluster) throw new Error(`clusters[${i}].cluster is missing`);
      if (!cluster.server) throw new Error(`clusters[${i}].cluster.server is missing`);
      return absolute(cluster);
    }),
    users: named('users', (e) => absolute((e.user as Fields | null) ?? {})),
    contexts: named('contexts', (e, i) => {
      const context = e.context as Fields | undefined;
      if (!context) throw new Error(`contexts[${i}].context is missing`);
      if (!context.cluster) throw new Error(`contexts[${i}].context.cluster is missing`);
      return { cluster: String(context.cluster), user: context.user ? String(context.user) : undefined };
    }),
  };
}

/** kubectl's rules for a KUBECONFIG list: the first file naming a current context decides it; the first entry of a name wins. */
export function mergeKubeconfigs(layers: Kubeconfig[]): Kubeconfig {
  const merged: Kubeconfig = { currentContext: undefined, clusters: new Map(), users: new Map(), contexts: new Map() };
  for (const layer of layers) {
    merged.currentContext ??= layer.currentContext;
    for (const key of ['clusters', 'users', 'contexts'] as const) {
      for (const [name, entry] of layer[key]) if (!merged[key].has(name)) (merged[key] as Map<string, unknown>).set(name, entry);
    }
  }
  return merged;
}

/** The current context's cluster and user, or the sentence that says what the kubeconfig lacks. */
export function currentEndpoint(config: Kubeconfig, source: string): { context: string; clusterName: string; cluster: Fields; user: Fields | undefined } {
  const context = config.currentContext;
  const entry = context === undefined ? undefined : config.contexts.get(context);
  if (context === undefined || !entry) {
    throw configError(`The kubeconfig from ${source} has no usable current context: run \`kubectl config use-context NAME\` or pass a kubeconfig that sets one.`);
  }
  const cluster = config.clusters.get(entry.cluster);
  if (!cluster) throw configError(`The current context "${context}" in the kubeconfig from ${source} names no cluster: fix the kubeconfig.`);
  if (cluster['insecure-skip-tls-verify'] === true) {
    // Writing leader labels to an unverified server would let anyone on the path decide where writes go.
    throw configError(`The kubeconfig cluster "${entry.cluster}" sets insecure-skip-tls-verify; hab-pod-role only talks to a verified API server, so give the cluster its certificate-authority.`);
  }
  if (typeof cluster['proxy-url'] === 'string' && cluster['proxy-url'] !== '') {
    // Going around a proxy the kubeconfig names would reach the server by another path than the one meant, or not at all.
    throw configError(`The kubeconfig cluster "${entry.cluster}" sets proxy-url; hab-pod-role connects to the API server directly, so use a kubeconfig without it from a machine that reaches the server.`);
  }
  return { context, clusterName: entry.cluster, cluster, user: entry.user === undefined ? undefined : config.users.get(entry.user) };
}

/**
 * A token, a token file (read again when it changes) or a client certificate, and the cluster's CA.
 * Files are read at each resolve, as client-node reads them, so a renewed certificate is used on reconnect.
 */
function ownResolver(cluster: Fields, user: Fields): () => Promise<ResolvedCredentials> {
  const readToken = typeof user.tokenFile === 'string' && user.tokenFile !== '' ? tokenFileReader(user.tokenFile) : undefined;
  return async () => {
    const token = typeof user.token === 'string' && user.token !== '' ? user.token : readToken?.();
    return {
      ca: fileOrData(cluster['certificate-authority'], cluster['certificate-authority-data']),
      cert: fileOrData(user['client-certificate'], user['client-certificate-data']),
      key: fileOrData(user['client-key'], user['client-key-data']),
      servername: typeof cluster['tls-server-name'] === 'string' && cluster['tls-server-name'] !== '' ? cluster['tls-server-name'] : undefined,
      authorization: token === undefined ? undefined : `Bearer ${token}`,
    };
  };
}

/** A PEM from its file, else from its base64 `-data` field, as client-node's bufferFromFileOrString takes it. */
function fileOrData(file: unknown, data: unknown): string | undefined {
  if (typeof file === 'string' && file !== '') return readFileSync(file, 'utf8');
  if (typeof data === 'string' && data !== '') return Buffer.from(data, 'base64').toString();
  return undefined;
}

function firstLine(error: unknown): string {
  return String((error as Error)?.message ?? error).split('\n')[0]!.replace(/\.$/, '');
}
