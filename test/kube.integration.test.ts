// The Kubernetes client against the real API server, through the fault proxy: the token re-read, refusals and their sentences, the start-up grace, the deadline, close.

import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { lostRace, userError } from '../src/api-errors.ts';
import type { Credentials } from '../src/credentials.ts';
import { ExitCode, HabPodRoleError } from '../src/errors.ts';
import { KubeClient } from '../src/kube.ts';
import { createLogger } from '../src/log.ts';
import { admin, controlPlane, createNamespace } from './support/cluster.ts';
import { FaultProxy } from './support/fault-proxy.ts';
import { matrix } from './support/matrix.ts';

let proxy: FaultProxy;
let ns: string;
/** The pod-bound token of redis-0, as the kubelet would mount it. */
let token: string;

beforeAll(async () => {
  proxy = await new FaultProxy(controlPlane()).start();
  ns = await createNamespace('kube');
  await admin().serviceAccount(ns);
  await admin().createPod(ns, 'redis-0', { app: 'redis' });
  token = admin().podMount(ns, 'redis-0').token;
});
afterAll(() => proxy.stop());
beforeEach(() => proxy.reset());

const passed = () => proxy.seen.filter((s) => s.answer === 'passed').map((s) => s.status);

/** A client through the proxy whose token is `tokens[n]` after the nth load of the credentials. */
function client(tokens: string[], timeoutSeconds = 5, write: (line: string) => void = () => undefined, verbose = false): { client: KubeClient; loads: () => number } {
  let loads = 0;
  const credentials = (): Credentials => {
    const current = tokens[Math.min(loads, tokens.length - 1)];
    return { server: proxy.url, source: 'the test', resolve: async () => ({ ca: controlPlane().caPem, authorization: `Bearer ${current}` }) };
  };
  const made = new KubeClient({
    credentials: credentials(),
    reloadCredentials: async () => {
      loads++;
      return credentials();
    },
    timeoutSeconds,
    requestTimeoutMs: 2000,
    log: createLogger({ format: 'text', verbose, write }),
  });
  return { client: made, loads: () => loads };
}

/** The sentence a failed call becomes where a command catches it. */
async function failure(promise: Promise<unknown>): Promise<HabPodRoleError> {
  const error = userError(await promise.then(() => undefined, (e: unknown) => e));
  if (!(error instanceof HabPodRoleError)) throw error ?? new Error('expected a failure');
  return error;
}

/** Many of one fault: every request until the test resets the proxy takes it. */
const repeated = (fault: { status: number; reason: string }) => Array.from({ length: 500 }, () => fault);

