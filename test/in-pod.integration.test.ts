// The tool inside a real pod on the real node: the kubelet's projected token, the downward API, the `kubernetes` Service through kube-proxy, TERM, restarts, a Service following the label.

import { appendFileSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeName, nodeNetwork } from '../tools/node.ts';
import { recordOutput, runCli } from './support/cli.ts';
import { admin, controlPlane, createNamespace } from './support/cluster.ts';
import { electionText, tempDir } from './support/election.ts';
import { eventually } from './support/eventually.ts';
import { importToolImage, jwtClaims, kubectl, projectedToken, realNode, toolImage } from './support/real-node.ts';

const { node, unavailable } = realNode();
const graceSeconds = 30;

/**
 * PID 1 of the container: counts its starts, runs `hab-pod-role apply` with the pod's own credentials,
 * then serves its pod's name on 8080 (the readiness probe and the Service's backend) and waits; on TERM it
 * writes a marker and exits 0, and it crashes (exit 1) when the test asks. /out is a hostPath, so what it
 * writes outlives the pod.
 */
const entrypoint = `
out=/out/$POD_NAME
echo start >> $out.starts
rm -f $out.crash
trap 'echo TERM > $out.term; exit 0' TERM
hab-pod-role apply --config /hab/svc/member/config/election.toml --verbose --log-format json >> $out.log 2>&1 || exit $?
mkdir -p /tmp/www && echo $POD_NAME > /tmp/www/index.html
httpd -f -p 8080 -h /tmp/www &
while [ ! -e $out.crash ]; do sleep 1 & wait $!; done
exit 1
`;

function manifests(outDir: string): string {
  const configMap = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'election' }, data: { 'election.toml': electionText('leader') } };
  // Routes to whichever pod carries role=leader, as the Redis example's redis-leader does.
  const service = {
    apiVersion: 'v1', kind: 'Service', metadata: { name: 'member-leader' },
    spec: { selector: { app: 'member', role: 'leader' }, ports: [{ port: 80, targetPort: 8080 }] },
  };
  const deployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'member' },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: 'member' } },
      template: {
        metadata: { labels: { app: 'member' } },
        spec: {
          serviceAccountName: 'hab-pod-role',
          terminationGracePeriodSeconds: graceSeconds,
          containers: [{
            name: 'member',
            image: toolImage,
            imagePullPolicy: 'Never',
            command: ['/bin/sh', '-c', entrypoint],
            env: [
              { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
              { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
            ],
            volumeMounts: [{ name: 'election', mountPath: '/hab/svc/member/config' }, { name: 'out', mountPath: '/out' }],
            readinessProbe: { httpGet: { path: '/', port: 8080 }, periodSeconds: 1 },
          }],
          volumes: [{ name: 'election', configMap: { name: 'election' } }, { name: 'out', hostPath: { path: outDir, type: 'Directory' } }],
        },
      },
    },
  };
  return [configMap, service, deployment].map((m) => JSON.stringify(m)).join('\n---\n');
}

