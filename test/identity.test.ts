// Which pod this is: flags, the downward API and the container, in that order, and names Kubernetes would accept.

import { describe, expect, it } from 'vitest';
import { ExitCode } from '../src/errors.ts';
import { choosePodIdentity } from '../src/identity.ts';
import { matrix } from './support/matrix.ts';

const saDir = '/var/run/secrets/kubernetes.io/serviceaccount';

describe('choosePodIdentity', () => {
  it('prefers flags, then the downward API, then the container', () => {
    const env = { POD_NAME: 'env-pod', POD_NAMESPACE: 'env-ns', HOSTNAME: 'host-pod' };
    expect(choosePodIdentity({ flagPod: 'flag-pod', flagNamespace: 'flag-ns', env, serviceAccountDir: saDir, serviceAccountNamespace: 'sa-ns' })).toMatchObject({
      name: 'flag-pod', nameSource: '--pod', namespace: 'flag-ns', namespaceSource: '--namespace',
    });
    expect(choosePodIdentity({ env, serviceAccountDir: saDir, serviceAccountNamespace: 'sa-ns' })).toMatchObject({
      name: 'env-pod', nameSource: 'POD_NAME', namespace: 'env-ns', namespaceSource: 'POD_NAMESPACE',
    });
    expect(choosePodIdentity({ env: { HOSTNAME: 'host-pod' }, serviceAccountDir: saDir, serviceAccountNamespace: 'sa-ns\n', hostname: 'uts' })).toMatchObject({
      name: 'host-pod', nameSource: 'HOSTNAME', namespace: 'sa-ns', namespaceSource: `${saDir}/namespace`,
    });
    expect(choosePodIdentity({ env: {}, serviceAccountDir: saDir, serviceAccountNamespace: 'sa-ns', hostname: 'uts' })).toMatchObject({ name: 'uts' });
  });
  it('ignores empty values, as an unset downward API field renders them', () => {
    expect(choosePodIdentity({ flagPod: ' ', env: { POD_NAME: '', HOSTNAME: 'h' }, serviceAccountDir: saDir, flagNamespace: 'n' }).name).toBe('h');
  });
  it('fails with 78 and says what to set when the namespace is unknown', () => {
    matrix.inputs();
    expect(() => choosePodIdentity({ env: { POD_NAME: 'p' }, serviceAccountDir: saDir })).toThrow(
      expect.objectContaining({ exitCode: ExitCode.config, message: expect.stringMatching(/set POD_NAMESPACE from the downward API/) }),
    );
  });
  it('fails with 78 when nothing names the pod', () => {
    matrix.inputs();
    expect(() => choosePodIdentity({ env: {}, serviceAccountDir: saDir, flagNamespace: 'n' })).toThrow(
      expect.objectContaining({ exitCode: ExitCode.config, message: expect.stringMatching(/set POD_NAME/) }),
    );
  });
  it.each([
    [{ HOSTNAME: 'Build_Box' }, /"Build_Box" \(from HOSTNAME\) is not a valid pod name, so this does not look like a pod: set POD_NAME/],
    [{ POD_NAME: 'redis-0.' }, /"redis-0\." \(from POD_NAME\) is not a valid pod name/],
    [{ POD_NAME: 'x'.repeat(254) }, /is not a valid pod name/],
    [{ POD_NAME: 'redis-0', POD_NAMESPACE: 'My Namespace' }, /"My Namespace" \(from POD_NAMESPACE\) is not a valid namespace name: set POD_NAMESPACE/],
  ])('fails with 78 for a name Kubernetes would never give: %j', (env, message) => {
    matrix.inputs();
    expect(() => choosePodIdentity({ env, serviceAccountDir: saDir, serviceAccountNamespace: 'sa-ns' })).toThrow(
      expect.objectContaining({ exitCode: ExitCode.config, message: expect.stringMatching(message) }),
    );
  });
  it('accepts the longest valid names', () => {
    const name = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`;
    expect(choosePodIdentity({ env: { POD_NAME: name, POD_NAMESPACE: 'n'.repeat(63) }, serviceAccountDir: saDir }).name).toBe(name);
  });
});
