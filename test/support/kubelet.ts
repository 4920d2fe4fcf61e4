// What a kubelet writes for pods that exist only as API objects: a Node to bind them to, the binding, their IP and readiness.
//
// The Redis example runs on the real node; this remains for the tests and the benchmark whose pods are
// API objects only (no container behind them): the bench's Services need ready endpoints, and the
// failover test marks a pod not Ready as the node lifecycle controller does for a node it cannot reach.

import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { KubeAdmin } from '../../tools/kube-admin.ts';

export class KubeletStandIn {
  private readonly admin: KubeAdmin;
  private readonly namespace: string;
  readonly node: string;

  constructor(admin: KubeAdmin, namespace: string, node: string) {
    this.admin = admin;
    this.namespace = namespace;
    this.node = node;
  }

  /** The EndpointSlice controller skips pods on a Node that does not exist. */
  async register(): Promise<void> {
    await this.admin.core.createNode({ body: { metadata: { name: this.node } } }).catch((e: { code?: number }) => {
      if (e.code !== 409) throw e;
    });
  }

  /** What the scheduler would do: bind the pod to this node. */
  async bind(pod: string): Promise<void> {
    await this.admin.core.createNamespacedPodBinding({
      namespace: this.namespace,
      name: pod,
      body: { metadata: { name: pod }, target: { apiVersion: 'v1', kind: 'Node', name: this.node } },
    });
  }

  /** Reports the pod running at `ip`, Ready or not. */
  async report(pod: string, ip: string, ready: boolean): Promise<void> {
    const status = ready ? 'True' : 'False';
    const now = new Date().toISOString();
    await this.admin.core.patchNamespacedPodStatus(
      {
        namespace: this.namespace,
        name: pod,
        body: {
          status: {
            phase: 'Running',
            hostIP: '198.18.0.1',
            podIP: ip,
            podIPs: [{ ip }],
            conditions: [
              { type: 'PodScheduled', status: 'True', lastTransitionTime: now },
              { type: 'Initialized', status: 'True', lastTransitionTime: now },
              { type: 'ContainersReady', status, lastTransitionTime: now },
              { type: 'Ready', status, lastTransitionTime: now },
            ],
          },
        },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  }
}
