// The Supervisor stand-in's handling of the run hook's process, checked against what the real Supervisor does (see test/support/supervisor.ts).

import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { eventually } from './eventually.ts';
import { SupervisedMember, type GroupState } from './supervisor.ts';

const finished: GroupState = { election: 'finished', leader: 'm-0', members: [{ name: 'm-0', ip: '127.0.0.1', alive: true }] };
const running: GroupState = { ...finished, election: 'running', leader: undefined };

const dir = mkdtempSync(join(tmpdir(), 'hab-pod-role-supervised-'));
// The hooks run as the hab user (42), who must reach their files: every directory above gets search
// permission for others while this file runs (the run's temporary root is 0700), and its mode back after.
chmodSync(dir, 0o755);
const searchable: { d: string; mode: number }[] = [];
for (let d = dirname(dir); d !== dirname(d); d = dirname(d)) {
  const mode = statSync(d).mode & 0o7777;
  if ((mode & 0o001) === 0) {
    searchable.push({ d, mode });
    chmodSync(d, mode | 0o001);
  }
}
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  for (const { d, mode } of searchable) chmodSync(d, mode);
});
let plans = 0;

/** A plan of its own for each test: a run hook, a health check, and a member that runs them. */
function member(hooks: Record<string, string>, options: { healthCheckIntervalSeconds?: number; shutdownTimeoutMs?: number } = {}) {
  const planDir = join(dir, `plan-${++plans}`);
  mkdirSync(join(planDir, 'config'), { recursive: true });
  mkdirSync(join(planDir, 'hooks'));
  writeFileSync(join(planDir, 'default.toml'), '');
  for (const [name, text] of Object.entries(hooks)) writeFileSync(join(planDir, 'hooks', name), `#!/bin/sh\n${text}\n`);
  const m = new SupervisedMember({
    name: 'm-0', ip: '127.0.0.1', planDir, svcDir: join(dir, `svc-${plans}`), service: 'fixture', pkgPaths: {},
    env: { PATH: '/usr/bin:/bin' }, ...options,
  });
  /** A file the hooks write (under pkg.svc_var_path); undefined until they do. */
  const read = (name: string) => (existsSync(join(m.spec.svcDir, 'var', name)) ? readFileSync(join(m.spec.svcDir, 'var', name), 'utf8') : undefined);
  return { m, read };
}

/** Alive, and not a zombie waiting for its parent. */
function alive(pid: number): boolean {
  const status = existsSync(`/proc/${pid}/status`) ? readFileSync(`/proc/${pid}/status`, 'utf8') : '';
  return /^State:\s+[^Z]/m.test(status);
}

