// examples/redis as real containers on the real node: the exported-style image, the manifests applied as a user applies them, hostPath volumes, the harness's elections.

import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { execa } from 'execa';
import { KubeAdmin } from '../../tools/kube-admin.ts';
import type { ControlPlane } from '../../tools/control-plane.ts';
import { ctr, type RealNode } from '../../tools/node.ts';
import { tempDir } from './election.ts';
import { readyEndpoints } from './endpoints.ts';
import { eventually } from './eventually.ts';
import { kubectl } from './kubectl.ts';
import { importRedisImage, origin, type ImageVariant } from './redis-image.ts';
import { harnessPort, type GroupState, type Tick } from './supervisor.ts';

const repoRoot = resolve(import.meta.dirname, '../..');

export const members = ['redis-0', 'redis-1', 'redis-2'] as const;
export type Member = (typeof members)[number];
/** How often each Supervisor runs its health check here (hab-sup's default is 30 s; `--health-check-interval`). */
const healthCheckIntervalSeconds = 1;

export class RedisOnNode {
  readonly namespace = 'redis';
  readonly admin: KubeAdmin;
  /** Where each member's volume lives on the node (a static hostPath PersistentVolume each). */
  readonly volumes = new Map<Member, string>();
  private readonly plane: ControlPlane;
  private readonly node: RealNode;
  /** Where the image overlay and the volumes' directories live. */
  private readonly work = tempDir('redis-node');
  private readonly overlay = join(this.work, 'kustomize');
  /** Each member's address when last seen running: gossip keeps it for a member that died, and so the census does. */
  private readonly lastKnownIp = new Map<Member, string>();

  private constructor(plane: ControlPlane, node: RealNode) {
    this.plane = plane;
    this.node = node;
    this.admin = new KubeAdmin(plane);
  }

  /** Builds and imports the image, provides the volumes, applies the manifests and waits for three running containers. */
  static async start(plane: ControlPlane, node: RealNode, variant?: ImageVariant): Promise<RedisOnNode> {
    const example = new RedisOnNode(plane, node);
    try {
      await example.admin.createNamespace(example.namespace).catch((e: { code?: number }) => {
        if (e?.code !== 409) throw e;
      });
      await example.deploy(variant);
    } catch (error) {
      await example.stop();
      throw error;
    }
    return example;
  }

  /**
   * Replaces the StatefulSet with one running `variant`'s image, on new volumes; the Services, RBAC and
   * admission policy stay as they are (re-created, they would leave a moment in which the API server's
   * authorizer and admission have not yet seen them, and refuse the tool's writes).
   */
  async redeploy(variant?: ImageVariant): Promise<void> {
    // Foreground: the pods are gone, and their claims no longer in use, when this returns.
    await this.kubectl('delete', 'statefulset', 'redis', '--cascade=foreground', '--wait=true', '--timeout=90s');
    await this.removeVolumes();
    await this.deploy(variant);
  }

  private async deploy(variant?: ImageVariant): Promise<void> {
    const image = await importRedisImage(this.node, variant);
    // What a user does after `hab pkg export container`: point the StatefulSet at the image they built.
    mkdirSync(this.overlay, { recursive: true });
    writeFileSync(join(this.overlay, 'kustomization.yaml'), [
      'apiVersion: kustomize.config.k8s.io/v1beta1', 'kind: Kustomization',
      `resources: [${relative(this.overlay, join(repoRoot, 'examples/redis/kubernetes'))}]`,
      `images: [{name: example/redis-leader, newName: ${image.split(':')[0]}, newTag: "${image.split(':')[1]}"}]`, '',
    ].join('\n'));
    // As an admin satisfies the claims: one static hostPath PersistentVolume per member, bound to its claim.
    for (const m of members) {
      const dir = mkdtempSync(join(this.work, `pv-${m}-`));
      this.volumes.set(m, dir);
      await this.admin.core.createPersistentVolume({
        body: {
          metadata: { name: `redis-data-${m}` },
          spec: {
            capacity: { storage: '1Gi' }, accessModes: ['ReadWriteOnce'], persistentVolumeReclaimPolicy: 'Retain', storageClassName: '',
            hostPath: { path: dir, type: 'Directory' },
            claimRef: { namespace: this.namespace, name: `data-${m}` },
          },
        },
      });
    }
    await this.kubectl('apply', '-k', this.overlay);
    for (const m of members) {
      await this.running(m).catch(async (error: Error) => {
        const pod = await this.admin.core.readNamespacedPod({ namespace: this.namespace, name: m }).catch(() => undefined);
        const claims = (await this.admin.core.listNamespacedPersistentVolumeClaim({ namespace: this.namespace })).items.map((c) => `${c.metadata!.name} ${c.status?.phase}${c.metadata?.deletionTimestamp ? ' (deleting)' : ''}`);
        const volumes = (await this.admin.core.listPersistentVolume()).items.map((v) => `${v.metadata!.name} ${v.status?.phase}${v.metadata?.deletionTimestamp ? ' (deleting)' : ''}`);
        throw new Error(`${error.message}: ${JSON.stringify({ phase: pod?.status?.phase, conditions: pod?.status?.conditions, containers: pod?.status?.containerStatuses, claims, volumes })}`, { cause: error });
      });
    }
    for (const m of members) await this.listening(m);
  }

