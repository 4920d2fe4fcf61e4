// The Kubernetes client against an in-process TLS server: retries, the token re-read, the start-up grace, failures and their sentences, close.
// The certificate in fixtures/tls is for 127.0.0.1 only and signs nothing else.

import { readFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { lostRace, userError } from '../src/api-errors.ts';
import type { Credentials } from '../src/credentials.ts';
import { ExitCode, HabPodRoleError } from '../src/errors.ts';
import { KubeClient } from '../src/kube.ts';
import { createLogger } from '../src/log.ts';
import { matrix } from './support/matrix.ts';

const tls = join(import.meta.dirname, 'fixtures/tls');
const cert = readFileSync(join(tls, 'cert.pem'), 'utf8');
const key = readFileSync(join(tls, 'key.pem'), 'utf8');

/** What the server answers next: a status and a body, one per request, the last one repeated. */
let answers: { status: number; body?: unknown; headers?: Record<string, string> }[] = [];
let seen: { method: string; url: string; authorization: string }[] = [];
let server: https.Server;
let address: string;

beforeAll(async () => {
  server = https.createServer({ cert, key }, (req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', authorization: String(req.headers.authorization) });
    const answer = answers.length > 1 ? answers.shift()! : answers[0]!;
    res.writeHead(answer.status, { 'Content-Type': 'application/json', ...answer.headers });
    res.end(JSON.stringify(answer.body ?? {}));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  address = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
beforeEach(() => {
  answers = [];
  seen = [];
});

const status = (code: number, reason: string, message: string) => ({ status: code, body: { kind: 'Status', reason, message } });
const pod = { status: 200, body: { metadata: { name: 'redis-0', namespace: 'redis', resourceVersion: '5' } } };

/** A client whose token is `tokens[n]` after the nth load of the credentials. */
function client(tokens = ['first'], timeoutSeconds = 5): { client: KubeClient; loads: () => number } {
  let loads = 0;
  const credentials = (): Credentials => {
    const token = tokens[Math.min(loads, tokens.length - 1)];
    return { server: address, source: 'the test', resolve: async () => ({ ca: cert, authorization: `Bearer ${token}` }) };
  };
  const made = new KubeClient({
    credentials: credentials(),
    reloadCredentials: async () => {
      loads++;
      return credentials();
    },
    timeoutSeconds,
    requestTimeoutMs: 2000,
    log: createLogger({ format: 'text', verbose: false, write: () => undefined }),
  });
  return { client: made, loads: () => loads };
}

/** The sentence a failed call becomes where a command catches it. */
async function failure(promise: Promise<unknown>): Promise<HabPodRoleError> {
  const error = userError(await promise.then(() => undefined, (e: unknown) => e));
  if (!(error instanceof HabPodRoleError)) throw error ?? new Error('expected a failure');
  return error;
}

describe('KubeClient', () => {
  it('talks TLS only: an http address is refused with 78 before any request', () => {
    matrix.inputs();
    const plain = { server: 'http://127.0.0.1:8080', source: 'the test', resolve: async () => ({}) };
    expect(() => new KubeClient({ credentials: plain, reloadCredentials: async () => plain, timeoutSeconds: 1, requestTimeoutMs: 1000, log: createLogger({ format: 'text', verbose: false }) }))
      .toThrow(expect.objectContaining({ exitCode: ExitCode.config, message: 'The API server address http://127.0.0.1:8080 is not https; hab-pod-role only talks to a verified API server over TLS.' }));
  });

  it('re-reads the credentials once after a 401 and retries at once with the new token', async () => {
    matrix.fault();
    answers = [status(401, 'Unauthorized', 'Unauthorized'), pod];
    const { client: c, loads } = client(['old', 'new']);
    expect((await c.getPod('redis', 'redis-0', c.deadline())).metadata?.name).toBe('redis-0');
    expect(loads()).toBe(1);
    expect(seen.map((s) => s.authorization)).toEqual(['Bearer old', 'Bearer new']);
    c.close();
  });

  it('reports a 401 that outlasts the re-read as 77, naming where the credentials came from', async () => {
    matrix.fault();
    answers = [status(401, 'Unauthorized', 'Unauthorized')];
    const { client: c } = client();
    const error = await failure(c.getPod('redis', 'redis-0', c.deadline()));
    expect(error.exitCode).toBe(ExitCode.noPermission);
    expect(error.message).toBe('The API server rejected the credentials from the test (401 Unauthorized), also after re-reading them; the token is expired or revoked, so check the service-account token mount.');
    expect(seen).toHaveLength(2);
    c.close();
  });

  it('names the RBAC rule a 403 is missing, and a missing pod as 78', async () => {
    matrix.fault(2);
    answers = [status(403, 'Forbidden', 'pods "redis-0" is forbidden: User "system:serviceaccount:redis:hab-pod-role" cannot patch resource "pods"')];
    const { client: c } = client();
    const forbidden = await failure(c.patchPod('redis', 'redis-0', { metadata: { labels: { role: 'leader' } } }, { dryRun: false, deadline: c.deadline() }));
    expect(forbidden.exitCode).toBe(ExitCode.noPermission);
    expect(forbidden.message).toBe('Forbidden: system:serviceaccount:redis:hab-pod-role may not patch pods in namespace "redis"; add the RBAC rule {apiGroups: [""], resources: ["pods"], verbs: ["patch"]} to a Role in "redis" bound to it (see the README\'s RBAC section).');
    answers = [status(404, 'NotFound', 'pods "redis-9" not found')];
    const missing = await failure(c.getPod('redis', 'redis-9', c.deadline()));
    expect(missing.exitCode).toBe(ExitCode.config);
    expect(missing.message).toMatch(/^The pod "redis-9" in namespace "redis" does not exist; set POD_NAME/);
    c.close();
  });

  it('sends a merge patch with its field manager, and a lost race (409) is known as one', async () => {
    matrix.fault();
    answers = [status(409, 'Conflict', 'the object has been modified')];
    const { client: c } = client();
    const error = await c.patchPod('redis', 'redis-0', { metadata: { resourceVersion: '4', labels: { role: 'leader' } } }, { dryRun: true, deadline: c.deadline() }).catch((e: unknown) => e);
    expect(lostRace(error)).toBe(true);
    expect(seen[0]).toMatchObject({ method: 'PATCH', url: '/api/v1/namespaces/redis/pods/redis-0?fieldManager=hab-pod-role&dryRun=All' });
    c.close();
  });

  it('takes refusals right after an outage for the server starting, and a refusal after an answer at its word', async () => {
    matrix.fault(2);
    const forbidden = status(403, 'Forbidden', 'User "system:anonymous" cannot get resource "pods"');
    answers = [status(503, 'ServiceUnavailable', 'starting'), forbidden, forbidden, pod];
    const { client: c } = client();
    expect((await c.getPod('redis', 'redis-0', c.deadline())).metadata?.name).toBe('redis-0');
    expect(seen).toHaveLength(4);
    // The server answered: it is up, so the next refusal is meant, and reported at once.
    answers = [forbidden];
    seen = [];
    expect((await failure(c.getPod('redis', 'redis-0', c.deadline()))).exitCode).toBe(ExitCode.noPermission);
    expect(seen).toHaveLength(1);
    // A second outage gets the grace again (before, only the first one did).
    answers = [status(503, 'ServiceUnavailable', 'restarting'), forbidden, pod];
    expect((await c.getPod('redis', 'redis-0', c.deadline())).metadata?.name).toBe('redis-0');
    c.close();
  });

  it('gives up at the deadline with 69 and the last error, and honours Retry-After until then', async () => {
    matrix.fault();
    answers = [{ ...status(429, 'TooManyRequests', 'slow down'), headers: { 'Retry-After': '0' } }, { ...status(503, 'ServiceUnavailable', 'down') }];
    const { client: c } = client(['t'], 1);
    const started = Date.now();
    const error = await failure(c.getPod('redis', 'redis-0', c.deadline()));
    expect(error.exitCode).toBe(ExitCode.unavailable);
    expect(error.message).toBe(`The API server at ${address} did not answer successfully within --timeout 1s (last error: 503 ServiceUnavailable); check that it is reachable from this pod, or raise --timeout.`);
    expect(Date.now() - started).toBeLessThan(5000);
    c.close();
  });

  it('stops at once when closed: a retry waiting for its turn gives up, and no request is sent after', async () => {
    matrix.fault();
    answers = [{ ...status(503, 'ServiceUnavailable', 'down'), headers: { 'Retry-After': '30' } }];
    const { client: c } = client(['t'], 60);
    const started = Date.now();
    const pending = c.getPod('redis', 'redis-0', c.deadline()).catch((e: unknown) => e);
    while (seen.length === 0) await new Promise((r) => setTimeout(r, 10));
    c.close();
    expect(userError(await pending)).toBeInstanceOf(HabPodRoleError);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(seen).toHaveLength(1);
  });
});
