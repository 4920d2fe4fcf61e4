// A real Kubernetes node beside the control plane: containerd, runc and the CNI bridge, the kubelet and kube-proxy.
//
// Everything lives under DIR/node (containerd's root, state and socket, the kubelet's root, pod logs);
// the machine-wide changes are recorded and undone by node-machine.ts. Pods get addresses in
// 198.19.0.0/24 on the bridge hprnode0 and reach the API server through the `kubernetes` Service
// (198.19.1.1:443, kube-proxy) at the bridge's address, where a forwarder hands connections to loopback.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { alive, freePorts, httpGet, startDaemon, stopDaemon, waitFor } from './daemon.ts';
import { buildImage } from './image.ts';
import { cgroupRoot, claimMachine, cniNetwork, createCgroupRoot, hasCommand, machineRecordedFor, nodeNetwork, releaseMachine, transferMachine, writeSysctl } from './node-machine.ts';

export { NodeBusyError, nodeNetwork } from './node-machine.ts';

const repoRoot = resolve(fileURLToPath(import.meta.url), '../..');
export const nodeName = 'hab-pod-role-node';
export const pauseImage = 'local.test/pause:1';

export interface RealNode {
  name: string;
  dir: string;
  /** containerd's socket, for `ctr -a SOCKET -n k8s.io images import`. */
  containerdSocket: string;
  /** Where the kubelet keeps pods' volumes (`pods/UID/volumes/...`). */
  kubeletRoot: string;
  podLogsDir: string;
  /** Seconds from the start of the node to each step. */
  timings: Record<string, number>;
}

/** What the node needs from the control plane it joins. */
export interface NodePlane {
  dir: string;
  binDir: string;
  port: number;
  caFile: string;
  caPem: string;
  adminToken: string;
  kubeconfig: string;
  server: string;
}

interface NodeState {
  /** Each daemon with what started it, so one can be restarted as it was. */
  /** `healthz`: the URL that answers once the daemon works, for restartNodeDaemon. */
  pids: { name: string; pid: number; binary?: string; args?: string[]; env?: Record<string, string>; healthz?: string }[];
}

/** Where the node of the control plane in `clusterDir` keeps its state: what it started. */
const stateFile = (clusterDir: string) => join(clusterDir, 'node', 'state.json');

/** The node's state, or undefined when no node was started there (or it was stopped). */
function readNodeState(clusterDir: string): NodeState | undefined {
  const file = stateFile(clusterDir);
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as NodeState) : undefined;
}

/**
 * Starts the node for the control plane in `plane.dir` and waits until it is Ready, untainted by the
 * node lifecycle controller, and kube-proxy has synced. `scratchDir` goes with the machine record
 * (a killed test run's temporary directory is removed by the next start).
 */
