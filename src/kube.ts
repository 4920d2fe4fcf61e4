// The one module that talks to Kubernetes: reads and patches pods, with timeouts, retries and clear failures.

import https from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import type { Credentials } from './credentials.ts';
import { ExitCode, HabPodRoleError } from './errors.ts';
import type { Logger } from './log.ts';
import type { MetadataPatch, Pod } from './pod.ts';
import { retryAfterMs, StartupGrace, withRetries, type RetryVerdict } from './retry.ts';

export const fieldManager = 'hab-pod-role';

export interface KubeClientOptions {
  credentials: Credentials;
  /** Loads the credentials afresh: a 401 is retried once with a re-read token before it is reported. */
  reloadCredentials: () => Promise<Credentials>;
  /** --timeout: how long one operation (its requests and retries together) may take. */
  timeoutSeconds: number;
  requestTimeoutMs: number;
  log: Logger;
}

/** What the RBAC rule for a request looks like, so a 403 can name the rule that is missing. */
interface Rule {
  verb: string;
  resource: string;
  namespace: string;
  name?: string;
}

/** A non-2xx answer from the API server, with the Status fields that explain it. */
class ApiStatusError extends Error {
  readonly status: number;
  readonly reason: string;
  readonly serverMessage: string;
  readonly retryAfter: string | undefined;

  constructor(status: number, reason: string, serverMessage: string, retryAfter: string | undefined) {
    super(`${status} ${reason}: ${serverMessage}`);
    this.status = status;
    this.reason = reason;
    this.serverMessage = serverMessage;
    this.retryAfter = retryAfter;
  }
}

// Errors from the socket layer that say nothing about the request itself: trying again may work.
const transientNetworkCodes = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN',
  'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE', 'UND_ERR_SOCKET',
]);
const retryableStatuses = new Set([429, 500, 502, 503, 504]);
/** How long 401 and 403 are taken for a restarting server's start-up; its caches fill in a few seconds. */
const startupGraceMs = 10_000;
const maxResponseBytes = 16 * 1024 * 1024;

export class KubeClient {
  /** Requests sent, retries included: the figure the benchmarks and --verbose report. */
  requestsSent = 0;
  private credentials: Credentials;
  private reloadDue = false;
  private closed = false;
  private readonly closing = new AbortController();
  /** After an outage, a refusal may be the server still starting (see `StartupGrace`). */
  private readonly grace = new StartupGrace(startupGraceMs);
  private agent: https.Agent | undefined;
  private readonly options: KubeClientOptions;

  constructor(options: KubeClientOptions) {
    this.options = options;
    this.credentials = options.credentials;
    if (!this.credentials.server.startsWith('https://')) {
      throw new HabPodRoleError(ExitCode.config, `The API server address ${this.credentials.server} is not https; hab-pod-role only talks to a verified API server over TLS.`);
    }
  }

  /**
   * The deadline of an operation starting now: --timeout (or `seconds`) from now, in epoch milliseconds.
   * Every call takes one; no request of the call starts after it, and none outlives it.
   */
  deadline(seconds = this.options.timeoutSeconds): number {
    return Date.now() + seconds * 1000;
  }

  getPod(namespace: string, name: string, deadline: number): Promise<Pod> {
    return this.call('GET', podPath(namespace, name), { verb: 'get', resource: 'pods', namespace, name }, deadline);
  }

  /** Pods of a namespace, narrowed by a label selector if one is given. */
  async listPods(namespace: string, labelSelector: string | undefined, deadline: number): Promise<Pod[]> {
    return (await this.listPodsAt(namespace, labelSelector, deadline)).items;
  }

  /** The same, with the list's resourceVersion: a watch from it misses no change after the list. */
  async listPodsAt(namespace: string, labelSelector: string | undefined, deadline: number): Promise<{ items: Pod[]; resourceVersion: string }> {
    const query = labelSelector ? `?${new URLSearchParams({ labelSelector })}` : '';
    const list = await this.call<{ items?: Pod[]; metadata?: { resourceVersion?: string } }>('GET', `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods${query}`, { verb: 'list', resource: 'pods', namespace }, deadline);
    return { items: list.items ?? [], resourceVersion: list.metadata?.resourceVersion ?? '' };
  }

  /**
   * One JSON merge patch of a pod's metadata; with `dryRun` the server validates it and persists nothing.
   * A `metadata.resourceVersion` in the patch makes it conditional: it fails with a conflict if the pod changed.
   */
  patchPod(namespace: string, name: string, patch: MetadataPatch, options: { dryRun: boolean; deadline: number }): Promise<Pod> {
    const query = new URLSearchParams({ fieldManager });
    if (options.dryRun) query.set('dryRun', 'All');
    return this.call('PATCH', `${podPath(namespace, name)}?${query}`, { verb: 'patch', resource: 'pods', namespace, name }, options.deadline, {
      body: JSON.stringify(patch),
      contentType: 'application/merge-patch+json',
    });
  }

