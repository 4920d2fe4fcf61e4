// examples/redis brought to life without Habitat or a kubelet: its manifests on the real control plane,
// three members in network namespaces of their own, each run by the Supervisor stand-in from the real hooks.

import { chmodSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { startExtraApiServer, type ControlPlane, type ExtraApiServer } from '../../tools/control-plane.ts';
import { apiObjectsOnly, KubeAdmin } from '../../tools/kube-admin.ts';
import { tempDir } from './election.ts';
import { eventually } from './eventually.ts';
import { imageRoot, inImage } from './habitat.ts';
import { KubeletStandIn, type PodAccess } from './kubelet.ts';
import { createPodNetwork, type PodNetwork } from './network.ts';
import { SupervisedMember, type GroupState, type Tick } from './supervisor.ts';

const repoRoot = resolve(fileURLToPath(import.meta.url), '../../..');
export const members = ['redis-0', 'redis-1', 'redis-2'] as const;
export type Member = (typeof members)[number];
/** The origin the tool's package is built under here: not core, since there is no core/hab-pod-role. */
export const toolOrigin = 'acme';

export class RedisExample {
  readonly namespace: string;
  readonly admin: KubeAdmin;
  readonly kubelet: KubeletStandIn;
  readonly network: PodNetwork;
  readonly apiserver: ExtraApiServer;
  readonly members = new Map<Member, SupervisedMember>();
  private readonly plane: ControlPlane;
  private alive = new Set<Member>(members);
  private readonly gateways = new Map<Member, { host: string; port: number }>();
  /** The image a probe's command runs in: busybox at /bin, as in an exported image (no redis-cli). */
  private readonly image = imageRoot();

  private constructor(plane: ControlPlane, namespace: string, network: PodNetwork, apiserver: ExtraApiServer) {
    this.plane = plane;
    this.namespace = namespace;
    this.network = network;
    this.apiserver = apiserver;
    this.admin = new KubeAdmin(plane);
    this.kubelet = new KubeletStandIn(this.admin, namespace, `node-${namespace}`);
  }

  /** Applies the manifests, lets the StatefulSet controller create the pods, binds them and prepares the members. */
  static async start(plane: ControlPlane, namespace: string, subnet: 0 | 1): Promise<RedisExample> {
    const network = createPodNetwork(subnet, [...members]);
    // The members reach the API server where a pod would: at an address outside their own namespace.
    const apiserver = await startExtraApiServer(plane.dir, { bindAddress: network.gateway });
    const example = new RedisExample(plane, namespace, network, apiserver);
    try {
      await example.deploy();
    } catch (error) {
      await example.stop();
      throw error;
    }
    return example;
  }

  private async deploy(): Promise<void> {
    // The namespace the example's rbac.yaml is printed for; another test may have created it already.
    await this.admin.createNamespace(this.namespace).catch((error: { code?: number }) => {
      if (error?.code !== 409) throw error;
    });
    // The manifests as they are, but for the scheduler: this stand-in binds the pods itself, so kube-scheduler
    // must leave them to it (they never reach the real node).
    const overlay = tempDir('kustomize');
    writeFileSync(join(overlay, 'kustomization.yaml'), [
      'apiVersion: kustomize.config.k8s.io/v1beta1', 'kind: Kustomization',
      `resources: [${relative(overlay, join(repoRoot, 'examples/redis/kubernetes'))}]`,
      `patches: [{target: {kind: StatefulSet, name: redis}, patch: '[{"op": "add", "path": "/spec/template/spec/schedulerName", "value": "${apiObjectsOnly}"}]'}]`, '',
    ].join('\n'));
    await this.kubectl('apply', '--server-side', '-k', overlay);
    await this.kubelet.register();
    for (const pod of members) {
      await eventually(async () => (await this.admin.core.listNamespacedPod({ namespace: this.namespace })).items.some((p) => p.metadata?.name === pod), { what: `the StatefulSet controller creating ${pod}` });
      await this.kubelet.bind(pod);
      await this.kubelet.report(pod, this.network.ips.get(pod)!, false);
    }
    // The hooks' user must reach the service and package directories, which are under this one.
    chmodSync(tmpdir(), 0o755);
    const pkgs = await packages();
    for (const pod of members) {
      // As the kubelet mounts it: a token bound to this pod, the only kind the example's policy lets write,
      // readable by the container's user (0644): hooks run as the hab user.
      const account = await this.admin.mountToken(this.namespace, 'hab-pod-role', pod);
      readableByAll(account.dir);
      const member = new SupervisedMember({
        name: pod,
        ip: this.network.ips.get(pod)!,
        planDir: join(repoRoot, 'examples/redis'),
        svcDir: join(readableByAll(tempDir(`svc-${pod}`)), 'redis-leader'),
        service: 'redis-leader',
        pkgPaths: pkgs,
        netns: this.network.netns(pod),
        // What the pod gives the Supervisor, and the Supervisor its hooks.
        env: {
          POD_NAME: pod,
          POD_NAMESPACE: this.namespace,
          KUBERNETES_SERVICE_HOST: this.network.gateway,
          KUBERNETES_SERVICE_PORT: String(this.apiserver.port),
          HAB_POD_ROLE_SERVICE_ACCOUNT_DIR: account.dir,
          HOME: '/nonexistent',
          PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
        },
      });
      this.members.set(pod, member);
      this.gateways.set(pod, await member.startGateway());
    }
  }

  /** The group's state reaches every live member's Supervisor: one tick each (they tick independently). */
  async elect(leader: Member | undefined, election: GroupState['election'] = 'finished'): Promise<Record<string, Tick>> {
    const state: GroupState = {
      election,
      leader,
      members: members.map((m) => ({ name: m, ip: this.network.ips.get(m)!, alive: this.alive.has(m) })),
    };
    const results: Record<string, Tick> = {};
    await Promise.all([...this.alive].map(async (m) => {
      results[m] = await this.members.get(m)!.tick(state);
    }));
    return results;
  }

  /** `hab config apply` to the service group: every live member renders it at its next tick. */
  async configApply(values: Record<string, unknown>, leader: Member): Promise<Record<string, Tick>> {
    for (const m of this.alive) this.members.get(m)!.applyConfig(values);
    return this.elect(leader);
  }

  /** A member fails: its Supervisor (gateway included) and its Redis stop (Redis saves its data on TERM). */
  async fail(m: Member): Promise<number | undefined> {
    this.alive.delete(m);
    return this.members.get(m)!.shutdown();
  }

  /**
   * One health-check interval and one readiness probe per pod: each live Supervisor runs its
   * health-check hook, then the kubelet stand-in runs the StatefulSet's probe as the manifest says.
   */
  async probe(): Promise<Record<string, boolean>> {
    await Promise.all([...this.alive].map((m) => this.members.get(m)!.healthCheck()));
    const ready: Record<string, boolean> = {};
    for (const m of members) ready[m] = await this.kubelet.probe(m, this.network.ips.get(m)!, this.podAccess);
    return ready;
  }

  /** The Supervisor's gateway listens beside this process, not on the pod's address: port 9631 leads there. */
  private readonly podAccess: PodAccess = {
    address: (pod, port) => (port === 9631 ? this.gateways.get(pod as Member)! : { host: this.network.ips.get(pod as Member)!, port }),
    exec: async (pod, command) => {
      const [file, ...args] = ['ip', 'netns', 'exec', this.network.netns(pod), ...inImage(this.image, { PATH: '/bin' }, command)];
      return (await execa(file!, args, { reject: false, stdin: 'ignore', timeout: 10_000 })).exitCode ?? 1;
    },
  };

  /**
   * `kubectl exec POD -- hab pkg exec ORIGIN/hab-pod-role hab-pod-role ARGS`: the package's executable,
   * in the pod's network namespace, with the pod's environment.
   */
  tool(pod: Member, args: string[]) {
    const member = this.members.get(pod)!;
    const bin = join(member.spec.pkgPaths[`${toolOrigin}/hab-pod-role`]!, 'bin/hab-pod-role');
    return execa('ip', ['netns', 'exec', this.network.netns(pod), bin, ...args], { env: member.spec.env, extendEnv: false, reject: false, stdin: 'ignore' });
  }

  /** Runs `command` in the pod as a probe would: in its network namespace, in the image's root, with PATH=/bin. */
  execInPod(pod: Member, command: string[]): Promise<number> {
    return this.podAccess.exec(pod, command);
  }

  /** Until every live member but `leader` replicates it with its link up (the initial sync done). */
  async replicating(leader: Member): Promise<void> {
    const ip = this.network.ips.get(leader)!;
    for (const m of [...this.alive].filter((m) => m !== leader)) {
      await eventually(async () => new RegExp(`^slave\n${ip.replaceAll('.', '\\.')}\n6379\nconnected`).test(await this.redis(m, 'role')), { what: `${m} replicating ${leader}`, timeoutMs: 30_000 });
    }
  }

  /** redis-cli against a member's pod IP (from the host, as a client in the cluster would connect). */
  async redis(m: Member | string, ...args: string[]): Promise<string> {
    const ip = this.network.ips.get(m as Member) ?? m;
    const result = await execa('redis-cli', ['-h', ip, '-p', '6379', ...args], { reject: false, timeout: 10_000 });
    return result.stdout.trim();
  }

  /** `redis-cli -h SERVICE`: to the address the Service's EndpointSlices list (the first, as kube-proxy might). */
  async redisVia(service: string, ...args: string[]): Promise<string> {
    const endpoints = await this.kubelet.readyEndpoints(service);
    if (endpoints.length === 0) throw new Error(`${service} has no ready endpoint`);
    return this.redis(endpoints[0]!.ip, ...args);
  }

  async roles(): Promise<Record<string, string | null>> {
    const pods = await this.admin.core.listNamespacedPod({ namespace: this.namespace });
    return Object.fromEntries(pods.items.map((p) => [p.metadata!.name!, p.metadata?.labels?.role ?? null]));
  }

  kubectl(...args: string[]) {
    return execa(join(this.plane.binDir, 'kubectl'), [`--kubeconfig=${this.plane.kubeconfig}`, '-n', this.namespace, ...args]);
  }

  /**
   * Stops every member, the extra API server and the network: nothing is left running. The namespace goes
   * too (its pods force-deleted: no kubelet will confirm they stopped), so the example can be deployed again.
   */
  async stop(): Promise<void> {
    await Promise.all([...this.members.values()].map((m) => m.shutdown()));
    await this.apiserver.stop();
    this.network.destroy();
    await this.kubectl('delete', 'pods', '--all', '--grace-period=0', '--force').catch(() => undefined);
    await this.admin.core.deleteNamespace({ name: this.namespace }).catch(() => undefined);
    await eventually(async () => !(await this.admin.core.listNamespace()).items.some((n) => n.metadata?.name === this.namespace), { what: `namespace ${this.namespace} deleted`, timeoutMs: 60_000 });
  }
}

/**
 * The example's dependencies, by ident, where they are installed: hab-pod-role as its plan packages it
 * (the single executable from tools/build-sea.sh, built now from the current sources) under an origin
 * that is not core, and Redis from Debian's packages standing in for core/redis.
 */
async function packages(): Promise<Record<string, string>> {
  const root = tempDir('pkgs');
  const tool = join(root, `${toolOrigin}/hab-pod-role/0.1.0/20261121000000`);
  mkdirSync(join(tool, 'bin'), { recursive: true });
  await execa('bash', ['tools/build-sea.sh', join(tool, 'bin/hab-pod-role')], { cwd: repoRoot, stdin: 'ignore' });
  const redis = join(root, 'core/redis/7.0.15/20261121000000');
  mkdirSync(join(redis, 'bin'), { recursive: true });
  for (const bin of ['redis-server', 'redis-cli']) symlinkSync(`/usr/bin/${bin}`, join(redis, 'bin', bin));
  readableByAll(root);
  return { [`${toolOrigin}/hab-pod-role`]: tool, 'core/redis': redis };
}

/** Lets the hooks' user (not root) read `dir` and everything in it, as a package install or a token mount does. */
function readableByAll(dir: string): string {
  chmodSync(dir, 0o755);
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    const path = join(entry.parentPath, entry.name);
    if (entry.isDirectory()) chmodSync(path, 0o755);
    else if (entry.isFile()) chmodSync(path, entry.name === 'hab-pod-role' ? 0o755 : 0o644);
  }
  return dir;
}
