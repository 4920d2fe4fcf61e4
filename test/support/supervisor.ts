// A stand-in for the Habitat Supervisor: renders a plan's config/ and hooks/ from census data and runs hooks as it does.

import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import TOML from '@iarna/toml';
import Handlebars from 'handlebars';

/** What the group knows after gossip: who is alive, the election's state, its winner. */
export interface GroupState {
  members: { name: string; ip: string; alive: boolean }[];
  election: 'finished' | 'running' | 'no_quorum';
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
  /** pkgPathFor answers: the install paths of the package's dependencies. */
  pkgPaths: Record<string, string>;
  /** The Supervisor's environment, which hooks inherit (the pod's, in Kubernetes). */
  env: Record<string, string>;
  /** Run hooks inside this network namespace, as they would run inside the pod. */
  netns?: string;
  shutdownTimeoutMs?: number;
}

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
  const paths = (options.data?.root as { __pkgPaths?: Record<string, string> })?.__pkgPaths;
  const path = paths?.[ident];
  if (!path) throw new Error(`pkgPathFor: ${ident} is not a dependency of this package`);
  return path;
});

export class SupervisedMember {
  readonly spec: MemberSpec;
  /** Every line the hooks printed, prefixed as the Supervisor prefixes them. */
  readonly output: string[] = [];
  private readonly cfg: Record<string, unknown>;
  private rendered = new Map<string, string>();
  private flags = { leader: false, follower: false };
  private runHook: ChildProcess | undefined;
  private runExit: Promise<number> | undefined;

  constructor(spec: MemberSpec) {
    this.spec = spec;
    this.cfg = TOML.parse(readFileSync(join(spec.planDir, 'default.toml'), 'utf8')) as Record<string, unknown>;
    for (const dir of ['config', 'hooks', 'data', 'var']) mkdirSync(join(spec.svcDir, dir), { recursive: true });
  }

  get configPath(): string {
    return join(this.spec.svcDir, 'config');
  }

  /**
   * Renders config/ and hooks/ for the group's state and says what changed. The leader and follower
   * flags change only when an election has finished; while one runs they keep their values.
   */
  render(group: GroupState): { configChanged: boolean; hooksChanged: string[] } {
    if (group.election === 'finished') {
      this.flags = { leader: group.leader === this.spec.name, follower: group.leader !== undefined && group.leader !== this.spec.name };
    }
    const data = this.census(group);
    let configChanged = false;
    const hooksChanged: string[] = [];
    for (const kind of ['config', 'hooks'] as const) {
      const dir = join(this.spec.planDir, kind);
      for (const file of readdirSync(dir)) {
        const text = handlebars.compile(readFileSync(join(dir, file), 'utf8'), { noEscape: true })(data);
        const target = join(this.spec.svcDir, kind, file);
        if (this.rendered.get(target) === text) continue;
        // Written whole and renamed over the old file, so a reader never sees half of it.
        writeFileSync(`${target}.tmp`, text);
        if (kind === 'hooks') chmodSync(`${target}.tmp`, 0o755);
        renameSync(`${target}.tmp`, target);
        this.rendered.set(target, text);
        if (kind === 'config') configChanged = true;
        else hooksChanged.push(file);
      }
    }
    return { configChanged, hooksChanged };
  }

  /** Starts the run hook in a process group of its own. */
  start(): void {
    const child = this.hook('run');
    this.runHook = child;
    this.runExit = new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? 128 + (signal ? osSignal(signal) : 0))));
  }

  /** Applies a new group state as the Supervisor does: reconfigure when only config changed, restart when a hook did. */
  async update(group: GroupState): Promise<'unchanged' | 'reconfigured' | 'restarted'> {
    const { configChanged, hooksChanged } = this.render(group);
    if (hooksChanged.some((h) => ['init', 'run', 'post-run'].includes(h))) {
      await this.stop();
      this.start();
      return 'restarted';
    }
    if (!configChanged) return 'unchanged';
    if (existsSync(join(this.spec.svcDir, 'hooks', 'reconfigure'))) {
      await this.runToEnd('reconfigure');
      return 'reconfigured';
    }
    await this.stop();
    this.start();
    return 'restarted';
  }

  /** Runs a hook to its end (reconfigure, health-check) and returns its exit code. */
  runToEnd(name: string): Promise<number> {
    const child = this.hook(name);
    return new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? 128 + (signal ? osSignal(signal) : 0))));
  }

  /** Stops the service: the stop signal to the run hook's whole process group, KILL after the timeout. */
  async stop(): Promise<number | undefined> {
    const child = this.runHook;
    if (!child?.pid || !this.runExit) return undefined;
    signalGroup(child.pid, 'SIGTERM');
    const timeout = setTimeout(() => signalGroup(child.pid!, 'SIGKILL'), this.spec.shutdownTimeoutMs ?? 8000);
    const code = await this.runExit;
    clearTimeout(timeout);
    signalGroup(child.pid, 'SIGKILL'); // anything the service left behind in its group
    this.runHook = undefined;
    return code;
  }

  /** Kills the member without a word, as a crashed node would. */
  kill(): void {
    if (this.runHook?.pid) signalGroup(this.runHook.pid, 'SIGKILL');
  }

  private hook(name: string): ChildProcess {
    const path = join(this.spec.svcDir, 'hooks', name);
    const [file, args] = this.spec.netns ? ['ip', ['netns', 'exec', this.spec.netns, path]] : [path, []];
    const dependencyBins = Object.values(this.spec.pkgPaths).map((p) => join(p, 'bin'));
    const child = spawn(file as string, args as string[], {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...this.spec.env, PATH: [...dependencyBins, '/usr/sbin', '/usr/bin', '/sbin', '/bin'].join(':') },
    });
    const prefix = `${this.spec.service}.${this.spec.name} hook[${name}]:`;
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

  private census(group: GroupState) {
    const member = (m: GroupState['members'][number]) => ({
      member_id: m.name,
      alive: m.alive,
      sys: { ip: m.ip, hostname: m.name },
      cfg: this.cfg,
    });
    const me = group.members.find((m) => m.name === this.spec.name)!;
    const leader = group.election === 'finished' ? group.members.find((m) => m.name === group.leader) : undefined;
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
        members: group.members.filter((m) => m.alive).map(member),
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

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // the group is gone
  }
}

function osSignal(name: NodeJS.Signals): number {
  return constants.signals[name] ?? 0;
}
