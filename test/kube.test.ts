// The Kubernetes client before any request: it talks TLS only. What it does with the API server's answers is in kube.integration.test.ts.

import { describe, expect, it } from 'vitest';
import { ExitCode } from '../src/errors.ts';
import { KubeClient } from '../src/kube.ts';
import { createLogger } from '../src/log.ts';
import { matrix } from './support/matrix.ts';

describe('KubeClient', () => {
  it('talks TLS only: an http address is refused with 78 before any request', () => {
    matrix.inputs();
    const plain = { server: 'http://127.0.0.1:8080', source: 'the test', resolve: async () => ({}) };
    expect(() => new KubeClient({ credentials: plain, reloadCredentials: async () => plain, timeoutSeconds: 1, requestTimeoutMs: 1000, log: createLogger({ format: 'text', verbose: false }) }))
      .toThrow(expect.objectContaining({ exitCode: ExitCode.config, message: 'The API server address http://127.0.0.1:8080 is not https; hab-pod-role only talks to a verified API server over TLS.' }));
  });
});
