// Admin-side helpers on a control plane: namespaces, pods, the documented RBAC and policy, pod-bound tokens.

import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, DiscoveryV1Api, KubeConfig, KubernetesObjectApi, loadAllYaml, RbacAuthorizationV1Api, type KubernetesObject, type V1Pod, type V1PodSpec, type V1PolicyRule } from '@kubernetes/client-node';
import { defaultLabelScheme, type LabelScheme } from '../src/labels.ts';
import { rbacObjects } from '../src/rbac.ts';
import { plain } from '../src/yaml.ts';
import type { ControlPlane } from './control-plane.ts';

const repoRoot = resolve(fileURLToPath(import.meta.url), '../..');
export const serviceAccountName = 'hab-pod-role';
/** The scheduler of pods that only exist as API objects: none runs by this name. */
export const apiObjectsOnly = 'api-objects-only';

export interface ServiceAccountMount {
  /** Laid out as the kubelet mounts it: token, ca.crt, namespace. */
  dir: string;
  token: string;
}

export interface AccountOptions {
  /** Install the admission policy with the RBAC, as `hab-pod-role rbac` prints it (the default), or the Role alone. */
  policy?: boolean;
  /** The label the policy allows. */
  scheme?: LabelScheme;
}

/** What a write as the tool's account got from the API server. */
export interface WriteResult {
  status: number;
  message: string;
}

/** The README's RBAC block: what `hab-pod-role rbac` prints for the defaults (namespace `default`), as the tests hold it. */
export function documentedRbac(): string {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const block = /<!-- rbac:begin -->\s*```yaml\n([\s\S]*?)```\s*<!-- rbac:end -->/.exec(readme)?.[1];
  if (!block) throw new Error('README.md has no RBAC block between <!-- rbac:begin --> and <!-- rbac:end -->');
  return block;
}

/** The Role the README documents, read from the README itself so the docs and what is tested cannot drift apart. */
export function documentedRole(): { rules: V1PolicyRule[] } {
  const role = (loadAllYaml(documentedRbac()) as { kind: string; rules: V1PolicyRule[] }[]).find((d) => d.kind === 'Role');
  if (!role) throw new Error('the README RBAC block has no Role');
  return role;
}

export interface Owner {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller: boolean;
}

export class KubeAdmin {
  readonly core: CoreV1Api;
  readonly rbac: RbacAuthorizationV1Api;
  readonly discovery: DiscoveryV1Api;
  readonly objects: KubernetesObjectApi;
  private readonly plane: ControlPlane;
  /** Per namespace with the tool's account: the directory under which each pod created later gets its token mount. */
  private readonly mounts = new Map<string, { root: string; policy: boolean; policyInForce?: Promise<void> }>();

  constructor(plane: ControlPlane) {
    this.plane = plane;
    const kc = new KubeConfig();
    kc.loadFromFile(plane.kubeconfig);
    this.core = kc.makeApiClient(CoreV1Api);
    this.rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    this.discovery = kc.makeApiClient(DiscoveryV1Api);
    this.objects = KubernetesObjectApi.makeApiClient(kc);
  }

  async createNamespace(name: string): Promise<string> {
    await this.core.createNamespace({ body: { metadata: { name } } });
    return name;
  }

  /**
   * An object to own a group of pods, standing in for their StatefulSet. A ConfigMap: the garbage collector
   * deletes pods whose owner does not exist, and a real StatefulSet's controller would manage them itself.
   */
  async createOwner(namespace: string, name: string): Promise<Owner> {
    const owner = await this.core.createNamespacedConfigMap({ namespace, body: { metadata: { name } } });
    return { apiVersion: 'v1', kind: 'ConfigMap', name, uid: owner.metadata!.uid!, controller: true };
  }

