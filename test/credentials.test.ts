// A pod's own credentials: the service account's files read as client-node reads them, the token re-read when rotated.

import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { inCluster } from '../src/credentials.ts';
import { ExitCode, HabPodRoleError } from '../src/errors.ts';
import { tempDir } from './support/election.ts';
import { matrix } from './support/matrix.ts';

let dir: string;
beforeEach(() => {
  dir = tempDir('credentials');
  writeFileSync(join(dir, 'token'), 'first-token\n');
  writeFileSync(join(dir, 'ca.crt'), 'CA PEM');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const env = (host: string, port: string | undefined) => ({ KUBERNETES_SERVICE_HOST: host, KUBERNETES_SERVICE_PORT: port });

function configCode(fn: () => unknown): { code: number; message: string } {
  matrix.inputs();
  try {
    fn();
  } catch (error) {
    if (error instanceof HabPodRoleError) return { code: error.exitCode, message: error.message };
    throw error;
  }
  return { code: 0, message: '' };
}

describe('inCluster', () => {
  it('builds the address as client-node does: https, brackets around an IPv6 host', () => {
    expect(inCluster(env('10.0.0.1', '443'), dir).server).toBe('https://10.0.0.1:443');
    expect(inCluster(env('fd00::1', '6443'), dir).server).toBe('https://[fd00::1]:6443');
    // Ports client-node takes for plain http: named here so the client can refuse them.
    expect(inCluster(env('10.0.0.1', '8080'), dir).server).toBe('http://10.0.0.1:8080');
  });

  it('sends the token as a bearer header with the CA, and names where they came from without the secret', async () => {
    const credentials = inCluster(env('10.0.0.1', '443'), dir);
    expect(await credentials.resolve()).toEqual({ ca: 'CA PEM', authorization: 'Bearer first-token' });
    expect(credentials.source).toBe(`service account in ${dir}`);
    expect(JSON.stringify(credentials)).not.toContain('first-token');
  });

  it('reads the token again once the kubelet swaps in a rotated one (by renaming)', async () => {
    const credentials = inCluster(env('10.0.0.1', '443'), dir);
    expect((await credentials.resolve()).authorization).toBe('Bearer first-token');
    writeFileSync(join(dir, 'token.new'), 'second-token');
    renameSync(join(dir, 'token.new'), join(dir, 'token'));
    expect((await credentials.resolve()).authorization).toBe('Bearer second-token');
  });

  it('refuses half a pod environment, or a missing mount, with 78 and what to do', () => {
    expect(configCode(() => inCluster(env('10.0.0.1', undefined), dir))).toEqual({
      code: ExitCode.config,
      message: 'KUBERNETES_SERVICE_HOST is set but KUBERNETES_SERVICE_PORT is not; both come from the pod environment, so set both or pass --kubeconfig.',
    });
    const empty = join(dir, 'empty');
    mkdirSync(empty);
    expect(configCode(() => inCluster(env('10.0.0.1', '443'), empty))).toEqual({
      code: ExitCode.config,
      message: `No service-account token at ${join(empty, 'token')}: mount the token (automountServiceAccountToken: true) or point --service-account-dir at it.`,
    });
  });
});
