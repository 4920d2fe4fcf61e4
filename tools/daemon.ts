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

/** Below the kernel's ephemeral range (ip_local_port_range), where it never puts an outgoing connection. */
function ephemeralLow(): number {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || 32768;
  } catch {
    return 32768;
  }
}

function listening(port: number, host: string): Promise<Server | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(undefined));
    server.listen(port, host, () => resolve(server));
  });
}

/**
 * `count` distinct ports free on `host` now, for daemons started next. Chosen below the ephemeral range: a
 * port the kernel handed out (listen on 0) is one it may give any outgoing connection's source before the
 * daemon binds it (a daemon then fails with EADDRINUSE), and a client connecting to such a port while
 * nothing listens can be connected to itself.
 */
export async function freePorts(count: number, host = '127.0.0.1'): Promise<number[]> {
  const floor = 10_000;
  const low = ephemeralLow();
  const servers: Server[] = [];
  while (servers.length < count) {
    const port = low > floor + 1000 ? floor + Math.floor(Math.random() * (low - floor)) : 0;
    const server = await listening(port, host);
    if (server && !servers.some((s) => (s.address() as AddressInfo).port === (server.address() as AddressInfo).port)) servers.push(server);
    else server?.close();
  }
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
