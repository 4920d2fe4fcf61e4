// A real Kubernetes control plane on loopback (etcd, kube-apiserver, kube-controller-manager) for tests, demo and benchmarks.
//
//   node tools/control-plane.ts up [DIR]     start it (idempotent), write DIR/kubeconfig (DIR defaults to .cluster)
//   node tools/control-plane.ts down [DIR]   stop it and leave no process behind

import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = resolve(fileURLToPath(import.meta.url), '../..');

export interface ControlPlane {
  dir: string;
  /** https://127.0.0.1:PORT */
  server: string;
  host: string;
  port: number;
  caFile: string;
  caPem: string;
  adminToken: string;
  /** Admin kubeconfig (system:masters), for test set-up and kubectl; the tool under test never uses it. */
  kubeconfig: string;
  binDir: string;
}

interface State extends ControlPlane {
  pids: { name: string; pid: number }[];
  etcdUrl: string;
}

/** Builds the binaries if needed (cached outside the repository) and returns their directory. */
export function buildControlPlane(): string {
  const out = execFileSync('bash', [join(repoRoot, 'tools/build-control-plane.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return out.trim().split('\n').at(-1)!;
}

/** Starts etcd, kube-apiserver and kube-controller-manager in `dir`, each in its own process group. */
export async function startControlPlane(options: { dir: string; binDir: string; deadlineMs?: number; apiserverArgs?: string[] }): Promise<ControlPlane> {
  const dir = resolve(options.dir);
  const deadline = Date.now() + (options.deadlineMs ?? 120_000);
  mkdirSync(dir, { recursive: true });
  const state: State = { dir, ...writeCredentials(dir), pids: [], etcdUrl: '', server: '', host: '127.0.0.1', port: 0, binDir: options.binDir, kubeconfig: join(dir, 'kubeconfig') };
  const saveState = () => writeFileSync(join(dir, 'state.json'), JSON.stringify(state, null, 2));
  try {
    const [etcdPort, peerPort, apiPort] = await freePorts(3);
    state.etcdUrl = `http://127.0.0.1:${etcdPort}`;
    state.port = apiPort!;
    state.server = `https://127.0.0.1:${apiPort}`;
    rmSync(join(dir, 'etcd'), { recursive: true, force: true });
    const start = (name: string, args: string[]) => {
      const pid = startDaemon(join(options.binDir, name), args, join(dir, `${name}.log`));
      state.pids.push({ name, pid });
      saveState();
      return pid;
    };

    const etcd = start('etcd', [
      '--name=default', `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=${state.etcdUrl}`, `--advertise-client-urls=${state.etcdUrl}`,
      `--listen-peer-urls=http://127.0.0.1:${peerPort}`, `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
      `--initial-cluster=default=http://127.0.0.1:${peerPort}`,
      '--unsafe-no-fsync', '--log-level=warn',
    ]);
    await waitFor('etcd', etcd, deadline, async () => (await get(`${state.etcdUrl}/health`)).includes('"health":"true"'), dir);

    const apiserver = start('kube-apiserver', apiserverArgs(state, apiPort!, options.apiserverArgs ?? []));
    await waitFor('kube-apiserver', apiserver, deadline, async () => (await get(`${state.server}/readyz`, state)) === 'ok', dir);
    writeKubeconfig(state);

    const controllerManager = start('kube-controller-manager', [
      `--kubeconfig=${state.kubeconfig}`,
      '--bind-address=127.0.0.1', '--secure-port=0', '--leader-elect=false',
      `--service-account-private-key-file=${join(dir, 'sa.key')}`, `--root-ca-file=${state.caFile}`,
      '--use-service-account-credentials=false',
      // No kubelet sends heartbeats here: the node lifecycle controller would mark every pod NotReady.
      '--controllers=*,-nodelifecycle,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-node-route-controller',
    ]);
    // The serviceaccount controller creating "default" in kube-public shows the controller manager is working.
    await waitFor('kube-controller-manager', controllerManager, deadline, async () => {
      const sa = await get(`${state.server}/api/v1/namespaces/kube-public/serviceaccounts/default`, state);
      return sa.includes('"kind":"ServiceAccount"');
    }, dir);
    saveState();
    const { pids: _pids, etcdUrl: _etcd, ...plane } = state;
    return plane;
  } catch (error) {
    await stopControlPlane(dir);
    throw error;
  }
}

function apiserverArgs(state: State, port: number, extra: string[], bindAddress = '127.0.0.1'): string[] {
  const { dir } = state;
  return [
    `--etcd-servers=${state.etcdUrl}`,
    `--bind-address=${bindAddress}`, `--advertise-address=${bindAddress}`, `--secure-port=${port}`,
    `--cert-dir=${join(dir, 'certs')}`,
    `--tls-cert-file=${join(dir, 'apiserver.crt')}`, `--tls-private-key-file=${join(dir, 'apiserver.key')}`,
    `--client-ca-file=${state.caFile}`,
    `--token-auth-file=${join(dir, 'tokens.csv')}`,
    '--authorization-mode=RBAC',
    '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
    `--service-account-key-file=${join(dir, 'sa.pub')}`, `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
    '--service-cluster-ip-range=10.0.0.0/24',
    '--profiling=false',
    ...extra,
  ];
}

/** A second API server on its own port over the same etcd, for tests that stop and restart "the" API server. */
export interface ExtraApiServer {
  server: string;
  port: number;
  stop(): Promise<void>;
  /** Starts it again on the same port, as a restarted API server would come back. */
  restart(): Promise<void>;
}

export async function startExtraApiServer(dir: string, options: { bindAddress?: string; deadlineMs?: number } = {}): Promise<ExtraApiServer> {
  const state = readState(resolve(dir));
  if (!state) throw new Error(`no control plane in ${dir}`);
  const bindAddress = options.bindAddress ?? '127.0.0.1';
  const deadlineMs = options.deadlineMs ?? 60_000;
  const [port] = await freePorts(1, bindAddress);
  const server = `https://${bindAddress}:${port}`;
  let pid = 0;
  const launch = async () => {
    pid = startDaemon(join(state.binDir, 'kube-apiserver'), apiserverArgs(state, port!, [], bindAddress), join(state.dir, `kube-apiserver-${port}.log`));
    // Recorded with the others, so stopping the control plane stops it too.
    const current = readState(state.dir)!;
    current.pids.push({ name: `kube-apiserver-${port}`, pid });
    writeFileSync(join(state.dir, 'state.json'), JSON.stringify(current, null, 2));
    await waitFor(`kube-apiserver-${port}`, pid, Date.now() + deadlineMs, async () => (await get(`${server}/readyz`, state)) === 'ok', state.dir);
  };
  const stop = async () => {
    signalGroup(pid, 'SIGKILL');
    while (alive(pid)) await sleep(20);
  };
  await launch();
  return { server, port: port!, stop, restart: launch };
}

/** Stops whatever `startControlPlane` started in `dir`: TERM to each process group, then KILL. */
export async function stopControlPlane(dir: string): Promise<void> {
  const state = readState(dir);
  if (!state) return;
  for (const { pid } of [...state.pids].reverse()) {
    signalGroup(pid, 'SIGTERM');
    const until = Date.now() + 10_000;
    while (alive(pid) && Date.now() < until) await sleep(50);
    signalGroup(pid, 'SIGKILL');
    while (alive(pid)) await sleep(20);
  }
  rmSync(join(dir, 'state.json'), { force: true });
}

/** The running control plane in `dir`, if its API server answers. */
export async function runningControlPlane(dir: string): Promise<ControlPlane | undefined> {
  const state = readState(dir);
  if (!state || !state.pids.every(({ pid }) => alive(pid))) return undefined;
  try {
    if ((await get(`${state.server}/readyz`, state)) !== 'ok') return undefined;
  } catch {
    return undefined;
  }
  const { pids: _pids, etcdUrl: _etcd, ...plane } = state;
  return plane;
}

function readState(dir: string): State | undefined {
  const file = join(resolve(dir), 'state.json');
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as State) : undefined;
}

/** A CA, a serving certificate for loopback, a service-account signing key and an admin token. */
function writeCredentials(dir: string): Pick<ControlPlane, 'caFile' | 'caPem' | 'adminToken'> {
  const at = (f: string) => join(dir, f);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  if (!existsSync(at('ca.crt'))) {
    openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '3650',
      '-subj', '/CN=hab-pod-role-test-ca', '-keyout', at('ca.key'), '-out', at('ca.crt'));
    openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=kube-apiserver',
      '-keyout', at('apiserver.key'), '-out', at('apiserver.csr'));
    writeFileSync(at('apiserver.ext'),
      // 198.18.0.1 and 198.18.1.1: the bridges of the pod networks the Redis tests and the demo build.
      'subjectAltName=IP:127.0.0.1,IP:10.0.0.1,IP:198.18.0.1,IP:198.18.1.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n' +
      'extendedKeyUsage=serverAuth\n');
    openssl('x509', '-req', '-in', at('apiserver.csr'), '-CA', at('ca.crt'), '-CAkey', at('ca.key'), '-CAcreateserial',
      '-days', '3650', '-extfile', at('apiserver.ext'), '-out', at('apiserver.crt'));
    // Kubernetes' key parser wants SEC1 ("EC PRIVATE KEY"), not the PKCS#8 that genpkey writes.
    openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', at('sa.key'));
    openssl('ec', '-in', at('sa.key'), '-pubout', '-out', at('sa.pub'));
    writeFileSync(at('tokens.csv'), `${randomBytes(24).toString('hex')},admin,admin,"system:masters"\n`, { mode: 0o600 });
  }
  return {
    caFile: at('ca.crt'),
    caPem: readFileSync(at('ca.crt'), 'utf8'),
    adminToken: readFileSync(at('tokens.csv'), 'utf8').split(',')[0]!,
  };
}

function writeKubeconfig(plane: ControlPlane): void {
  const ca = Buffer.from(plane.caPem).toString('base64');
  writeFileSync(plane.kubeconfig, [
    'apiVersion: v1', 'kind: Config', 'current-context: admin@local',
    'clusters:', '- name: local', '  cluster:', `    server: ${plane.server}`, `    certificate-authority-data: ${ca}`,
    'users:', '- name: admin', '  user:', `    token: ${plane.adminToken}`,
    'contexts:', '- name: admin@local', '  context:', '    cluster: local', '    user: admin', '    namespace: default', '',
  ].join('\n'), { mode: 0o600 });
}

function startDaemon(binary: string, args: string[], logFile: string): number {
  const log = openSync(logFile, 'a');
  // A process group of its own: stopping the group stops any helper the binary forks too.
  const child = spawn(binary, args, { detached: true, stdio: ['ignore', log, log] });
  child.unref();
  if (child.pid === undefined) throw new Error(`could not start ${binary}`);
  return child.pid;
}

async function waitFor(name: string, pid: number, deadline: number, ready: () => Promise<boolean>, dir: string): Promise<void> {
  for (;;) {
    try {
      if (await ready()) return;
    } catch {
      // not up yet
    }
    const died = !alive(pid);
    if (died || Date.now() > deadline) {
      const log = join(dir, `${name}.log`);
      const tail = existsSync(log) ? readFileSync(log, 'utf8').split('\n').slice(-15).join('\n') : '';
      throw new Error(`${name} ${died ? 'exited' : 'did not become ready before the deadline'}; the end of ${log}:\n${tail}`);
    }
    await sleep(100);
  }
}

function get(url: string, auth?: { caPem: string; adminToken: string }): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const req = (url.startsWith('https') ? https : http).get(url, {
      ...(auth ? { ca: auth.caPem, headers: { Authorization: `Bearer ${auth.adminToken}` } } : {}),
      timeout: 2000,
    }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolvePromise(body));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** Ports the kernel hands out now; good enough on a machine where only these tests bind loopback ports. */
export async function freePorts(count: number, host = '127.0.0.1'): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: count }, () => new Promise<import('node:net').Server>((ok) => {
    const s = createServer();
    s.listen(0, host, () => ok(s));
  })));
  const ports = servers.map((s) => (s.address() as import('node:net').AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((ok) => s.close(ok))));
  return ports;
}

/** Signals a process group; a group that is gone already is no error. */
export function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/** Whether `pid` runs; a zombie (exited, not yet reaped) counts as gone. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie (exited, not yet reaped by its parent) counts as gone.
  try {
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.startsWith('Z');
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [command, dirArg] = process.argv.slice(2);
  const dir = resolve(repoRoot, dirArg ?? '.cluster');
  if (command === 'up') {
    const running = await runningControlPlane(dir);
    if (running) {
      console.log(`control plane already running at ${running.server}; kubeconfig: ${running.kubeconfig}`);
    } else {
      await stopControlPlane(dir);
      const started = Date.now();
      const plane = await startControlPlane({ dir, binDir: buildControlPlane() });
      console.log(`control plane up at ${plane.server} in ${((Date.now() - started) / 1000).toFixed(1)} s; kubeconfig: ${plane.kubeconfig}`);
    }
  } else if (command === 'down') {
    await stopControlPlane(dir);
    console.log('control plane stopped');
  } else {
    console.error('usage: node tools/control-plane.ts up|down [DIR]');
    process.exitCode = 64;
  }
}
