// The hab-launch stand-in (test/support/launcher.c), checked against what hab-launch does (components/launcher/src/server.rs).

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { eventually } from './eventually.ts';
import { buildLauncher } from './launcher.ts';

const dir = mkdtempSync(join(tmpdir(), 'hab-pod-role-launcher-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const launcher = buildLauncher(dir);

/** Starts `command` (with `prefix` before the launcher, such as unshare); its output and exit, as code or 128 + signal. */
function start(command: string[], prefix: string[] = []) {
  const [file, ...args] = [...prefix, launcher, ...command];
  const child = spawn(file!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number>((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 0))));
  return { child, output: () => output, exited };
}

/** The processes whose parent is `pid`, with their state (Z: a zombie no one has reaped) and command line. */
function children(pid: number): { pid: number; state: string; cmdline: string }[] {
  return readdirSync('/proc').filter((p) => /^\d+$/.test(p)).flatMap((p) => {
    try {
      const status = readFileSync(`/proc/${p}/status`, 'utf8');
      if (Number(/^PPid:\s+(\d+)/m.exec(status)?.[1]) !== pid) return [];
      return [{ pid: Number(p), state: /^State:\s+(\S)/m.exec(status)![1]!, cmdline: readFileSync(`/proc/${p}/cmdline`, 'utf8').replaceAll('\0', ' ') }];
    } catch {
      return []; // gone meanwhile
    }
  });
}

describe('the hab-launch stand-in', () => {
  it('as PID 1 reaps an orphan of the Supervisor\'s children once it ends (reap_zombie_orphans)', async () => {
    const go = join(dir, 'go');
    // The "Supervisor" leaves an orphan behind (a shell that exits once `go` exists), then waits to be stopped.
    const supervisor = `sh -c "sh -c 'while [ ! -e ${go} ]; do sleep 0.05; done' >/dev/null 2>&1 &"\nexec sleep 600`;
    const run = start(['/bin/sh', '-c', supervisor], ['unshare', '--pid', '--fork', '--mount-proc', '--kill-child']);
    try {
      // unshare's child is the launcher, PID 1 of the new namespace; the orphan is reparented to it.
      const pid1 = (await eventually(() => children(run.child.pid!).find((c) => c.cmdline.startsWith(launcher))?.pid, { what: 'the launcher as PID 1' }))!;
      await eventually(() => children(pid1).some((c) => c.cmdline.includes(go)), { what: 'the orphan reparented to PID 1' });
      writeFileSync(go, '');
      // It ended and nothing of it is left: no zombie; only the Supervisor is still PID 1's child.
      await eventually(() => {
        const left = children(pid1);
        return left.length === 1 && left[0]!.cmdline.startsWith('sleep 600') && left[0]!.state !== 'Z';
      }, { what: 'the orphan reaped' });
      process.kill(pid1, 'SIGTERM');
      expect(await run.exited).toBe(0);
    } finally {
      run.child.kill('SIGKILL');
    }
  });

  it('passes TERM on to the Supervisor and exits 0 once it is gone, whatever its code', async () => {
    const ready = join(dir, 'ready');
    const run = start(['/bin/sh', '-c', `trap 'echo stopping; exit 5' TERM\n: > ${ready}\nwhile :; do sleep 0.05; done`]);
    await eventually(() => existsSync(ready), { what: 'the Supervisor started' });
    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
    expect(run.output()).toContain('stopping');
  });

  it('exits as handle_supervisor_exit does when the Supervisor exits by itself: 84 gives 0, 86 gives 86, a signal 0; any other code is its own', async () => {
    const exit = async (script: string) => start(['/bin/sh', '-c', script]).exited;
    expect(await exit('exit 84')).toBe(0);
    expect(await exit('exit 86')).toBe(86);
    expect(await exit('kill -KILL $$')).toBe(0);
    // The real launcher would start a new Supervisor; the stand-in stops, and says so.
    const other = start(['/bin/sh', '-c', 'exit 3']);
    expect(await other.exited).toBe(3);
    expect(other.output()).toContain('the Supervisor exited with code 3');
    // A command that cannot be started is the Supervisor exiting 127 (execv failed).
    expect(await start([join(dir, 'no-such-supervisor')]).exited).toBe(127);
  });
});
