// What the real node changes on the machine outside its own directory: recorded before it starts, undone after it stops or was killed.
//
// The kubelet sets machine-wide sysctls and iptables chains, containerd mounts rootfs and network
// namespaces, runc makes cgroups, kube-proxy writes an nftables table. A record in /run (tmpfs: gone at
// reboot, as the sysctls it holds are) says what the machine was like and who holds the node, so the
// next start can undo what a killed run left, and a second run refuses to take a node another one holds.

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { alive } from './daemon.ts';

export const nodeNetwork = {
  bridge: 'hprnode0',
  /** The bridge's address: the node's IP, the pods' gateway, where they reach the API server. */
  gateway: '198.19.0.1',
  podCidr: '198.19.0.0/24',
  /**
   * The Services' range, inside the benchmarking block (RFC 2544) as the bridge is: it is routed to the
   * bridge, and 10.0.0.0/24, the usual choice, is many a machine's own network, which the route and the
   * conntrack flush at the end would take over.
   */
  serviceCidr: '198.19.1.0/24',
  /** The `kubernetes` Service: the first address of the range, where pods find the API server. */
  kubernetesService: '198.19.1.1',
} as const;
/** The kubelet's cgroup root, so only the node's own pods' cgroups are ever touched. */
export const cgroupRoot = 'hab-pod-role';
/** The CNI network's name. */
export const cniNetwork = 'hab-pod-role';

const recordDir = '/run/hab-pod-role';
const recordFile = join(recordDir, 'node.json');
const containerLogsDir = '/var/log/containers'; // fixed in the kubelet
/**
 * Paths fixed in the kubelet (container log links, the device-plugin socket), containerd 1.6 (its
 * shims' sockets), libcni (its result cache) and libmount (the table of mounts the kubelet makes).
 */
const outsideDirs = [containerLogsDir, '/var/lib/kubelet', '/run/containerd', '/run/containerd/s', '/var/lib/cni', '/run/mount'];
/** Of those, the ones only the node's programs write to: removed whole. The others only once empty. */
const nodeOnlyDirs = ['/var/lib/kubelet', '/run/containerd'];
/** The node's programs, and the control plane's: only these are ever killed, and only when they run from the cluster's directory. */
const nodePrograms = ['kubelet', 'kube-proxy', 'containerd', 'containerd-shim-runc-v2', 'socat'];
const controlPlanePrograms = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler'];
/**
 * Set by the kubelet (vm.*, kernel.*), by the node for routing Service traffic between pods
 * (ip_forward), and by kube-proxy when some options are on (route_localnet, conntrack).
 */
const sysctls = [
  'vm.overcommit_memory', 'vm.panic_on_oom', 'kernel.panic', 'kernel.panic_on_oops',
  'kernel.keys.root_maxkeys', 'kernel.keys.root_maxbytes',
  'net.ipv4.ip_forward', 'net.ipv4.conf.all.route_localnet',
  'net.bridge.bridge-nf-call-iptables', 'net.bridge.bridge-nf-call-ip6tables',
  'net.netfilter.nf_conntrack_max', 'net.netfilter.nf_conntrack_tcp_timeout_established',
  'net.netfilter.nf_conntrack_tcp_timeout_close_wait', 'net.netfilter.nf_conntrack_tcp_be_liberal',
];
/** iptables-nft tables the kubelet writes its chains into (ip and ip6). */
const iptablesTables = ['filter', 'nat', 'mangle'];

interface MachineRecord {
  owner: { pid: number; started: string };
  clusterDir: string;
  /** Removed by the next start if this run was killed (a normal end removes them itself). */
  scratchDirs: string[];
  sysctls: Record<string, string>;
  /** `nft list tables` before the node started ("table ip filter", ...). */
  nftTables: string[];
  /** Directories outside clusterDir that did not exist before and are removed after. */
  createdDirs: string[];
}

