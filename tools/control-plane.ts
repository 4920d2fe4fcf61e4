// A real Kubernetes control plane on loopback (etcd, kube-apiserver, kube-controller-manager, kube-scheduler), with a real node when asked.
//
//   node tools/control-plane.ts up [DIR]     start it with its node (idempotent), write DIR/kubeconfig (DIR defaults to .cluster)
//   node tools/control-plane.ts down [DIR]   stop both, leave no process behind and the machine as it was
//
// REAL_NODE=off starts `up` without the node (not HAB_POD_ROLE_*: the tool reads those as its options). `up` exits 75 when another run holds the machine's node.

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { alive, freePorts, httpGet as get, signalGroup, sleep, startDaemon, stopDaemon, waitFor } from './daemon.ts';
import { NodeBusyError, nodeNetwork, nodeRunning, startNode, stopNode, type RealNode } from './node.ts';

export { alive, freePorts, signalGroup } from './daemon.ts';

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
  /** The real node, when it was asked for. */
  node?: RealNode;
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

export interface StartOptions {
  dir: string;
  binDir: string;
  deadlineMs?: number;
  apiserverArgs?: string[];
  /** Start the real node too (tools/node.ts); `persistent` when it outlives this process (`up`). */
  node?: boolean | { persistent?: boolean; scratchDir?: string };
}

/** Starts etcd, kube-apiserver, kube-controller-manager and kube-scheduler in `dir`, each in its own process group, then the node if asked. */
export async function startControlPlane(options: StartOptions): Promise<ControlPlane> {
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

    // With a node, pods reach the API server through the `kubernetes` Service at the bridge's address.
    const advertise = options.node ? nodeNetwork.gateway : '127.0.0.1';
    const apiserver = start('kube-apiserver', apiserverArgs(state, apiPort!, options.apiserverArgs ?? [], '127.0.0.1', advertise));
    await waitFor('kube-apiserver', apiserver, deadline, async () => (await get(`${state.server}/readyz`, state)) === 'ok', dir);
    writeKubeconfig(state);

    const controllerManager = start('kube-controller-manager', [
      `--kubeconfig=${state.kubeconfig}`,
      '--bind-address=127.0.0.1', '--secure-port=0', '--leader-elect=false',
      `--service-account-private-key-file=${join(dir, 'sa.key')}`, `--root-ca-file=${state.caFile}`,
      '--use-service-account-credentials=false',
      // The node lifecycle controller (in '*') lifts the real node's not-ready taint.
      '--controllers=*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-node-route-controller',
    ]);
    // The serviceaccount controller creating "default" in kube-public shows the controller manager is working.
    await waitFor('kube-controller-manager', controllerManager, deadline, async () => {
      const sa = await get(`${state.server}/api/v1/namespaces/kube-public/serviceaccounts/default`, state);
      return sa.includes('"kind":"ServiceAccount"');
    }, dir);
    // It serves nothing to ask (secure port off); it shows itself by binding pods.
    const scheduler = start('kube-scheduler', [`--kubeconfig=${state.kubeconfig}`, '--bind-address=127.0.0.1', '--secure-port=0', '--leader-elect=false']);
    saveState();
    const { pids: _pids, etcdUrl: _etcd, ...plane } = state;
    if (options.node) {
      const nodeOptions = options.node === true ? {} : options.node;
      plane.node = await startNode(plane, { deadline, ...nodeOptions });
      state.node = plane.node;
      saveState();
      // A scheduler that refused its flags has exited by now; pods would wait for it forever.
      await waitFor('kube-scheduler', scheduler, deadline, async () => alive(scheduler), dir);
    }
    return plane;
  } catch (error) {
    await stopControlPlane(dir);
    throw error;
  }
}

