// Long-running helper processes of the control plane and the node: start in a group of their own, wait until ready, stop.

import { spawn } from 'node:child_process';
import { existsSync, openSync, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { join } from 'node:path';

/** Starts `binary` detached, output appended to `logFile`, and returns its pid. */
export function startDaemon(binary: string, args: string[], logFile: string, env?: Record<string, string>): number {
  const log = openSync(logFile, 'a');
  // A process group of its own: stopping the group stops any helper the binary forks too.
  const child = spawn(binary, args, { detached: true, stdio: ['ignore', log, log], ...(env ? { env: { ...process.env, ...env } } : {}) });
  child.unref();
  if (child.pid === undefined) throw new Error(`could not start ${binary}`);
  return child.pid;
}

/** Waits until `ready` holds, failing with the end of `dir/name.log` when the process exits or the deadline passes. */
export async function waitFor(name: string, pid: number, deadline: number, ready: () => Promise<boolean>, dir: string): Promise<void> {
  for (;;) {
    try {
      if (await ready()) return;
    } catch {
      // not up yet
    }
    const died = !alive(pid);
    if (died || Date.now() > deadline) {
      const log = join(dir, `${name}.log`);
      const tail = existsSync(log) ? readFileSync(log, 'utf8').split('\n').slice(-15).join('\n') : '';
      throw new Error(`${name} ${died ? 'exited' : 'did not become ready before the deadline'}; the end of ${log}:\n${tail}`);
    }
    await sleep(100);
  }
}

/** TERM to the process group, then KILL after `graceMs`; returns once the process is gone. */
export async function stopDaemon(pid: number, graceMs = 10_000): Promise<void> {
  signalGroup(pid, 'SIGTERM');
  const until = Date.now() + graceMs;
  while (alive(pid) && Date.now() < until) await sleep(50);
  signalGroup(pid, 'SIGKILL');
  while (alive(pid)) await sleep(20);
}

/** The body of a GET (admin token and CA when given); rejects on a connection error or after 2 s. */
export function httpGet(url: string, auth?: { caPem: string; adminToken: string }): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const req = (url.startsWith('https') ? https : http).get(url, {
      ...(auth ? { ca: auth.caPem, headers: { Authorization: `Bearer ${auth.adminToken}` } } : {}),
      timeout: 2000,
    }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolvePromise(body));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** Ports the kernel hands out now; good enough on a machine where only these tests bind loopback ports. */
export async function freePorts(count: number, host = '127.0.0.1'): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: count }, () => new Promise<Server>((ok) => {
    const s = createServer();
    s.listen(0, host, () => ok(s));
  })));
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((ok) => s.close(ok))));
  return ports;
}

/** Signals a process group; a group that is gone already is no error. */
export function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/** Whether `pid` runs; a zombie (exited, not yet reaped by its parent) counts as gone. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.startsWith('Z');
  } catch {
    return false;
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