describe('the Supervisor stand-in with the run hook\'s process', () => {
  it('restarts a run hook that exited, at the next tick with a finished election (not while one runs), health unknown until checked again at once', async () => {
    const { m, read } = member({
      run: 'echo start >> {{pkg.svc_var_path}}/starts\nexit 3',
      'health-check': '[ -e {{pkg.svc_var_path}}/../healthy ] && exit 0\nexit 2',
    }, { healthCheckIntervalSeconds: 3600 });
    const gateway = await m.startGateway();
    const health = async () => (await fetch(`http://${gateway.host}:${gateway.port}/services/fixture/default/health`)).status;
    try {
      expect(await m.tick(finished)).toBe('started');
      // hab-launch says so when it reaps the service's process (components/launcher/src/server.rs, reap_services).
      await eventually(() => m.output.some((l) => /Child for service 'fixture\.default' with PID \d+ exited with code exit status: 3/.test(l)), { what: 'the run hook exiting' });
      // The check at the start ran: critical (no Redis, here no file).
      await eventually(async () => (await health()) === 503, { what: 'the first health check' });
      expect(read('starts')).toBe('start\n');

      // While an election runs the Supervisor executes no hook, so it does not notice either.
      expect(await m.tick(running)).toBe('waiting');
      expect(read('starts')).toBe('start\n');

      writeFileSync(join(m.spec.svcDir, 'healthy'), '');
      expect(await m.tick(finished)).toBe('restarted');
      await eventually(() => read('starts') === 'start\nstart\n', { what: 'the run hook started again' });
      expect(m.output).toEqual(expect.arrayContaining(['fixture.m-0: Stopping service, will restart immediately', 'fixture.m-0: Restarted']));
      // The restarted service was checked at once (the next timed check is an hour away): ok now.
      await eventually(async () => (await health()) === 200, { what: 'the restarted service checked' });
      // It exits again, and is restarted again: there is no limit, and no back-off by default.
      await eventually(() => m.output.filter((l) => l.includes('exited with code exit status: 3')).length === 2, { what: 'the second run exiting' });
      expect(await m.tick(finished)).toBe('restarted');
    } finally {
      await m.shutdown();
    }
  });

  it('signals nothing when the run hook has exited: a child it left behind keeps running through the restart and the stop', async () => {
    const { m, read } = member({ run: '[ -e {{pkg.svc_var_path}}/child ] || { sleep 300 >/dev/null 2>&1 & echo $! > {{pkg.svc_var_path}}/child; }\nexit 0' });
    let child: number | undefined;
    try {
      expect(await m.tick(finished)).toBe('started');
      child = Number(await eventually(() => read('child')?.trim() || undefined, { what: 'the run hook\'s child' }));
      await eventually(() => m.output.some((l) => l.includes('exited with code exit status: 0')), { what: 'the run hook exiting' });
      expect(await m.tick(finished)).toBe('restarted');
      expect(alive(child)).toBe(true);
      await eventually(() => m.output.filter((l) => l.includes('exited with code exit status: 0')).length === 2, { what: 'the second run exiting' });
      await m.shutdown();
      // Still there: the real Supervisor has no PID to stop for a process that is gone, and a stop signals the
      // group of the run hook it started last, not this one's.
      expect(alive(child)).toBe(true);
      expect(m.output.filter((l) => /Terminating service|Service killed/.test(l))).toEqual([]);
    } finally {
      if (child) {
        process.kill(child, 'SIGKILL');
        await eventually(() => !alive(child!), { what: 'the left-behind child gone' });
      }
    }
  });

  it('stops a running service with TERM to its group and waits for all of it: a child still shutting down after the hook exited is not killed', async () => {
    const { m, read } = member({
      run: [
        // A child in the hook's group that takes a moment to shut down on TERM.
        "( trap 'sleep 1; echo done > {{pkg.svc_var_path}}/child-stopped; exit 0' TERM; echo > {{pkg.svc_var_path}}/child-ready; while :; do sleep 0.1; done ) &",
        "trap 'exit 0' TERM",
        'echo > {{pkg.svc_var_path}}/ready',
        'while :; do sleep 0.1; done',
      ].join('\n'),
    }, { shutdownTimeoutMs: 30_000 });
    expect(await m.tick(finished)).toBe('started');
    await eventually(() => read('ready') !== undefined && read('child-ready') !== undefined, { what: 'the run hook and its child ready' });
    expect(await m.stop()).toBe(0);
    // The group's last process finished its shutdown: no KILL came after the hook itself had gone.
    expect(read('child-stopped')).toBe('done\n');
    expect(m.output.filter((l) => /^fixture\.m-0: (Service|Terminating)/.test(l)).map((l) => l.replace(/\d+\)$/, 'N)'))).toEqual(['fixture.m-0: Terminating service (PID: N)', 'fixture.m-0: Service gracefully terminated (PID: N)']);
  });

  it('KILLs the whole group once the shutdown timeout has passed, when some of it ignores TERM', async () => {
    const { m, read } = member({
      run: [
        "sh -c 'trap \"\" TERM; echo $$ > {{pkg.svc_var_path}}/stubborn; while :; do sleep 0.1; done' &",
        "trap 'exit 0' TERM",
        'while :; do sleep 0.1; done',
      ].join('\n'),
    }, { shutdownTimeoutMs: 500 });
    expect(await m.tick(finished)).toBe('started');
    const stubborn = Number(await eventually(() => read('stubborn')?.trim() || undefined, { what: 'the child that ignores TERM' }));
    expect(await m.stop()).toBe(0);
    expect(m.output.some((l) => l.startsWith('fixture.m-0: Service killed (PID: '))).toBe(true);
    await eventually(() => !alive(stubborn), { what: 'the child that ignored TERM killed' });
  });
});