export async function startNode(plane: NodePlane, options: { deadline: number; persistent?: boolean; scratchDir?: string }): Promise<RealNode> {
  const started = Date.now();
  const timings: Record<string, number> = {};
  const mark = (step: string) => (timings[step] = (Date.now() - started) / 1000);
  const dir = join(plane.dir, 'node');
  missingPrerequisite();
  // Outside the try: a node another run holds must not be torn down by this one's failure.
  claimMachine({ clusterDir: plane.dir, ...(options.scratchDir ? { scratchDir: options.scratchDir } : {}) });
  const state: NodeState = { pids: [] };
  const saveState = () => writeFileSync(stateFile(plane.dir), JSON.stringify(state, null, 2));
  const node: RealNode = {
    name: nodeName, dir, timings,
    containerdSocket: join(dir, 'containerd.sock'),
    kubeletRoot: join(dir, 'kubelet'),
    podLogsDir: join(dir, 'pod-logs'),
  };
  try {
    rmSync(dir, { recursive: true, force: true });
    for (const d of ['containerd', 'cni', 'kubelet', 'pod-logs', 'images']) mkdirSync(join(dir, d), { recursive: true });
    const start = (name: string, binary: string, args: string[], env?: Record<string, string>, healthz?: string) => {
      const pid = startDaemon(binary, args, join(dir, `${name}.log`), env);
      state.pids.push({ name, pid, binary, args, ...(env ? { env } : {}), ...(healthz ? { healthz } : {}) });
      saveState();
      return pid;
    };
    const [kubeletPort, kubeletHealthz, proxyHealthz, proxyMetrics] = await freePorts(4);

    createNetwork();
    createCgroupRoot();
    mark('network');

    writeFileSync(join(dir, 'containerd.toml'), containerdConfig(dir));
    writeFileSync(join(dir, 'cni', '10-hab-pod-role.conflist'), cniConfig(dir));
    // Image pulls would leave the machine: a proxy address where nothing listens makes any pull fail at once.
    const noPulls = { HTTP_PROXY: 'http://127.0.0.1:9', HTTPS_PROXY: 'http://127.0.0.1:9', NO_PROXY: '' };
    const containerd = start('containerd', 'containerd', ['--config', join(dir, 'containerd.toml')], noPulls);
    await waitFor('containerd', containerd, options.deadline, async () => ctr(node, 'version').includes('Server:'), dir);
    mark('containerd');

    importImage(node, buildPauseImage(join(dir, 'images')));
    mark('pause image');

    // The API server advertises the bridge's address for the `kubernetes` Service and listens on loopback.
    start('api-forwarder', 'socat', ['-lf', join(dir, 'api-forwarder.log'),
      `TCP-LISTEN:${plane.port},bind=${nodeNetwork.gateway},reuseaddr,fork,nodelay`, `TCP:127.0.0.1:${plane.port},nodelay`]);

    writeFileSync(join(dir, 'resolv.conf'), resolvConf);
    writeFileSync(join(dir, 'kubelet.yaml'), kubeletConfig(node, plane, kubeletPort!, kubeletHealthz!));
    const kubelet = start('kubelet', join(plane.binDir, 'kubelet'), [
      `--config=${join(dir, 'kubelet.yaml')}`, `--kubeconfig=${plane.kubeconfig}`, `--root-dir=${node.kubeletRoot}`,
      // Its default is /var/lib/kubelet/pki whatever the root dir.
      `--cert-dir=${join(node.kubeletRoot, 'pki')}`,
      `--hostname-override=${nodeName}`, `--node-ip=${nodeNetwork.gateway}`, '--v=1',
    ], undefined, `http://127.0.0.1:${kubeletHealthz}/healthz`);
    await waitFor('kubelet', kubelet, options.deadline, async () => nodeSchedulable(await httpGet(`${plane.server}/api/v1/nodes/${nodeName}`, plane)), dir);
    mark('node ready');

    writeFileSync(join(dir, 'kube-proxy.yaml'), kubeProxyConfig(plane, proxyHealthz!, proxyMetrics!));
    const proxyHealthzUrl = `http://127.0.0.1:${proxyHealthz}/healthz`;
    const kubeProxy = start('kube-proxy', join(plane.binDir, 'kube-proxy'), [`--config=${join(dir, 'kube-proxy.yaml')}`, '--v=1'], undefined, proxyHealthzUrl);
    await waitFor('kube-proxy', kubeProxy, options.deadline, async () => (await httpGet(proxyHealthzUrl)).includes('lastUpdated'), dir);
    mark('kube-proxy synced');

    // `cluster-up` ends while the node runs on: the kubelet then stands for it.
    if (options.persistent) transferMachine(kubelet);
    return node;
  } catch (error) {
    await stopNode(plane.dir);
    throw error;
  }
}

/** Stops the node of the control plane in `clusterDir` and undoes what it did to the machine; a no-op when none runs. */
export async function stopNode(clusterDir: string): Promise<void> {
  const state = readNodeState(clusterDir);
  if (state && machineRecordedFor(clusterDir)) {
    // The kubelet first, so it restarts nothing while the rest goes; the containers go with the machine's cleanup.
    const kubeletFirst = [...state.pids].reverse().sort((a, b) => Number(b.name === 'kubelet') - Number(a.name === 'kubelet'));
    for (const { pid } of kubeletFirst) await stopDaemon(pid, 5_000);
  }
  rmSync(stateFile(clusterDir), { force: true });
  releaseMachine(clusterDir);
}

/**
 * Stops the node's kubelet or kube-proxy and starts it again as it was started, then waits until its
 * health endpoint answers: an upgrade or a crash of the daemon, with containerd (and so the pods) left running.
 */
