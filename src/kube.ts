// The one module that talks to Kubernetes: transport and auth, retries within the deadline each call is given, typed calls.

import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { Credentials } from './credentials.ts';
import { ApiCallError, ApiStatusError, brief, isRefusal, isTransient, retryableStatuses, type Rule } from './api-errors.ts';
import { configError } from './errors.ts';
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
  /**
   * Kept-alive connections, one pool for requests and one for watches. A stopped watch's connection is closed
   * (its response never ends); taken from the requests' pool, it left the next parallel writes (a promotion's
   * fences) a connection short, and a new one costs a TCP and TLS handshake, more than the write on a busy node.
   */
  private agents: Record<Traffic, https.Agent> | undefined;
  private readonly options: KubeClientOptions;

  constructor(options: KubeClientOptions) {
    this.options = options;
    this.credentials = options.credentials;
    if (!this.credentials.server.startsWith('https://')) {
      throw configError(`The API server address ${this.credentials.server} is not https; hab-pod-role only talks to a verified API server over TLS.`);
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
   * reading them is watch.ts's part. The opening is a request like any other: retried within --timeout,
   * after a 401 with credentials read again, and no sooner than a server's Retry-After.
   */
  openWatch(
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
    const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods?${query}`;
    return this.retrying('GET', rule, this.deadline(), options.signal, async () => (await this.open('GET', path, options.signal, undefined, 'watches')).setEncoding('utf8'));
  }

  /**
   * Closes kept-alive connections so the process can exit at once: requests under way fail without
   * retrying, a retry waiting for its turn gives up now, and no new request starts.
   */
  close(): void {
    this.closed = true;
    this.closing.abort();
    this.dropConnections();
  }

  private dropConnections(): void {
    for (const agent of Object.values(this.agents ?? {})) agent.destroy();
    this.agents = undefined;
  }

  /** Waits `ms` before a retry, or less if the client is closed (or the watch stopped) meanwhile. */
  private pause(ms: number, signal?: AbortSignal): Promise<void> {
    const signals = signal ? [this.closing.signal, signal] : [this.closing.signal];
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        for (const s of signals) s.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      for (const s of signals) s.addEventListener('abort', done, { once: true });
    });
  }

  private async call<T>(method: string, path: string, rule: Rule, deadline: number, payload?: Payload): Promise<T> {
    return JSON.parse(await this.retrying(method, rule, deadline, undefined, () => this.send(method, path, deadline, payload))) as T;
  }

  /**
   * Makes `attempt` (one request) until it succeeds, the deadline passes or an error is final: a 401 once
   * with credentials read again, transient failures with backoff and no sooner than the server's Retry-After.
   * A `signal` that aborts (a watch stopped) ends it too.
   */
  private async retrying<T>(method: string, rule: Rule, deadline: number, signal: AbortSignal | undefined, attempt: () => Promise<T>): Promise<T> {
    const { log } = this.options;
    // A 401 is retried at once with credentials read again, once per call.
    const reload = { done: false };
    let exhausted = false;
    try {
      return await withRetries(attempt, {
        deadline,
        baseDelayMs: 250,
        maxDelayMs: 5000,
        classify: (error) => (signal?.aborted ? { retry: false } : this.classify(error, deadline, reload)),
        sleep: (ms) => this.pause(ms, signal),
        onRetry: (error, delayMs, n) => log.warn(`${method} ${rule.resource} failed, retrying`, { attempt: n, in_ms: delayMs, error: brief(error) }),
        onDeadline: (error) => {
          exhausted = true;
          return error as Error;
        },
      });
    } catch (error) {
      throw this.failed(error, rule, { exhausted, outOfTime: Date.now() >= deadline });
    }
  }

  /** What ended a call, with what `userError` needs to say it in a sentence (the client itself says nothing to the user). */
  private failed(cause: unknown, rule: Rule, when: { exhausted: boolean; outOfTime: boolean }): ApiCallError {
    return new ApiCallError({ rule, cause, server: this.credentials.server, source: this.credentials.source, timeoutSeconds: this.options.timeoutSeconds, closed: this.closed, ...when });
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
  private async prepare(traffic: Traffic): Promise<{ headers: Record<string, string>; agent: https.Agent }> {
    if (this.closed) throw new Error('the client was closed before the request was sent');
    if (this.reloadDue) {
      this.reloadDue = false;
      this.credentials = await this.options.reloadCredentials();
      this.dropConnections();
    }
    const { authorization, ca, cert, key, servername } = await this.credentials.resolve();
    const pool = (): https.Agent =>
      new https.Agent({
        keepAlive: true,
        ca,
        cert,
        key,
        ...(servername ? { servername } : {}),
        // Explicit, so NODE_TLS_REJECT_UNAUTHORIZED=0 in the environment cannot switch verification off.
        rejectUnauthorized: true,
      });
    this.agents ??= { requests: pool(), watches: pool() };
    const headers: Record<string, string> = { Accept: 'application/json', 'User-Agent': 'hab-pod-role' };
    if (authorization) headers.Authorization = authorization;
    return { headers, agent: this.agents[traffic] };
  }

  /** One request answered in full: its body, read up to `maxResponseBytes`, within --request-timeout and the deadline. */
  private async send(method: string, path: string, deadline: number, payload?: Payload): Promise<string> {
    const timeoutMs = Math.max(1, Math.min(this.options.requestTimeoutMs, deadline - Date.now()));
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      return await readBody(await this.open(method, path, signal, payload));
    } catch (error) {
      // Whatever the abort broke (the request, or the response half read), the cause is the timeout.
      throw signal.aborted ? timeoutError(timeoutMs, error as Error) : error;
    }
  }

  /**
   * The one way a request goes out: credentials resolved afresh, the shared connections, `signal` to end it.
   * Resolves with the response once its status is a success (its body is the caller's to read); any other
   * status becomes an ApiStatusError with the server's reason, message and Retry-After, its body read up
   * to `maxResponseBytes`. With --verbose each request is logged once answered: method, path, status and
   * milliseconds (for a watch, until it is open). Never the headers or a body: they can hold a token.
   */
  private async open(method: string, path: string, signal: AbortSignal, payload?: Payload, traffic: Traffic = 'requests'): Promise<IncomingMessage> {
    const { headers, agent } = await this.prepare(traffic);
    const url = new URL(path, this.credentials.server);
    if (payload) headers['Content-Type'] = payload.contentType;
    this.requestsSent++;
    // Date.now, not performance.now: the global `performance` loads perf_hooks, ~1.5 ms of every start.
    const started = Date.now();
    const logged = (outcome: { status: number } | { error: string }) =>
      this.options.log.debug('api request', { method, path: url.pathname + url.search, ...outcome, ms: Date.now() - started });
    let res: IncomingMessage;
    try {
      res = await new Promise<IncomingMessage>((resolve, reject) => {
        const req = https.request(url, { method, headers, agent, signal }, resolve);
        req.on('error', reject);
        req.end(payload?.body);
      });
    } catch (error) {
      logged({ error: brief(error) });
      throw error;
    }
    const status = res.statusCode ?? 0;
    logged({ status });
    if (status >= 200 && status < 300) {
      this.grace.serverAnswered();
      return res;
    }
    const body = await readBody(res);
    const parsed = parseStatus(body);
    const retryAfter = res.headers['retry-after'];
    throw new ApiStatusError(status, parsed.reason ?? httpReason(status), parsed.message ?? body.slice(0, 200), Array.isArray(retryAfter) ? retryAfter[0] : retryAfter);
  }
}

/** Which connections a request goes on (see `KubeClient.agents`). */
type Traffic = 'requests' | 'watches';

/** A request body and its media type. */
interface Payload {
  body: string;
  contentType: string;
}

/** A response's body as text, refused beyond `maxResponseBytes` (a server or proxy gone wrong must not fill the memory). */
function readBody(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxResponseBytes) res.destroy(new Error(`response larger than ${maxResponseBytes} bytes`));
      else chunks.push(chunk);
    });
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
  });
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