function apiserverArgs(state: State, port: number, extra: string[], bindAddress = '127.0.0.1', advertiseAddress = bindAddress): string[] {
  const { dir } = state;
  return [
    `--etcd-servers=${state.etcdUrl}`,
    `--bind-address=${bindAddress}`, `--advertise-address=${advertiseAddress}`, `--secure-port=${port}`,
    // For logs and exec through the kubelet; by the node's address, never a name looked up off the machine.
    `--kubelet-client-certificate=${join(dir, 'apiserver-kubelet-client.crt')}`, `--kubelet-client-key=${join(dir, 'apiserver-kubelet-client.key')}`,
    '--kubelet-preferred-address-types=InternalIP',
    `--cert-dir=${join(dir, 'certs')}`,
    `--tls-cert-file=${join(dir, 'apiserver.crt')}`, `--tls-private-key-file=${join(dir, 'apiserver.key')}`,
    `--client-ca-file=${state.caFile}`,
    `--token-auth-file=${join(dir, 'tokens.csv')}`,
    '--authorization-mode=RBAC',
    '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
    `--service-account-key-file=${join(dir, 'sa.pub')}`, `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
    `--service-cluster-ip-range=${nodeNetwork.serviceCidr}`,
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
    // Only the first API server keeps the `kubernetes` Service's endpoints: pods must not be sent here.
    pid = startDaemon(join(state.binDir, 'kube-apiserver'), apiserverArgs(state, port!, ['--endpoint-reconciler-type=none'], bindAddress), join(state.dir, `kube-apiserver-${port}.log`));
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

/** Stops whatever `startControlPlane` started in `dir`, the node first: TERM to each process group, then KILL. */
export async function stopControlPlane(dir: string): Promise<void> {
  await stopNode(resolve(dir));
  const state = readState(dir);
  if (!state) return;
  for (const { pid } of [...state.pids].reverse()) await stopDaemon(pid);
  rmSync(join(dir, 'state.json'), { force: true });
}

/** The running control plane in `dir`, if its API server answers. */
export async function runningControlPlane(dir: string): Promise<ControlPlane | undefined> {
  const state = readState(dir);
  if (!state || !state.pids.every(({ pid }) => alive(pid))) return undefined;
  if (state.node && !nodeRunning(resolve(dir))) return undefined;
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

/**
 * A CA, a serving certificate for loopback, the node's bridge and the `kubernetes` Service, a client
 * certificate the API server shows the kubelet, a service-account signing key and an admin token.
 * Each is made once per directory; a serving certificate for other addresses is made again.
 */
function writeCredentials(dir: string): Pick<ControlPlane, 'caFile' | 'caPem' | 'adminToken'> {
  const at = (f: string) => join(dir, f);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const signed = (name: string, subject: string, ext: string) => {
    openssl('req', ...ecKey, '-subj', subject, '-keyout', at(`${name}.key`), '-out', at(`${name}.csr`));
    writeFileSync(at(`${name}.ext`), ext);
    openssl('x509', '-req', '-in', at(`${name}.csr`), '-CA', at('ca.crt'), '-CAkey', at('ca.key'), '-CAcreateserial',
      '-days', '3650', '-extfile', at(`${name}.ext`), '-out', at(`${name}.crt`));
  };
  if (!existsSync(at('ca.crt'))) {
    openssl('req', '-x509', ...ecKey, '-days', '3650', '-subj', '/CN=hab-pod-role-test-ca', '-keyout', at('ca.key'), '-out', at('ca.crt'));
    // Kubernetes' key parser wants SEC1 ("EC PRIVATE KEY"), not the PKCS#8 that genpkey writes.
    openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', at('sa.key'));
    openssl('ec', '-in', at('sa.key'), '-pubout', '-out', at('sa.pub'));
    writeFileSync(at('tokens.csv'), `${randomBytes(24).toString('hex')},admin,admin,"system:masters"\n`, { mode: 0o600 });
  }
  // 198.18.0.1 and 198.18.1.1: the bridges of the pod networks the Redis tests and the demo build;
  // 198.19.0.1: the real node's bridge; 198.19.1.1: the `kubernetes` Service, how pods reach it.
  const serving = `subjectAltName=IP:127.0.0.1,IP:${nodeNetwork.kubernetesService},IP:198.18.0.1,IP:198.18.1.1,IP:${nodeNetwork.gateway},DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n` +
    'extendedKeyUsage=serverAuth\n';
  if (!existsSync(at('apiserver.ext')) || readFileSync(at('apiserver.ext'), 'utf8') !== serving) signed('apiserver', '/CN=kube-apiserver', serving);
  if (!existsSync(at('apiserver-kubelet-client.crt'))) {
    signed('apiserver-kubelet-client', '/O=system:masters/CN=kube-apiserver-kubelet-client', 'extendedKeyUsage=clientAuth\n');
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
      const withNode = process.env.REAL_NODE !== 'off';
      const plane = await startControlPlane({ dir, binDir: buildControlPlane(), node: withNode && { persistent: true } }).catch((error: unknown) => {
        if (!(error instanceof NodeBusyError)) throw error;
        console.error(`control plane not started: ${error.message} (or start one without the node: REAL_NODE=off make cluster-up).`);
        process.exit(75);
      });
      console.log(`control plane up at ${plane.server} in ${((Date.now() - started) / 1000).toFixed(1)} s; kubeconfig: ${plane.kubeconfig}`);
      if (plane.node) console.log(`node ${plane.node.name} ready: ${Object.entries(plane.node.timings).map(([step, s]) => `${step} ${s.toFixed(2)} s`).join(', ')}`);
    }
  } else if (command === 'down') {
    await stopControlPlane(dir);
    console.log('control plane and node stopped');
  } else {
    console.error('usage: node tools/control-plane.ts up|down [DIR]');
    process.exitCode = 64;
  }
}
