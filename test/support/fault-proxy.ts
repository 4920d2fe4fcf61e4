// A fault-injecting HTTPS proxy in front of the real API server: answers with errors, resets, stalls or delays on cue.

import { readFileSync } from 'node:fs';
import https, { type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import type { ControlPlane } from '../../tools/control-plane.ts';

export type Fault =
  | { status: number; retryAfter?: string; reason?: string }
  | { reset: true }
  | { stall: true }
  | { delayMs: number };

interface Rule {
  method?: string;
  /** Matches the request path (with query), when only one resource's requests should take the fault. */
  path?: RegExp;
  fault: Fault;
  /** Runs before the fault is answered: how a test makes something else happen at exactly that moment. */
  before?: () => Promise<void>;
}

export interface Seen {
  method: string;
  path: string;
  at: number;
  /** What the proxy did: a fault, or 'passed' to the API server. */
  answer: string;
  /** For a request passed on: the API server's own status code. */
  status?: number;
}

/** Listens on loopback with the API server's own certificate, so the tool verifies it as it would the server. */
export class FaultProxy {
  readonly seen: Seen[] = [];
  /** TLS connections clients opened to the proxy, since it started. */
  connections = 0;
  private readonly rules: Rule[] = [];
  private readonly server: Server;
  private readonly upstream: URL;
  private readonly ca: string;
  port = 0;

  constructor(plane: ControlPlane) {
    this.upstream = new URL(plane.server);
    this.ca = plane.caPem;
    this.server = https.createServer(
      { cert: readFileSync(join(plane.dir, 'apiserver.crt')), key: readFileSync(join(plane.dir, 'apiserver.key')) },
      (req, res) => this.handle(req, res),
    );
    this.server.on('secureConnection', () => this.connections++);
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
    return this;
  }

  /** Queues faults: each matching request takes the next one; requests with no rule left pass through. */
  inject(...faults: (Fault | Rule)[]): void {
    for (const f of faults) this.rules.push('fault' in f ? f : { fault: f });
  }

  /** Forgets queued faults and what was seen: each test starts clean. */
  reset(): void {
    this.rules.length = 0;
    this.seen.length = 0;
  }

  get url(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const index = this.rules.findIndex((r) => (r.method === undefined || r.method === req.method) && (r.path === undefined || r.path.test(req.url ?? '')));
    const rule = index === -1 ? undefined : this.rules.splice(index, 1)[0]!;
    if (rule?.before) {
      // Requests that arrive meanwhile see the rule already taken, as they would a fault answered at once.
      rule.before().then(() => this.answer(req, res, rule.fault), () => req.socket.destroy());
      return;
    }
    this.answer(req, res, rule?.fault);
  }

  private answer(req: IncomingMessage, res: ServerResponse, fault: Fault | undefined): void {
    const seen: Seen = { method: req.method ?? '', path: req.url ?? '', at: Date.now(), answer: 'passed' };
    this.seen.push(seen);
    if (fault && 'status' in fault) {
      seen.answer = String(fault.status);
      const body = JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: fault.reason ?? 'Injected', message: `injected ${fault.status}`, code: fault.status });
      res.writeHead(fault.status, { 'Content-Type': 'application/json', ...(fault.retryAfter ? { 'Retry-After': fault.retryAfter } : {}) });
      res.end(body);
      return;
    }
    if (fault && 'reset' in fault) {
      seen.answer = 'reset';
      req.socket.destroy();
      return;
    }
    if (fault && 'stall' in fault) {
      seen.answer = 'stall';
      return; // never answered; the client's timeout ends it
    }
    const forward = () => {
      const upstream = https.request(
        { host: this.upstream.hostname, port: this.upstream.port, method: req.method, path: req.url, headers: req.headers, ca: this.ca },
        (up) => {
          seen.status = up.statusCode;
          res.writeHead(up.statusCode ?? 502, up.headers);
          // At once, as the API server sends them: a watch's headers come long before its first event.
          res.flushHeaders();
          up.pipe(res);
        },
      );
      upstream.on('error', () => req.socket.destroy());
      req.pipe(upstream);
    };
    if (fault && 'delayMs' in fault) {
      seen.answer = `delayed ${fault.delayMs} ms`;
      setTimeout(forward, fault.delayMs);
    } else {
      forward();
    }
  }
}
