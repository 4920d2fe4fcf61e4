// `run` as a parent, with fixture services: exit statuses, signals, PID 1, misbehaving services, and failures before the start.

import { chmodSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { alive, signalGroup } from '../tools/control-plane.ts';
import { runCli, startCli } from './support/cli.ts';
import { admin, createNamespace, podEnv } from './support/cluster.ts';
import { electionText, tempDir, writeElection } from './support/election.ts';
import { eventually } from './support/eventually.ts';
import { matrix } from './support/matrix.ts';

const dir = tempDir('spawn');
const leaderFile = writeElection(join(dir, 'leader.toml'), electionText('leader'));
const recorder = resolve(import.meta.dirname, 'fixtures/signal-recorder.mjs');
let env: Record<string, string>;

beforeAll(async () => {
  const namespace = await createNamespace('spawn');
  const sa = await admin().serviceAccount(namespace);
  await admin().createPod(namespace, 'redis-0', { app: 'redis' });
  env = podEnv(namespace, 'redis-0', sa.dir);
});

/** `run` with the label applied once, so each case is about the hand-off alone. */
const run = (command: string[], extra: string[] = []) => runCli(['run', '-c', leaderFile, '--no-watch', ...extra, '--', ...command], env);

describe('exit status mirrors the service', () => {
  it.each([0, 1, 2, 3, 42, 100, 125, 126, 127, 128, 200, 255])('exit %i', async (code) => {
    const result = await run(['sh', '-c', `exit ${code}`]);
    expect(result.exitCode).toBe(code);
  });

  it.each(['SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGABRT', 'SIGKILL', 'SIGUSR1', 'SIGSEGV', 'SIGUSR2', 'SIGPIPE', 'SIGALRM', 'SIGTERM'] as const)(
    '128 + n when the service dies of %s',
    async (signal) => {
      const result = await run(['sh', '-c', `kill -${signal.slice(3)} $$`]);
      expect(result.exitCode).toBe(128 + constants.signals[signal]);
    },
  );

  it('127 with a clear sentence when the command does not exist', async () => {
    matrix.inputs();
    const result = await run(['no-such-service-binary']);
    expect(result.exitCode).toBe(127);
    expect(result.stderr).toContain('hab-pod-role: error: Command not found: no-such-service-binary; check the command after -- and PATH.');
  });

  it('126 when the command cannot be executed', async () => {
    matrix.inputs();
    const script = join(dir, 'not-executable.sh');
    writeFileSync(script, '#!/bin/sh\nexit 0\n');
    chmodSync(script, 0o644);
    const result = await run([script]);
    expect(result.exitCode).toBe(126);
    expect(result.stderr).toContain(`hab-pod-role: error: Cannot execute ${script} (EACCES)`);
  });

  it.runIf(process.getuid?.() === 0)(`128 + n also when the wrapper is PID 1 (in a PID namespace of its own)${process.getuid?.() === 0 ? '' : ' (skipped: needs root for a PID namespace)'}`, async () => {
    // PID 1 ignores every signal it has no handler for, so re-raising the service's signal would not end it.
    const result = await runCliAsPid1(['run', '-c', leaderFile, '--no-watch', '--', 'sh', '-c', 'echo "parent=$PPID"; kill -USR2 $$']);
    expect(result.stdout.trim()).toBe('parent=1');
    expect(result.exitCode).toBe(128 + constants.signals.SIGUSR2);
  });
});

/** Runs the CLI as PID 1 of a new PID namespace (root only), as in a container without an init. */
async function runCliAsPid1(args: string[]) {
  const running = startCli(args, env, ['unshare', '--pid', '--fork', '--kill-child', process.execPath, resolve(import.meta.dirname, '../dist/hab-pod-role.mjs')]);
  return running.exited;
}

describe('signals reach the service', () => {
  it('forwards every catchable signal, then TERM ends it cleanly with 0', async () => {
    const out = join(dir, 'signals.txt');
    const running = startCli(['run', '-c', leaderFile, '--no-watch', '--', process.execPath, recorder], { ...env, OUT: out });
    await eventually(() => existsSync(out) && readFileSync(out, 'utf8').startsWith('ready'), { what: 'the fixture service starting' });
    for (const signal of ['SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH', 'SIGALRM'] as const) {
      running.signal(signal); // to the wrapper alone: only forwarding can get it to the service
      await eventually(() => readFileSync(out, 'utf8').includes(signal), { what: `${signal} reaching the service` });
    }
    running.signal('SIGTERM');
    const result = await running.exited;
    expect(result.exitCode).toBe(0);
    expect(readFileSync(out, 'utf8').trim().split('\n')).toEqual(['ready', 'SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH', 'SIGALRM', 'SIGTERM']);
  });

  it('a TERM to the whole group (as the Supervisor sends it) ends a TERM-handling service with 0', async () => {
    const out = join(dir, 'group.txt');
    const running = startCli(['run', '-c', leaderFile, '--no-watch', '--', process.execPath, recorder], { ...env, OUT: out });
    await eventually(() => existsSync(out) && readFileSync(out, 'utf8').startsWith('ready'), { what: 'the fixture service starting' });
    running.signalGroup('SIGTERM');
    expect((await running.exited).exitCode).toBe(0);
  });
});

describe('a service that misbehaves', () => {
  it('crashing again and again: each start mirrors the crash, labels with one request, and leaves nothing behind', async () => {
    matrix.fault();
    // The Supervisor restarts the run hook after each crash; every restart is a cold start of the wrapper.
    expect((await run(['true'])).exitCode).toBe(0);
    for (let i = 0; i < 5; i++) {
      const result = await runCli(['run', '-c', leaderFile, '--', 'sh', '-c', 'echo crashing >&2; exit 3'], env);
      expect(result.exitCode).toBe(3);
      expect(result.requests).toBe(1);
      expect(result.stderr).toContain('crashing');
    }
    expect((await admin().podLabels(env.POD_NAMESPACE!, 'redis-0')).role).toBe('leader');
    expect(processesWith(leaderFile)).toEqual([]);
  });

  it('ignoring TERM: the wrapper waits with it (never orphaning it) until the Supervisor KILLs the group', async () => {
    matrix.fault();
    const out = join(dir, 'stubborn.pid');
    const running = startCli(['run', '-c', leaderFile, '--', 'sh', '-c', `trap '' TERM; echo $$ > ${out}; while :; do sleep 0.1; done`], env);
    await eventually(() => existsSync(out) && readFileSync(out, 'utf8').endsWith('\n'), { what: 'the stubborn service starting' });
    const service = Number(readFileSync(out, 'utf8'));
    try {
      running.signalGroup('SIGTERM');
      await new Promise((r) => setTimeout(r, 1500));
      // Both still there: the wrapper must not exit and leave the service running unsupervised.
      expect([alive(running.pid), alive(service)]).toEqual([true, true]);
    } finally {
      // Also when the check failed: a service that ignores TERM must not outlive the test.
      signalGroup(running.pid, 'SIGKILL');
    }
    await running.exited;
    await eventually(() => !alive(service), { what: 'the service gone with its group' });
  });
});

/** Processes whose command line mentions `text` (read from /proc). */
function processesWith(text: string): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(text);
      } catch {
        return false; // gone meanwhile
      }
    })
    .map(Number);
}

