// Records every change of a namespace's pods in the API server's order, and checks the leader count after each.

import { KubeConfig, Watch, type V1Pod } from '@kubernetes/client-node';
import { controlPlane } from './cluster.ts';

export interface Recorded {
  resourceVersion: number;
  pod: string;
  role: string | null;
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
    this.request = await new Watch(kc).watch(
      `/api/v1/namespaces/${this.namespace}/pods`,
      { resourceVersion: list.metadata!.resourceVersion, timeoutSeconds: 3600 },
      (type: string, pod: V1Pod) => this.seen(type, pod),
      (error: unknown) => {
        this.ended = (error as Error) ?? new Error('watch ended');
      },
    );
  }

  stop(): void {
    this.request?.abort();
  }

  /** Fails if the watch broke: a gap in the record would make "no violation" meaningless. */
  assertComplete(): void {
    if (this.ended && !/aborted/i.test(String(this.ended.message ?? this.ended))) throw new Error(`the recording watch ended early: ${this.ended}`);
  }

  leaders(): string[] {
    return [...this.roles].filter(([name, role]) => role === this.leader && this.inGroup(name)).map(([name]) => name).sort();
  }

  private seen(type: string, pod: V1Pod): void {
    const name = pod.metadata!.name!;
    const role = type === 'DELETED' ? null : (pod.metadata?.labels?.[this.key] ?? null);
    this.roles.set(name, role);
    const record = { resourceVersion: Number(pod.metadata!.resourceVersion), pod: name, role, leaders: this.leaders() };
    const previous = this.changes.at(-1);
    if (previous && record.resourceVersion <= previous.resourceVersion) throw new Error(`watch events out of order: ${previous.resourceVersion} then ${record.resourceVersion}`);
    this.changes.push(record);
    if (record.leaders.length > 1) this.violations.push(record);
  }
}
