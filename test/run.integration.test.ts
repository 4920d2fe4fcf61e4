// `run` with the real redis-server: started once labelled, stopped by a TERM to the group with its data saved.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { freePorts } from '../tools/control-plane.ts';
import { startCli } from './support/cli.ts';
import { admin, controlPlane, createNamespace, podEnv } from './support/cluster.ts';
import { electionText, tempDir, writeElection } from './support/election.ts';
import { eventually } from './support/eventually.ts';

let namespace: string;
let saDir: string;

beforeAll(async () => {
  namespace = await createNamespace('redis');
  saDir = (await admin().serviceAccount(namespace)).dir;
  await admin().createPod(namespace, 'redis-0', { app: 'redis' });
});

const redisCli = (port: number, ...args: string[]) => execa('redis-cli', ['-p', String(port), ...args], { reject: false }).then((r) => r.stdout.trim());

describe('run with the real redis-server', () => {
  it('starts Redis once the label is in place; a TERM to the group makes it save its data and exit 0', async () => {
    const dir = tempDir('redis');
    const [port, checkPort] = await freePorts(2);
    const file = writeElection(join(dir, 'election.toml'), electionText('leader'));
    const kubectl = `${join(controlPlane().binDir, 'kubectl')} --kubeconfig=${controlPlane().kubeconfig} -n ${namespace}`;
    // What the service sees of its own pod the moment it starts, read by an administrator.
    const service = [
      'sh', '-c',
      `${kubectl} get pod redis-0 -o jsonpath='{.metadata.labels.role}' > ${dir}/role-at-start && ` +
      `exec redis-server --port ${port} --bind 127.0.0.1 --dir ${dir} --dbfilename dump.rdb --save '3600 1' --appendonly no --logfile ${dir}/redis.log`,
    ];
    const wrapper = startCli(['run', '-c', file, '--', ...service], podEnv(namespace, 'redis-0', saDir));
    await eventually(async () => (await redisCli(port!, 'ping')) === 'PONG', { what: 'redis-server answering' });
    expect(readFileSync(join(dir, 'role-at-start'), 'utf8')).toBe('leader');
    expect(await redisCli(port!, 'set', 'acknowledged', 'before-stop')).toBe('OK');

    // The Supervisor stops a service by signalling its whole process group: Redis gets TERM twice.
    wrapper.signalGroup('SIGTERM');
    const result = await wrapper.exited;
    expect(result.exitCode).toBe(0);
    const log = readFileSync(join(dir, 'redis.log'), 'utf8');
    expect(log).toContain('Saving the final RDB snapshot before exiting.');
    expect(log).toContain('DB saved on disk');
    expect(log).toContain('Redis is now ready to exit, bye bye...');
    expect(existsSync(join(dir, 'dump.rdb'))).toBe(true);

    // The snapshot holds the write: a fresh Redis on the same directory reads it back.
    const check = execa('redis-server', ['--port', String(checkPort), '--bind', '127.0.0.1', '--dir', dir, '--dbfilename', 'dump.rdb', '--save', '', '--appendonly', 'no'], { reject: false });
    try {
      await eventually(async () => (await redisCli(checkPort!, 'ping')) === 'PONG', { what: 'the check server answering' });
      expect(await redisCli(checkPort!, 'get', 'acknowledged')).toBe('before-stop');
    } finally {
      await redisCli(checkPort!, 'shutdown', 'nosave');
      await check;
    }
  });
});