export class NodeBusyError extends Error {}

/**
 * Takes the machine for the cluster in `clusterDir` (its node in `clusterDir/node`), held by process
 * `owner`: undoes what a killed run left, then records the state to restore. `scratchDir` (a test run's
 * temporary directory) is removed by the next start if this run is killed. Throws NodeBusyError when a
 * live process holds the node.
 */
export function claimMachine(options: { clusterDir: string; owner?: number; scratchDir?: string }): void {
  const owner = options.owner ?? process.pid;
  const previous = readRecord();
  if (previous) {
    if (holds(previous.owner) && previous.owner.pid !== owner) {
      throw new NodeBusyError(`the real node is in use by process ${previous.owner.pid} (another test run, or \`make cluster-up\` in ${previous.clusterDir}); wait for it to end or run \`make cluster-down\``);
    }
    // A killed run: its control plane and scratch directory go too, as its own teardown would have removed them.
    restoreMachine(previous, [...nodePrograms, ...controlPlanePrograms]);
    for (const dir of previous.scratchDirs) rmSync(dir, { recursive: true, force: true });
  }
  const foreign = foreignKubernetes();
  if (foreign) throw new NodeBusyError(`this machine already has ${foreign} that the project's node did not make; another Kubernetes node would fight over them: stop it first`);
  const record: MachineRecord = {
    owner: { pid: owner, started: startTime(owner) },
    clusterDir: options.clusterDir,
    scratchDirs: options.scratchDir ? [options.scratchDir] : [],
    sysctls: Object.fromEntries(sysctls.flatMap((s) => {
      const value = readSysctl(s);
      return value === undefined ? [] : [[s, value]];
    })),
    nftTables: nftTables(),
    createdDirs: outsideDirs.filter((d) => !existsSync(d)),
  };
  mkdirSync(recordDir, { recursive: true });
  writeFileSync(recordFile, JSON.stringify(record, null, 2));
}

/**
 * Hands the node to another holder (`cluster-up` hands it from its own short-lived process to the kubelet;
 * a restarted kubelet that held it hands it to its successor). With `from`, only if that process holds it.
 */
export function transferMachine(owner: number, from?: number): void {
  const record = readRecord();
  if (!record || (from !== undefined && record.owner.pid !== from)) return;
  record.owner = { pid: owner, started: startTime(owner) };
  writeFileSync(recordFile, JSON.stringify(record, null, 2));
}

/** Whether the machine's record names the cluster in `clusterDir` (after a reboot it names none: its pids mean nothing). */
export function machineRecordedFor(clusterDir: string): boolean {
  return readRecord()?.clusterDir === clusterDir;
}

/** Undoes everything the node of `clusterDir` did to the machine, also when its processes were killed; then forgets the record. */
export function releaseMachine(clusterDir: string): void {
  const record = readRecord();
  if (record && record.clusterDir === clusterDir) restoreMachine(record, nodePrograms);
}

function restoreMachine(record: MachineRecord, programs: string[]): void {
  killClusterProcesses(record.clusterDir, programs);
  unmountUnder(record.clusterDir);
  removeCgroups();
  removeNetwork();
  removeNetfilter(record.nftTables);
  for (const [name, value] of Object.entries(record.sysctls)) if (readSysctl(name) !== value) writeSysctl(name, value);
  removeContainerLogLinks(record.clusterDir);
  removeCniResults(record.clusterDir);
  removeShimSockets(record.clusterDir);
  for (const dir of record.createdDirs) {
    if (nodeOnlyDirs.includes(dir)) rmSync(dir, { recursive: true, force: true });
    else removeEmptyDirs(dir);
  }
  // Checked, not assumed: a run that leaves something says what, and keeps the record for the next start.
  const left = leftovers(record, programs);
  if (left.length > 0) throw new Error(`stopping the node left this on the machine: ${left.join('; ')}`);
  rmSync(recordFile, { force: true });
  try {
    rmdirSync(recordDir);
  } catch {
    // not empty or gone: nothing of ours
  }
}

