// The control plane of this test run (from global set-up) and the admin helpers bound to it.

import { resolve } from 'node:path';
import { inject } from 'vitest';
import { KubeAdmin, podEnv as podEnvFor } from '../../tools/kube-admin.ts';

export { documentedRole, documentedRbac } from '../../tools/kube-admin.ts';
export const repoRoot = resolve(import.meta.dirname, '../..');

export function controlPlane() {
  return inject('controlPlane');
}

let shared: KubeAdmin | undefined;
export function admin(): KubeAdmin {
  shared ??= new KubeAdmin(controlPlane());
  return shared;
}

let counter = 0;
/** A fresh namespace per test file (and more when asked), so files can run side by side. */
export function createNamespace(prefix: string): Promise<string> {
  return admin().createNamespace(`${prefix}-${process.pid}-${++counter}-${Math.random().toString(36).slice(2, 7)}`);
}

/**
 * Environment of the tool in `pod`, talking to this run's API server unless another is named, with the
 * pod's own token: `mounts` is the directory `admin().serviceAccount()` returned, `<mounts>/<pod>` the mount.
 */
export function podEnv(namespace: string, pod: string, mounts: string, server = controlPlane().server): Record<string, string> {
  return podEnvFor(namespace, pod, mounts, server);
}