  /** Until `m`'s Supervisor takes the harness's posts: a running container has not necessarily got that far. */
  async listening(m: Member): Promise<void> {
    await eventually(() => this.state(m).then(() => true, () => false), { what: `${m}'s Supervisor listening on ${harnessPort}`, timeoutMs: 30_000, intervalMs: 100 });
  }

  /** Until `m`'s container runs (a new one after a restart or a re-creation when `after` is given), and its pod. */
  async running(m: Member, after?: { uid?: string; restarts?: number }): Promise<V1Pod> {
    return (await eventually(async () => {
      const pod = await this.admin.core.readNamespacedPod({ namespace: this.namespace, name: m }).catch(() => undefined);
      const status = pod?.status?.containerStatuses?.[0];
      if (!pod || pod.metadata?.deletionTimestamp || !status?.state?.running || !pod.status?.podIP) return undefined;
      if (after?.uid && pod.metadata!.uid === after.uid) return undefined;
      if (after?.restarts !== undefined && (status.restartCount ?? 0) <= after.restarts) return undefined;
      return pod;
    }, { what: `${m}'s container running`, timeoutMs: 60_000, intervalMs: 200 }))!;
  }

  async podIp(m: Member): Promise<string> {
    const ip = (await this.running(m)).status!.podIP!;
    this.lastKnownIp.set(m, ip);
    return ip;
  }

  /** The group's state, as gossip would bring it, to each member in `to`: one Supervisor tick each. */
  async elect(leader: Member | undefined, election: GroupState['election'] = 'finished', to: readonly Member[] = members, alive: readonly Member[] = to): Promise<Record<string, Tick>> {
    const ticks = await this.census(leader, election, to, alive);
    return Object.fromEntries(Object.entries(ticks).map(([m, { tick }]) => [m, tick]));
  }

  /** As `elect`, with when each member's Supervisor began rewriting each file it changed (`config/election.toml`: monotonic ms). */
  async census(leader: Member | undefined, election: GroupState['election'] = 'finished', to: readonly Member[] = members, alive: readonly Member[] = to): Promise<Record<string, { tick: Tick; rewritten: Record<string, number> }>> {
    const state = {
      election, leader, healthCheckIntervalSeconds,
      members: await Promise.all(members.map(async (m) => ({ name: m, ip: alive.includes(m) ? await this.podIp(m) : (this.lastKnownIp.get(m) ?? ''), alive: alive.includes(m) }))),
    };
    const results: Record<string, { tick: Tick; rewritten: Record<string, number> }> = {};
    await Promise.all(to.map(async (m) => {
      results[m] = (await this.harness(m, '/census', state)) as { tick: Tick; rewritten: Record<string, number> };
    }));
    return results;
  }

  /** `hab config apply`: every member in `to` takes the values at its next tick. */
  async configApply(values: Record<string, unknown>, to: readonly Member[] = members): Promise<Record<string, Tick>> {
    const results: Record<string, Tick> = {};
    await Promise.all(to.map(async (m) => {
      results[m] = ((await this.harness(m, '/config', values)) as { tick: Tick }).tick;
    }));
    return results;
  }

  /** Runs one of `m`'s hooks now, as its Supervisor would; its exit code. */
  async hook(m: Member, name: string): Promise<number> {
    return ((await this.harness(m, `/hooks/${name}`, {})) as { exit: number }).exit;
  }

  /** What `m`'s Supervisor and hooks printed since its container started. */
  async output(m: Member): Promise<string> {
    return (await this.kubectl('logs', m)).stdout;
  }