  /** Records an Event (what `kubectl describe pod` shows). */
  async createEvent(namespace: string, event: Record<string, unknown>, deadline: number): Promise<void> {
    await this.call('POST', `/api/v1/namespaces/${encodeURIComponent(namespace)}/events`, { verb: 'create', resource: 'events', namespace }, deadline, {
      body: JSON.stringify(event),
      contentType: 'application/json',
    });
  }

  /**
   * Opens a watch of pods from `resourceVersion`, which the server ends after about `watchSeconds` and
   * `signal` aborts: of one pod (`name`), or of those `labelSelector` picks (all of the namespace without
   * one). Resolves with the stream of watch events (one JSON object a line) once the server accepted it;
   * reading them is watch.ts's part.
   */
  async openWatch(
    namespace: string,
    which: { name: string } | { labelSelector: string | undefined },
    resourceVersion: string,
    options: { signal: AbortSignal; watchSeconds: number },
  ): Promise<NodeJS.ReadableStream> {
    const rule: Rule = { verb: 'watch', resource: 'pods', namespace, ...('name' in which ? { name: which.name } : {}) };
    const selector: Record<string, string> = 'name' in which ? { fieldSelector: `metadata.name=${which.name}` } : which.labelSelector ? { labelSelector: which.labelSelector } : {};
    const query = new URLSearchParams({
      watch: '1',
      ...selector,
      resourceVersion,
      allowWatchBookmarks: 'true',
      timeoutSeconds: String(options.watchSeconds),
    });
    try {
      const { headers, agent } = await this.prepare();
      this.requestsSent++;
      const url = new URL(`/api/v1/namespaces/${encodeURIComponent(namespace)}/pods?${query}`, this.credentials.server);
      return await new Promise((resolve, reject) => {
        const req = https.request(url, { method: 'GET', headers, agent, signal: options.signal }, (res) => {
          if (res.statusCode === 200) {
            this.grace.serverAnswered();
            resolve(res.setEncoding('utf8'));
            return;
          }
          let body = '';
          res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => {
            const status = parseStatus(body);
            reject(new ApiStatusError(res.statusCode ?? 0, status.reason ?? httpReason(res.statusCode ?? 0), status.message ?? body.slice(0, 200), undefined));
          });
        });
        req.on('error', reject);
        req.end();
      });
    } catch (error) {
      throw this.explain(error, rule);
    }
  }

  /**
   * Closes kept-alive connections so the process can exit at once: requests under way fail without
   * retrying, a retry waiting for its turn gives up now, and no new request starts.
   */
  close(): void {
    this.closed = true;
    this.closing.abort();
    this.agent?.destroy();
    this.agent = undefined;
  }

  /** Waits `ms` before a retry, or less if the client is closed meanwhile. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.closing.signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.closing.signal.addEventListener('abort', done, { once: true });
    });
  }

  private async call<T>(method: string, path: string, rule: Rule, deadline: number, payload?: { body: string; contentType: string }): Promise<T> {
    const { log } = this.options;
    // A 401 is retried at once with credentials read again, once per call.
    const reload = { done: false };
    try {
      const text = await withRetries(() => this.send(method, path, deadline, payload), {
        deadline,
        baseDelayMs: 250,
        maxDelayMs: 5000,
        classify: (error) => this.classify(error, deadline, reload),
        sleep: (ms) => this.pause(ms),
        onRetry: (error, delayMs, attempt) =>
          log.warn(`${method} ${rule.resource} failed, retrying`, { attempt, in_ms: delayMs, error: brief(error) }),
        // A refusal that outlasted the start-up grace is reported as a refusal (77), not as unavailability.
        onDeadline: (error) => (isRefusal(error) ? error : this.unavailable(error)),
      });
      return JSON.parse(text) as T;
    } catch (error) {
      throw this.explain(error, rule, deadline);
    }
  }

  private classify(error: unknown, deadline: number, reload: { done: boolean }): RetryVerdict {
    if (this.closed || Date.now() >= deadline) return { retry: false };
    if (error instanceof ApiStatusError) {
      // A refusal right after an outage is retried for a while, not reported.
      if (isRefusal(error) && this.grace.covers(Date.now())) return { retry: true };
      if (error.status >= 500) this.grace.serverDown();
      if (error.status === 401 && !reload.done) {
        // A rotated token: the file on disk is newer than the copy in memory. Re-read once, at once.
        reload.done = true;
        this.reloadDue = true;
        return { retry: true, notBeforeMs: 0 };
      }
      if (retryableStatuses.has(error.status)) return { retry: true, notBeforeMs: retryAfterMs(error.retryAfter, Date.now()) };
      return { retry: false };
    }
    if (!isTransient(error)) return { retry: false };
    this.grace.serverDown();
    return { retry: true };
  }

  /** Headers and a connection pool for the next request, with credentials resolved afresh (a rotated token is re-read). */
  private async prepare(): Promise<{ headers: Record<string, string>; agent: https.Agent }> {
    if (this.closed) throw new Error('the client was closed before the request was sent');
    if (this.reloadDue) {
      this.reloadDue = false;
      this.credentials = await this.options.reloadCredentials();
      this.agent?.destroy();
      this.agent = undefined;
    }
    const { authorization, ca, cert, key, servername } = await this.credentials.resolve();
    this.agent ??= new https.Agent({
      keepAlive: true,
      ca,
      cert,
      key,
      ...(servername ? { servername } : {}),
      // Explicit, so NODE_TLS_REJECT_UNAUTHORIZED=0 in the environment cannot switch verification off.
      rejectUnauthorized: true,
    });
    const headers: Record<string, string> = { Accept: 'application/json', 'User-Agent': 'hab-pod-role' };
    if (authorization) headers.Authorization = authorization;
    return { headers, agent: this.agent };
  }

  private async send(method: string, path: string, deadline: number, payload?: { body: string; contentType: string }): Promise<string> {
    const { headers, agent } = await this.prepare();
    const remaining = deadline - Date.now();
    const timeoutMs = Math.max(1, Math.min(this.options.requestTimeoutMs, remaining));
    const url = new URL(path, this.credentials.server);
    if (payload) headers['Content-Type'] = payload.contentType;
    this.requestsSent++;
    this.options.log.debug('api request', { method, path: url.pathname + url.search });
    // Date.now, not performance.now: the global `performance` loads perf_hooks, ~1.5 ms of every start.
    const started = Date.now();

    const { status, responseHeaders, body } = await new Promise<{ status: number; responseHeaders: IncomingHttpHeaders; body: string }>(
      (resolve, reject) => {
        const req = https.request(url, { method, headers, agent, signal: AbortSignal.timeout(timeoutMs) }, (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > maxResponseBytes) res.destroy(new Error(`response larger than ${maxResponseBytes} bytes`));
            else chunks.push(chunk);
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, responseHeaders: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        });
        req.on('error', (error) => reject(error.name === 'AbortError' ? timeoutError(timeoutMs, error) : error));
        req.end(payload?.body);
      },
    );
    this.options.log.debug('api response', { method, status, ms: Date.now() - started });
    if (status >= 200 && status < 300) {
      this.grace.serverAnswered();
      return body;
    }
    const parsed = parseStatus(body);
    const retryAfter = responseHeaders['retry-after'];
    throw new ApiStatusError(status, parsed.reason ?? httpReason(status), parsed.message ?? body.slice(0, 200), Array.isArray(retryAfter) ? retryAfter[0] : retryAfter);
  }

  private unavailable(lastError: unknown): HabPodRoleError {
    return new HabPodRoleError(
      ExitCode.unavailable,
      `The API server at ${this.credentials.server} did not answer successfully within --timeout ${this.options.timeoutSeconds}s (last error: ${brief(lastError)}); check that it is reachable from this pod, or raise --timeout.`,
      { cause: lastError },
    );
  }

  /** Turns whatever ended a call into the one sentence (and exit code) the user sees. */
  private explain(error: unknown, rule: Rule, deadline?: number): HabPodRoleError {
    if (error instanceof HabPodRoleError) return error;
    const pod = `pod "${rule.name}" in namespace "${rule.namespace}"`;
    const what = rule.name === undefined ? `${rule.resource} in namespace "${rule.namespace}"` : pod;
    // An admission policy (the README's, or one of the cluster's) says what it refused and why: pass that on.
    const admissionRefusal = (message: string) => {
      const refusal = /ValidatingAdmissionPolicy '([^']+)' with binding '[^']*' denied request: (.*)$/s.exec(message);
      if (!refusal) return undefined;
      const reason = refusal[2]!.trim().replace(/\.$/, '');
      // The one refusal whose words are the API server's, not the policy's: its parameters are gone.
      const hint = reason.includes('no params found') ? `; its parameter ConfigMap is missing, so apply again what \`hab-pod-role rbac --namespace ${rule.namespace}\` prints` : '';
      return new HabPodRoleError(ExitCode.noPermission, `The admission policy ${refusal[1]} refused to ${rule.verb} ${what}: ${reason}${hint}.`, { cause: error });
    };
    if (error instanceof ApiStatusError) {
      switch (error.status) {
        case 401:
          return new HabPodRoleError(
            ExitCode.noPermission,
            `The API server rejected the credentials from ${this.credentials.source} (401 Unauthorized), also after re-reading them; the token is expired or revoked, so check the service-account token mount.`,
            { cause: error },
          );
        case 403: {
          const refusal = admissionRefusal(error.serverMessage);
          if (refusal) return refusal;
          const who = /User "([^"]+)"/.exec(error.serverMessage)?.[1] ?? 'this identity';
          return new HabPodRoleError(
            ExitCode.noPermission,
            `Forbidden: ${who} may not ${rule.verb} ${rule.resource} in namespace "${rule.namespace}"; add the RBAC rule {apiGroups: [""], resources: ["${rule.resource}"], verbs: ["${rule.verb}"]} to a Role in "${rule.namespace}" bound to it (see the README's RBAC section).`,
            { cause: error },
          );
        }
        case 409:
          return new HabPodRoleError(
            ExitCode.unavailable,
            `The ${pod} changed while it was being written (409 Conflict), and kept changing until --timeout ${this.options.timeoutSeconds}s ran out; another writer is racing this one, so check what else labels these pods.`,
            { cause: error },
          );
        case 404:
          if (rule.name === undefined) break;
          return new HabPodRoleError(
            ExitCode.config,
            `The ${pod} does not exist; set POD_NAME and POD_NAMESPACE from the downward API (fieldRef metadata.name and metadata.namespace) or pass --pod and --namespace.`,
            { cause: error },
          );
        case 422:
          return admissionRefusal(error.serverMessage) ?? new HabPodRoleError(ExitCode.dataError, `The API server rejected the label change on the ${pod}: ${error.serverMessage}.`, { cause: error });
        case 400:
          if (rule.verb === 'list') {
            return new HabPodRoleError(ExitCode.dataError, `The API server rejected the group's label selector: ${error.serverMessage}; fix [group] selector.`, { cause: error });
          }
          break;
      }
      if (retryableStatuses.has(error.status)) return this.unavailable(error);
      return new HabPodRoleError(ExitCode.software, `Unexpected answer from the API server to ${rule.verb} ${what}: ${error.message}.`, { cause: error });
    }
    if (isTlsError(error)) {
      return new HabPodRoleError(
        ExitCode.config,
        `The API server at ${this.credentials.server} presented a certificate that cannot be verified (${(error as NodeJS.ErrnoException).code}); check the certificate authority in the kubeconfig or the service account's ca.crt.`,
        { cause: error },
      );
    }
    if ((!this.closed && isTransient(error)) || (deadline !== undefined && Date.now() >= deadline)) return this.unavailable(error);
    return new HabPodRoleError(ExitCode.software, `Unexpected failure talking to the API server: ${brief(error)}.`, { cause: error });
  }
}