  /**
   * Creates a pod running as the tool's account. In a namespace set up with `serviceAccount`, it then
   * does what the kubelet does for such a pod: mounts a token bound to it, under `<dir>/<pod>`. The pod
   * exists only as an API object: it names a scheduler that does not exist, so kube-scheduler leaves it
   * alone (no status writes, no events) and it never reaches the real node. Given `spec` (its containers,
   * volumes...), it is a real pod instead: kube-scheduler binds it to the node and the kubelet runs it and
   * reports its status.
   */
  async createPod(namespace: string, name: string, labels: Record<string, string> = {}, owner?: Owner, spec?: V1PodSpec): Promise<V1Pod> {
    const pod = await this.core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name, labels, ...(owner ? { ownerReferences: [owner] } : {}) },
        spec: { serviceAccountName, automountServiceAccountToken: false, ...(spec ?? { schedulerName: apiObjectsOnly, containers: [{ name: 'main', image: 'redis' }] }) },
      },
    });
    const mounts = this.mounts.get(namespace);
    if (mounts) {
      const mount = await this.mountToken(namespace, serviceAccountName, name, join(mounts.root, name));
      // The first pod of a namespace shows when the policy is in force: no test then races its start.
      if (mounts.policy) await (mounts.policyInForce ??= this.untilPolicyInForce(namespace, name, mount.token));
    }
    return pod;
  }

  async podLabels(namespace: string, name: string): Promise<Record<string, string>> {
    return (await this.core.readNamespacedPod({ namespace, name })).metadata?.labels ?? {};
  }

  /**
   * Installs what `hab-pod-role rbac` prints for the namespace: the service account the tool runs as, its
   * Role (`rules`, the documented ones by default) and binding, and unless told otherwise the admission
   * policy. Returns the directory under which every pod created afterwards with
   * `createPod` gets its own pod-bound token (`podEnv` points the tool at `<dir>/<pod>`).
   */
  async serviceAccount(namespace: string, rules: V1PolicyRule[] = documentedRole().rules, options: AccountOptions = {}): Promise<{ dir: string }> {
    const policy = options.policy ?? true;
    const objects = plain(rbacObjects({ namespace, serviceAccount: serviceAccountName, scheme: options.scheme ?? defaultLabelScheme, policy })) as (KubernetesObject & { rules?: V1PolicyRule[] })[];
    for (const object of objects) {
      await this.objects.create(object.kind === 'Role' ? { ...object, rules } : object).catch(ignoreConflict);
    }
    const root = mkdtempSync(join(tmpdir(), 'hab-pod-role-sa-'));
    this.mounts.set(namespace, { root, policy });
    return { dir: root };
  }

  /**
   * Mounts a token for an existing service account (one the manifests created) in `dir`, as the kubelet
   * would: bound to `pod` when one is named (the kubelet's tokens always are), else bound to nothing.
   */
  async mountToken(namespace: string, serviceAccount: string, pod?: string, dir = mkdtempSync(join(tmpdir(), 'hab-pod-role-sa-'))): Promise<ServiceAccountMount> {
    const token = await this.mintToken(namespace, serviceAccount, { pod });
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'token'), token);
    writeFileSync(join(dir, 'ca.crt'), this.plane.caPem);
    writeFileSync(join(dir, 'namespace'), namespace);
    return { dir, token };
  }

  /** The mount `createPod` made for `pod`. */
  podMount(namespace: string, pod: string): ServiceAccountMount {
    const root = this.mounts.get(namespace)?.root;
    if (!root) throw new Error(`no service account set up in ${namespace}`);
    return { dir: join(root, pod), token: readFileSync(join(root, pod, 'token'), 'utf8') };
  }

  /** A token from the TokenRequest API; with `pod`, bound to that pod (by name and uid), as the kubelet's are. */
  async mintToken(namespace: string, serviceAccount: string, options: { pod?: string | undefined; expirationSeconds?: number } = {}): Promise<string> {
    const boundObjectRef = options.pod
      ? { apiVersion: 'v1', kind: 'Pod', name: options.pod, uid: (await this.core.readNamespacedPod({ namespace, name: options.pod })).metadata!.uid! }
      : undefined;
    const request = await this.core.createNamespacedServiceAccountToken({
      namespace,
      name: serviceAccount,
      body: { spec: { audiences: [], expirationSeconds: options.expirationSeconds ?? 3600, ...(boundObjectRef ? { boundObjectRef } : {}) } },
    });
    const token = request.status?.token;
    if (!token) throw new Error(`TokenRequest for ${namespace}/${serviceAccount} returned no token`);
    // Kept so the tests can prove that no token ever shows up in the tool's output.
    appendFileSync(join(this.plane.dir, 'minted-tokens'), `${token}\n`);
    return token;
  }

  /**
   * A JSON merge patch of a pod sent with `token` (as the tool's account, with none of the tool's own
   * logic): what the API server, RBAC and the policy make of a write, status and message.
   */
  patchAs(token: string, namespace: string, pod: string, patch: unknown, options: { dryRun?: boolean } = {}): Promise<WriteResult> {
    const url = new URL(`/api/v1/namespaces/${namespace}/pods/${pod}${options.dryRun ? '?dryRun=All' : ''}`, this.plane.server);
    return new Promise((resolvePromise, reject) => {
      const req = https.request(url, {
        method: 'PATCH',
        ca: this.plane.caPem,
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/merge-patch+json', Accept: 'application/json' },
      }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => {
          const parsed = JSON.parse(body) as { kind?: string; message?: string };
          resolvePromise({ status: res.statusCode ?? 0, message: parsed.kind === 'Status' ? (parsed.message ?? '') : '' });
        });
      });
      req.on('error', reject);
      req.end(JSON.stringify(patch));
    });
  }

  /**
   * Until the namespace's policy refuses what it must (a foreign annotation) and allows what it must (one
   * of the tool's own), both as server dry runs: the API server loads a new policy a
   * moment after they are created, and a write in between would see neither or only half of them.
   */
  private async untilPolicyInForce(namespace: string, pod: string, token: string): Promise<void> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const refused = await this.patchAs(token, namespace, pod, { metadata: { annotations: { 'example.com/probe': 'x' } } }, { dryRun: true });
      const allowed = await this.patchAs(token, namespace, pod, { metadata: { annotations: { 'hab-pod-role/probe': 'x' } } }, { dryRun: true });
      if (refused.status === 403 && allowed.status === 200) return;
      // A Role without patch refuses both before the policy is asked: there is nothing to wait for yet.
      if (refused.status === 403 && allowed.status === 403 && !allowed.message.includes('ValidatingAdmissionPolicy')) return;
      if (Date.now() > deadline) throw new Error(`the policy in ${namespace} is not in force after 30 s: ${refused.status} ${refused.message}; ${allowed.status} ${allowed.message}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Replaces the tool's Role rules, to take a verb away or give it back. */
  async setRoleRules(namespace: string, rules: V1PolicyRule[]): Promise<void> {
    await this.rbac.replaceNamespacedRole({ namespace, name: serviceAccountName, body: { metadata: { name: serviceAccountName }, rules } });
  }
}

/**
 * Environment of a process in a pod: the API server's service variables, the downward API, and the pod's
 * own token mount, `<mounts>/<pod>` (where `createPod` put it, under the directory `serviceAccount` returned).
 */
export function podEnv(namespace: string, pod: string, mounts: string, server: string): Record<string, string> {
  const url = new URL(server);
  return {
    KUBERNETES_SERVICE_HOST: url.hostname,
    KUBERNETES_SERVICE_PORT: url.port,
    HAB_POD_ROLE_SERVICE_ACCOUNT_DIR: join(mounts, pod),
    POD_NAME: pod,
    POD_NAMESPACE: namespace,
  };
}

function ignoreConflict(error: { code?: number }) {
  if (error?.code !== 409) throw error;
}