describe('the wrapper stays out of the way', () => {
  it('leaves stdout to the service and prefixes its own lines on stderr', async () => {
    const result = await run(['sh', '-c', 'echo to-stdout; echo to-stderr >&2']);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe('to-stdout');
    const own = result.stderr.split('\n').filter((line) => line !== '' && line !== 'to-stderr');
    expect(own.length).toBeGreaterThan(0);
    for (const line of own) expect(line).toMatch(/^hab-pod-role: /);
  });

  it('logs JSON lines with --log-format json', async () => {
    const result = await run(['true'], ['--log-format', 'json']);
    expect(result.exitCode).toBe(0);
    const lines = result.stderr.trim().split('\n').map((line) => JSON.parse(line) as { level: string; msg: string });
    expect(lines.at(-1)).toMatchObject({ level: 'info', msg: expect.stringContaining('pod ') });
  });

  it('hands the service the same stdin', async () => {
    const result = await runCli(['run', '-c', leaderFile, '--no-watch', '--', 'sh', '-c', 'read line; echo "got $line"'], env, { input: 'hello\n', stdin: undefined });
    expect(result.stdout).toBe('got hello');
  });
});

describe('when labelling fails', () => {
  it('does not start the service and exits with the apply code', async () => {
    matrix.inputs();
    const marker = join(dir, 'started-1');
    const result = await runCli(['run', '-c', leaderFile, '--', 'touch', marker], { ...env, POD_NAME: 'no-such-pod' });
    expect(result.exitCode).toBe(78);
    expect(existsSync(marker)).toBe(false);
  });

  it('an API server unreachable until --timeout: 69 in time, and the service never starts', async () => {
    matrix.fault();
    const marker = join(dir, 'started-unreachable');
    const started = Date.now();
    const result = await runCli(['run', '-c', leaderFile, '--timeout', '2', '--', 'touch', marker], { ...env, KUBERNETES_SERVICE_PORT: '1' });
    expect(result.exitCode).toBe(69);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(result.stderr).toMatch(/did not answer successfully within --timeout 2s \(last error: ECONNREFUSED/);
    expect(existsSync(marker)).toBe(false);
  });

  it('starts it anyway with --start-on-label-error', async () => {
    matrix.inputs();
    const marker = join(dir, 'started-2');
    const result = await runCli(['run', '-c', leaderFile, '--start-on-label-error', '--', 'sh', '-c', `touch ${marker}; exit 5`], { ...env, POD_NAME: 'no-such-pod' });
    expect(result.exitCode).toBe(5);
    expect(existsSync(marker)).toBe(true);
    expect(result.stderr).toContain('starting the service anyway (--start-on-label-error)');
  });

  it('is a usage error (64) without a command after --, and the service never starts', async () => {
    matrix.inputs();
    const result = await runCli(['run', '-c', leaderFile], env);
    expect(result.exitCode).toBe(64);
    expect(result.stderr.trim()).toBe('hab-pod-role: error: run needs the service command after --, as in: hab-pod-role run --config FILE -- redis-server /path/to/redis.config.');
  });

  it.each(['SIGTERM', 'SIGINT', 'SIGHUP'] as const)('%s while it retries an unreachable API server: exits with 128 + n, service never started', async (signal) => {
    matrix.fault();
    const marker = join(dir, `started-${signal}`);
    const unreachable = { ...env, KUBERNETES_SERVICE_PORT: '1' };
    const running = startCli(['run', '-c', leaderFile, '--timeout', '60', '--', 'touch', marker], unreachable);
    await eventually(() => running.stderr().includes('retrying'), { what: 'a retry' });
    running.signal(signal);
    const result = await running.exited;
    expect(result.exitCode).toBe(128 + constants.signals[signal]);
    expect(existsSync(marker)).toBe(false);
  });
});
