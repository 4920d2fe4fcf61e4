// `make bench`: hab-pod-role against kubectl on a real control plane; writes bench/RESULTS.md. Never part of the tests.

import { execFileSync, spawn } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { existsSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildControlPlane, startControlPlane, stopControlPlane, type ControlPlane } from '../tools/control-plane.ts';
import { KubeAdmin, podEnv } from '../tools/kube-admin.ts';
import { NodeBusyError } from '../tools/node.ts';
import { electionText, renameElection, tempDir, type State } from '../test/support/election.ts';
import { eventually } from '../test/support/eventually.ts';
import { measureFailovers, nodeVersions } from './failover.ts';
import { boundService, boundStdio, childEnv, idleScript } from './children.ts';
import { watchLeaders } from './leaders.ts';
import { dropFromPageCache, medianRollup, mib, smapsRollup, type Rollup } from './memory.ts';
import { quantile } from './quantile.ts';

const repoRoot = resolve(fileURLToPath(import.meta.url), '../..');
const cli = join(repoRoot, 'dist/hab-pod-role.mjs');
// The single executable, as the Habitat package ships it (`make sea`).
const sea = join(repoRoot, 'build/hab-pod-role');
const kubectlPath = '/usr/lib/google-cloud-sdk/bin/kubectl.1.33'; // the machine's kubectl of the same minor version
const runs = Number(process.env.BENCH_RUNS ?? 30);
const failovers = Number(process.env.BENCH_FAILOVERS ?? 50);
const residentSeconds = Number(process.env.BENCH_RESIDENT_SECONDS ?? 60);
// Section 3's wrapper is measured after each number of failovers here, the last with the other residents.
const residentFailovers = (process.env.BENCH_RESIDENT_FAILOVERS ?? '50,200').split(',').map(Number);
const contests = Number(process.env.BENCH_CONTESTS ?? 20);
const members = ['redis-0', 'redis-1', 'redis-2'];
const ns = 'bench';
// `node bench/bench.ts failover contest` runs and prints only the sections named (cold, failover, resident,
// requests, contest); the failover section always runs. Only a full run writes RESULTS.md.
const only = new Set(process.argv.slice(2));
const wanted = (section: string) => only.size === 0 || only.has(section);
for (const name of only) if (!['cold', 'failover', 'resident', 'requests', 'contest'].includes(name)) throw new Error(`no bench section "${name}": cold, failover, resident, requests, contest`);

// What is measured is what `make build sea` made: refuse artefacts older than the sources they come from.
const newestSource = Math.max(...readdirSync(join(repoRoot, 'src')).map((f) => statSync(join(repoRoot, 'src', f)).mtimeMs));
for (const built of [cli, sea]) {
  if (!existsSync(built) || statSync(built).mtimeMs < newestSource) {
    console.error(`bench: ${built} is missing or older than src/: run \`make build sea\` first (\`make bench\` does).`);
    process.exit(78);
  }
}

const ms = (x: number) => `${x.toFixed(0)} ms`;

/** Runs a command under GNU time: wall time measured here, peak resident set size from time(1). */
function timed(command: string[], env: Record<string, string>): Promise<{ wallMs: number; peakKb: number; code: number }> {
  return new Promise((done) => {
    const started = performance.now();
    const child = spawn('/usr/bin/time', ['-f', '%M', ...command], { env: childEnv({ HOME: '/nonexistent', ...env }), stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c));
    child.on('exit', (code) => done({ wallMs: performance.now() - started, peakKb: Number(err.trim().split('\n').at(-1)), code: code ?? -1 }));
  });
}

/** CPU time (user + system, in clock ticks) a running process has used, from /proc/PID/stat; its memory comes from memory.ts. */
function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(stat[11]) + Number(stat[12]);
}

const dir = tempDir('bench');
// Everything else the benchmark creates goes under it too, and is removed with it. The measured commands get
// an environment of their own, so their compile cache stays where a hook's would be.
process.env.TMPDIR = dir;
const clusterDir = join(dir, 'cluster');
const auditLog = join(clusterDir, 'audit.log');
writeFileSync(join(dir, 'audit-policy.yaml'), 'apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n  - level: Metadata\n');
const lines: string[] = [];
let printing = true;
const section = (name: string) => (printing = wanted(name));
const report = (s = '') => {
  if (!printing) return;
  console.log(s);
  lines.push(s);
};