function leftovers(record: MachineRecord, programs: string[]): string[] {
  // Names the bridge too, so it is not checked again here.
  const foreign = foreignKubernetes();
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.split(' ')[4]?.startsWith(`${record.clusterDir}/`));
  return [
    ...Object.entries(record.sysctls).filter(([name, value]) => readSysctl(name) !== value).map(([name, value]) => `${name} is ${readSysctl(name)}, was ${value}`),
    ...clusterProcesses(record.clusterDir, programs).map((pid) => `process ${pid}`),
    ...(mounts.length ? [`${mounts.length} mounts under ${record.clusterDir}`] : []),
    ...nodeCgroups().map((cg) => `cgroup ${cg}`),
    ...(foreign ? [foreign] : []),
    ...nodeOnlyDirs.filter((d) => record.createdDirs.includes(d) && existsSync(d)),
  ];
}

/** The cluster's daemons of `programs`, every container shim its containerd started, every process in the node's cgroups. */
function killClusterProcesses(clusterDir: string, programs: string[]): void {
  for (let round = 0; round < 50; round++) {
    const pids = new Set<number>([...clusterProcesses(clusterDir, programs), ...cgroupProcesses()]);
    pids.delete(process.pid);
    if (pids.size === 0) return;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    pause(100);
  }
  throw new Error(`processes of the cluster in ${clusterDir} would not die`);
}

/** Those of `programs` whose command line names the cluster's directory (a data dir, a config, a socket or log). */
function clusterProcesses(clusterDir: string, programs: string[]): number[] {
  return readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number).filter((pid) => {
    try {
      return programs.includes(basename(readlinkSync(`/proc/${pid}/exe`))) &&
        readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(`${clusterDir}/`) && alive(pid);
    } catch {
      return false;
    }
  });
}

function cgroupHierarchies(): string[] {
  // cgroup v2 has one hierarchy, mounted at /sys/fs/cgroup itself; its children are cgroups, not hierarchies.
  if (existsSync('/sys/fs/cgroup/cgroup.controllers')) return ['/sys/fs/cgroup'];
  return readdirSync('/sys/fs/cgroup').map((h) => join('/sys/fs/cgroup', h)).filter((h) => existsSync(join(h, 'cgroup.procs')));
}

/** Depth first, children before parents, every cgroup under the node's root in every hierarchy. */
function nodeCgroups(): string[] {
  const walk = (dir: string): string[] => [
    ...readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).flatMap((e) => walk(join(dir, e.name))),
    dir,
  ];
  return cgroupHierarchies().map((h) => join(h, cgroupRoot)).filter(existsSync).flatMap(walk);
}

