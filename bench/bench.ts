// `make bench`: hab-pod-role against kubectl on a real control plane; writes bench/RESULTS.md. Never part of the tests.

import { execFileSync, spawn } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KubeConfig, Watch, type V1Pod } from '@kubernetes/client-node';
import { buildControlPlane, startControlPlane, stopControlPlane, type ControlPlane } from '../tools/control-plane.ts';
import { KubeAdmin, podEnv } from '../tools/kube-admin.ts';
import { NodeBusyError } from '../tools/node.ts';
import { electionText, renameElection, tempDir, type State } from '../test/support/election.ts';
import { eventually } from '../test/support/eventually.ts';
import { measureFailovers, nodeVersions } from './failover.ts';

const repoRoot = resolve(fileURLToPath(import.meta.url), '../..');
const cli = join(repoRoot, 'dist/hab-pod-role.mjs');
const kubectlPath = '/usr/lib/google-cloud-sdk/bin/kubectl.1.33'; // the machine's kubectl of the same minor version
const runs = Number(process.env.BENCH_RUNS ?? 30);
const failovers = Number(process.env.BENCH_FAILOVERS ?? 50);
const residentSeconds = Number(process.env.BENCH_RESIDENT_SECONDS ?? 60);
const contests = Number(process.env.BENCH_CONTESTS ?? 20);
const members = ['redis-0', 'redis-1', 'redis-2'];
const ns = 'bench';
// `node bench/bench.ts failover contest` runs and prints only the sections named (cold, failover, resident,
// requests, contest); the failover section always runs. Only a full run writes RESULTS.md.
const only = new Set(process.argv.slice(2));
const wanted = (section: string) => only.size === 0 || only.has(section);
for (const name of only) if (!['cold', 'failover', 'resident', 'requests', 'contest'].includes(name)) throw new Error(`no bench section "${name}": cold, failover, resident, requests, contest`);

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)] ?? NaN; // NaN: a section not run
};
const ms = (x: number) => `${x.toFixed(0)} ms`;
const mib = (kb: number) => `${(kb / 1024).toFixed(1)} MiB`;