export async function restartNodeDaemon(clusterDir: string, name: 'kubelet' | 'kube-proxy', deadline = Date.now() + 60_000): Promise<void> {
  const dir = join(clusterDir, 'node');
  const state = readNodeState(clusterDir);
  const daemon = state?.pids.find((p) => p.name === name);
  if (!state || !daemon?.binary || !daemon.args || !daemon.healthz) throw new Error(`the node in ${clusterDir} has no ${name} to restart`);
  const stopped = daemon.pid;
  await stopDaemon(stopped, 5_000);
  daemon.pid = startDaemon(daemon.binary, daemon.args, join(dir, `${name}.log`), daemon.env);
  // A `cluster-up` node is held by its kubelet: a record naming the stopped one would read as a killed run.
  transferMachine(daemon.pid, stopped);
  writeFileSync(stateFile(clusterDir), JSON.stringify(state, null, 2));
  const healthz = daemon.healthz;
  await waitFor(name, daemon.pid, deadline, async () => /ok|lastUpdated/.test(await httpGet(healthz)), dir);
}

/** Whether the node's daemons of the control plane in `clusterDir` all run. */
export function nodeRunning(clusterDir: string): boolean {
  return readNodeState(clusterDir)?.pids.every(({ pid }) => alive(pid)) ?? false;
}

/** Loads a docker-archive into the node's containerd, where the kubelet finds it (`imagePullPolicy: Never`). */
export function importImage(node: Pick<RealNode, 'containerdSocket'>, archive: string): void {
  ctr(node, 'images', 'import', archive);
}

