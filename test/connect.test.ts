// Which credentials a run uses: an explicit kubeconfig, then the pod's service account, then ~/.kube/config.

import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadCredentials } from '../src/connect.ts';
import { ExitCode } from '../src/errors.ts';
import { tempDir } from './support/election.ts';
import { refusal } from './support/refusal.ts';

let dir: string;
let serviceAccountDir: string;
let home: string;
beforeEach(() => {
  dir = tempDir('connect');
  serviceAccountDir = join(dir, 'sa');
  home = join(dir, 'home');
  mkdirSync(serviceAccountDir);
  mkdirSync(join(home, '.kube'), { recursive: true });
  writeFileSync(join(serviceAccountDir, 'token'), 'sa-token');
  writeFileSync(join(serviceAccountDir, 'ca.crt'), 'CA PEM');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A kubeconfig whose one cluster is at `server`, with a token user. */
function kubeconfig(path: string, server: string, extra = ''): string {
  writeFileSync(path, [
    'apiVersion: v1', 'kind: Config', 'current-context: c',
    `clusters: [{name: k, cluster: {server: "${server}", certificate-authority-data: "${Buffer.from('CA').toString('base64')}"${extra}}}]`,
    'users: [{name: u, user: {token: kube-token}}]',
    'contexts: [{name: c, context: {cluster: k, user: u}}]', '',
  ].join('\n'));
  return path;
}

const inPod = { KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443' };

describe('loadCredentials', () => {
  it('takes --kubeconfig over KUBECONFIG over the service account', async () => {
    const flag = kubeconfig(join(dir, 'flag.yaml'), 'https://flag.example:6443');
    const variable = kubeconfig(join(dir, 'env.yaml'), 'https://env.example:6443');
    expect((await loadCredentials({ kubeconfig: flag, env: { ...inPod, KUBECONFIG: variable }, serviceAccountDir, home })).server).toBe('https://flag.example:6443');
    const fromEnv = await loadCredentials({ env: { ...inPod, KUBECONFIG: variable }, serviceAccountDir, home });
    expect(fromEnv.server).toBe('https://env.example:6443');
    expect(fromEnv.source).toBe(`KUBECONFIG (${variable}), context c`);
    expect((await fromEnv.resolve()).authorization).toBe('Bearer kube-token');
  });

  it('in a pod, the service account comes before a stray ~/.kube/config', async () => {
    kubeconfig(join(home, '.kube', 'config'), 'https://stray.example:6443');
    const credentials = await loadCredentials({ env: inPod, serviceAccountDir, home });
    expect(credentials.server).toBe('https://10.0.0.1:443');
    expect((await credentials.resolve()).authorization).toBe('Bearer sa-token');
    // An empty KUBECONFIG is as good as none.
    expect((await loadCredentials({ env: { ...inPod, KUBECONFIG: ' ' }, serviceAccountDir, home })).server).toBe('https://10.0.0.1:443');
  });

  it('outside a pod, ~/.kube/config, and nothing at all is 78', async () => {
    expect(await refusal(loadCredentials({ env: {}, serviceAccountDir, home }))).toEqual({
      code: ExitCode.config,
      message: 'No Kubernetes credentials found: run inside a pod with a service-account token mounted, or pass --kubeconfig (or set KUBECONFIG).',
    });
    kubeconfig(join(home, '.kube', 'config'), 'https://home.example:6443');
    const credentials = await loadCredentials({ env: {}, serviceAccountDir, home });
    expect(credentials.server).toBe('https://home.example:6443');
    expect(credentials.source).toMatch(/^~\/\.kube\/config \(/);
  });

  it('refuses a kubeconfig that does not exist, or one that skips TLS verification', async () => {
    const missing = join(dir, 'missing.yaml');
    expect(await refusal(loadCredentials({ kubeconfig: missing, env: {}, serviceAccountDir, home }))).toEqual({
      code: ExitCode.config,
      message: `The kubeconfig ${missing} (from --kubeconfig) does not exist: fix the path or unset it.`,
    });
    const insecure = kubeconfig(join(dir, 'insecure.yaml'), 'https://x.example:6443', ', insecure-skip-tls-verify: true');
    const { code, message } = await refusal(loadCredentials({ kubeconfig: insecure, env: {}, serviceAccountDir, home }));
    expect(code).toBe(ExitCode.config);
    expect(message).toMatch(/sets insecure-skip-tls-verify; hab-pod-role only talks to a verified API server/);
  });
});