function cgroupProcesses(): number[] {
  return nodeCgroups().flatMap((cg) => {
    try {
      return readFileSync(join(cg, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
    } catch {
      return [];
    }
  });
}

/** The kubelet's cgroup root must exist before it starts; cpuset needs its CPUs and memory nodes copied in. */
export function createCgroupRoot(): void {
  for (const hierarchy of cgroupHierarchies()) {
    const dir = join(hierarchy, cgroupRoot);
    mkdirSync(dir, { recursive: true });
    for (const file of ['cpuset.cpus', 'cpuset.mems']) {
      if (existsSync(join(hierarchy, file))) writeFileSync(join(dir, file), readFileSync(join(hierarchy, file)));
    }
  }
}

function removeCgroups(): void {
  for (let round = 0; ; round++) {
    const left = nodeCgroups().filter((cg) => {
      try {
        rmdirSync(cg);
        return false;
      } catch {
        return true;
      }
    });
    if (left.length === 0) return;
    if (round > 50) throw new Error(`cgroups of the node would not go: ${left.join(', ')}`);
    pause(100);
  }
}

/** Lazily, deepest first: the kubelet bind-mounts its root onto itself, containerd mounts rootfs and netns there. */
function unmountUnder(dir: string): void {
  const mounts = () => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4]).filter((m): m is string => !!m)
    .map((m) => m.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((m) => m === dir || m.startsWith(`${dir}/`));
  for (let round = 0; round < 10; round++) {
    const list = mounts().sort((a, b) => b.length - a.length);
    if (list.length === 0) return;
    for (const m of list) execQuiet('umount', ['-l', m]);
  }
  throw new Error(`mounts under ${dir} would not go: ${mounts().join(', ')}`);
}

/** The bridge takes its routes (the pod subnet's and the service CIDR's) with it; pod veths went with their netns. */
function removeNetwork(): void {
  if (existsSync(`/sys/class/net/${nodeNetwork.bridge}`)) execFileSync('ip', ['link', 'del', nodeNetwork.bridge]);
  execQuiet('conntrack', ['-D', '-s', nodeNetwork.podCidr]);
  execQuiet('conntrack', ['-D', '-d', nodeNetwork.podCidr]);
  execQuiet('conntrack', ['-D', '-d', nodeNetwork.serviceCidr]);
}

/** kube-proxy's tables, the kubelet's KUBE-* chains and the jumps to them; tables the node brought, once empty. */
function removeNetfilter(tablesBefore: string[]): void {
  if (!hasCommand('nft')) return;
  for (const family of ['ip', 'ip6']) {
    execQuiet('nft', ['delete', 'table', family, 'kube-proxy']);
    for (const table of iptablesTables) {
      const listed = nftJson(['list', 'table', family, table]);
      if (!listed) continue;
      const jumps = listed.filter((o) => o.rule && isKubeJump(o.rule.expr) && !o.rule.chain.startsWith('KUBE-'));
      for (const { rule } of jumps) execFileSync('nft', ['delete', 'rule', family, table, rule.chain, 'handle', String(rule.handle)]);
      const kubeChains = listed.filter((o) => o.chain?.name.startsWith('KUBE-')).map((o) => o.chain.name as string);
      for (const chain of kubeChains) execFileSync('nft', ['flush', 'chain', family, table, chain]);
      for (const chain of kubeChains) execFileSync('nft', ['delete', 'chain', family, table, chain]);
      const after = nftJson(['list', 'table', family, table]) ?? [];
      const empty = !after.some((o) => o.rule) && after.filter((o) => o.chain).every((o) => o.chain.hook && (o.chain.policy ?? 'accept') === 'accept');
      if (empty && !tablesBefore.includes(`table ${family} ${table}`)) execFileSync('nft', ['delete', 'table', family, table]);
    }
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type NftObject = Record<string, any>;

function nftJson(args: string[]): NftObject[] | undefined {
  try {
    const out = execFileSync('nft', ['-j', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return (JSON.parse(out) as { nftables: NftObject[] }).nftables;
  } catch {
    return undefined; // no such table
  }
}

function isKubeJump(expr: NftObject[]): boolean {
  return expr.some((e) => String(e.jump?.target ?? e.goto?.target ?? '').startsWith('KUBE-'));
}

function nftTables(): string[] {
  if (!hasCommand('nft')) return [];
  return execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' }).split('\n').filter(Boolean);
}

/** Another Kubernetes node's traces, which this machine's cleanup would otherwise take for ours. */
function foreignKubernetes(): string | undefined {
  if (nftTables().some((t) => t.endsWith(' kube-proxy'))) return 'a kube-proxy nftables table';
  for (const family of ['ip', 'ip6']) {
    for (const table of iptablesTables) {
      if (nftJson(['list', 'table', family, table])?.some((o) => o.chain?.name.startsWith('KUBE-'))) return `KUBE-* chains in ${family} ${table}`;
    }
  }
  if (existsSync(`/sys/class/net/${nodeNetwork.bridge}`)) return `a network interface named ${nodeNetwork.bridge} (\`ip link del ${nodeNetwork.bridge}\` if it is a leftover)`;
  return undefined;
}

/** The kubelet links each container's log into /var/log/containers; only links into the cluster's directory go. */
function removeContainerLogLinks(clusterDir: string): void {
  if (!existsSync(containerLogsDir)) return;
  for (const name of readdirSync(containerLogsDir)) {
    const link = join(containerLogsDir, name);
    try {
      if (readlinkSync(link).startsWith(`${clusterDir}/`)) rmSync(link);
    } catch {
      // not a link
    }
  }
}

/**
 * libcni caches each attachment's result under /var/lib/cni/results as NETWORK-SANDBOXID-IFNAME (the
 * node's network and the loopback one); a sandbox killed with the node never had its DEL to remove it.
 */
function removeCniResults(clusterDir: string): void {
  const dir = '/var/lib/cni/results';
  const sandboxes = sandboxIds(clusterDir);
  if (!existsSync(dir) || sandboxes.length === 0) return;
  for (const name of readdirSync(dir)) {
    if (sandboxes.some((id) => name === `${cniNetwork}-${id}-eth0` || name === `cni-loopback-${id}-lo`)) rmSync(join(dir, name), { force: true });
  }
}

/**
 * A shim that is killed leaves its socket in /run/containerd/s, named by containerd 1.6's
 * shim.SocketAddress: the sha256 of "ADDRESS/NAMESPACE/ID", the address being the node's containerd socket
 * and the id the pod's sandbox. Only those names go: the directory may be another containerd's too.
 */
function removeShimSockets(clusterDir: string): void {
  const dir = '/run/containerd/s';
  if (!existsSync(dir)) return;
  const address = resolve(clusterDir, 'node', 'containerd.sock');
  for (const id of sandboxIds(clusterDir)) {
    rmSync(join(dir, createHash('sha256').update(`${address}/k8s.io/${id}`).digest('hex')), { force: true });
  }
}

/** Every pod sandbox the node's containerd has made (its CRI plugin keeps one directory each), none if it made none. */
function sandboxIds(clusterDir: string): string[] {
  const dir = join(clusterDir, 'node', 'containerd', 'root', 'io.containerd.grpc.v1.cri', 'sandboxes');
  return existsSync(dir) ? readdirSync(dir) : [];
}

function removeEmptyDirs(dir: string): void {
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir, { withFileTypes: true })) if (entry.isDirectory()) removeEmptyDirs(join(dir, entry.name));
  try {
    rmdirSync(dir);
  } catch {
    // something else keeps a file there
  }
}

function readRecord(): MachineRecord | undefined {
  return existsSync(recordFile) ? (JSON.parse(readFileSync(recordFile, 'utf8')) as MachineRecord) : undefined;
}

/** Alive and the same process (not a new one that reuses the pid). */
function holds(owner: MachineRecord['owner']): boolean {
  return alive(owner.pid) && startTime(owner.pid) === owner.started;
}

function startTime(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[19]!;
  } catch {
    return '';
  }
}

const sysctlPath = (name: string) => join('/proc/sys', ...name.split('.'));

function readSysctl(name: string): string | undefined {
  try {
    return readFileSync(sysctlPath(name), 'utf8').trim();
  } catch {
    return undefined;
  }
}

export function writeSysctl(name: string, value: string): void {
  writeFileSync(sysctlPath(name), value);
}

export function hasCommand(name: string): boolean {
  return ['/usr/sbin', '/sbin', '/usr/bin', '/bin'].some((d) => existsSync(join(d, name)) && statSync(join(d, name)).isFile());
}

const pause = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

function execQuiet(command: string, args: string[]): void {
  try {
    execFileSync(command, args, { stdio: 'ignore' });
  } catch {
    // nothing to remove
  }
}
