// examples/redis brought to life without Habitat or a kubelet: its manifests on the real control plane,
// three members in network namespaces of their own, each run by the Supervisor stand-in from the real hooks.

import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { startExtraApiServer, type ControlPlane, type ExtraApiServer } from '../../tools/control-plane.ts';
import { KubeAdmin } from '../../tools/kube-admin.ts';
import { tempDir } from './election.ts';
import { eventually } from './eventually.ts';
import { KubeletStandIn } from './kubelet.ts';
import { createPodNetwork, type PodNetwork } from './network.ts';
import { SupervisedMember, type GroupState } from './supervisor.ts';

const repoRoot = resolve(fileURLToPath(import.meta.url), '../../..');
export const members = ['redis-0', 'redis-1', 'redis-2'] as const;
export type Member = (typeof members)[number];

export class RedisExample {
  readonly namespace: string;
  readonly admin: KubeAdmin;
  readonly kubelet: KubeletStandIn;
  readonly network: PodNetwork;
  readonly apiserver: ExtraApiServer;
  readonly members = new Map<Member, SupervisedMember>();
  private readonly plane: ControlPlane;
  private readonly started = new Set<Member>();
  private alive = new Set<Member>(members);

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
    await this.kubectl('apply', '--server-side', '-k', join(repoRoot, 'examples/redis/kubernetes'));
    await this.kubelet.register();
    for (const pod of members) {
      await eventually(async () => (await this.admin.core.listNamespacedPod({ namespace: this.namespace })).items.some((p) => p.metadata?.name === pod), { what: `the StatefulSet controller creating ${pod}` });
      await this.kubelet.bind(pod);
      await this.kubelet.report(pod, this.network.ips.get(pod)!, false);
    }
    const pkgs = packages();
    for (const pod of members) {
      // As the kubelet mounts it: a token bound to this pod, the only kind the example's policy lets write.
      const account = await this.admin.mountToken(this.namespace, 'hab-pod-role', pod);
      this.members.set(pod, new SupervisedMember({
        name: pod,
        ip: this.network.ips.get(pod)!,
        planDir: join(repoRoot, 'examples/redis'),
        svcDir: join(tempDir(`svc-${pod}`), 'redis-leader'),
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
        },
      }));
    }
  }

  /** An election result reaches every live member: first start, then re-render and reconfigure. */
  async elect(leader: Member | undefined, election: GroupState['election'] = 'finished'): Promise<Record<string, string>> {
    const state: GroupState = {
      election,
      leader,
      members: members.map((m) => ({ name: m, ip: this.network.ips.get(m)!, alive: this.alive.has(m) })),
    };
    const results: Record<string, string> = {};
    await Promise.all([...this.alive].map(async (m) => {
      const member = this.members.get(m)!;
      if (this.started.has(m)) {
        results[m] = await member.update(state);
      } else {
        member.render(state);
        member.start();
        this.started.add(m);
        results[m] = 'started';
      }
    }));
    return results;
  }

  /** A member fails: the Supervisor and its Redis stop (Redis saves its data on TERM). */
  async fail(m: Member): Promise<number | undefined> {
    this.alive.delete(m);
    return this.members.get(m)!.stop();
  }

  /** The readiness probe of the StatefulSet, run for each pod, reported by the kubelet stand-in. */
  async probe(): Promise<Record<string, boolean>> {
    const ready: Record<string, boolean> = {};
    for (const m of members) {
      ready[m] = (await this.redis(m, 'ping')) === 'PONG';
      await this.kubelet.report(m, this.network.ips.get(m)!, ready[m]);
    }
    return ready;
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

  /** Stops every member, the extra API server and the network: nothing is left running. */
  async stop(): Promise<void> {
    await Promise.all([...this.members.values()].map((m) => m.stop()));
    await this.apiserver.stop();
    this.network.destroy();
  }
}

/** What pkgPathFor answers: hab-pod-role as the plan installs it, Redis from Debian's packages. */
function packages(): Record<string, string> {
  const root = tempDir('pkgs');
  const tool = join(root, 'core/hab-pod-role/0.1.0/20261121000000');
  mkdirSync(join(tool, 'bin'), { recursive: true });
  writeFileSync(join(tool, 'bin/hab-pod-role'), `#!${process.execPath}\nimport '${join(repoRoot, 'dist/hab-pod-role.mjs')}';\n`, { mode: 0o755 });
  const redis = join(root, 'core/redis/7.0.15/20261121000000');
  mkdirSync(join(redis, 'bin'), { recursive: true });
  for (const bin of ['redis-server', 'redis-cli']) symlinkSync(`/usr/bin/${bin}`, join(redis, 'bin', bin));
  return { 'core/hab-pod-role': tool, 'core/redis': redis };
}
