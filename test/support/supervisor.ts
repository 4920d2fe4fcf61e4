// A stand-in for the Habitat Supervisor: renders a plan's config/ and hooks/ from census data and runs hooks as it does.
//
// What the tests rely on, each as habitat-sh/habitat's components/sup does it (leader topology):
// - Templates are rendered on every tick, also while an election runs or has no quorum; hooks run only
//   once it has finished ("Waiting to execute hooks; election in progress", manager/service.rs). A
//   change rendered while hooks wait triggers no hook later: each tick's change is acted on or lost.
// - svc.me.leader / svc.me.follower change only when an election finishes; svc.leader stays the
//   previous leader (possibly dead) while a new election runs (census.rs); svc.members holds alive and
//   suspect members, eachAlive only alive ones.
// - Rendered files are rewritten in place (File::create: truncated, then written), owned by the service user.
// - A config change runs reconfigure instead of a restart when the hook exists; it runs synchronously in
//   the Supervisor's loop, its exit code is discarded (`.ok()`) and it is never retried. A changed
//   init/run/post-run hook restarts the service.
// - Hooks run in their own process group, as pkg_svc_user (uid/gid 42, as `hab pkg export container`
//   creates the hab user), with the Supervisor's environment and PATH = the dependencies' bin dirs, then
//   the Supervisor's PATH.
// - pkgPathFor renders "" for a package that is not a dependency (templating/helpers/pkg_path_for.rs).
// - The health-check hook's last result is served by the HTTP gateway at /services/<service>/<group>/health:
//   200 ok or warning, 503 critical, 500 unknown (also before the first check), 404 for another group.
// - Health checks start with the service: a started (or restarted) service's health is unknown until its first
//   check, which runs at once (a new Service starts at HealthCheckResult::Unknown, manager/service.rs around
//   560 and 674); then every interval after an ok (after a random splay of up to one interval following the
//   first ok), at most every 30 s after anything else (manager/service/health.rs, check_repeatedly). A
//   reconfigure starts them again, so a check follows at once (service.rs, reconfigure(), around 1164). The
//   hook runs whether or not the service's process is up; without a hook the health is that process state.
// - A run hook that exited is restarted, at the next tick whose election has finished (only then are hooks
//   executed): execute_hooks finds the process gone and marks the service for restart as RunHookFailed
//   (service.rs around 1338-1350). With hab sup run's defaults (--service-min-backoff-period 0 and
//   --service-max-backoff-period 0, components/hab/src/cli_v4/sup/sup_run.rs around 187-195) the back-off
//   (core/src/flowcontrol/backoff.rs) is 0: "Stopping service, will restart immediately", then "Restarted"
//   (service.rs around 366-402). Until then the health checks go on as before. The stand-in takes no other
//   back-off. Nothing is signalled: the process is gone, and the Supervisor has no PID left to stop
//   (service/supervisor.rs, stop()), so a child the run hook left behind keeps running, as it would there.
// - Stopping a running service (hooks changed, or the Supervisor shutting down): TERM to the run hook's process
//   group (the hook leads it), then, every 5 ms, is any process of the group left; KILL to the group once the
//   shutdown timeout (pkg_shutdown_timeout_sec, 8 s) has passed (components/sup/src/sys/unix/service.rs, kill()).
//   A group whose processes all end on TERM gets no KILL.
// Not stood in for: init, post-run and post-stop hooks (the example has none), the PID file, and the real
// stop's overlap (it spawns the termination without awaiting it, service/supervisor.rs stop(), so a restart's
// new run hook can start while the old one is still stopping; the stand-in waits for the old one first).

import { spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { constants } from 'node:os';
import { join } from 'node:path';
import TOML from '@iarna/toml';
import Handlebars from 'handlebars';

/** What the group knows after gossip: who is alive (or suspect), the election's state, its winner. */
export interface GroupState {
  members: { name: string; ip: string; alive: boolean; suspect?: boolean }[];
  election: 'finished' | 'running' | 'no_quorum';
  /** The winner; read only when the election has finished. */
  leader?: string | undefined;
}

export interface MemberSpec {
  name: string;
  ip: string;
  /** The plan directory: default.toml, config/, hooks/. */
  planDir: string;
  /** Where /hab/svc/<service> would be. */
  svcDir: string;
  service: string;
  /** The package's dependencies and where they are installed: what pkgPathFor answers, whose bin dirs are on PATH. */
  pkgPaths: Record<string, string>;
  /** The Supervisor's environment, which hooks inherit (the pod's, in Kubernetes). */
  env: Record<string, string>;
  /** `hab config apply` values, layered over default.toml. */
  userConfig?: Record<string, unknown>;
  shutdownTimeoutMs?: number;
  /** `--health-check-interval` (hab-sup's default is 30): without it, health checks run only when asked for (healthCheck()). */
  healthCheckIntervalSeconds?: number;
  /** Where the HTTP gateway listens (the stand-in runs outside the pod, so not on the pod's address). */
  gatewayHost?: string;
  /** Its port: 9631 inside a pod; any free one beside the test. */
  gatewayPort?: number;
}

/** Where the stand-in, in a container, takes the harness's census (supervisor-main.ts): gossip's stand-in. */
export const harnessPort = 9630;

/** The hab user of an exported image. */
export const serviceUser = { uid: 42, gid: 42 };

export type Tick = 'waiting' | 'started' | 'unchanged' | 'reconfigured' | 'restarted';
export type Health = 'ok' | 'warning' | 'critical' | 'unknown';

// The helpers the Supervisor registers (habitat components/common/src/templating.rs).
const handlebars = Handlebars.create();
handlebars.registerHelper('eachAlive', function (this: unknown, items: { alive?: boolean }[], options: Handlebars.HelperOptions) {
  return (items ?? []).filter((i) => i.alive).map((i) => options.fn(i)).join('');
});
handlebars.registerHelper('strConcat', (...args: unknown[]) => args.slice(0, -1).join(''));
handlebars.registerHelper('strJoin', (items: unknown[], separator: string) => (items ?? []).join(separator));
handlebars.registerHelper('strReplace', (s: string, from: string, to: string) => String(s).split(from).join(to));
handlebars.registerHelper('toUppercase', (s: string) => String(s).toUpperCase());
handlebars.registerHelper('toLowercase', (s: string) => String(s).toLowerCase());
handlebars.registerHelper('toJson', (v: unknown) => JSON.stringify(v));
handlebars.registerHelper('toToml', (v: unknown) => TOML.stringify(v as TOML.JsonMap));
handlebars.registerHelper('toYaml', (v: unknown) => JSON.stringify(v, null, 2)); // JSON is YAML
handlebars.registerHelper('pkgPathFor', function (this: unknown, ident: string, options: Handlebars.HelperOptions) {
  const paths = (options.data?.root as { __pkgPaths?: Record<string, string> })?.__pkgPaths ?? {};
  // The Supervisor matches the ident against the package's dependencies and renders nothing, silently,
  // when none matches.
  const match = Object.entries(paths).find(([dep]) => dep === ident || dep.startsWith(`${ident}/`));
  return match?.[1] ?? '';
});

/** Renders one template as the Supervisor does (HTML escaping off) from census-shaped data. */
export function renderTemplate(text: string, data: object): string {
  return handlebars.compile(text, { noEscape: true })(data);
}

const healthCodes: Record<number, Health> = { 0: 'ok', 1: 'warning', 2: 'critical', 3: 'unknown' };
const healthStatus: Record<Health, number> = { ok: 200, warning: 200, critical: 503, unknown: 500 };

export class SupervisedMember {
  readonly spec: MemberSpec;
  /** Every line the hooks printed, prefixed as the Supervisor prefixes them, and the Supervisor's own lines. */
  readonly output: string[] = [];
  /** The exit code of each reconfigure run, in order (the Supervisor discards it; the tests look). */
  readonly reconfigureExits: number[] = [];
  private cfg: Record<string, unknown>;
  private rendered = new Map<string, string>();
  private flags = { leader: false, follower: false };
  private lastLeader: string | undefined;
  private waitingSaid = false;
  private runHook: ChildProcess | undefined;
  private runExit: Promise<number> | undefined;
  /** The run hook's process has ended (and was reaped): the Supervisor would find no live process for its PID. */
  private runExited = false;
  private health: Health = 'unknown';
  private healthEverySeconds: number | undefined;
  /** Bumped whenever health checks stop or start again: a check still running for an older round is dropped, as an aborted future's is. */
  private healthRound = 0;
  private healthTimer: NodeJS.Timeout | undefined;
  private gateway: Server | undefined;
  /**
   * When the last render began rewriting each file it changed ('config/election.toml': ms of the machine's
   * monotonic clock, which a container shares with the host): where a benchmark starts its clock.
   */
  rewritten: Record<string, number> = {};

  constructor(spec: MemberSpec) {
    this.spec = spec;
    this.cfg = { ...(TOML.parse(readFileSync(join(spec.planDir, 'default.toml'), 'utf8')) as Record<string, unknown>), ...spec.userConfig };
    this.healthEverySeconds = spec.healthCheckIntervalSeconds;
    for (const dir of ['', 'config', 'hooks', 'data', 'var']) {
      mkdirSync(join(spec.svcDir, dir), { recursive: true });
      ownedByServiceUser(join(spec.svcDir, dir));
    }
  }

  get configPath(): string {
    return join(this.spec.svcDir, 'config');
  }

  /** `hab config apply`: new values for the service group; they take effect at the next tick. */
  applyConfig(values: Record<string, unknown>): void {
    this.cfg = { ...this.cfg, ...values };
  }

  /**
   * Renders config/ and hooks/ for the group's state and says what changed. The leader and follower
   * flags, and svc.leader, change only when an election finishes; while one runs they keep their values.
   */
  render(group: GroupState): { configChanged: boolean; hooksChanged: string[] } {
    if (group.election === 'finished') {
      this.flags = { leader: group.leader === this.spec.name, follower: group.leader !== undefined && group.leader !== this.spec.name };
      this.lastLeader = group.leader;
    }
    const data = this.templateData(group);
    let configChanged = false;
    const hooksChanged: string[] = [];
    this.rewritten = {};
    for (const kind of ['config', 'hooks'] as const) {
      const dir = join(this.spec.planDir, kind);
      for (const file of readdirSync(dir)) {
        const text = renderTemplate(readFileSync(join(dir, file), 'utf8'), data);
        const target = join(this.spec.svcDir, kind, file);
        if (this.rendered.get(target) === text) continue;
        // In place, as File::create does: a reader can find it empty or half-written for a moment.
        this.rewritten[`${kind}/${file}`] = monotonicMs();
        writeFileSync(target, text, { mode: kind === 'hooks' ? 0o755 : 0o644 });
        ownedByServiceUser(target);
        this.rendered.set(target, text);
        if (kind === 'config') configChanged = true;
        else hooksChanged.push(file);
      }
    }
    return { configChanged, hooksChanged };
  }

  /**
   * One Supervisor tick for this service: render, then, only if the election has finished, start the
   * service, restart it when its run hook has exited or changed, or run reconfigure (awaited; its result
   * ignored) for changed config.
   */
  async tick(group: GroupState): Promise<Tick> {
    const { configChanged, hooksChanged } = this.render(group);
    if (group.election !== 'finished') {
      if (!this.waitingSaid) this.output.push(`${this.prefix()} Waiting to execute hooks; election in progress${group.election === 'no_quorum' ? ', and we have no quorum' : ''}.`);
      this.waitingSaid = true;
      return 'waiting';
    }
    this.waitingSaid = false;
    if (!this.runHook) {
      this.start();
      return 'started';
    }
    // Looked at before any change, as execute_hooks does: a process that is gone is restarted whatever else changed.
    if (this.runExited || hooksChanged.some((h) => ['init', 'run', 'post-run'].includes(h)) || (configChanged && !this.hasHook('reconfigure'))) {
      this.output.push(`${this.prefix()} Stopping service, will restart immediately`);
      await this.stop();
      this.start();
      this.output.push(`${this.prefix()} Restarted`);
      return 'restarted';
    }
    if (!configChanged) return 'unchanged';
    this.reconfigureExits.push(await this.runToEnd('reconfigure'));
    this.startHealthChecks();
    return 'reconfigured';
  }

  /** Starts the run hook in a process group of its own, and the health checks with it. */
  start(): void {
    const child = this.hook('run');
    this.runHook = child;
    this.runExited = false;
    this.runExit = new Promise((resolve) => child.on('exit', (code, signal) => {
      this.runExited = true;
      // What hab-launch prints when it reaps the service's process (launcher/src/server.rs, reap_services; Rust's ExitStatus as it displays).
      this.output.push(`Child for service '${this.spec.service}.default' with PID ${child.pid} exited with code ${signal ? `signal: ${osSignal(signal)} (${signal})` : `exit status: ${code}`}`);
      resolve(exitCode(code, signal));
    }));
    this.health = 'unknown';
    this.startHealthChecks();
  }

  /** `--health-check-interval`: the checks under way go on at the new pace from their next round. */
  setHealthCheckInterval(seconds: number): void {
    if (seconds === this.healthEverySeconds) return;
    this.healthEverySeconds = seconds;
    if (this.runHook) this.startHealthChecks();
  }

  /** Runs a hook to its end (reconfigure, health-check) and returns its exit code. */
  runToEnd(name: string): Promise<number> {
    const child = this.hook(name);
    return new Promise((resolve) => child.on('exit', (code, signal) => resolve(exitCode(code, signal))));
  }

  /** One health check now (what the timer does), its result kept for the gateway; unknown before the service started. */
  async healthCheck(): Promise<Health> {
    this.health = await this.check();
    return this.health;
  }

  private async check(): Promise<Health> {
    if (!this.runHook) return 'unknown';
    // Without a hook the process state is the health (health.rs, check(): Up is ok, Down critical).
    if (!this.hasHook('health-check')) return this.runExited ? 'critical' : 'ok';
    return healthCodes[await this.runToEnd('health-check')] ?? 'unknown';
  }

  /** (Re)starts the timed checks: one at once, then as check_repeatedly spaces them. */
  private startHealthChecks(): void {
    this.stopHealthChecks();
    const every = this.healthEverySeconds;
    if (every === undefined) return;
    const round = this.healthRound;
    let okSeen = false;
    const next = async () => {
      const result = await this.check();
      if (round !== this.healthRound) return;
      this.health = result;
      let seconds = Math.min(every, 30);
      if (result === 'ok') {
        seconds = okSeen ? every : Math.floor(Math.random() * every);
        okSeen = true;
      }
      this.healthTimer = setTimeout(() => void next(), seconds * 1000);
    };
    void next();
  }

  private stopHealthChecks(): void {
    this.healthRound++;
    clearTimeout(this.healthTimer);
  }

  /** Starts the HTTP gateway (port 9631 in a pod) and says where it listens. */
  async startGateway(): Promise<{ host: string; port: number }> {
    const server = createServer((request, response) => {
      const match = /^\/services\/([^/]+)\/([^/]+)\/health$/.exec(request.url ?? '');
      if (!match) return void response.writeHead(404).end();
      if (match[1] !== this.spec.service || match[2] !== 'default') return void response.writeHead(404).end();
      response.writeHead(healthStatus[this.health], { 'content-type': 'application/json' }).end(JSON.stringify({ status: this.health.toUpperCase() }));
    });
    this.gateway = server;
    await new Promise<void>((resolve) => server.listen(this.spec.gatewayPort ?? 0, this.spec.gatewayHost ?? '127.0.0.1', resolve));
    const { address, port } = server.address() as AddressInfo;
    return { host: address, port };
  }

  /**
   * Stops the service and its health checks: TERM to the run hook's process group, and KILL to the group if any
   * of it is left after the shutdown timeout. A run hook that has already exited is not signalled at all.
   */
  async stop(): Promise<number | undefined> {
    const child = this.runHook;
    this.stopHealthChecks();
    if (!child?.pid || !this.runExit) return undefined;
    if (!this.runExited) await this.terminate(child.pid);
    const code = await this.runExit;
    this.runHook = undefined;
    return code;
  }

  /** sys/unix/service.rs kill(): the shutdown signal to the group, until none of it is left or the timeout has passed, then KILL. */
  private async terminate(pid: number): Promise<void> {
    this.output.push(`${this.prefix()} Terminating service (PID: ${pid})`);
    if (!signalGroup(pid, 'SIGTERM')) return void this.output.push(`${this.prefix()} Service already exited (PID: ${pid})`);
    const deadline = monotonicMs() + (this.spec.shutdownTimeoutMs ?? 8000);
    while (groupAlive(pid)) {
      if (monotonicMs() >= deadline) {
        signalGroup(pid, 'SIGKILL');
        return void this.output.push(`${this.prefix()} Service killed (PID: ${pid})`);
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    this.output.push(`${this.prefix()} Service gracefully terminated (PID: ${pid})`);
  }

  /** Stops the service and the gateway: the Supervisor is gone. */
  async shutdown(): Promise<number | undefined> {
    const code = await this.stop();
    await new Promise((resolve) => (this.gateway ? this.gateway.close(resolve) : resolve(undefined)));
    this.gateway = undefined;
    return code;
  }

  private hasHook(name: string): boolean {
    return existsSync(join(this.spec.svcDir, 'hooks', name));
  }

  private prefix(name?: string): string {
    return `${this.spec.service}.${this.spec.name}${name ? ` hook[${name}]:` : ':'}`;
  }

  private hook(name: string): ChildProcess {
    const path = join(this.spec.svcDir, 'hooks', name);
    const dependencyBins = Object.values(this.spec.pkgPaths).map((p) => join(p, 'bin'));
    // As the service user, through the spawn's own uid/gid, as hab-sup and hab-launch do in a container (an
    // exported image has no setpriv). In their own process group: Node's `detached` makes a new session, of
    // which the hook leads the one group; hook_command's setpgid(0, 0) makes only the group.
    const child = spawn(path, [], {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      // libuv clears the supplementary groups when it sets the ids, as setpriv --clear-groups does.
      ...serviceUser,
      env: { ...this.spec.env, PATH: [...dependencyBins, this.spec.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'].join(':') },
    });
    const prefix = this.prefix(name);
    for (const [stream, tag] of [[child.stdout, 'O'], [child.stderr, 'E']] as const) {
      let partial = '';
      stream!.on('data', (chunk: Buffer) => {
        const lines = (partial + chunk.toString()).split('\n');
        partial = lines.pop()!;
        for (const line of lines) this.output.push(`${prefix}(${tag}) ${line}`);
      });
    }
    return child;
  }

  /** The data templates are rendered from: pkg, cfg, sys and svc, shaped as the Supervisor's census. */
  templateData(group: GroupState) {
    const member = (m: GroupState['members'][number]) => ({
      member_id: m.name,
      alive: m.alive,
      suspect: !m.alive && Boolean(m.suspect),
      sys: { ip: m.ip, hostname: m.name },
      cfg: this.cfg,
    });
    const me = group.members.find((m) => m.name === this.spec.name)!;
    // The previous leader while a new election runs, dead or not; absent only before any election finished.
    const leader = group.members.find((m) => m.name === this.lastLeader);
    return {
      pkg: {
        ident: `example/${this.spec.service}`,
        name: this.spec.service,
        svc_path: this.spec.svcDir,
        svc_config_path: join(this.spec.svcDir, 'config'),
        svc_data_path: join(this.spec.svcDir, 'data'),
        svc_var_path: join(this.spec.svcDir, 'var'),
      },
      cfg: this.cfg,
      sys: { ip: me.ip, hostname: me.name },
      svc: {
        service: this.spec.service,
        group: 'default',
        me: { ...member(me), leader: this.flags.leader, follower: this.flags.follower },
        leader: leader ? member(leader) : null,
        members: group.members.filter((m) => m.alive || m.suspect).map(member),
        election_is_running: group.election === 'running',
        election_is_no_quorum: group.election === 'no_quorum',
        election_is_finished: group.election === 'finished',
        update_election_is_running: false,
        update_election_is_no_quorum: false,
        update_election_is_finished: false,
      },
      // Read by the pkgPathFor helper: this member's dependencies.
      __pkgPaths: this.spec.pkgPaths,
    };
  }
}

/** The Supervisor runs as root and gives the service user its files; without root there is no one to give them to. */
function ownedByServiceUser(path: string): void {
  if (process.getuid?.() === 0) chownSync(path, serviceUser.uid, serviceUser.gid);
}

/** Signals every process of the group `pid` leads; false when none is left. */
function signalGroup(pid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch (error) {
    // EPERM: there is a process, not ours to signal (is_alive in core/src/os/process/unix.rs counts it as alive).
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether any process of the group is left, a zombie not yet reaped included (kill(-pgid, 0), as is_alive asks). */
function groupAlive(pid: number): boolean {
  return signalGroup(pid, 0);
}

/** CLOCK_MONOTONIC in milliseconds: the same clock in every process on the machine, containers included. */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** A hook's exit as a shell reports it: its code, or 128 + the signal that killed it. */
function exitCode(code: number | null, signal: NodeJS.Signals | null): number {
  return code ?? 128 + (signal ? osSignal(signal) : 0);
}

function osSignal(name: NodeJS.Signals): number {
  return constants.signals[name] ?? 0;
}
