// Kubeconfig files read as kubectl reads them: merged, paths relative to their file, and client-node only for plugins.

import { chmodSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ExitCode } from '../src/errors.ts';
import { fromKubeconfigFiles } from '../src/kubeconfig.ts';
import { tempDir } from './support/election.ts';
import { refusal } from './support/refusal.ts';

let dir: string;
beforeEach(() => {
  dir = tempDir('kubeconfig');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const b64 = (s: string) => Buffer.from(s).toString('base64');
function file(name: string, lines: string[]): string {
  const path = join(dir, name);
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

describe('fromKubeconfigFiles', () => {
  it('merges a KUBECONFIG list as kubectl does: the first current context and the first entry of each name win', async () => {
    const first = file('first.yaml', [
      'clusters: [{name: k, cluster: {server: "https://first.example:6443/", certificate-authority-data: ' + b64('FIRST CA') + '}}]',
      'users: [{name: u, user: {token: first-token}}]',
    ]);
    const second = file('second.yaml', [
      'current-context: c',
      'clusters: [{name: k, cluster: {server: "https://second.example:6443"}}]',
      'users: [{name: u, user: {token: second-token}}]',
      'contexts: [{name: c, context: {cluster: k, user: u}}]',
    ]);
    const third = file('third.yaml', ['current-context: other', 'contexts: [{name: other, context: {cluster: k, user: u}}]']);
    const credentials = await fromKubeconfigFiles([first, second, third], 'KUBECONFIG');
    expect(credentials.server).toBe('https://first.example:6443');
    expect(credentials.source).toBe(`KUBECONFIG (${first}:${second}:${third}), context c`);
    expect(await credentials.resolve()).toEqual({ ca: 'FIRST CA', authorization: 'Bearer first-token' });
  });

  it('reads certificate files relative to the kubeconfig that names them, and client certificates from data', async () => {
    mkdirSync(join(dir, 'certs'));
    writeFileSync(join(dir, 'certs', 'ca.crt'), 'CA FROM FILE');
    writeFileSync(join(dir, 'certs', 'client.key'), 'KEY FROM FILE');
    const path = file('config', [
      'current-context: c',
      'clusters: [{name: k, cluster: {server: "https://x.example:6443", certificate-authority: certs/ca.crt, tls-server-name: api.internal}}]',
      `users: [{name: u, user: {client-certificate-data: ${b64('CERT')}, client-key: certs/client.key}}]`,
      'contexts: [{name: c, context: {cluster: k, user: u}}]',
    ]);
    expect(await (await fromKubeconfigFiles([path], '--kubeconfig')).resolve()).toEqual({
      ca: 'CA FROM FILE', cert: 'CERT', key: 'KEY FROM FILE', servername: 'api.internal', authorization: undefined,
    });
  });

  it("reads kubectl's tokenFile again when it is replaced", async () => {
    writeFileSync(join(dir, 'token'), 'first\n');
    const path = file('config', [
      'current-context: c',
      'clusters: [{name: k, cluster: {server: "https://x.example:6443"}}]',
      'users: [{name: u, user: {tokenFile: token}}]',
      'contexts: [{name: c, context: {cluster: k, user: u}}]',
    ]);
    const credentials = await fromKubeconfigFiles([path], '--kubeconfig');
    expect((await credentials.resolve()).authorization).toBe('Bearer first');
    writeFileSync(join(dir, 'token.new'), 'second-and-longer');
    renameSync(join(dir, 'token.new'), join(dir, 'token'));
    expect((await credentials.resolve()).authorization).toBe('Bearer second-and-longer');
  });

  it('refuses impersonation and basic authentication rather than sending the request as another identity', async () => {
    for (const [field, value] of [['as', 'admin'], ['as-groups', '[system:masters]'], ['username', 'me']] as const) {
      const path = file(`${field}.yaml`, [
        'current-context: c',
        'clusters: [{name: k, cluster: {server: "https://k.example:6443"}}]',
        `users: [{name: u, user: {token: t, ${field}: ${value}}}]`,
        'contexts: [{name: c, context: {cluster: k, user: u}}]',
      ]);
      expect(await refusal(fromKubeconfigFiles([path], '--kubeconfig'))).toEqual({
        code: ExitCode.config,
        message: `The kubeconfig user of context c sets ${field}: hab-pod-role sends neither impersonation nor basic authentication, and would act as another identity than the one meant; use a kubeconfig with the account's own credentials (a token, a client certificate or an exec plugin).`,
      });
    }
  });

  it('refuses a cluster reached through a proxy rather than going around it', async () => {
    const path = file('proxied.yaml', [
      'current-context: c',
      'clusters: [{name: k, cluster: {server: "https://k.example:6443", proxy-url: "http://proxy.example:3128"}}]',
      'users: [{name: u, user: {token: t}}]',
      'contexts: [{name: c, context: {cluster: k, user: u}}]',
    ]);
    expect(await refusal(fromKubeconfigFiles([path], '--kubeconfig'))).toEqual({
      code: ExitCode.config,
      message: 'The kubeconfig cluster "k" sets proxy-url; hab-pod-role connects to the API server directly, so use a kubeconfig without it from a machine that reaches the server.',
    });
  });

  it('runs an exec plugin through client-node, with the CA from the kubeconfig', async () => {
    const plugin = join(dir, 'plugin.sh');
    writeFileSync(plugin, '#!/bin/sh\necho \'{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"from-plugin"}}\'\n');
    chmodSync(plugin, 0o755);
    const path = file('config', [
      'current-context: c',
      `clusters: [{name: k, cluster: {server: "https://x.example:6443", certificate-authority-data: ${b64('CA')}}}]`,
      `users: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: ${plugin}, interactiveMode: Never}}}]`,
      'contexts: [{name: c, context: {cluster: k, user: u}}]',
    ]);
    const resolved = await (await fromKubeconfigFiles([path], '--kubeconfig')).resolve();
    expect(resolved.authorization).toBe('Bearer from-plugin');
    expect(resolved.ca).toBe('CA');
  });

  it('refuses a file that is not YAML, or an entry without its name, in one sentence', async () => {
    const broken = file('broken.yaml', ['clusters: [{name: k']);
    const notYaml = await refusal(fromKubeconfigFiles([broken], '--kubeconfig'));
    expect(notYaml.code).toBe(ExitCode.config);
    expect(notYaml.message).toMatch(new RegExp(`^The kubeconfig ${broken} cannot be read as a kubeconfig: [^\\n]+\\.$`));
    const nameless = file('nameless.yaml', ['clusters: [{cluster: {server: "https://x.example"}}]']);
    expect(await refusal(fromKubeconfigFiles([nameless], '--kubeconfig'))).toEqual({
      code: ExitCode.config,
      message: `The kubeconfig ${nameless} cannot be read as a kubeconfig: clusters[0].name is missing.`,
    });
    const scalar = file('scalar.yaml', ['just words']);
    expect((await refusal(fromKubeconfigFiles([scalar], '--kubeconfig'))).message).toBe(`The kubeconfig ${scalar} cannot be read as a kubeconfig: it holds no YAML mapping.`);
  });

  it('refuses a current context that names no cluster', async () => {
    const path = file('config', ['current-context: c', 'contexts: [{name: c, context: {cluster: gone, user: u}}]']);
    expect(await refusal(fromKubeconfigFiles([path], 'KUBECONFIG'))).toEqual({
      code: ExitCode.config,
      message: 'The current context "c" in the kubeconfig from KUBECONFIG names no cluster: fix the kubeconfig.',
    });
  });
});
