// Helpers for tests on the real node: an image that runs the built tool, kubectl as a user runs it, what the kubelet mounted.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { inject } from 'vitest';
import { buildImage, busyboxEntries } from '../../tools/image.ts';
import { importImage, type RealNode } from '../../tools/node.ts';
import { controlPlane, repoRoot } from './cluster.ts';
import { kubectl as adminKubectl } from './kubectl.ts';

export const toolImage = 'local.test/hab-pod-role:test';

/** The node of this run, or why there is none (then the tests that need it skip, saying so). */
export function realNode(): { node?: RealNode; unavailable: string } {
  const node = controlPlane().node;
  return node ? { node, unavailable: '' } : { unavailable: inject('nodeUnavailable') || 'no real node in this run' };
}

/**
 * busybox-static, this Node and the built bundle (dist/) at /opt/hab-pod-role, `hab-pod-role` on PATH:
 * what a pod needs to run the tool, and nothing of the host besides.
 */
export function importToolImage(node: RealNode, workDir: string): void {
  const archive = buildImage({
    tag: toolImage,
    entries: [
      ...busyboxEntries(),
      { from: process.execPath, to: '/usr/local/bin/node' },
      { from: join(repoRoot, 'dist'), to: '/opt/hab-pod-role/dist' },
      { symlink: '/usr/local/bin/hab-pod-role', target: '/opt/hab-pod-role/dist/hab-pod-role.mjs' },
      { file: '/tmp/.keep', content: '' },
    ],
    env: ['PATH=/usr/local/bin:/usr/bin:/bin'],
  }, workDir);
  importImage(node, archive);
}

/** kubectl of the same version as the API server, with the admin kubeconfig, as a cluster's admin runs it. */
export async function kubectl(args: string[], input?: string): Promise<string> {
  const result = await adminKubectl(controlPlane(), args, { ...(input === undefined ? {} : { input }), reject: false });
  if (result.exitCode !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${result.exitCode}): ${result.stderr}`);
  return result.stdout;
}

/** The service-account token the kubelet projected into a pod's volume (read on the host, never printed). */
export function projectedToken(node: RealNode, podUid: string): string {
  const volumes = join(node.kubeletRoot, 'pods', podUid, 'volumes', 'kubernetes.io~projected');
  const volume = existsSync(volumes) ? readdirSync(volumes).find((v) => v.startsWith('kube-api-access-')) : undefined;
  if (!volume) throw new Error(`the kubelet projected no service-account token for pod ${podUid}`);
  return readFileSync(join(volumes, volume, 'token'), 'utf8');
}

/** A JWT's claims (not verified: the API server accepted the token, which is the verification). */
export function jwtClaims(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
}
