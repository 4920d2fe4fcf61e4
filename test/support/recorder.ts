// Records every change of a namespace's pods in the API server's order, and checks the leader count after each.

import { KubeConfig, Watch, type V1Pod } from '@kubernetes/client-node';
import { controlPlane } from './cluster.ts';

export interface Recorded {
  resourceVersion: number;
  pod: string;
  role: string | null;
  /** The pod's role just before this change. */
  previous: string | null;
  /** When the watch delivered it (epoch milliseconds, this machine's clock). */
  at: number;
  /** Pods carrying the leader value right after this change. */
  leaders: string[];
}

export class LabelRecorder {
  readonly changes: Recorded[] = [];
  /** Every recorded moment at which more than one pod carried the leader value. */
  readonly violations: Recorded[] = [];
  private readonly roles = new Map<string, string | null>();
  private request: { abort(): void } | undefined;
  private ended: Error | undefined;
  private stopped = false;

  private readonly namespace: string;
  private readonly inGroup: (pod: string) => boolean;
  private readonly key = 'role';
  private readonly leader = 'leader';

  /** Leaders are counted among the pods `inGroup` accepts: another group's leader is not a second one. */
  constructor(namespace: string, inGroup: (pod: string) => boolean = () => true) {
    this.namespace = namespace;
    this.inGroup = inGroup;
  }

  /** Starts from the current state (one list) and follows every change after it. */
  async start(): Promise<void> {
    const kc = new KubeConfig();
    kc.loadFromFile(controlPlane().kubeconfig);
    const { CoreV1Api } = await import('@kubernetes/client-node');
    const list = await kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace: this.namespace });
    for (const pod of list.items) this.roles.set(pod.metadata!.name!, pod.metadata?.labels?.[this.key] ?? null);
    await this.follow(new Watch(kc), list.metadata!.resourceVersion!);
  }

  /**
   * Watches from `version`. client-node ends a watch after 30 s without data (a TimeoutError), and the
   * server ends it after its timeout: it is then resumed from the last version seen, which misses no
   * change. Only an expired version (410) or another error leaves a gap, and `assertComplete` reports it.
   */
  private async follow(watch: Watch, version: string): Promise<void> {
    let last = version;
    this.request = await watch.watch(
      `/api/v1/namespaces/${this.namespace}/pods`,
      { resourceVersion: version, timeoutSeconds: 3600, allowWatchBookmarks: true },
      (type: string, pod: V1Pod & { code?: number; message?: string }) => {
        if (type === 'ERROR') this.ended = new Error(`watch error ${pod.code}: ${pod.message}`);
        else if (type === 'BOOKMARK') last = pod.metadata!.resourceVersion!;
        else {
          last = pod.metadata!.resourceVersion!;
          this.seen(type, pod);
        }
      },
      (error: unknown) => {
        if (this.stopped || this.ended) return;
        if (error === null || error === undefined || (error as Error).name === 'TimeoutError') void this.follow(watch, last).catch((e: Error) => (this.ended = e));
        else this.ended = error as Error;
      },
    );
  }

  stop(): void {
    this.stopped = true;
    this.request?.abort();
  }

  /** Fails if the watch broke: a gap in the record would make "no violation" meaningless. */
  assertComplete(): void {
    if (this.ended) throw new Error(`the recording watch ended early: ${this.ended}`);
  }

  /**
   * Label moves from change `from` on: how many times the leader value landed on a group member that did
   * not carry it. Each one is a switch of the leader Service to another pod.
   */
  moves(from = 0): Recorded[] {
    return this.changes.slice(from).filter((c) => c.role === this.leader && c.previous !== this.leader && this.inGroup(c.pod));
  }

  leaders(): string[] {
    return [...this.roles].filter(([name, role]) => role === this.leader && this.inGroup(name)).map(([name]) => name).sort();
  }

  private seen(type: string, pod: V1Pod): void {
    const name = pod.metadata!.name!;
    const role = type === 'DELETED' ? null : (pod.metadata?.labels?.[this.key] ?? null);
    const previous = this.roles.get(name) ?? null;
    this.roles.set(name, role);
    const record = { resourceVersion: Number(pod.metadata!.resourceVersion), pod: name, role, previous, at: Date.now(), leaders: this.leaders() };
    const last = this.changes.at(-1);
    if (last && record.resourceVersion <= last.resourceVersion) throw new Error(`watch events out of order: ${last.resourceVersion} then ${record.resourceVersion}`);
    this.changes.push(record);
    if (record.leaders.length > 1) this.violations.push(record);
  }
}