  /** What `m`'s Supervisor keeps for the tests: its output and each reconfigure's exit code (which it ignores). */
  async state(m: Member): Promise<{ output: string[]; reconfigureExits: number[] }> {
    return (await this.harness(m, '/state')) as { output: string[]; reconfigureExits: number[] };
  }

  /** Whether each member's pod is Ready, as the kubelet found by the manifest's probe. */
  async ready(): Promise<Record<string, boolean>> {
    const pods = (await this.admin.core.listNamespacedPod({ namespace: this.namespace })).items;
    return Object.fromEntries(members.map((m) => [m, pods.find((p) => p.metadata!.name === m)?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false]));
  }

  /** `kubectl exec POD -- COMMAND`: in the container, with its PATH (/bin) and environment; the exit code. */
  async exec(m: Member, command: string[]): Promise<number> {
    return (await kubectl(this.plane, ['-n', this.namespace, 'exec', m, '--', ...command], { reject: false })).exitCode ?? 1;
  }

  /** `kubectl exec POD -- hab pkg exec ORIGIN/hab-pod-role hab-pod-role ARGS`: the package's executable, in the pod. */
  tool(m: Member, args: string[]) {
    return kubectl(this.plane, ['-n', this.namespace, 'exec', m, '--',
      'sh', '-c', `exec /hab/pkgs/${origin}/hab-pod-role/*/*/bin/hab-pod-role "$@"`, 'hab-pod-role', ...args], { reject: false });
  }

  private async harness(m: Member, path: string, body?: unknown): Promise<unknown> {
    const ip = await this.podIp(m);
    const response = await fetch(`http://${ip}:${harnessPort}${path}`, { method: body === undefined ? 'GET' : 'POST', ...(body === undefined ? {} : { body: JSON.stringify(body) }), signal: AbortSignal.timeout(60_000) });
    if (!response.ok) throw new Error(`${m}'s Supervisor answered ${response.status} to ${path}: ${await response.text()}`);
    return response.json();
  }

  /** A Service's ClusterIP: clients in the cluster connect there and kube-proxy picks a ready endpoint. */
  async clusterIp(service: string): Promise<string> {
    return (await this.admin.core.readNamespacedService({ namespace: this.namespace, name: service })).spec!.clusterIP!;
  }

  /** `redis-cli -h SERVICE ...` from this machine, through the Service's ClusterIP (kube-proxy's rules). */
  async redisVia(service: string, ...args: string[]): Promise<string> {
    return this.redisAt(await this.clusterIp(service), ...args);
  }

  /** Commands on one connection to `service`'s ClusterIP (WAIT counts the replicas of this connection's writes); the replies. */
  async pipeVia(service: string, commands: string[][]): Promise<string[]> {
    const result = await execa('redis-cli', ['-h', await this.clusterIp(service), '-p', '6379'], { input: commands.map(commandLine).join('\n'), reject: false, timeout: 10_000 });
    return result.stdout.trim().split('\n');
  }