/** Runs a command under GNU time: wall time measured here, peak resident set size from time(1). */
function timed(command: string[], env: Record<string, string>): Promise<{ wallMs: number; peakKb: number; code: number }> {
  return new Promise((done) => {
    const started = performance.now();
    const child = spawn('/usr/bin/time', ['-f', '%M', ...command], { env: { PATH: process.env.PATH!, HOME: '/nonexistent', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c));
    child.on('exit', (code) => done({ wallMs: performance.now() - started, peakKb: Number(err.trim().split('\n').at(-1)), code: code ?? -1 }));
  });
}

/** Resident memory and CPU time (user + system, in clock ticks) of a running process, from /proc. */
function sample(pid: number): { rssKb: number; cpuTicks: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return { rssKb: Number(/VmRSS:\s+(\d+)/.exec(status)![1]), cpuTicks: Number(stat[11]) + Number(stat[12]) };
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
  // kubectl with the very credentials hab-pod-role uses: the token bound to the pod it labels (redis-1), and the CA.
  const kubeconfig = join(dir, 'sa.kubeconfig');
  writeFileSync(kubeconfig, [
    'apiVersion: v1', 'kind: Config', 'current-context: sa',
    'clusters: [{name: c, cluster: {server: ' + plane.server + ', certificate-authority: ' + join(account.dir, 'redis-1', 'ca.crt') + '}}]',
    'users: [{name: sa, user: {tokenFile: ' + join(account.dir, 'redis-1', 'token') + '}}]',
    'contexts: [{name: sa, context: {cluster: c, user: sa, namespace: ' + ns + '}}]', '',
  ].join('\n'));
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

  // 1. Cold apply against kubectl label, alternating, each run really changing the label.
  const ours: { wallMs: number; peakKb: number }[] = [];
  const theirs: { wallMs: number; peakKb: number }[] = [];
  // What no Node tool can go below: Node's start, node:https, the same two requests.
  const floor: { wallMs: number; peakKb: number }[] = [];
  for (let i = 0; wanted('cold') && i < runs; i++) {
    const a = await timed([process.execPath, cli, 'apply', '-c', files.get(i % 2 ? 'standalone' : 'follower')!], env('redis-2'));
    const k = await timed([kubectlPath, `--kubeconfig=${kubeconfig}`, 'label', 'pod', 'redis-1', '--overwrite', i % 2 ? 'role-' : 'role=follower'], {});
    const f = await timed([process.execPath, join(repoRoot, 'bench/node-floor.mjs'), 'redis-0', i % 2 ? '-' : 'follower'], env('redis-0'));
    if (a.code !== 0 || k.code !== 0 || f.code !== 0) throw new Error(`a cold run failed: hab-pod-role ${a.code}, kubectl ${k.code}, node floor ${f.code}`);
    ours.push(a);
    theirs.push(k);
    floor.push(f);
  }
  const median = (xs: { wallMs: number; peakKb: number }[], key: 'wallMs' | 'peakKb') => quantile(xs.map((x) => x[key]), 0.5);

  // 2. Failover convergence on the real node: see bench/failover.ts.
  const failoverResults = await measureFailovers(plane, failovers);
  const convergence = Object.fromEntries(Object.entries(failoverResults).map(([style, r]) => [style, r.endpoints]));
  const labelled = Object.fromEntries(Object.entries(failoverResults).map(([style, r]) => [style, r.labels]));

  // Section 3's wrappers: each member of the API-object pods runs `run --watch` beside this benchmark, and
  // goes through the same number of failovers (its election file renamed over) before it idles.
  const kc = new KubeConfig();
  kc.loadFromFile(plane.kubeconfig);
  const roles = new Map<string, string | undefined>();
  let leaderLabels = '';
  const labelWaiters: { want: string; resolve: () => void }[] = [];
  const podWatch = await new Watch(kc).watch(`/api/v1/namespaces/${ns}/pods`, { labelSelector: 'app=redis' }, (_type: string, pod: V1Pod) => {
    roles.set(pod.metadata!.name!, pod.metadata?.labels?.role);
    leaderLabels = [...roles].filter(([, role]) => role === 'leader').map(([name]) => name).sort().join();
    for (const w of labelWaiters.splice(0)) if (w.want === leaderLabels) w.resolve(); else labelWaiters.push(w);
  }, () => undefined);
  const leaderLabelIs = (want: string) => new Promise<void>((resolve) => (leaderLabels === want ? resolve() : labelWaiters.push({ want, resolve })));
  let leader = 'redis-0';
  const memberFiles = new Map(members.map((m) => [m, join(dir, `${m}.toml`)]));
  for (const m of members) writeFileSync(memberFiles.get(m)!, electionText(m === leader ? 'leader' : 'follower'));
  const wrappers = members.map((m) => spawn(process.execPath, [cli, 'run', '-c', memberFiles.get(m)!, '--', 'sleep', '1000000'], { env: { PATH: process.env.PATH!, ...env(m) }, stdio: 'ignore', detached: true }));
  const rename = (m: string, state: State) => renameElection(memberFiles.get(m)!, electionText(state));
  await eventually(async () => leaderLabels === leader, { what: 'the resident wrappers settling' });
  await new Promise((r) => setTimeout(r, 1000));
  // The wrapper's memory before it has worked through the failovers (sampled again in section 3).
  const rssBeforeFailoversKb = sample(wrappers[0]!.pid!).rssKb;
  for (let i = 0; i < failovers; i++) {
    const next = members[(members.indexOf(leader) + 1) % members.length]!;
    const relabelled = leaderLabelIs(next);
    rename(leader, 'follower');
    rename(next, 'leader');
    await relabelled;
    leader = next;
    await new Promise((r) => setTimeout(r, 100));
  }

  // 3. Resident cost while the service idles, against a bare node process.
  const bare = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1 << 30)'], { stdio: 'ignore' });
  // The floor for a resident that talks TLS: Node with node:https loaded, idle.
  const bareHttps = spawn(process.execPath, ['-e', "require('node:https'); setInterval(() => {}, 1 << 30)"], { stdio: 'ignore' });
  // Steady state: the wrappers have just been through the failovers above; give V8's idle-time
  // collection and the watches time to settle before measuring a service that idles.
  if (wanted('resident')) await new Promise((r) => setTimeout(r, 30_000));
  const wrapperPid = wrappers[0]!.pid!;
  const before = { wrapper: sample(wrapperPid), bare: sample(bare.pid!) };
  const rss = { wrapper: [] as number[], bare: [] as number[], bareHttps: [] as number[] };
  for (let t = 0; wanted('resident') && t < residentSeconds; t += 5) {
    await new Promise((r) => setTimeout(r, 5000));
    rss.wrapper.push(sample(wrapperPid).rssKb);
    rss.bare.push(sample(bare.pid!).rssKb);
    rss.bareHttps.push(sample(bareHttps.pid!).rssKb);
  }
  const after = { wrapper: sample(wrapperPid), bare: sample(bare.pid!) };
  // What the wrapper costs the machine beyond pages it shares (the node binary, with other Node processes).
  const rollup = readFileSync(`/proc/${wrapperPid}/smaps_rollup`, 'utf8');
  const rollupKb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(rollup)?.[1] ?? NaN);
  const wrapperMemory = { pss: rollupKb('Pss'), private: rollupKb('Private_Clean') + rollupKb('Private_Dirty'), anonymous: rollupKb('Anonymous') };
  bare.kill();
  bareHttps.kill();
  for (const w of wrappers) process.kill(-w.pid!, 'SIGTERM');
  podWatch.abort();

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
  const contestWrappers = members.map((m) => spawn(process.execPath, [cli, 'run', '-c', contestFiles.get(m)!, '--', 'sleep', '1000000'], { env: { PATH: process.env.PATH!, ...env(m) }, stdio: 'ignore', detached: true }));
  const contestRename = (m: string, state: State) => renameElection(contestFiles.get(m)!, electionText(state));
  let moves = 0;
  let holders = '';
  const holderWaiters: { want: string; resolve: () => void }[] = [];
  const contestRoles = new Map<string, string | undefined>();
  const contestWatch = await new Watch(kc).watch(`/api/v1/namespaces/${ns}/pods`, { labelSelector: 'app=redis' }, (_type: string, pod: V1Pod) => {
    const name = pod.metadata!.name!;
    if (pod.metadata?.labels?.role === 'leader' && contestRoles.get(name) !== 'leader') moves++;
    contestRoles.set(name, pod.metadata?.labels?.role);
    holders = [...contestRoles].filter(([, role]) => role === 'leader').map(([n]) => n).sort().join();
    for (const w of holderWaiters.splice(0)) if (w.want === holders) w.resolve(); else holderWaiters.push(w);
  }, () => undefined);
  const holderIs = (want: string) => new Promise<void>((resolve) => (holders === want ? resolve() : holderWaiters.push({ want, resolve })));
  await holderIs(contestLeader);
  await new Promise((r) => setTimeout(r, 1000));
  const relabel: number[] = [];
  const movesWhileContested: number[] = [];
  for (let i = 0; wanted('contest') && i < contests; i++) {
    const stale = members[1 + (i % 2)]!;
    const before = moves;
    contestRename(stale, 'leader');
    await holderIs(stale);
    // Both claims stand for a while: the label stays where the newer one put it.
    await new Promise((r) => setTimeout(r, 2000));
    movesWhileContested.push(moves - before);
    const ended = performance.now();
    const back = holderIs(contestLeader);
    contestRename(stale, 'follower');
    await back;
    relabel.push(performance.now() - ended);
    await new Promise((r) => setTimeout(r, 300));
  }
  contestWatch.abort();
  for (const w of contestWrappers) process.kill(-w.pid!, 'SIGTERM');

  // The record.
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  report('# Benchmark results');
  report();
  report(`Measured ${new Date().toISOString().slice(0, 10)} on ${cpus().length} cores (${cpu}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB; Node ${versions.node}, Kubernetes ${versions.kubernetes} (built from Go modules), kubectl ${versions.kubectl}.`);
  report('Reproduce with `make bench` (environment: BENCH_RUNS, BENCH_FAILOVERS, BENCH_RESIDENT_SECONDS, BENCH_CONTESTS). The API server runs on this machine, so network time is near zero: the figures are the tools\' own cost.');
  report();
  section('cold');
  report(`## 1. Cold apply (${runs} runs each, alternating, the label changed every run; same service-account token and CA)`);
  report();
  report('| command | median wall | p90 wall | median peak RSS |');
  report('|---|---|---|---|');
  report(`| \`hab-pod-role apply\` (GET, PATCH) | ${ms(median(ours, 'wallMs'))} | ${ms(quantile(ours.map((x) => x.wallMs), 0.9))} | ${mib(median(ours, 'peakKb'))} |`);
  report(`| \`kubectl label pod --overwrite\` (GET, PATCH) | ${ms(median(theirs, 'wallMs'))} | ${ms(quantile(theirs.map((x) => x.wallMs), 0.9))} | ${mib(median(theirs, 'peakKb'))} |`);
  report(`| Node floor: \`bench/node-floor.mjs\` (node:https, GET, PATCH, nothing else) | ${ms(median(floor, 'wallMs'))} | ${ms(quantile(floor.map((x) => x.wallMs), 0.9))} | ${mib(median(floor, 'peakKb'))} |`);
  report(`| ratio hab-pod-role / kubectl | ${(median(ours, 'wallMs') / median(theirs, 'wallMs')).toFixed(2)} | | ${(median(ours, 'peakKb') / median(theirs, 'peakKb')).toFixed(2)} |`);
  report(`| ratio Node floor / kubectl | ${(median(floor, 'wallMs') / median(theirs, 'wallMs')).toFixed(2)} | | ${(median(floor, 'peakKb') / median(theirs, 'peakKb')).toFixed(2)} |`);
  report();
  section('failover');
  report(`## 2. Failover convergence on the real node (${failovers} failovers each, the Redis example's 3 pods)`);
  report();
  report(`The Redis example as real containers under the kubelet (${nodeVersions()}): its exported-style image with the Supervisor stand-in as PID 1, redis-server, and the tool as its plan builds it, running in-cluster with the kubelet's token through the \`kubernetes\` Service (kube-proxy). Each failover is one census from the gossip stand-in (port 9630) naming the next member leader with all three alive, no election-running phase in between: each Supervisor re-renders its files in place and runs the reconfigure hook (which switches Redis with redis-cli, then runs \`apply\`). The clock starts when the first of the old and new leader's Supervisors begins rewriting \`election.toml\` (the stand-in reports the moment: CLOCK_MONOTONIC, shared by the containers and this benchmark) and stops when this benchmark's watches see (a) the labels saying so: only the new leader carries \`role=leader\` (the tool's share, plus the watch's delivery), and (b) the \`redis-leader\` EndpointSlice listing only the new leader as ready (the EndpointSlice controller on top; readiness comes from the kubelet's probe of the Supervisor's gateway and stays true through a failover). 200 ms between failovers.`);
  report();
  report(`- run --watch: the example as shipped. The run hook's resident \`hab-pod-role run\` follows the file; the reconfigure hook's \`apply\` also runs, after redis-cli, and found the label already written in ${failoverResults['run --watch']!.foundLabelled} of ${failoverResults['run --watch']!.promotions} promotions (the resident was first).`);
  report(`- apply from reconfigure: the same image with the run hook's \`hab-pod-role run --no-watch\` (it labels once at the start, then only runs Redis), so the reconfigure hook's \`apply\` is what labels: the time includes the hook's five redis-cli calls before it and the executable's cold start. It found the label already written in ${failoverResults['apply from reconfigure']!.foundLabelled} of ${failoverResults['apply from reconfigure']!.promotions} promotions.`);
  report();
  report('| style | labels p50 | p99 | max | EndpointSlice p50 | p99 | max | EndpointSlice controller retries (1 s backoff) |');
  report('|---|---|---|---|---|---|---|---|');
  for (const [style, xs] of Object.entries(convergence)) {
    const ls = labelled[style]!;
    report(`| ${style} | ${ms(quantile(ls, 0.5))} | ${ms(quantile(ls, 0.99))} | ${ms(Math.max(...ls))} | ${ms(quantile(xs, 0.5))} | ${ms(quantile(xs, 0.99))} | ${ms(Math.max(...xs))} | ${failoverResults[style]!.staleRequeues} |`);
  }
  report();
  report('The last column counts the kube-controller-manager log\'s lines saying the EndpointSlice controller retried `redis-leader` because its informer had not yet seen the slice it had just written ("EndpointSlice informer cache is out of date"): the two label changes of a failover can arrive that close together, and the retry waits the controller\'s 1 s backoff. An EndpointSlice figure about 1 s above its labels figure is that wait, not the tool\'s.');
  report();
  section('resident');
  report(`## 3. Resident cost of \`run\` while the service idles (${residentSeconds} s after 30 s of settling, sampled every 5 s)`);
  report();
  report('| process | median RSS | CPU over the period |');
  report('|---|---|---|');
  report(`| the same wrapper before ${failovers} failovers of its own (its election file renamed over) | ${mib(rssBeforeFailoversKb)} | |`);
  report(`| \`hab-pod-role run --watch\` (file watch and pod watch open), after the failovers | ${mib(quantile(rss.wrapper, 0.5))} | ${after.wrapper.cpuTicks - before.wrapper.cpuTicks} ticks (${((after.wrapper.cpuTicks - before.wrapper.cpuTicks) * 10).toFixed(0)} ms) |`);
  report(`| the same wrapper from /proc/PID/smaps_rollup at the end: PSS / private / anonymous | ${mib(wrapperMemory.pss)} / ${mib(wrapperMemory.private)} / ${mib(wrapperMemory.anonymous)} | |`);
  report(`| bare \`node -e 'setInterval(...)'\` | ${mib(quantile(rss.bare, 0.5))} | ${after.bare.cpuTicks - before.bare.cpuTicks} ticks |`);
  report('| `exec` of the service (apply from hooks) | 0 | 0 |');
  report(`| bare node with \`node:https\` loaded (the floor for anything talking TLS) | ${mib(quantile(rss.bareHttps, 0.5))} | |`);
  report(`| ratio wrapper / bare node | ${(quantile(rss.wrapper, 0.5) / quantile(rss.bare, 0.5)).toFixed(2)} | |`);
  report(`| ratio bare node with https / bare node | ${(quantile(rss.bareHttps, 0.5) / quantile(rss.bare, 0.5)).toFixed(2)} | |`);
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
  report(`| cold \`apply\` wall time at most kubectl's (aim: half) | ${(median(ours, 'wallMs') / median(theirs, 'wallMs')).toFixed(2)}x kubectl | ${verdict(median(ours, 'wallMs') <= median(theirs, 'wallMs'))} |`);
  report(`| cold \`apply\` peak memory at most kubectl's | ${(median(ours, 'peakKb') / median(theirs, 'peakKb')).toFixed(2)}x kubectl | ${verdict(median(ours, 'peakKb') <= median(theirs, 'peakKb'))} |`);
  report(`| failover with \`--watch\`: p99 under 1 s (aim: 250 ms) | ${ms(p99Watch)} | ${verdict(p99Watch < 1000)}${p99Watch < 250 ? ', aim met' : ''} |`);
  report(`| \`run\` steady RSS at most 1.25x a bare Node | ${(quantile(rss.wrapper, 0.5) / quantile(rss.bare, 0.5)).toFixed(2)}x | ${verdict(quantile(rss.wrapper, 0.5) <= 1.25 * quantile(rss.bare, 0.5))} |`);
  report(`| \`run\` no CPU while idle | ${((after.wrapper.cpuTicks - before.wrapper.cpuTicks) * 10).toFixed(0)} ms in ${residentSeconds} s | ${verdict(after.wrapper.cpuTicks === before.wrapper.cpuTicks)} |`);
  report(`| 1 request for an unchanged run | ${unchanged} | ${verdict(unchanged === 1)} |`);
  report(`| at most 2 + stale leaders for a promotion (1 stale here, Events not counted) | ${stalePromotion.total - stalePromotion.events} | ${verdict(stalePromotion.total - stalePromotion.events <= 3)} |`);
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
