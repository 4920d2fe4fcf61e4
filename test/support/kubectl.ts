// kubectl of the API server's own version with the admin kubeconfig, as a cluster's admin runs it: the one wrapper the harnesses share.

import { join } from 'node:path';
import { execa } from 'execa';
import type { ControlPlane } from '../../tools/control-plane.ts';

/** `kubectl ARGS` against `plane`; rejects on a non-zero exit unless `reject` is false. stdin is `input`, or nothing. */
export function kubectl(plane: Pick<ControlPlane, 'binDir' | 'kubeconfig'>, args: string[], options: { input?: string; reject?: boolean } = {}) {
  return execa(join(plane.binDir, 'kubectl'), [`--kubeconfig=${plane.kubeconfig}`, ...args], {
    ...(options.input === undefined ? { stdin: 'ignore' as const } : { input: options.input }),
    reject: options.reject ?? true,
  });
}