/** The HTTP status behind a failed call, if the API server answered. */
export function statusOf(error: unknown): number | undefined {
  const cause = (error as { cause?: unknown })?.cause;
  return cause instanceof ApiStatusError ? cause.status : undefined;
}

/** Whether a conditional write lost a race (the pod changed since it was read): read again and retry. */
export function lostRace(error: unknown): boolean {
  return statusOf(error) === 409;
}

function podPath(namespace: string, name: string): string {
  return `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}`;
}

function parseStatus(body: string): { reason?: string; message?: string } {
  try {
    const status = JSON.parse(body) as { kind?: string; reason?: string; message?: string };
    return status.kind === 'Status' ? { reason: status.reason, message: status.message } : {};
  } catch {
    return {};
  }
}

function httpReason(status: number): string {
  return status === 429 ? 'TooManyRequests' : status >= 500 ? 'ServerError' : `HTTP${status}`;
}

function timeoutError(ms: number, cause: Error): Error {
  const error = new Error(`no answer within ${ms} ms`, { cause });
  error.name = 'TimeoutError';
  return error;
}

/** A 401 or 403: the server refused who this is, or what it asked. */
function isRefusal(error: unknown): error is ApiStatusError {
  return error instanceof ApiStatusError && (error.status === 401 || error.status === 403);
}

/** A failure of the connection, not of the request (a TLS failure is neither): trying again may work. */
function isTransient(error: unknown): boolean {
  if (isTlsError(error)) return false;
  const code = (error as NodeJS.ErrnoException)?.code;
  return (error as Error)?.name === 'TimeoutError' || (code !== undefined && transientNetworkCodes.has(code));
}

function isTlsError(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException)?.code ?? '';
  return code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL') || /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|LEAF_SIGNATURE/.test(code);
}

/** A short description of an error for a log line or a message: never headers, so never a token. */
export function brief(error: unknown): string {
  if (error instanceof ApiStatusError) return `${error.status} ${error.reason}`;
  const e = error as NodeJS.ErrnoException;
  return e?.code ? `${e.code}${e.message && !e.message.includes(e.code) ? ` ${e.message}` : ''}` : String(e?.message ?? error);
}
