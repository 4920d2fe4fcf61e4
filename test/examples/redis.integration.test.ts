// examples/redis end to end as real containers on the real node: real manifests, hooks, redis-server and tool; Habitat's gossip stood in for.

import { statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { restartNodeDaemon } from '../../tools/node.ts';
import { recordOutput } from '../support/cli.ts';
import { controlPlane, documentedRole } from '../support/cluster.ts';
import { eventually } from '../support/eventually.ts';
import { realNode } from '../support/real-node.ts';
import { LabelRecorder } from '../support/recorder.ts';
import { exampleIdent } from '../support/redis-image.ts';
import { members, RedisOnNode, type Member } from '../support/redis-node.ts';
import { serviceUser } from '../support/supervisor.ts';

// The image is laid out as `hab pkg export container` lays one out, each container's PID 1 is a hab-launch
// stand-in running the Supervisor stand-in, the real kubelet runs the manifest's probe, and writes go through the Services'
// ClusterIPs (kube-proxy). The harness stands in for gossip: it posts each election's outcome to the
// members (test/support/supervisor-main.ts).
const { node, unavailable } = realNode();
describe.skipIf(!node)(`the Redis example as containers on the real node${node ? '' : ` (skipped: ${unavailable})`}`, () => {
  let example: RedisOnNode;
  let recorder: LabelRecorder;
  const acknowledged: string[] = [];
  /** Writes through redis-leader's ClusterIP, each counted once both replicas have it (WAIT 2 on the same connection). */
  const write = async (prefix: string, count: number) => {
    for (let i = 0; i < count; i++) {
      const key = `${prefix}-${i}`;
      expect(await example.pipeVia('redis-leader', [['set', key, `v-${key}`], ['wait', '2', '2000']])).toEqual(['OK', '2']);
      acknowledged.push(key);
    }
  };
  /** Every acknowledged write is there, through redis-leader and on member `m`. */
  const noWriteLost = async (m: 'redis-0' | 'redis-1' | 'redis-2') => {
    const expected = acknowledged.map((key) => `v-${key}`).join('\n');
    expect(await example.redisVia('redis-leader', 'mget', ...acknowledged)).toBe(expected);
    await eventually(async () => (await example.redis(m, 'mget', ...acknowledged)) === expected, { what: `${m} holding every acknowledged write`, timeoutMs: 30_000 });
  };
  const endpoints = async (service: string) => (await example.readyEndpoints(service)).map((e) => e.pod).join();
  const leaderEndpoint = (pod: string, what: string) => eventually(async () => (await endpoints('redis-leader')) === pod, { what, timeoutMs: 60_000, intervalMs: 100 });
  /** Waits until RBAC, as the tool's account, says `can` to reading pods. */
  const canGetPods = (can: boolean) => eventually(async () => {
    const answer = await example.kubectl('auth', 'can-i', 'get', 'pods', `--as=system:serviceaccount:${example.namespace}:hab-pod-role`).catch((error: { stdout?: string }) => error);
    return String(answer.stdout ?? '').trim() === (can ? 'yes' : 'no');
  }, { what: `RBAC ${can ? 'allowing' : 'refusing'} the tool's account` });
  /** The survivors start an election: their hooks wait, and their residents take their labels off. */
  const electionRunsAmong = async (survivors: readonly Member[]) => {
    const before = Object.fromEntries(await Promise.all(survivors.map(async (m) => [m, (await example.output(m)).length] as const)));
    expect(await example.elect(undefined, 'running', survivors)).toEqual(Object.fromEntries(survivors.map((m) => [m, 'waiting'])));
    // Their Supervisors say so for this election, not only for the one at their start.
    for (const m of survivors) {
      await eventually(async () => (await example.output(m)).slice(before[m]).includes('Waiting to execute hooks; election in progress.'), { what: `${m}'s Supervisor waiting for the election` });
    }
    await eventually(async () => {
      const roles = await example.roles();
      return survivors.every((m) => roles[m] === null);
    }, { what: 'the residents removing the survivors\' labels during the election' });
  };

  beforeAll(async () => {
    recorder = new LabelRecorder('redis', (pod) => /^redis-\d$/.test(pod));
    example = await RedisOnNode.start(controlPlane(), node!);
    await recorder.start();
  }, 300_000);

  afterAll(async () => {
    recorder?.stop();
    if (example) {
      for (const m of ['redis-0', 'redis-1', 'redis-2'] as const) recordOutput(await example.output(m).catch(() => ''));
      await example.stop();
    }
  }, 180_000);

  it('each container runs the Supervisor under hab-launch\'s stand-in as PID 1; after the election the real probe makes them Ready and the ClusterIPs route to leader and followers', async () => {
    expect(await example.elect('redis-0')).toEqual({ 'redis-0': 'started', 'redis-1': 'started', 'redis-2': 'started' });
    await leaderEndpoint('redis-0', 'redis-leader listing redis-0');
    await eventually(async () => (await endpoints('redis-follower')) === 'redis-1,redis-2', { what: 'redis-follower listing the others', timeoutMs: 60_000 });
    expect(await example.roles()).toEqual({ 'redis-0': 'leader', 'redis-1': 'follower', 'redis-2': 'follower' });
    // PID 1 is hab-launch's stand-in, started with the Supervisor's command line, and the Supervisor is its
    // child, as in an exported image; the image's PATH is busybox's /bin, so a shell in the pod finds no redis-cli.
    expect((await example.kubectl('exec', 'redis-1', '--', 'cat', '/proc/1/cmdline')).stdout.split('\0')).toEqual(expect.arrayContaining(['/hab/sup-standin/supervisor.cjs', 'run', exampleIdent, '--topology', 'leader']));
    expect((await example.kubectl('exec', 'redis-1', '--', 'readlink', '/proc/1/exe')).stdout.trim()).toBe('/hab/sup-standin/hab-launch');
    expect((await example.kubectl('exec', 'redis-1', '--', 'sh', '-c', 'for p in /proc/[0-9]*; do tr "\\0" " " < $p/cmdline 2>/dev/null | grep -q "^/hab/sup-standin/node /hab/sup-standin/supervisor.cjs" && sed -n "s/^PPid:[[:space:]]*//p" $p/status; done; true')).stdout.trim()).toBe('1');
    expect((await example.kubectl('exec', 'redis-1', '--', 'sh', '-c', 'redis-cli -p 6379 ping').catch((e: { exitCode: number }) => e)).exitCode).toBe(127);
    // Redis runs as the hab user, started by the run hook under hab-pod-role run, in the pod.
    expect((await example.kubectl('exec', 'redis-1', '--', 'sh', '-c', 'stat -c %u /proc/$(pidof redis-server)')).stdout.trim()).toBe('42');
    // The package's single executable, run in a pod (`kubectl exec POD -- hab pkg exec ...`), sees exactly one leader.
    const status = await example.tool('redis-1', ['status', '-o', 'json']);
    expect(status.exitCode, status.stderr).toBe(0);
    expect((JSON.parse(status.stdout) as { pods: { name: string; role: string | null }[] }).pods.map((p) => `${p.name}=${p.role}`)).toEqual(['redis-0=leader', 'redis-1=follower', 'redis-2=follower']);
    await example.replicating('redis-0');
    await write('first', 100);
    const leaderIp = (await example.podIp('redis-0')).replaceAll('.', '\\.');
    for (const m of ['redis-1', 'redis-2'] as const) {
      expect(await example.redis(m, 'role')).toMatch(new RegExp(`^slave\n${leaderIp}\n6379`));
      expect(await example.redis(m, 'get', 'first-99')).toBe('v-first-99');
    }
    expect(await example.redisVia('redis-follower', 'dbsize')).toBe('100');
    // In-cluster: the tool found the kubelet's service-account token and the kubernetes Service.
    expect(await example.output('redis-0')).toContain('role=leader (had none)');
    expect(recorder.violations).toEqual([]);
  });

  it('is Ready by the Supervisor\'s health endpoint: a member serving the wrong role is not, and an exec probe could not ask Redis', async () => {
    // The image's PATH is busybox's /bin: a probe that runs redis-cli (as the manifest's once did) finds none.
    expect(await example.exec('redis-1', ['sh', '-c', 'redis-cli -p 6379 ping'])).toBe(127);
    expect(await example.exec('redis-1', ['sh', '-c', 'redis-cli -p 6379 ping | grep -q PONG'])).not.toBe(0);
    // A follower turned primary by hand disagrees with the election: its health check turns critical, the
    // gateway answers 503, the kubelet's probe fails, and redis-follower stops sending reads to it.
    expect(await example.redis('redis-2', 'slaveof', 'no', 'one')).toBe('OK');
    await eventually(async () => JSON.stringify(await example.ready()) === JSON.stringify({ 'redis-0': true, 'redis-1': true, 'redis-2': false }), { what: 'redis-2 not Ready', timeoutMs: 30_000, intervalMs: 200 });
    await eventually(async () => (await endpoints('redis-follower')) === 'redis-1', { what: 'redis-follower dropping redis-2' });
    // The reconfigure hook puts replication back (a hook that only labels would not), and the pod is Ready again.
    expect(await example.hook('redis-2', 'reconfigure')).toBe(0);
    await example.replicating('redis-0');
    await eventually(async () => JSON.stringify(await example.ready()) === JSON.stringify({ 'redis-0': true, 'redis-1': true, 'redis-2': true }), { what: 'redis-2 Ready again', timeoutMs: 30_000, intervalMs: 200 });
    await eventually(async () => (await endpoints('redis-follower')) === 'redis-1,redis-2', { what: 'redis-follower listing redis-2 again' });
    expect(await example.redis('redis-2', 'get', 'first-99')).toBe('v-first-99');
  });

  it('a reconfigure whose label call fails still switches Redis (the Supervisor never runs it again)', async () => {
    // redis-2's Redis strays again; then the tool loses every permission, so hab-pod-role apply fails.
    expect(await example.redis('redis-2', 'slaveof', 'no', 'one')).toBe('OK');
    const rules = documentedRole().rules!;
    await example.admin.setRoleRules(example.namespace, []);
    // RBAC's cache takes the change a moment later: only then is the hook's label call sure to fail.
    await canGetPods(false);
    try {
      const before = (await example.output('redis-2')).length;
      // The exit code is the Supervisor's to ignore; what counts is that replication was switched first.
      await example.hook('redis-2', 'reconfigure');
      await eventually(async () => (await example.output('redis-2')).slice(before).includes('labelling failed'), { what: 'the hook saying the label call failed' });
      await example.replicating('redis-0');
    } finally {
      await example.admin.setRoleRules(example.namespace, rules);
      await canGetPods(true);
    }
  });

  it('leader pod deleted: the kubelet TERMs the Supervisor, Redis saves; the survivors elect, the StatefulSet brings the pod back as a follower, nothing acknowledged is lost', async () => {
    const old = await example.running('redis-0');
    const deleted = Date.now();
    await example.admin.core.deleteNamespacedPod({ namespace: example.namespace, name: 'redis-0' });
    // Timed to the old pod being gone, not to its replacement running (scheduling and starting are not the TERM's).
    await eventually(async () => (await example.admin.core.readNamespacedPod({ namespace: example.namespace, name: 'redis-0' }).catch(() => undefined))?.metadata?.uid !== old.metadata!.uid, { what: 'the old redis-0 gone', timeoutMs: 60_000, intervalMs: 100 });
    const seconds = (Date.now() - deleted) / 1000;
    const replacement = await example.running('redis-0', { uid: old.metadata!.uid! });
    // Gone before the 30 s grace period: the TERM reached the Supervisor (through hab-launch's stand-in, PID 1), which stopped Redis and exited.
    expect(seconds).toBeLessThan(old.spec!.terminationGracePeriodSeconds!);
    // Redis saved on TERM (after the delete, not an earlier background save), as the hab user, into the
    // member's volume; the new pod has the same volume.
    const dump = statSync(join(example.volumes.get('redis-0')!, 'dump.rdb'));
    expect(dump.uid).toBe(serviceUser.uid);
    expect(dump.mtimeMs).toBeGreaterThanOrEqual(deleted);
    expect(replacement.metadata!.labels?.role).toBeUndefined();
    expect(replacement.spec!.volumes!.find((v) => v.name === 'data')!.persistentVolumeClaim!.claimName).toBe('data-redis-0');

    // The survivors notice (gossip: the harness) and hold an election; the residents take their labels off.
    const survivors = ['redis-1', 'redis-2'] as const;
    await electionRunsAmong(survivors);
    expect(await example.elect('redis-1', 'finished', survivors)).toEqual({ 'redis-1': 'reconfigured', 'redis-2': 'reconfigured' });
    await leaderEndpoint('redis-1', 'redis-leader switching to redis-1');

    // The new redis-0 has heard nothing yet: its hooks wait, it serves nothing and carries no role.
    await eventually(async () => (await example.output('redis-0')).includes('Waiting to execute hooks; election in progress.'), { what: 'the new redis-0\'s Supervisor waiting for an election' });
    expect((await example.roles())['redis-0']).toBeNull();
    // It joins the ring and learns the outcome: a follower of redis-1.
    expect((await example.elect('redis-1'))['redis-0']).toBe('started');
    await eventually(async () => JSON.stringify(await example.roles()) === JSON.stringify({ 'redis-0': 'follower', 'redis-1': 'leader', 'redis-2': 'follower' }), { what: 'redis-0 back as a follower', timeoutMs: 30_000 });
    await example.replicating('redis-1');
    await eventually(async () => (await endpoints('redis-follower')) === 'redis-0,redis-2', { what: 'redis-follower listing redis-0 again', timeoutMs: 60_000 });
    await noWriteLost('redis-0');
    await write('after-delete', 20);
    recorder.assertComplete();
    expect(recorder.violations).toEqual([]);
  });

  it('leader container killed: the kubelet restarts it in the same pod, still labelled leader, and it serves nothing until elected; the survivors\' leader demotes it', async () => {
    const before = await example.running('redis-1');
    const restarts = before.status!.containerStatuses![0]!.restartCount ?? 0;
    process.kill(await example.containerPid('redis-1'), 'SIGKILL');
    const restarted = await example.running('redis-1', { restarts });
    expect(restarted.metadata!.uid).toBe(before.metadata!.uid);
    expect(restarted.status!.containerStatuses![0]!.lastState?.terminated?.exitCode).toBe(137);
    // The pod still says leader, and nothing cleans it: the member is back but has heard no election.
    expect(restarted.metadata!.labels?.role).toBe('leader');
    await eventually(async () => (await example.output('redis-1')).includes('Waiting to execute hooks; election in progress.'), { what: 'the restarted Supervisor waiting for an election' });
    // It does not serve as leader: no Redis runs, the probe fails, redis-leader has no endpoint.
    expect(await example.redis('redis-1', 'ping')).toMatch(/Could not connect|Connection refused/);
    await leaderEndpoint('', 'redis-leader without a ready endpoint');
    expect((await example.roles())['redis-1']).toBe('leader');

    // The survivors hold an election. The Supervisor renders the templates but runs no hook while it
    // runs; the resident hab-pod-role run sees finished = false and takes the survivors' labels off.
    const survivors = ['redis-0', 'redis-2'] as const;
    await electionRunsAmong(survivors);
    expect((await example.roles())['redis-1']).toBe('leader');
    // The election finishes; the Supervisor re-renders and runs reconfigure, once, in its loop.
    const reconfiguresBefore = (await example.state('redis-2')).reconfigureExits.length;
    expect(await example.elect('redis-2', 'finished', survivors)).toEqual({ 'redis-0': 'reconfigured', 'redis-2': 'reconfigured' });
    expect((await example.state('redis-2')).reconfigureExits.slice(reconfiguresBefore)).toEqual([0]);
    await leaderEndpoint('redis-2', 'redis-leader switching to redis-2');
    await eventually(async () => (await example.roles())['redis-1'] === null, { what: 'redis-2 demoting the stale leader redis-1' });
    expect(await example.roles()).toEqual({ 'redis-0': 'follower', 'redis-1': null, 'redis-2': 'leader' });
    const follower = [{ ip: await example.podIp('redis-0'), pod: 'redis-0' }];
    await eventually(async () => JSON.stringify(await example.readyEndpoints('redis-follower')) === JSON.stringify(follower), { what: 'redis-follower listing redis-0' });
    expect(await example.readyEndpoints('redis-follower')).toEqual(follower);
    // Redis was switched without a restart: the new leader is a master.
    expect(await example.redis('redis-2', 'role')).toMatch(/^master/);
    expect(await example.output('redis-2')).toContain('demoted stale leader redis-1');
    const events = await example.admin.core.listNamespacedEvent({ namespace: example.namespace, fieldSelector: 'involvedObject.name=redis-1' });
    expect(events.items.map((e) => e.reason)).toContain('RoleDemoted');

    // Told the outcome, the restarted member starts as a follower of redis-2.
    expect((await example.elect('redis-2'))['redis-1']).toBe('started');
    await eventually(async () => JSON.stringify(await example.roles()) === JSON.stringify({ 'redis-0': 'follower', 'redis-1': 'follower', 'redis-2': 'leader' }), { what: 'redis-1 a follower', timeoutMs: 30_000 });
    await example.replicating('redis-2');
    await noWriteLost('redis-1');
    recorder.assertComplete();
    expect(recorder.violations).toEqual([]);
  });

  it('kubelet and kube-proxy restarted: the pods, their containers and labels are unaffected, and the ClusterIPs still route', async () => {
    const snapshot = async () => (await example.admin.core.listNamespacedPod({ namespace: example.namespace })).items
      .map((p) => `${p.metadata!.name} ${p.metadata!.uid} ${p.status!.containerStatuses![0]!.restartCount} ${p.metadata!.labels?.role}`).sort();
    const before = await snapshot();
    const changes = recorder.changes.length;
    await restartNodeDaemon(controlPlane().dir, 'kubelet');
    await restartNodeDaemon(controlPlane().dir, 'kube-proxy');
    await write('after-daemons', 20);
    expect(await example.redisVia('redis-follower', 'get', 'after-daemons-19')).toBe('v-after-daemons-19');
    expect(await snapshot()).toEqual(before);
    // No label moved while the daemons were away.
    expect(recorder.changes.slice(changes).filter((c) => c.role !== c.previous)).toEqual([]);
    expect(await endpoints('redis-leader')).toBe('redis-2');
    recorder.assertComplete();
    expect(recorder.violations).toEqual([]);
  });

  it('kubectl rollout restart statefulset/redis: every pod replaced in turn, the leader moves, never two leaders, no acknowledged write lost', async () => {
    const gossip = example.gossip('redis-2');
    // Samples of redis-leader's endpoints during the rollout, for the time without a leader (reported, not asserted).
    const samples: { at: number; leader: string }[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        samples.push({ at: Date.now(), leader: await endpoints('redis-leader').catch(() => '?') });
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    // A client writing through redis-leader all along; a write counts only once both replicas have it.
    let writing = true;
    let attempts = 0;
    const writer = (async () => {
      while (writing) {
        const key = `rollout-${attempts++}`;
        const replies = await example.pipeVia('redis-leader', [['set', key, `v-${key}`], ['wait', '2', '500']]).catch(() => []);
        if (replies[0] === 'OK' && replies[1] === '2') acknowledged.push(key);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    const uids = new Map((await example.admin.core.listNamespacedPod({ namespace: example.namespace })).items.map((p) => [p.metadata!.name, p.metadata!.uid]));
    const changes = recorder.changes.length;
    try {
      await example.kubectl('rollout', 'restart', 'statefulset/redis');
      await example.kubectl('rollout', 'status', 'statefulset/redis', '--timeout=240s');
    } finally {
      writing = false;
      await writer;
      sampling = false;
      await sampler;
    }
    const { elections, leader } = await gossip.stop();
    // Every pod is new, the leader moved off the pod it was on, and the Services follow.
    for (const p of (await example.admin.core.listNamespacedPod({ namespace: example.namespace })).items) expect(p.metadata!.uid).not.toBe(uids.get(p.metadata!.name));
    expect(elections).toBeGreaterThanOrEqual(1);
    expect(recorder.moves(changes).length).toBeGreaterThanOrEqual(1);
    await leaderEndpoint(leader, `redis-leader listing ${leader}`);
    expect(Object.values(await example.roles()).sort()).toEqual(['follower', 'follower', 'leader']);
    await example.replicating(leader);
    await noWriteLost(members.find((m) => m !== leader)!);
    recorder.assertComplete();
    expect(recorder.violations).toEqual([]);
    let without = 0;
    let longest = 0;
    let emptySince: number | undefined;
    for (const sample of samples) {
      if (sample.leader === '' && emptySince === undefined) emptySince = sample.at;
      if (sample.leader !== '' && emptySince !== undefined) {
        without += sample.at - emptySince;
        longest = Math.max(longest, sample.at - emptySince);
        emptySince = undefined;
      }
    }
    const seconds = ((samples.at(-1)?.at ?? 0) - (samples[0]?.at ?? 0)) / 1000;
    console.log(`rollout restart: ${seconds.toFixed(1)} s, ${elections} election(s), redis-leader without a ready endpoint ${(without / 1000).toFixed(1)} s in all (longest ${(longest / 1000).toFixed(1)} s); ${acknowledged.filter((k) => k.startsWith('rollout-')).length} of ${attempts} writes acknowledged by both replicas`);
  }, 300_000);

  it('hab config apply of save, appendonly and min-slaves reaches the running Redis through reconfigure (CONFIG SET)', async () => {
    const leader = (await example.readyEndpoints('redis-leader'))[0]!.pod as Member;
    const followers = members.filter((m) => m !== leader);
    const config = (m: Member, key: string) => example.redis(m, 'config', 'get', key);
    expect(await example.configApply({ save: ['60 1'], appendonly: 'yes', min_slaves_to_write: 1, min_slaves_max_lag: 5 })).toEqual({ 'redis-0': 'reconfigured', 'redis-1': 'reconfigured', 'redis-2': 'reconfigured' });
    for (const m of followers) {
      expect(await config(m, 'save')).toBe('save\n60 1');
      expect(await config(m, 'appendonly')).toBe('appendonly\nyes');
      expect(await config(m, 'min-slaves-to-write')).toBe('min-slaves-to-write\n1');
      expect(await config(m, 'min-slaves-max-lag')).toBe('min-slaves-max-lag\n5');
    }
    // The leader has its replicas, so it still takes writes, and the replicas have them.
    expect(await example.redisVia('redis-leader', 'set', 'after-config', 'yes')).toBe('OK');
    for (const m of followers) await eventually(async () => (await example.redis(m, 'get', 'after-config')) === 'yes', { what: `the write reaching ${m}` });
  });

  it('a follower started while its account may not write: its run hook ends (77) and the Supervisor runs it again until the account may; then the pod is labelled and Ready', async () => {
    const leader = (await example.readyEndpoints('redis-leader'))[0]!.pod as Member;
    const follower = members.find((m) => m !== leader)!;
    const { namespace } = example;
    const binding = await example.admin.rbac.readNamespacedRoleBinding({ namespace, name: 'hab-pod-role' });
    // As while an operator re-applies the RBAC objects: the account's RoleBinding is gone, so every request
    // of the tool is refused (403) once the API server's authorizer has seen that.
    await example.admin.rbac.deleteNamespacedRoleBinding({ namespace, name: 'hab-pod-role' });
    try {
      await eventually(async () => {
        const probe = await example.kubectl('auth', 'can-i', 'get', 'pods', `--as=system:serviceaccount:${namespace}:hab-pod-role`).catch((error: { stdout?: string }) => error);
        return String(probe.stdout ?? '').trim() === 'no';
      }, { what: 'the account losing its Role', timeoutMs: 60_000, intervalMs: 500 });
      // The follower's pod replaced (a delete is not an update): the new one carries no role, so its run hook must write.
      const old = await example.running(follower);
      await example.admin.core.deleteNamespacedPod({ namespace, name: follower });
      await example.running(follower, { uid: old.metadata!.uid! });
      await example.listening(follower);
      expect((await example.elect(leader, 'finished', [follower], members))[follower]).toBe('started');
      // hab-pod-role run is refused and exits 77; the run hook is started again, and again.
      await eventually(async () => {
        const text = await example.output(follower);
        return (text.match(/exited with code exit status: 77/g) ?? []).length >= 2 && (text.match(/Stopping service, will restart immediately/g) ?? []).length >= 2;
      }, { what: `${follower}'s run hook ending and started again while refused`, timeoutMs: 60_000, intervalMs: 500 });
      expect(await example.output(follower)).toContain(`system:serviceaccount:${namespace}:hab-pod-role may not`);
      expect((await example.ready())[follower]).toBe(false);
      expect((await example.roles())[follower]).toBeNull();
    } finally {
      await example.admin.rbac.createNamespacedRoleBinding({ namespace, body: { metadata: { name: 'hab-pod-role', labels: binding.metadata?.labels }, roleRef: binding.roleRef, subjects: binding.subjects } });
    }
    // A later start finds the account bound again: the label is written, Redis runs, and the probe passes.
    await eventually(async () => (await example.roles())[follower] === 'follower' && (await example.ready())[follower], { what: `${follower} labelled and Ready`, timeoutMs: 90_000, intervalMs: 500 });
    await example.replicating(leader);
    await noWriteLost(follower);
    expect((await example.roles())[leader]).toBe('leader');
    recorder.assertComplete();
    expect(recorder.violations).toEqual([]);
  }, 240_000);
});
