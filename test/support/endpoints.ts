// What a Service routes to: the addresses its EndpointSlices list as ready, with the pods behind them.

import type { KubeAdmin } from '../../tools/kube-admin.ts';

export async function readyEndpoints(admin: KubeAdmin, namespace: string, service: string): Promise<{ ip: string; pod: string }[]> {
  const slices = await admin.discovery.listNamespacedEndpointSlice({ namespace, labelSelector: `kubernetes.io/service-name=${service}` });
  return slices.items
    .flatMap((slice) => slice.endpoints ?? [])
    .filter((e) => e.conditions?.ready)
    .map((e) => ({ ip: e.addresses[0]!, pod: e.targetRef?.name ?? '' }))
    .sort((a, b) => a.pod.localeCompare(b.pod));
}