describe.skipIf(!node)(`the tool in a pod on the real node${node ? '' : ` (skipped: ${unavailable})`}`, () => {
  let namespace: string;
  let outDir: string;
  const out = (pod: string, what: string) => {
    try {
      return readFileSync(join(outDir, `${pod}.${what}`), 'utf8');
    } catch {
      return '';
    }
  };
  const pods = async () => (await admin().core.listNamespacedPod({ namespace, labelSelector: 'app=member' })).items;
  const runningPod = (not?: string) => eventually(async () => {
    const found = (await pods()).find((p) => p.metadata!.name !== not && !p.metadata!.deletionTimestamp && p.status?.containerStatuses?.[0]?.state?.running);
    return found?.metadata?.labels?.role === 'leader' ? found : undefined;
  }, { what: 'a running member pod labelled role=leader', timeoutMs: 40_000, intervalMs: 200 });
  /** Which pod answers on the leader Service's ClusterIP, reached from this machine through kube-proxy's rules. */
  const leaderServiceAnswer = async () => {
    const service = await admin().core.readNamespacedService({ namespace, name: 'member-leader' });
    const response = await fetch(`http://${service.spec!.clusterIP}/`, { signal: AbortSignal.timeout(2000) });
    return (await response.text()).trim();
  };
  /** What the tool printed in the pod (--log-format json). */
  const toolLog = (pod: string) => out(pod, 'log').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);

  beforeAll(async () => {
    outDir = tempDir('in-pod');
    importToolImage(node!, outDir);
    namespace = await createNamespace('in-pod');
    // As a user would: what `hab-pod-role rbac` prints for the namespace (the README's set: RBAC and the
    // admission policy, which lets the kubelet's pod-bound token write only the role label), then the workload.
    const rbac = await runCli(['rbac', '--namespace', namespace], {}, { stripFinalNewline: false });
    expect(rbac.exitCode, rbac.stderr).toBe(0);
    await kubectl(['apply', '-f', '-'], rbac.stdout);
    await kubectl(['apply', '-n', namespace, '-f', '-'], manifests(outDir));
  }, 60_000);

  afterAll(async () => {
    // Everything the tool printed in the pods goes to the run's scan for secrets.
    if (outDir) for (const f of readdirSync(outDir).filter((f) => f.endsWith('.log'))) recordOutput(readFileSync(join(outDir, f), 'utf8'));
    if (namespace) await admin().core.deleteNamespace({ name: namespace }).catch(() => undefined);
  });

  let first: V1Pod;

  it('labels its own pod through the kubernetes Service, with the token the kubelet projected; the leader Service routes to it', async () => {
    first = (await runningPod())!;
    const name = first.metadata!.name!;
    expect(first.spec!.nodeName).toBe(nodeName); // placed by kube-scheduler, run by the kubelet
    expect(first.status!.podIP).toMatch(/^198\.19\.0\.\d+$/);
    // Ready by the kubelet's own probe; the Service selecting role=leader routes to it.
    await eventually(async () => (await leaderServiceAnswer()) === name, { what: 'the leader Service answering from the labelled pod', timeoutMs: 20_000, intervalMs: 200 });

    const log = toolLog(name);
    // In-cluster discovery: the kubelet's KUBERNETES_SERVICE_HOST, answered through kube-proxy's rules.
    expect(log.find((l) => l.msg === 'credentials')).toMatchObject({
      from: 'service account in /var/run/secrets/kubernetes.io/serviceaccount',
      server: `https://${nodeNetwork.kubernetesService}:443`,
    });
    expect(log.find((l) => l.level === 'info')?.msg).toBe(`pod ${namespace}/${name}: role=leader (had none)`);

    const token = projectedToken(node!, first.metadata!.uid!);
    // The scan at the end of the run checks every test's output for it too.
    appendFileSync(join(controlPlane().dir, 'minted-tokens'), `${token}\n`);
    expect(out(name, 'log')).not.toContain(token);
    // Bound to this pod: the API server knows which pod asks.
    expect(jwtClaims(token)['kubernetes.io']).toMatchObject({
      namespace,
      pod: { name, uid: first.metadata!.uid },
      serviceaccount: { name: 'hab-pod-role' },
    });
  });

  it('keeps the pod\'s labels when the kubelet restarts its container', async () => {
    const name = first.metadata!.name!;
    const changedAt = first.metadata!.annotations?.['hab-pod-role/role-changed-at'];
    expect(changedAt).toBeTruthy();
    appendFileSync(join(outDir, `${name}.crash`), '');
    const restarted = (await eventually(async () => {
      const pod = await admin().core.readNamespacedPod({ namespace, name });
      const status = pod.status?.containerStatuses?.[0];
      return (status?.restartCount ?? 0) >= 1 && status?.state?.running && out(name, 'starts').split('\n').filter(Boolean).length === 2 ? pod : undefined;
    }, { what: 'the container restarted by the kubelet', timeoutMs: 40_000, intervalMs: 200 }))!;
    expect(restarted.status!.containerStatuses![0]!.lastState?.terminated?.exitCode).toBe(1);
    expect(restarted.metadata!.uid).toBe(first.metadata!.uid);
    // The label outlived the container; the second start found it and wrote nothing.
    expect(restarted.metadata!.labels?.role).toBe('leader');
    const second = await eventually(() => toolLog(name).filter((l) => l.level === 'info')[1], { what: 'the second start\'s apply', timeoutMs: 20_000 });
    expect(second).toMatchObject({ msg: `pod ${namespace}/${name}: already role=leader`, requests: 1 });
    const after = await admin().core.readNamespacedPod({ namespace, name });
    expect(after.metadata!.labels?.role).toBe('leader');
    expect(after.metadata!.annotations?.['hab-pod-role/role-changed-at']).toBe(changedAt);
  });

  it('sends TERM to PID 1 when the pod is deleted, well within the grace period; the Service follows the next leader', async () => {
    const name = first.metadata!.name!;
    const deleted = Date.now();
    await admin().core.deleteNamespacedPod({ namespace, name });
    await eventually(async () => !(await pods()).some((p) => p.metadata!.name === name), { what: `pod ${name} gone`, timeoutMs: (graceSeconds + 10) * 1000, intervalMs: 100 });
    const seconds = (Date.now() - deleted) / 1000;
    // Not a speed measure: the kubelet KILLs at the end of the grace period, which would leave no marker.
    expect(out(name, 'term')).toBe('TERM\n');
    expect(seconds).toBeLessThan(graceSeconds);
    // The Deployment replaces it, and the new pod labels itself leader.
    const next = (await runningPod(name))!;
    expect(next.metadata!.name).not.toBe(name);
    expect((await pods()).filter((p) => p.metadata?.labels?.role === 'leader').map((p) => p.metadata!.name)).toEqual([next.metadata!.name]);
    await eventually(async () => (await leaderServiceAnswer()) === next.metadata!.name, { what: 'the leader Service following the new pod', timeoutMs: 20_000, intervalMs: 200 });
  });
});