let plane: ControlPlane | undefined;
try {
  const binDir = buildControlPlane();
  // With the real node: section 2 runs the Redis example's pods there. A killed run's node is cleaned up by
  // the next start, its scratch directory (this one) with it.
  plane = await startControlPlane({ dir: clusterDir, binDir, node: { scratchDir: dir }, apiserverArgs: [`--audit-policy-file=${join(dir, 'audit-policy.yaml')}`, `--audit-log-path=${auditLog}`] });
  const admin = new KubeAdmin(plane);
  await admin.createNamespace(ns);
  const account = await admin.serviceAccount(ns);
  const owner = await admin.createOwner(ns, 'redis');
  // Pods that exist only as API objects, for the sections that need labels and nothing behind them (1, 3, 4, 5).
  for (const m of members) await admin.createPod(ns, m, { app: 'redis' }, owner);
  // Sections 1 and 3 label pods of their own, outside the redis group, one for each command measured, so
  // that every run of every command really changes its pod's label.
  const coldOwner = await admin.createOwner(ns, 'cold');
  for (const pod of ['cold-sea', 'cold-dist', 'cold-kubectl', 'cold-floor', 'cold-sea-kubeconfig', 'cold-dist-kubeconfig', 'resident-sea', 'resident-dist']) {
    await admin.createPod(ns, pod, { app: 'cold' }, coldOwner);
  }
  // A kubeconfig with the very credentials a pod's hab-pod-role uses: the token bound to the pod, and the CA
  // (kubectl's, and the tool's own outside a pod).
  const kubeconfigFor = (pod: string) => {
    const path = join(dir, `${pod}.kubeconfig`);
    writeFileSync(path, [
      'apiVersion: v1', 'kind: Config', 'current-context: sa',
      'clusters: [{name: c, cluster: {server: ' + plane!.server + ', certificate-authority: ' + join(account.dir, pod, 'ca.crt') + '}}]',
      'users: [{name: sa, user: {tokenFile: ' + join(account.dir, pod, 'token') + '}}]',
      'contexts: [{name: sa, context: {cluster: c, user: sa, namespace: ' + ns + '}}]', '',
    ].join('\n'));
    return path;
  };
  const files = new Map<State, string>();
  for (const state of ['leader', 'follower', 'standalone', 'running'] as State[]) {
    files.set(state, join(dir, `${state}.toml`));
    writeFileSync(files.get(state)!, electionText(state));
  }
  const env = (pod: string) => podEnv(ns, pod, account.dir, plane!.server);
  const versions = {
    node: process.version,
    kubernetes: JSON.parse(execFileSync(join(binDir, 'kubectl'), [`--kubeconfig=${plane.kubeconfig}`, 'version', '-o', 'json'], { encoding: 'utf8' })).serverVersion.gitVersion,
    kubectl: JSON.parse(execFileSync(kubectlPath, ['version', '--client', '-o', 'json'], { encoding: 'utf8' })).clientVersion.gitVersion,
  };

  // 1. Cold starts against kubectl, alternating, each labelling run really changing its pod's label. The
  // floors: the same Node doing nothing (as `node`, and as a single executable), and doing only the requests.
  const floorSea = (name: string, script: string) => {
    writeFileSync(join(dir, `${name}.cjs`), script);
    execFileSync('bash', [join(repoRoot, 'tools/build-sea.sh'), join(dir, name)], { cwd: repoRoot, env: { ...process.env, SEA_MAIN: join(dir, `${name}.cjs`) }, stdio: 'ignore' });
    return join(dir, name);
  };
  // Section 3's idle floor is started whichever sections print; the empty one is only timed in section 1,
  // and only the sections that measure memory or cold starts pay for dropping files from the page cache.
  const idleSea = floorSea('sea-idle', `${idleScript}\n`);
  const emptySea = wanted('cold') ? floorSea('sea-empty', 'process.exitCode = 0;\n') : '';
  if (wanted('cold') || wanted('resident')) for (const file of [sea, emptySea, idleSea, process.execPath, kubectlPath].filter(Boolean)) dropFromPageCache(file);
  const kubeconfigs = { kubectl: kubeconfigFor('cold-kubectl'), sea: kubeconfigFor('cold-sea-kubeconfig'), dist: kubeconfigFor('cold-dist-kubeconfig') };
  const outside = (pod: string) => ['--kubeconfig', join(dir, `${pod}.kubeconfig`), '--pod', pod, '-n', ns];
  type Run = { wallMs: number; peakKb: number };
  const cold: Record<string, { command: string; runs: Run[]; timed: (i: number) => Promise<Run & { code: number }>; ok?: number[] }> = {
    'apply, single executable': { command: 'build/hab-pod-role apply -c FILE (in-pod environment)', runs: [], timed: (i) => timed([sea, 'apply', '-c', files.get(i % 2 ? 'standalone' : 'follower')!], env('cold-sea')) },
    'apply, npm package': { command: 'node dist/hab-pod-role.mjs apply -c FILE (in-pod environment)', runs: [], timed: (i) => timed([process.execPath, cli, 'apply', '-c', files.get(i % 2 ? 'standalone' : 'follower')!], env('cold-dist')) },
    'kubectl label': { command: 'kubectl --kubeconfig=K label pod P --overwrite role=follower (then role-)', runs: [], timed: (i) => timed([kubectlPath, `--kubeconfig=${kubeconfigs.kubectl}`, 'label', 'pod', 'cold-kubectl', '--overwrite', i % 2 ? 'role-' : 'role=follower'], {}) },
    'apply with a kubeconfig, single executable': { command: 'build/hab-pod-role apply -c FILE --kubeconfig K --pod P -n NS', runs: [], timed: (i) => timed([sea, 'apply', '-c', files.get(i % 2 ? 'standalone' : 'follower')!, ...outside('cold-sea-kubeconfig')], {}) },
    'apply with a kubeconfig, npm package': { command: 'node dist/hab-pod-role.mjs apply -c FILE --kubeconfig K --pod P -n NS', runs: [], timed: (i) => timed([process.execPath, cli, 'apply', '-c', files.get(i % 2 ? 'standalone' : 'follower')!, ...outside('cold-dist-kubeconfig')], {}) },
    // `status` ends 1 while the group has no leader, as here: both exit codes are its answers.
    'status with a kubeconfig, single executable': { command: 'build/hab-pod-role status --kubeconfig K --pod redis-0 -n NS (one LIST)', runs: [], ok: [0, 1], timed: () => timed([sea, 'status', '--kubeconfig', kubeconfigs.sea, '--pod', 'redis-0', '-n', ns], {}) },
    'kubectl get': { command: 'kubectl --kubeconfig=K get pods -l app=redis (one LIST)', runs: [], timed: () => timed([kubectlPath, `--kubeconfig=${kubeconfigs.kubectl}`, 'get', 'pods', '-l', 'app=redis'], {}) },
    'Node floor: the requests': { command: 'node bench/node-floor.mjs P VALUE (node:https, GET, PATCH, nothing else)', runs: [], timed: (i) => timed([process.execPath, join(repoRoot, 'bench/node-floor.mjs'), 'cold-floor', i % 2 ? '-' : 'follower'], env('cold-floor')) },
    'Node floor: an empty start': { command: 'node -e 0', runs: [], timed: () => timed([process.execPath, '-e', '0'], {}) },
    'single executable floor: an empty start': { command: 'a single executable of process.exitCode = 0 (tools/build-sea.sh with SEA_MAIN)', runs: [], timed: () => timed([emptySea], {}) },
  };
  for (let i = 0; wanted('cold') && i < runs; i++) {
    for (const [what, each] of Object.entries(cold)) {
      const run = await each.timed(i);
      if (!(each.ok ?? [0]).includes(run.code)) throw new Error(`a cold run failed: ${what} ended ${run.code}`);
      each.runs.push(run);
    }
  }
  const ours = cold['apply, single executable']!.runs;
  const theirs = cold['kubectl label']!.runs;
  const median = (xs: { wallMs: number; peakKb: number }[], key: 'wallMs' | 'peakKb') => quantile(xs.map((x) => x[key]), 0.5);

  // 2. Failover convergence on the real node: see bench/failover.ts.
  const failoverResults = await measureFailovers(plane, failovers);
  const convergence = Object.fromEntries(Object.entries(failoverResults).map(([style, r]) => [style, r.endpoints]));
  const labelled = Object.fromEntries(Object.entries(failoverResults).map(([style, r]) => [style, r.labels]));

  // Section 3's wrappers: each member of the API-object pods runs `run --watch` beside this benchmark, and
  // goes through failovers (its election file renamed over) in stages; after each but the last it idles
  // and its memory is read, after the last it idles with the other residents of section 3.
  let podWatch = await watchLeaders(plane.kubeconfig, ns);
  let leader = 'redis-0';
  const memberFiles = new Map(members.map((m) => [m, join(dir, `${m}.toml`)]));
  for (const m of members) writeFileSync(memberFiles.get(m)!, electionText(m === leader ? 'leader' : 'follower'));
  const wrappers = members.map((m) => spawn(process.execPath, [cli, 'run', '-c', memberFiles.get(m)!, ...boundService], { env: childEnv(env(m)), stdio: boundStdio, detached: true }));
  const wrapperPid = wrappers[0]!.pid!;
  const rename = (m: string, state: State) => renameElection(memberFiles.get(m)!, electionText(state));
  await eventually(async () => podWatch.holders() === leader, { what: 'the resident wrappers settling' });
  // The wrapper's memory before it has worked through the failovers (sampled again in section 3), past the
  // collection it makes once quiet after its start (src/release.ts).
  await new Promise((r) => setTimeout(r, wanted('resident') ? 6000 : 1000));
  const beforeFailovers = smapsRollup(wrapperPid);
  const afterFailovers: { failovers: number; memory: Rollup }[] = [];
  for (let done = 0, stage = 0; wanted('resident') && stage < residentFailovers.length; stage++) {
    if (stage > 0) {
      // The benchmark's own watch may not outlive the idle period: read the labels afresh.
      podWatch.stop();
      podWatch = await watchLeaders(plane.kubeconfig, ns);
      await eventually(async () => podWatch.holders() === leader, { what: 'the label watch reopened' });
    }
    for (; done < residentFailovers[stage]!; done++) {
      const next = members[(members.indexOf(leader) + 1) % members.length]!;
      const relabelled = podWatch.until(next);
      rename(leader, 'follower');
      rename(next, 'leader');
      await relabelled;
      leader = next;
      await new Promise((r) => setTimeout(r, 100));
    }
    if (stage === residentFailovers.length - 1) break;
    await new Promise((r) => setTimeout(r, 30_000));
    const taken: Rollup[] = [];
    for (let i = 0; i < 5; i++) {
      taken.push(smapsRollup(wrapperPid));
      await new Promise((r) => setTimeout(r, 1000));
    }
    afterFailovers.push({ failovers: done, memory: medianRollup(taken) });
  }
  const lastStage = residentFailovers.at(-1)!;

  // 3. Resident cost while the service idles, against a bare node process.
  const bare = spawn(process.execPath, ['-e', idleScript], { stdio: 'ignore' });
  // The floor for a resident that talks TLS: Node with node:https loaded, idle.
  const bareHttps = spawn(process.execPath, ['-e', `require('node:https'); ${idleScript}`], { stdio: 'ignore' });
  // The single executable's floor: the same Node, injected with a script that only waits.
  const bareSea = spawn(idleSea, [], { stdio: 'ignore' });
  // Fresh residents of both forms, labelled once and idle (the wrapper above has worked through the failovers).
  const residents = {
    sea: spawn(sea, ['run', '-c', files.get('follower')!, ...boundService], { env: childEnv(env('resident-sea')), stdio: boundStdio, detached: true }),
    dist: spawn(process.execPath, [cli, 'run', '-c', files.get('follower')!, ...boundService], { env: childEnv(env('resident-dist')), stdio: boundStdio, detached: true }),
  };
  // Steady state: the wrappers have just been through the failovers above; give V8's idle-time
  // collection and the watches time to settle before measuring a service that idles.
  if (wanted('resident')) await new Promise((r) => setTimeout(r, 30_000));
  const before = { wrapper: cpuTicks(wrapperPid), bare: cpuTicks(bare.pid!), sea: cpuTicks(residents.sea.pid!) };
  // What each process costs the machine beyond the pages it shares, from /proc/PID/smaps_rollup.
  const processes = { wrapper: wrapperPid, sea: residents.sea.pid!, dist: residents.dist.pid!, bare: bare.pid!, bareSea: bareSea.pid!, bareHttps: bareHttps.pid! };
  const rollups = Object.fromEntries(Object.keys(processes).map((k) => [k, [] as Rollup[]])) as Record<keyof typeof processes, Rollup[]>;
  for (let t = 0; wanted('resident') && t < residentSeconds; t += 5) {
    await new Promise((r) => setTimeout(r, 5000));
    for (const [k, pid] of Object.entries(processes)) rollups[k as keyof typeof processes].push(smapsRollup(pid));
  }
  const after = { wrapper: cpuTicks(wrapperPid), bare: cpuTicks(bare.pid!), sea: cpuTicks(residents.sea.pid!) };
  const memory = Object.fromEntries(Object.entries(rollups).map(([k, xs]) => [k, medianRollup(xs)])) as Record<keyof typeof processes, Rollup>;
  bare.kill();
  bareHttps.kill();
  bareSea.kill();
  for (const r of Object.values(residents)) process.kill(-r.pid!, 'SIGTERM');
  for (const w of wrappers) process.kill(-w.pid!, 'SIGTERM');
  podWatch.stop();

  // 4. Requests per transition, from the API server's audit log.
  const user = `system:serviceaccount:${ns}:hab-pod-role`;
  const auditCount = () => readFileSync(auditLog, 'utf8').split('\n').filter((l) => l.includes(`"username":"${user}"`) && l.includes('"stage":"ResponseComplete"'));
  const requests = async (pod: string, state: State) => {
    const seen = auditCount().length;
    await timed([process.execPath, cli, 'apply', '-c', files.get(state)!], env(pod));
    await new Promise((r) => setTimeout(r, 1500)); // the audit log is written asynchronously
    const entries = auditCount().slice(seen);
    const events = entries.filter((l) => l.includes('"resource":"events"')).length;
    return { total: entries.length, events };
  };
  await Promise.all(members.map((m) => timed([process.execPath, cli, 'apply', '-c', files.get(m === 'redis-0' ? 'leader' : 'follower')!], env(m))));
  const load = {
    'follower, unchanged': await requests('redis-1', 'follower'),
    'leader, unchanged': await requests('redis-0', 'leader'),
    'follower -> none (election running)': await requests('redis-1', 'running'),
    'promotion, old leader ran its hook first': await (async () => { await requests('redis-0', 'follower'); return requests('redis-2', 'leader'); })(),
    'promotion demoting a stale leader (partitioned)': await requests('redis-1', 'leader'),
  };

  // 5. Contested leadership: a stale claim takes the label from the rightful leader, holds it, then ends.
  const contestFiles = new Map(members.map((m) => [m, join(dir, `contest-${m}.toml`)]));
  const contestLeader = 'redis-0';
  for (const m of members) writeFileSync(contestFiles.get(m)!, electionText(m === contestLeader ? 'leader' : 'follower'));
  await Promise.all(members.map((m) => timed([process.execPath, cli, 'apply', '-c', contestFiles.get(m)!], env(m))));
  const contestWrappers = members.map((m) => spawn(process.execPath, [cli, 'run', '-c', contestFiles.get(m)!, ...boundService], { env: childEnv(env(m)), stdio: boundStdio, detached: true }));
  const contestRename = (m: string, state: State) => renameElection(contestFiles.get(m)!, electionText(state));
  const contestWatch = await watchLeaders(plane.kubeconfig, ns);
  await contestWatch.until(contestLeader);
  await new Promise((r) => setTimeout(r, 1000));
  const relabel: number[] = [];
  const movesWhileContested: number[] = [];
  for (let i = 0; wanted('contest') && i < contests; i++) {
    const stale = members[1 + (i % 2)]!;
    const before = contestWatch.moves();
    contestRename(stale, 'leader');
    await contestWatch.until(stale);
    // Both claims stand for a while: the label stays where the newer one put it.
    await new Promise((r) => setTimeout(r, 2000));
    movesWhileContested.push(contestWatch.moves() - before);
    const ended = performance.now();
    const back = contestWatch.until(contestLeader);
    contestRename(stale, 'follower');
    await back;
    relabel.push(performance.now() - ended);
    await new Promise((r) => setTimeout(r, 300));
  }
  contestWatch.stop();
  for (const w of contestWrappers) process.kill(-w.pid!, 'SIGTERM');

  // The record.
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  report('# Benchmark results');
  report();
  report(`Measured ${new Date().toISOString().slice(0, 10)} on ${cpus().length} cores (${cpu}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB; Node ${versions.node}, Kubernetes ${versions.kubernetes} (built from Go modules), kubectl ${versions.kubectl}.`);
  report('Reproduce with `make bench` (environment: BENCH_RUNS, BENCH_FAILOVERS, BENCH_RESIDENT_SECONDS, BENCH_CONTESTS). The API server runs on this machine, so network time is near zero: the figures are the tools\' own cost.');
  report();
  section('cold');
  report(`## 1. Cold starts (${runs} runs each, alternating, each labelling run changing its pod's label; each command with its own pod's token and the CA)`);
  report();
  report('Every executable was dropped from the page cache before the runs (`dd iflag=nocache`), so each is read in as after a reboot: a file just written, as a fresh build is, sits in the cache as large folios that map whole into each process, 15 MiB more RSS for an empty single executable. kubectl is the machine\'s kubectl of the API server\'s minor version.');
  report();
  report('| what | command | median wall | p90 wall | median peak RSS | wall / kubectl |');
  report('|---|---|---|---|---|---|');
  const kubectlWall = median(theirs, 'wallMs');
  for (const [what, each] of Object.entries(cold)) {
    const wall = median(each.runs, 'wallMs');
    report(`| ${what} | \`${each.command}\` | ${ms(wall)} | ${ms(quantile(each.runs.map((x) => x.wallMs), 0.9))} | ${mib(median(each.runs, 'peakKb'))} | ${(wall / kubectlWall).toFixed(2)} |`);
  }
  report();
  section('failover');
  report(`## 2. Failover convergence on the real node (${failovers} failovers each, the Redis example's 3 pods)`);
  report();
  report(`The Redis example as real containers under the kubelet (${nodeVersions()}): its exported-style image with the hab-launch stand-in as PID 1 and the Supervisor stand-in under it, redis-server, and the tool as its plan builds it, running in-cluster with the kubelet's token through the \`kubernetes\` Service (kube-proxy). Each failover is one census from the gossip stand-in (port 9630) naming the next member leader with all three alive, no election-running phase in between: each Supervisor re-renders its files in place and runs the reconfigure hook (which switches Redis with redis-cli, then runs \`apply\`). The clock starts when the first of the old and new leader's Supervisors begins rewriting \`election.toml\` (the stand-in reports the moment: CLOCK_MONOTONIC, shared by the containers and this benchmark) and stops when this benchmark's watches see (a) the labels saying so: only the new leader carries \`role=leader\` (the tool's share, plus the watch's delivery), and (b) the \`redis-leader\` EndpointSlice listing only the new leader as ready (the EndpointSlice controller on top; readiness comes from the kubelet's probe of the Supervisor's gateway and stays true through a failover). 200 ms between failovers.`);
  report();
  report(`- run --watch: the example as shipped. The run hook's resident \`hab-pod-role run\` follows the file; the reconfigure hook's \`apply\` also runs, after redis-cli, and found the label already written in ${failoverResults['run --watch']!.foundLabelled} of ${failoverResults['run --watch']!.promotions} promotions (the resident was first).`);
  report(`- apply from reconfigure: the same image with the run hook's \`hab-pod-role run --no-watch\` (it labels once at the start, then only runs Redis), so the reconfigure hook's \`apply\` is what labels: the time includes the hook's five redis-cli calls before it and the executable's cold start. It found the label already written in ${failoverResults['apply from reconfigure']!.foundLabelled} of ${failoverResults['apply from reconfigure']!.promotions} promotions.`);
  report('- run --watch, reconfigure doing nothing: a diagnostic, not a way to run the example (Redis keeps its replication role): the same image with the reconfigure and health-check hooks replaced by `exit 0`, so that the difference from the first row is what the three reconfigure hooks (five redis-cli calls and a cold `apply` each) cost the residents, sharing the 2 cores with them at the moment they label.');
  report();
  report('| style | labels p50 | p99 | max | EndpointSlice p50 | p99 | max | EndpointSlice controller retries (1 s backoff) |');
  report('|---|---|---|---|---|---|---|---|');
  for (const [style, xs] of Object.entries(convergence)) {
    const ls = labelled[style]!;
    report(`| ${style} | ${ms(quantile(ls, 0.5))} | ${ms(quantile(ls, 0.99))} | ${ms(Math.max(...ls))} | ${ms(quantile(xs, 0.5))} | ${ms(quantile(xs, 0.99))} | ${ms(Math.max(...xs))} | ${failoverResults[style]!.staleRequeues} |`);
  }
  report();
  report('Within the labels figure: how far apart the two Supervisors began rewriting (no tool can act on a file not yet rewritten), and the time from the new leader\'s own rewrite, when its resident can first act, to the labels saying so:');
  report();
  report('| style | rewrites apart p50 | p99 | new leader\'s file to labels p50 | p99 | max |');
  report('|---|---|---|---|---|---|');
  for (const [style, r] of Object.entries(failoverResults)) {
    report(`| ${style} | ${ms(quantile(r.rewriteGap, 0.5))} | ${ms(quantile(r.rewriteGap, 0.99))} | ${ms(quantile(r.fromNewLeaderFile, 0.5))} | ${ms(quantile(r.fromNewLeaderFile, 0.99))} | ${ms(Math.max(...r.fromNewLeaderFile))} |`);
  }
  report();
  report('The last column counts the kube-controller-manager log\'s lines saying the EndpointSlice controller retried `redis-leader` because its informer had not yet seen the slice it had just written ("EndpointSlice informer cache is out of date"): the two label changes of a failover can arrive that close together, and the retry waits the controller\'s 1 s backoff. An EndpointSlice figure about 1 s above its labels figure is that wait, not the tool\'s.');
  report();
  section('resident');
  report(`## 3. Resident cost of \`run\` while the service idles (${residentSeconds} s after 30 s of settling, sampled every 5 s)`);
  report();
  report('From /proc/PID/smaps_rollup, medians of the samples. Private is what no other process maps: for the npm package the `node` binary\'s pages are shared with every other Node process (this benchmark\'s own, at least); a single executable\'s own file is mapped by itself alone unless several pods run it, so its private memory includes the executable\'s pages, and anonymous memory is what each pod pays beyond them.');
  report();
  report(`The wrapper of the failover rows is redis-0 of three members running \`run --watch\` beside this benchmark, each failover renaming the old leader's and the next leader's election files over (100 ms apart, once the labels say so). It is read after ${residentFailovers.slice(0, -1).map((n) => `${n} failovers (30 s idle, then 5 samples 1 s apart)`).join(', ')}${residentFailovers.length > 1 ? ' and after ' : 'after '}${lastStage} (with the other processes, as above). An idle resident runs one full collection 5 s after its last pass (src/release.ts), so every reading is after it.`);
  report();
  report('| process | RSS | PSS | private | anonymous | CPU over the period |');
  report('|---|---|---|---|---|---|');
  const row = (what: string, m: Rollup, cpu = '') => report(`| ${what} | ${mib(m.rss)} | ${mib(m.pss)} | ${mib(m.private)} | ${mib(m.anonymous)} | ${cpu} |`);
  const ticks = (a: number, b: number) => `${b - a} ticks (${((b - a) * 10).toFixed(0)} ms)`;
  row('`build/hab-pod-role run -- cat` (single executable, file and pod watch open), labelled once', memory.sea, ticks(before.sea, after.sea));
  row('`node dist/hab-pod-role.mjs run -- cat` (npm package), labelled once', memory.dist);
  const wrapperRow = (n: number) => `\`node dist/hab-pod-role.mjs run --watch\` (npm package), after ${n} failovers of its own, its election file renamed over`;
  for (const stage of afterFailovers) row(`${wrapperRow(stage.failovers)}, 30 s idle, median of 5 samples`, stage.memory);
  row(`${wrapperRow(lastStage)} (private before them: ${mib(beforeFailovers.private)})`, memory.wrapper, ticks(before.wrapper, after.wrapper));
  row("bare single executable: an idle script (a timer once a second) injected into the same Node", memory.bareSea);
  row("bare `node -e IDLE` (a timer once a second, nothing else)", memory.bare, `${after.bare - before.bare} ticks`);
  row('bare node with `node:https` loaded (the floor for anything talking TLS)', memory.bareHttps);
  report('| `exec` of the service (apply from hooks) | 0 | 0 | 0 | 0 | 0 |');
  report(`| ratio anonymous: single executable resident / bare single executable | | | | ${(memory.sea.anonymous / memory.bareSea.anonymous).toFixed(2)} | |`);
  report(`| ratio private: npm package resident / bare node | | | ${(memory.dist.private / memory.bare.private).toFixed(2)} | | |`);
  for (const { failovers: n, memory: m } of [...afterFailovers, { failovers: lastStage, memory: memory.wrapper }]) {
    report(`| ratio private: npm package resident after ${n} failovers / bare node | | | ${(m.private / memory.bare.private).toFixed(2)} | | |`);
  }
  report(`| ratio RSS: wrapper after ${lastStage} failovers / bare node | ${(memory.wrapper.rss / memory.bare.rss).toFixed(2)} | | | | |`);
  report();
  section('requests');
  report('## 4. API requests per transition (audit log of the API server, user hab-pod-role)');
  report();
  report('| transition | requests | of which Events |');
  report('|---|---|---|');
  for (const [what, n] of Object.entries(load)) report(`| ${what} | ${n.total} | ${n.events} |`);
  report();
  section('contest');
  report(`## 5. Contested leadership (${contests} contests, 3 members running \`run --watch\`)`);
  report();
  report('The rightful leader carries the label; another member\'s election file turns leader (a stale claim), takes the label, and both claims stand for 2 s; then the stale file turns follower. Re-label: from that file being renamed to the rightful leader carrying `role=leader` alone, with no hook run (its own resident takes the label back).');
  report();
  report('| measure | p50 | p99 | max |');
  report('|---|---|---|---|');
  report(`| re-label after the stale claim ends | ${ms(quantile(relabel, 0.5))} | ${ms(quantile(relabel, 0.99))} | ${ms(Math.max(...relabel))} |`);
  report(`| label moves while both claims stand (the stale claim taking it) | ${quantile(movesWhileContested, 0.5)} | ${quantile(movesWhileContested, 0.99)} | ${Math.max(...movesWhileContested)} |`);
  report();
  section('targets');
  report('## Targets');
  report();
  const verdict = (ok: boolean) => (ok ? 'met' : 'missed');
  const p99Watch = quantile(convergence['run --watch']!, 0.99);
  const unchanged = Math.max(load['follower, unchanged'].total, load['leader, unchanged'].total);
  const stalePromotion = load['promotion demoting a stale leader (partitioned)'];
  report('| target | measured | |');
  report('|---|---|---|');
  const kubeconfigApply = cold['apply with a kubeconfig, single executable']!.runs;
  report(`| cold \`apply\` wall time at most kubectl's (single executable; aim: half) | ${(median(ours, 'wallMs') / median(theirs, 'wallMs')).toFixed(2)}x kubectl | ${verdict(median(ours, 'wallMs') <= median(theirs, 'wallMs'))} |`);
  report(`| cold \`apply\` peak memory at most kubectl's (single executable) | ${(median(ours, 'peakKb') / median(theirs, 'peakKb')).toFixed(2)}x kubectl | ${verdict(median(ours, 'peakKb') <= median(theirs, 'peakKb'))} |`);
  report(`| \`apply\` with a kubeconfig within 1.3x kubectl (single executable) | ${(median(kubeconfigApply, 'wallMs') / median(theirs, 'wallMs')).toFixed(2)}x kubectl | ${verdict(median(kubeconfigApply, 'wallMs') <= 1.3 * median(theirs, 'wallMs'))} |`);
  report(`| \`run\`'s own memory at most 2x a bare Node's (anonymous, single executable against the bare one) | ${(memory.sea.anonymous / memory.bareSea.anonymous).toFixed(2)}x | ${verdict(memory.sea.anonymous <= 2 * memory.bareSea.anonymous)} |`);
  report(`| failover with \`--watch\`: p99 under 1 s (aim: 250 ms) | ${ms(p99Watch)} | ${verdict(p99Watch < 1000)}${p99Watch < 250 ? ', aim met' : ''} |`);
  report(`| \`run\`'s private memory after ${lastStage} failovers at most 2x a bare Node's (npm package) | ${(memory.wrapper.private / memory.bare.private).toFixed(2)}x | ${verdict(memory.wrapper.private <= 2 * memory.bare.private)} |`);
  report(`| \`run\` steady RSS at most 1.25x a bare Node | ${(memory.wrapper.rss / memory.bare.rss).toFixed(2)}x | ${verdict(memory.wrapper.rss <= 1.25 * memory.bare.rss)} |`);
  report(`| \`run\` no CPU while idle | ${((after.wrapper - before.wrapper) * 10).toFixed(0)} ms in ${residentSeconds} s | ${verdict(after.wrapper === before.wrapper)} |`);
  report(`| 1 request for an unchanged run | ${unchanged} | ${verdict(unchanged === 1)} |`);
  // The fences (README, What it sends) write every member: the older bound, 2 + stale leaders, predates them.
  report(`| a promotion: one LIST and one write per member, no more (${members.length} members, 1 a stale leader; Events not counted) | ${stalePromotion.total - stalePromotion.events} | ${verdict(stalePromotion.total - stalePromotion.events <= 1 + members.length)} |`);
  report(`| contested: the rightful leader labelled again within 1 s of the stale claim ending | max ${ms(Math.max(...relabel))} | ${verdict(Math.max(...relabel) < 1000)} |`);
  report(`| contested: one label move per stale claim while both stand | max ${Math.max(...movesWhileContested)} | ${verdict(Math.max(...movesWhileContested) <= 1)} |`);
  if (only.size === 0) {
    writeFileSync(join(repoRoot, 'bench/RESULTS.md'), `${lines.join('\n')}\n`);
    console.log('\nwritten to bench/RESULTS.md');
  }
} catch (error) {
  if (!(error instanceof NodeBusyError)) throw error;
  console.error(`bench: ${error.message}`);
  process.exitCode = 75;
} finally {
  if (plane) await stopControlPlane(clusterDir);
  rmSync(dir, { recursive: true, force: true });
}
