// A stand-in for the kubelet: binds pods to a Node, runs their readiness probes, reports IP and readiness through pods/status.

import { PatchStrategy, setHeaderOptions, type V1Probe } from '@kubernetes/client-node';
import type { KubeAdmin } from '../../tools/kube-admin.ts';
import { readyEndpoints } from './endpoints.ts';

/** How this stand-in reaches what runs in a pod (the pods' processes run beside it, not in containers). */
export interface PodAccess {
  /** Where a container port of the pod is reachable from here. */
  address(pod: string, port: number): { host: string; port: number };
  /** Runs a probe's command as it would run in the pod's container (its image's root and PATH); resolves to its exit code. */
  exec(pod: string, command: string[]): Promise<number>;
}

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

  /** Reports the pod running at `ip`, Ready or not (as its readiness probe found). */
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

  /**
   * Runs the pod's readiness probe as its spec says (httpGet: Ready for a status from 200 to 399 within
   * timeoutSeconds; exec: Ready for exit 0) and reports the result. Says whether the pod is Ready.
   */
  async probe(pod: string, ip: string, access: PodAccess): Promise<boolean> {
    const spec = (await this.admin.core.readNamespacedPod({ namespace: this.namespace, name: pod })).spec!;
    const container = spec.containers[0]!;
    const ready = container.readinessProbe ? await this.runProbe(pod, container.readinessProbe, container.ports ?? [], access) : true;
    await this.report(pod, ip, ready);
    return ready;
  }

  private async runProbe(pod: string, probe: V1Probe, ports: { name?: string; containerPort: number }[], access: PodAccess): Promise<boolean> {
    if (probe.httpGet) {
      const named = probe.httpGet.port;
      const port = typeof named === 'number' || /^\d+$/.test(String(named)) ? Number(named) : ports.find((p) => p.name === named)?.containerPort;
      if (port === undefined) throw new Error(`readiness probe of ${pod}: no container port named ${String(named)}`);
      const { host, port: at } = access.address(pod, port);
      try {
        const response = await fetch(`http://${host}:${at}${probe.httpGet.path ?? '/'}`, { signal: AbortSignal.timeout((probe.timeoutSeconds ?? 1) * 1000) });
        await response.arrayBuffer();
        return response.status >= 200 && response.status < 400;
      } catch {
        return false; // refused or timed out: a failed probe
      }
    }
    if (probe.exec?.command) return (await access.exec(pod, probe.exec.command)) === 0;
    throw new Error(`readiness probe of ${pod}: only httpGet and exec probes are stood in for`);
  }

  /** The addresses a Service's EndpointSlices list as ready, with the pods behind them. */
  readyEndpoints(service: string): Promise<{ ip: string; pod: string }[]> {
    return readyEndpoints(this.admin, this.namespace, service);
  }
}
