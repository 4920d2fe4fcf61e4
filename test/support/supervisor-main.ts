// The Supervisor stand-in in a container, as hab-sup runs in an exported image: `init.sh` execs hab-launch's stand-in, which starts it with the pod's args.
//
// What it does as hab-sup does (see supervisor.ts for the rules it follows): loads the package named on
// its command line from /hab/pkgs, renders its config/ and hooks/ into /hab/svc/<name>, runs the hooks
// as the hab user (uid/gid 42), serves the HTTP gateway on 9631 (the pod's readiness probe), runs the
// health-check hook on a timer, prints the hooks' output prefixed as hab-sup does (so `kubectl logs`
// shows it), and on TERM stops the service (TERM to its process group, KILL after 8 s) and exits 0.
// Its parent is the hab-launch stand-in (launcher.c), the container's PID 1, which reaps orphans and
// passes the kubelet's TERM on, as hab-launch does.
//
// What stands in for gossip: there is no ring. The test harness posts the group's state (members, the
// election, its winner) to a small port of the stand-in's (9630, declared nowhere in the manifests), and
// each post is one Supervisor tick. Between posts it ticks once a second with the state last posted, as
// the Supervisor's main loop does (components/sup/src/manager.rs, `next_check` around 1198): that is where
// a run hook that exited is found and restarted. Until the first post the election has not finished, so
// no hook runs: a restarted member serves nothing until the harness says who won. The same port runs a
// hook on request (what the Supervisor does on its own schedule) and takes `hab config apply` values.
//
// It needs Node: the image carries one for this program only, outside PATH and outside the hooks' PATH.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import { hostname, networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { harnessPort, SupervisedMember, type GroupState } from './supervisor.ts';

const gatewayPort = 9631;

/** The newest installed release of `ident` (origin/name) under /hab/pkgs. */
function installed(ident: string): string {
  const base = join('/hab/pkgs', ident);
  const version = readdirSync(base).sort().at(-1)!;
  const release = readdirSync(join(base, version)).sort().at(-1)!;
  return join(base, version, release);
}

function podIp(): string {
  for (const addresses of Object.values(networkInterfaces())) {
    const v4 = addresses?.find((a) => a.family === 'IPv4' && !a.internal);
    if (v4) return v4.address;
  }
  return '127.0.0.1';
}

async function body(request: IncomingMessage): Promise<unknown> {
  let text = '';
  for await (const chunk of request) text += chunk;
  return text ? JSON.parse(text) : {};
}

async function main(argv: string[]): Promise<void> {
  // `hab sup run IDENT --topology leader --peer HOST ...`: the ident, and the options hab-sup would take.
  const [command, ident, ...options] = argv;
  if (command !== 'run' || !ident) throw new Error('usage: supervisor run ORIGIN/NAME [--topology leader] [--peer HOST]');
  const prefix = installed(ident);
  const service = ident.split('/')[1]!;
  const deps = readFileSync(join(prefix, 'DEPS'), 'utf8').split('\n').filter(Boolean);
  const name = hostname();
  const ip = podIp();
  const member = new SupervisedMember({
    name,
    ip,
    planDir: prefix,
    svcDir: join('/hab/svc', service),
    service,
    pkgPaths: Object.fromEntries(deps.map((d) => [d, join('/hab/pkgs', d)])),
    env: Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined)),
    gatewayHost: '0.0.0.0',
    gatewayPort,
    healthCheckIntervalSeconds: 30, // hab-sup's default; the harness may set it with each post
  });
  // Every line the hooks print goes to stdout, as hab-sup's do: the container's log.
  let printed = 0;
  const flush = () => {
    while (printed < member.output.length) process.stdout.write(`${member.output[printed++]}\n`);
  };
  const flusher = setInterval(flush, 100);
  process.stdout.write(`hab-sup(MR): Starting ${ident} (${prefix}) as ${name} at ${ip}, options ${options.join(' ') || '(none)'}\n`);
  await member.startGateway();

  let group: GroupState = { election: 'running', members: [{ name, ip, alive: true }] };
  // One tick at a time, as the Supervisor's loop runs them. A post's new state is taken inside its own
  // tick, so the tick it answers with is the one that saw the change, never a timed tick in between.
  let loop = Promise.resolve<unknown>(undefined);
  const serial = <T>(work: () => Promise<T>): Promise<T> => {
    const next = loop.then(work, work);
    loop = next.catch(() => undefined);
    return next;
  };
  // Before any post: the election has not finished, so templates render and no hook runs.
  await serial(() => member.tick(group));
  // The main loop's own ticks; one waits for the one before it.
  let ticking = true;
  let timedTick: NodeJS.Timeout | undefined;
  const tickLater = () => {
    timedTick = setTimeout(() => void serial(() => member.tick(group)).catch(() => undefined).finally(() => ticking && tickLater()), 1000);
  };
  tickLater();

  const harness = createServer(async (request, response) => {
    try {
      const url = request.url ?? '';
      let result: unknown;
      if (request.method === 'POST' && url === '/census') {
        const posted = (await body(request)) as GroupState & { healthCheckIntervalSeconds?: number };
        // The tick, and when it began rewriting each file (the benchmark's start of a failover).
        result = await serial(async () => {
          if (posted.healthCheckIntervalSeconds) member.setHealthCheckInterval(posted.healthCheckIntervalSeconds);
          group = { election: posted.election, leader: posted.leader, members: posted.members };
          return { tick: await member.tick(group), rewritten: member.rewritten };
        });
      } else if (request.method === 'POST' && url === '/config') {
        const values = (await body(request)) as Record<string, unknown>;
        result = {
          tick: await serial(() => {
            member.applyConfig(values);
            return member.tick(group);
          }),
        };
      } else if (request.method === 'POST' && url.startsWith('/hooks/')) {
        const hook = url.slice('/hooks/'.length);
        // A health check run on request keeps its result for the gateway, as the timer's does.
        result = hook === 'health-check' ? { health: await serial(() => member.healthCheck()) } : { exit: await serial(() => member.runToEnd(hook)) };
      } else if (request.method === 'GET' && url === '/state') {
        result = { output: member.output, reconfigureExits: member.reconfigureExits };
      } else {
        response.writeHead(404).end();
        return;
      }
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(result));
    } catch (error) {
      response.writeHead(500).end(String(error));
    }
  });
  await new Promise<void>((resolve) => harness.listen(harnessPort, '0.0.0.0', resolve));

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`hab-sup(MR): ${signal} received, stopping ${service}\n`);
    ticking = false;
    clearTimeout(timedTick);
    harness.close();
    // After any tick under way: a restart it is making would otherwise start the service again.
    const code = await serial(() => member.shutdown());
    process.stdout.write(`hab-sup(MR): ${service} stopped (exit ${code ?? 'none'})\n`);
    clearInterval(flusher);
    flush();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

if (!existsSync('/hab/pkgs')) {
  console.error('supervisor: no /hab/pkgs here; this program is the Supervisor of the example\'s image');
  process.exit(70);
}
main(process.argv.slice(2)).catch((error: Error) => {
  console.error(`supervisor: ${error.message}`);
  process.exit(70);
});