/** `ctr` against the node's containerd, in the kubelet's namespace (k8s.io); its output. */
export function ctr(node: Pick<RealNode, 'containerdSocket'>, ...args: string[]): string {
  return execFileSync('ctr', ['-a', node.containerdSocket, '-n', 'k8s.io', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A static C program (tools/images/pause.c) alone in its image. */
function buildPauseImage(workDir: string): string {
  const binary = join(workDir, 'pause');
  execFileSync('gcc', ['-static', '-O2', '-o', binary, join(repoRoot, 'tools/images/pause.c')], { stdio: ['ignore', 'ignore', 'pipe'] });
  return buildImage({ tag: pauseImage, entries: [{ from: binary, to: '/pause' }], entrypoint: ['/pause'] }, workDir);
}

/** Debian's packages the node runs (installed by `make system-deps`). */
function missingPrerequisite(): void {
  const needed = ['containerd', 'containerd-shim-runc-v2', 'ctr', 'runc', 'socat', 'nft', 'iptables', 'conntrack', 'gcc', 'tar'];
  const missing = needed.filter((c) => !hasCommand(c));
  if (!existsSync('/usr/lib/cni/bridge')) missing.push('/usr/lib/cni/bridge');
  if (missing.length > 0) throw new Error(`the real node needs ${missing.join(', ')}: run \`make system-deps\` (or set REAL_NODE=off to run without the node)`);
  // The teardown removes the kubelet's KUBE-* chains through nft: chains iptables-legacy made would stay behind.
  if (!execFileSync('iptables', ['-V'], { encoding: 'utf8' }).includes('nf_tables')) {
    throw new Error('the real node needs iptables in its nf_tables flavour (update-alternatives --set iptables /usr/sbin/iptables-nft), or set REAL_NODE=off to run without the node');
  }
}

function createNetwork(): void {
  const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  ip('link', 'add', nodeNetwork.bridge, 'type', 'bridge');
  ip('addr', 'add', `${nodeNetwork.gateway}/24`, 'dev', nodeNetwork.bridge);
  ip('link', 'set', nodeNetwork.bridge, 'up');
  // ClusterIP packets must never take the default route off the machine, not even before kube-proxy has synced.
  ip('route', 'add', nodeNetwork.serviceCidr, 'dev', nodeNetwork.bridge);
  // A pod reaching a Service backed by another pod is routed back out of the bridge. Pods have no
  // default route (see cniConfig), so nothing of theirs is forwarded off the machine.
  writeSysctl('net.ipv4.ip_forward', '1');
}

function nodeSchedulable(body: string): boolean {
  const node = JSON.parse(body) as { spec?: { taints?: { key: string }[] }; status?: { conditions?: { type: string; status: string }[] } };
  const ready = node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
  // The node lifecycle controller removes the not-ready taint the kubelet registers with.
  return !!ready && !(node.spec?.taints ?? []).some((t) => t.key === 'node.kubernetes.io/not-ready');
}

/** No nameserver a query could reach: pods must never send DNS off the machine. The tool needs none (the `kubernetes` Service is an address). */
const resolvConf = '# hab-pod-role node: no resolver on purpose\nnameserver 127.0.0.1\noptions attempts:1 timeout:1\n';

function containerdConfig(dir: string): string {
  const at = (p: string) => JSON.stringify(join(dir, p));
  return `version = 2
root = ${at('containerd/root')}
state = ${at('containerd/state')}
# Snapshotters and services this node does not use, some of which would touch paths outside its directory.
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = ${at('containerd.sock')}
[ttrpc]
  address = ${at('containerd.sock.ttrpc')}

[plugins."io.containerd.internal.v1.opt"]
  path = ${at('containerd/opt')}

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${pauseImage}"
  # Without CAP_SYS_RESOURCE runc cannot give the pause container -998; every sandbox would fail.
  restrict_oom_score_adj = true
  disable_apparmor = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = ${at('containerd/runc')}
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = ${at('cni')}
`;
}

function cniConfig(dir: string): string {
  return JSON.stringify({
    cniVersion: '0.4.0',
    name: cniNetwork,
    plugins: [{
      type: 'bridge',
      bridge: nodeNetwork.bridge,
      // The node made the bridge with its address; the plugin must not turn on forwarding or masquerade.
      isGateway: false,
      ipMasq: false,
      hairpinMode: true,
      ipam: {
        type: 'host-local',
        dataDir: join(dir, 'cni-ipam'),
        ranges: [[{ subnet: nodeNetwork.podCidr, rangeStart: '198.19.0.10', gateway: nodeNetwork.gateway }]],
        // Only the Services' range, through the bridge: a pod has no way off the machine.
        routes: [{ dst: nodeNetwork.serviceCidr }],
      },
    }],
  }, null, 2);
}

function kubeletConfig(node: RealNode, plane: NodePlane, port: number, healthzPort: number): string {
  return JSON.stringify({
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    cgroupDriver: 'cgroupfs',
    cgroupRoot: `/${cgroupRoot}`,
    // cgroup v1 is in maintenance mode: a warning, not a refusal, on these machines.
    failCgroupV1: false,
    failSwapOn: false,
    containerRuntimeEndpoint: `unix://${node.containerdSocket}`,
    podLogsDir: node.podLogsDir,
    volumePluginDir: join(node.dir, 'volume-plugins'),
    address: nodeNetwork.gateway,
    port,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    healthzPort,
    resolvConf: join(node.dir, 'resolv.conf'),
    // The API server (system:masters client certificate) may read logs and exec; nobody else.
    authentication: { anonymous: { enabled: false }, webhook: { enabled: true }, x509: { clientCAFile: plane.caFile } },
    authorization: { mode: 'Webhook' },
    // A shared developer machine's disk and memory are not this node's to police: no evictions, no image GC.
    evictionHard: { 'memory.available': '1Mi', 'nodefs.available': '1%', 'nodefs.inodesFree': '1%', 'imagefs.available': '1%' },
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    // Raising its own priority needs CAP_SYS_RESOURCE, which root does not have here.
    oomScoreAdj: 0,
  }, null, 2);
}

function kubeProxyConfig(plane: NodePlane, healthzPort: number, metricsPort: number): string {
  return JSON.stringify({
    apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
    kind: 'KubeProxyConfiguration',
    clientConnection: { kubeconfig: plane.kubeconfig },
    // One table of its own (ip/ip6 kube-proxy), removed whole at teardown.
    mode: 'nftables',
    hostnameOverride: nodeName,
    clusterCIDR: nodeNetwork.podCidr,
    nodePortAddresses: [`${nodeNetwork.gateway}/32`],
    healthzBindAddress: `127.0.0.1:${healthzPort}`,
    metricsBindAddress: `127.0.0.1:${metricsPort}`,
    oomScoreAdj: 0,
    // Zero leaves the machine's conntrack settings as they are.
    conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s', udpTimeout: '0s', udpStreamTimeout: '0s' },
  }, null, 2);
}