  /**
   * Stands in for the Supervisors' ring while pods come and go by themselves (a rollout): every 200 ms
   * it looks at the pods as gossip would see members. When the leader's pod is going or gone, the members
   * that hold data elect the first of them (an election running, then finished); a member whose container
   * is new is told the census, as it would learn it on joining. Says how many elections it held.
   */
  gossip(leader: Member): { stop(): Promise<{ elections: number; leader: Member }> } {
    const told = new Map<Member, string>();
    let elections = 0;
    let stopped = false;
    const key = (pod: V1Pod) => `${pod.metadata!.uid}/${pod.status!.containerStatuses?.[0]?.restartCount ?? 0}`;
    const round = async () => {
      const pods = new Map((await this.admin.core.listNamespacedPod({ namespace: this.namespace })).items.map((p) => [p.metadata!.name as Member, p]));
      const up = members.filter((m) => {
        const pod = pods.get(m);
        return pod && !pod.metadata!.deletionTimestamp && pod.status?.podIP && pod.status.containerStatuses?.[0]?.state?.running;
      });
      if (!up.includes(leader)) {
        const voters = up.filter((m) => told.get(m) === key(pods.get(m)!));
        if (voters.length === 0) return;
        await this.elect(undefined, 'running', voters, voters);
        leader = voters[0]!;
        await this.elect(leader, 'finished', voters, voters);
        elections++;
      }
      for (const m of up) {
        if (told.get(m) === key(pods.get(m)!)) continue;
        await this.elect(leader, 'finished', [m], up);
        told.set(m, key(pods.get(m)!));
      }
    };
    const loop = (async () => {
      // The members running now have heard the census already.
      for (const pod of (await this.admin.core.listNamespacedPod({ namespace: this.namespace })).items) told.set(pod.metadata!.name as Member, key(pod));
      while (!stopped) {
        // A member whose Supervisor is not listening yet is tried again next round.
        await round().catch(() => undefined);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    })();
    return {
      stop: async () => {
        stopped = true;
        await loop;
        return { elections, leader };
      },
    };
  }

  /** redis-cli against one member's pod IP: to look at that member, never to write. */
  async redis(m: Member, ...args: string[]): Promise<string> {
    return this.redisAt(await this.podIp(m), ...args);
  }

  private async redisAt(host: string, ...args: string[]): Promise<string> {
    const result = await execa('redis-cli', ['-h', host, '-p', '6379', ...args], { reject: false, timeout: 10_000 });
    return `${result.stdout}${result.exitCode === 0 ? '' : result.stderr}`.trim();
  }

  readyEndpoints(service: string) {
    return readyEndpoints(this.admin, this.namespace, service);
  }

  async roles(): Promise<Record<string, string | null>> {
    const pods = await this.admin.core.listNamespacedPod({ namespace: this.namespace });
    return Object.fromEntries(pods.items.filter((p) => !p.metadata?.deletionTimestamp).map((p) => [p.metadata!.name!, p.metadata?.labels?.role ?? null]));
  }

  /** Until every member but `leader` replicates it with its link up. */
  async replicating(leader: Member): Promise<void> {
    const ip = await this.podIp(leader);
    for (const m of members.filter((m) => m !== leader)) {
      await eventually(async () => new RegExp(`^slave\n${ip.replaceAll('.', '\\.')}\n6379\nconnected`).test(await this.redis(m, 'role')), { what: `${m} replicating ${leader}`, timeoutMs: 30_000 });
    }
  }

  /** The host pid of `m`'s container's PID 1 (the hab-launch stand-in, the Supervisor's parent), from containerd. */
  async containerPid(m: Member): Promise<number> {
    const pod = await this.running(m);
    const id = pod.status!.containerStatuses![0]!.containerID!.replace(/^containerd:\/\//, '');
    const tasks = ctr(this.plane.node!, 'tasks', 'ls');
    const line = tasks.split('\n').find((l) => l.startsWith(id));
    if (!line) throw new Error(`containerd has no task for ${m}'s container ${id}`);
    return Number(line.split(/\s+/)[1]);
  }

  kubectl(...args: string[]) {
    return kubectl(this.plane, ['-n', this.namespace, ...args]);
  }

  /** Deletes the workload (pods TERMed as the kubelet does), the claims and the volumes. */
  async stop(): Promise<void> {
    await this.kubectl('delete', '-k', this.overlay, '--ignore-not-found', '--wait=true', '--timeout=60s').catch(() => undefined);
    await this.removeVolumes(false);
  }

  /**
   * Once the pods are gone: the claims and the volumes, until they are gone too (a next deploy creates them
   * again under the same names). `strict`: a step that fails throws; otherwise the next step is tried anyway.
   */
  private async removeVolumes(strict = true): Promise<void> {
    const step = (work: Promise<unknown>) => (strict ? work : work.catch(() => undefined));
    await step(eventually(async () => (await this.admin.core.listNamespacedPod({ namespace: this.namespace })).items.length === 0, { what: 'the example\'s pods gone', timeoutMs: 60_000 }));
    await step(this.kubectl('delete', 'pvc', '--all', '--wait=true', '--timeout=30s'));
    for (const m of members) {
      await step(this.admin.core.deletePersistentVolume({ name: `redis-data-${m}` }).catch((e: { code?: number }) => {
        if (e?.code !== 404) throw e;
      }));
    }
    await step(eventually(async () => (await this.admin.core.listPersistentVolume()).items.every((pv) => !pv.metadata!.name!.startsWith('redis-data-')), { what: 'the example\'s volumes gone', timeoutMs: 30_000 }));
  }
}

/** A command as redis-cli reads it from stdin: an argument with spaces or quotes goes in double quotes. */
export function commandLine(command: string[]): string {
  return command.map((a) => (/^[\w.:-]+$/.test(a) ? a : JSON.stringify(a))).join(' ');
}
