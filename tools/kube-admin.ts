// Admin-side helpers on a control plane: namespaces, pods, the documented Role, service accounts with minted tokens.

import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, DiscoveryV1Api, KubeConfig, loadAllYaml, RbacAuthorizationV1Api, type V1Pod, type V1PolicyRule } from '@kubernetes/client-node';
import type { ControlPlane } from './control-plane.ts';

const repoRoot = resolve(fileURLToPath(import.meta.url), '../..');
export const serviceAccountName = 'hab-pod-role';

export interface ServiceAccountMount {
  /** Laid out as the kubelet mounts it: token, ca.crt, namespace. */
  dir: string;
  token: string;
}

/** The RBAC manifests the README documents (ServiceAccount, Role, RoleBinding), as YAML for `kubectl apply`. */
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
  private readonly plane: ControlPlane;

  constructor(plane: ControlPlane) {
    this.plane = plane;
    const kc = new KubeConfig();
    kc.loadFromFile(plane.kubeconfig);
    this.core = kc.makeApiClient(CoreV1Api);
    this.rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    this.discovery = kc.makeApiClient(DiscoveryV1Api);
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

  createPod(namespace: string, name: string, labels: Record<string, string> = {}, owner?: Owner): Promise<V1Pod> {
    return this.core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name, labels, ...(owner ? { ownerReferences: [owner] } : {}) },
        spec: { serviceAccountName, automountServiceAccountToken: false, containers: [{ name: 'main', image: 'redis' }] },
      },
    });
  }

  async podLabels(namespace: string, name: string): Promise<Record<string, string>> {
    return (await this.core.readNamespacedPod({ namespace, name })).metadata?.labels ?? {};
  }

  /**
   * Creates the service account the tool runs as, bound to `rules` (the documented Role by default),
   * and mounts a token minted with the TokenRequest API into a directory, as the kubelet would.
   */
  async serviceAccount(namespace: string, rules: V1PolicyRule[] = documentedRole().rules): Promise<ServiceAccountMount> {
    const name = serviceAccountName;
    await this.core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } }).catch(ignoreConflict);
    await this.rbac.createNamespacedRole({ namespace, body: { metadata: { name }, rules } }).catch(ignoreConflict);
    await this.rbac.createNamespacedRoleBinding({
      namespace,
      body: {
        metadata: { name },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
        subjects: [{ kind: 'ServiceAccount', name, namespace }],
      },
    }).catch(ignoreConflict);
    return this.mountToken(namespace, name);
  }

  /** Mounts a token for an existing service account (one the manifests created), as the kubelet would. */
  async mountToken(namespace: string, serviceAccount: string): Promise<ServiceAccountMount> {
    const token = await this.mintToken(namespace, serviceAccount);
    const dir = mkdtempSync(join(tmpdir(), 'hab-pod-role-sa-'));
    writeFileSync(join(dir, 'token'), token);
    writeFileSync(join(dir, 'ca.crt'), this.plane.caPem);
    writeFileSync(join(dir, 'namespace'), namespace);
    return { dir, token };
  }

  async mintToken(namespace: string, serviceAccount: string, expirationSeconds = 3600): Promise<string> {
    const request = await this.core.createNamespacedServiceAccountToken({
      namespace,
      name: serviceAccount,
      body: { spec: { audiences: [], expirationSeconds } },
    });
    const token = request.status?.token;
    if (!token) throw new Error(`TokenRequest for ${namespace}/${serviceAccount} returned no token`);
    // Kept so the tests can prove that no token ever shows up in the tool's output.
    appendFileSync(join(this.plane.dir, 'minted-tokens'), `${token}\n`);
    return token;
  }

  /** Replaces the tool's Role rules, to take a verb away or give it back. */
  async setRoleRules(namespace: string, rules: V1PolicyRule[]): Promise<void> {
    await this.rbac.replaceNamespacedRole({ namespace, name: serviceAccountName, body: { metadata: { name: serviceAccountName }, rules } });
  }
}

/** Environment of a process in a pod: the API server's service variables and the downward API. */
export function podEnv(namespace: string, pod: string, saDir: string, server: string): Record<string, string> {
  const url = new URL(server);
  return {
    KUBERNETES_SERVICE_HOST: url.hostname,
    KUBERNETES_SERVICE_PORT: url.port,
    HAB_POD_ROLE_SERVICE_ACCOUNT_DIR: saDir,
    POD_NAME: pod,
    POD_NAMESPACE: namespace,
  };
}

function ignoreConflict(error: { code?: number }) {
  if (error?.code !== 409) throw error;
}