describe('KubeClient', () => {
  it('re-reads the credentials once after a 401 and retries at once with the new token', async () => {
    matrix.fault();
    const { client: c, loads } = client(['not-a-token', token]);
    expect((await c.getPod(ns, 'redis-0', c.deadline())).metadata?.name).toBe('redis-0');
    expect(loads()).toBe(1);
    expect(passed()).toEqual([401, 200]);
    c.close();
  });

  it('reports a 401 that outlasts the re-read as 77, naming where the credentials came from', async () => {
    matrix.fault();
    const { client: c } = client(['not-a-token']);
    const error = await failure(c.getPod(ns, 'redis-0', c.deadline()));
    expect(error.exitCode).toBe(ExitCode.noPermission);
    expect(error.message).toBe('The API server rejected the credentials from the test (401 Unauthorized), also after re-reading them; the token is expired or revoked, so check the service-account token mount.');
    expect(passed()).toEqual([401, 401]);
    c.close();
  });

  it('names the RBAC rule a 403 is missing, and a missing pod as 78', async () => {
    matrix.fault(2);
    const readOnly = await createNamespace('kube-ro');
    await admin().serviceAccount(readOnly, [{ apiGroups: [''], resources: ['pods'], verbs: ['get'] }]);
    await admin().createPod(readOnly, 'redis-0', { app: 'redis' });
    const { client: c } = client([admin().podMount(readOnly, 'redis-0').token]);
    const forbidden = await failure(c.patchPod(readOnly, 'redis-0', { metadata: { labels: { role: 'leader' } } }, { dryRun: false, deadline: c.deadline() }));
    expect(forbidden.exitCode).toBe(ExitCode.noPermission);
    expect(forbidden.message).toBe(`Forbidden: system:serviceaccount:${readOnly}:hab-pod-role may not patch pods in namespace "${readOnly}"; add the RBAC rule {apiGroups: [""], resources: ["pods"], verbs: ["patch"]} to a Role in "${readOnly}" bound to it (see the README's RBAC section).`);
    expect(await admin().podLabels(readOnly, 'redis-0')).toEqual({ app: 'redis' });
    const missing = await failure(c.getPod(readOnly, 'redis-9', c.deadline()));
    expect(missing.exitCode).toBe(ExitCode.config);
    expect(missing.message).toMatch(new RegExp(`^The pod "redis-9" in namespace "${readOnly}" does not exist; set POD_NAME`));
    c.close();
  });

  it('sends a merge patch with its field manager, and a lost race (409) is known as one', async () => {
    matrix.fault();
    const { client: c } = client([token]);
    const error = await c.patchPod(ns, 'redis-0', { metadata: { resourceVersion: '1', labels: { role: 'leader' } } }, { dryRun: true, deadline: c.deadline() }).catch((e: unknown) => e);
    expect(lostRace(error)).toBe(true);
    expect(proxy.seen[0]).toMatchObject({ method: 'PATCH', path: `/api/v1/namespaces/${ns}/pods/redis-0?fieldManager=hab-pod-role&dryRun=All`, status: 409 });
    c.close();
  });

  it('takes refusals right after an outage for the server starting, and a refusal after an answer at its word', async () => {
    matrix.fault(2);
    const forbidden = { status: 403, reason: 'Forbidden' };
    proxy.inject({ status: 503, reason: 'ServiceUnavailable' }, forbidden, forbidden);
    const { client: c } = client([token]);
    expect((await c.getPod(ns, 'redis-0', c.deadline())).metadata?.name).toBe('redis-0');
    expect(proxy.seen.map((s) => s.answer)).toEqual(['503', '403', '403', 'passed']);
    // The server answered: it is up, so the next refusal is meant, and reported at once.
    proxy.reset();
    proxy.inject(forbidden);
    expect((await failure(c.getPod(ns, 'redis-0', c.deadline()))).exitCode).toBe(ExitCode.noPermission);
    expect(proxy.seen).toHaveLength(1);
    // A second outage gets the grace again (before, only the first one did).
    proxy.reset();
    proxy.inject({ status: 503, reason: 'ServiceUnavailable' }, forbidden);
    expect((await c.getPod(ns, 'redis-0', c.deadline())).metadata?.name).toBe('redis-0');
    expect(proxy.seen.map((s) => s.answer)).toEqual(['503', '403', 'passed']);
    c.close();
  });

  it('gives up at the deadline with 69 and the last error, and honours Retry-After until then', async () => {
    matrix.fault();
    proxy.inject({ status: 429, retryAfter: '0', reason: 'TooManyRequests' }, ...repeated({ status: 503, reason: 'ServiceUnavailable' }));
    const { client: c } = client([token], 1);
    const started = Date.now();
    const error = await failure(c.getPod(ns, 'redis-0', c.deadline()));
    expect(error.exitCode).toBe(ExitCode.unavailable);
    expect(error.message).toBe(`The API server at ${proxy.url} did not answer successfully within --timeout 1s (last error: 503 ServiceUnavailable); check that it is reachable from this pod, or raise --timeout.`);
    // The deadline is kept, not a retry schedule run to its end (a bound on behaviour, not a speed).
    expect(Date.now() - started).toBeLessThan(5000);
    expect(passed()).toEqual([]);
    c.close();
  });

  it('opens a watch as it sends any request: after a 401 with the token read again, after a 429 no sooner than its Retry-After', async () => {
    matrix.fault(2);
    const watches = /[?&]watch=1(&|$)/;
    proxy.inject({ method: 'GET', path: watches, fault: { status: 401, reason: 'Unauthorized' } }, { method: 'GET', path: watches, fault: { status: 429, retryAfter: '1', reason: 'TooManyRequests' } });
    const logged: string[] = [];
    const { client: c, loads } = client([token], 5, (line) => logged.push(line));
    const version = (await c.getPod(ns, 'redis-0', c.deadline())).metadata?.resourceVersion ?? '';
    const stop = new AbortController();
    const events = await c.openWatch(ns, { name: 'redis-0' }, version, { signal: stop.signal, watchSeconds: 10 });
    expect(loads()).toBe(1);
    expect(proxy.seen.filter((s) => watches.test(s.path)).map((s) => s.answer)).toEqual(['401', '429', 'passed']);
    expect(logged.join('')).toMatch(/GET pods failed, retrying attempt=2 in_ms=1\d{3} error="429 TooManyRequests"/);
    expect(passed()).toEqual([200, 200]);
    // The stream is the watch: a change of the pod arrives on it.
    const changed = new Promise<string>((resolve) => events.on('data', (chunk: string) => resolve(chunk)));
    await admin().core.patchNamespacedPod({ namespace: ns, name: 'redis-0', body: [{ op: 'add', path: '/metadata/annotations', value: { watched: 'yes' } }] });
    expect(JSON.parse((await changed).split('\n')[0]!)).toMatchObject({ type: 'MODIFIED', object: { metadata: { name: 'redis-0' } } });
    stop.abort();
    c.close();
  });

  it('logs each request with --verbose once answered, watch opens included: method, path, status and milliseconds, never the token', async () => {
    matrix.fault();
    const logged: string[] = [];
    const { client: c } = client([token], 5, (line) => logged.push(line), true);
    const version = (await c.getPod(ns, 'redis-0', c.deadline())).metadata?.resourceVersion ?? '';
    const stop = new AbortController();
    await c.openWatch(ns, { name: 'redis-0' }, version, { signal: stop.signal, watchSeconds: 10 });
    stop.abort();
    proxy.inject({ status: 403, reason: 'Forbidden' });
    await failure(c.listPods(ns, 'app=redis', c.deadline()));
    const requests = logged.filter((line) => line.includes('api request'));
    expect(requests).toHaveLength(3);
    expect(requests[0]).toMatch(new RegExp(`^hab-pod-role: debug: api request method=GET path=/api/v1/namespaces/${ns}/pods/redis-0 status=200 ms=\\d+\n$`));
    expect(requests[1]).toMatch(new RegExp(`^hab-pod-role: debug: api request method=GET path=/api/v1/namespaces/${ns}/pods\\?watch=1&fieldSelector=metadata.name%3Dredis-0&resourceVersion=${version}&\\S+ status=200 ms=\\d+\n$`));
    expect(requests[2]).toMatch(new RegExp(`^hab-pod-role: debug: api request method=GET path=/api/v1/namespaces/${ns}/pods\\?labelSelector=app%3Dredis status=403 ms=\\d+\n$`));
    expect(logged.join('')).not.toContain(token);
    c.close();
  });

  it('keeps watches off the connections requests share: a stopped watch leaves the next parallel requests theirs', async () => {
    const { client: c } = client([token]);
    const read = () => c.getPod(ns, 'redis-0', c.deadline());
    // Two requests at once leave two kept-alive connections.
    const [pod] = await Promise.all([read(), read()]);
    const stop = new AbortController();
    await c.openWatch(ns, { name: 'redis-0' }, pod.metadata?.resourceVersion ?? '', { signal: stop.signal, watchSeconds: 10 });
    // A watch stopped half way cannot hand its connection back: it is closed.
    stop.abort();
    const opened = proxy.connections;
    await Promise.all([read(), read()]);
    expect(proxy.connections - opened).toBe(0);
    expect(passed()).toEqual([200, 200, 200, 200, 200]);
    c.close();
  });

  it('stops at once when closed: a retry waiting for its turn gives up, and no request is sent after', async () => {
    matrix.fault();
    proxy.inject({ status: 503, retryAfter: '30', reason: 'ServiceUnavailable' });
    const logged: string[] = [];
    const { client: c } = client([token], 60, (line) => logged.push(line));
    const started = Date.now();
    const pending = c.getPod(ns, 'redis-0', c.deadline()).catch((e: unknown) => e);
    // Closed while the retry waits its turn (the 503 answered and the pause begun), not while the request is out.
    while (!logged.some((line) => line.includes('failed, retrying'))) await new Promise((r) => setTimeout(r, 10));
    c.close();
    expect(userError(await pending)).toBeInstanceOf(HabPodRoleError);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(proxy.seen).toHaveLength(1);
  });
});
