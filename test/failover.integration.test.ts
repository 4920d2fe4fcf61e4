// Failover simulation: many random leadership changes on a real API server, every label change on record.

import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { V1PodSpec } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Owner } from '../tools/kube-admin.ts';
import { runCli, startCli, type RunningCli } from './support/cli.ts';
import { admin, createNamespace, podEnv } from './support/cluster.ts';
import { electionText, renameElection, tempDir, writeElection, type State } from './support/election.ts';
import { eventually } from './support/eventually.ts';
import { seeded as random } from './support/random.ts';
import { importToolImage, realNode, toolImage } from './support/real-node.ts';
import { LabelRecorder } from './support/recorder.ts';

const { node, unavailable } = realNode();

const transitions = 50;
const seed = Number(process.env.FAILOVER_SEED ?? Date.now() % 1_000_000);

interface Group {
  namespace: string;
  saDir: string;
  members: string[];
  files: Map<string, string>;
  dir: string;
}

/** The group's pods are API objects only, or with `spec` real pods on the node (the spec made for each member's directory). */
async function createGroup(prefix: string, size: number, spec?: (memberDir: string) => V1PodSpec): Promise<Group> {
  const namespace = await createNamespace(prefix);
  const saDir = (await admin().serviceAccount(namespace)).dir;
  const owner: Owner = await admin().createOwner(namespace, 'redis');
  const dir = tempDir(prefix);
  const members = Array.from({ length: size }, (_, i) => `redis-${i}`);
  const files = new Map<string, string>();
  for (const m of members) {
    mkdirSync(join(dir, m));
    await admin().createPod(namespace, m, { app: 'redis' }, owner, spec?.(join(dir, m)));
    files.set(m, join(dir, `${m}.toml`));
  }
  return { namespace, saDir, members, files, dir };
}

/**
 * A member's pod on the real node, Ready while the file `ready` in its directory (a hostPath) exists: the
 * kubelet's readiness probe asks busybox httpd for it every second, and one failed probe marks it unready.
 */
function probedPod(memberDir: string): V1PodSpec {
  writeFileSync(join(memberDir, 'ready'), 'ok\n');
  return {
    // httpd as PID 1 has no TERM handler: nothing to wait for when the namespace goes.
    terminationGracePeriodSeconds: 1,
    containers: [{
      name: 'main',
      image: toolImage,
      imagePullPolicy: 'Never',
      command: ['/usr/sbin/httpd', '-f', '-p', '8080', '-h', '/probe'],
      readinessProbe: { httpGet: { path: '/ready', port: 8080 }, periodSeconds: 1, failureThreshold: 1 },
      volumeMounts: [{ name: 'probe', mountPath: '/probe' }],
    }],
    volumes: [{ name: 'probe', hostPath: { path: memberDir, type: 'Directory' } }],
  };
}

/** Until the kubelet has reported `pod` Ready (or not), as its probe found. */
async function readiness(g: Group, pod: string, ready: boolean, what: string): Promise<void> {
  const read = () => admin().core.readNamespacedPod({ namespace: g.namespace, name: pod });
  await eventually(async () => (await read()).status?.conditions?.some((c) => c.type === 'Ready' && c.status === (ready ? 'True' : 'False')) ?? false, { timeoutMs: 30_000, intervalMs: 50, what })
    .catch(async (error: Error) => {
      const { status, spec } = await read();
      throw new Error(`${error.message}: on node ${spec?.nodeName ?? '(none)'}, ${JSON.stringify({ phase: status?.phase, conditions: status?.conditions, containers: status?.containerStatuses })}`, { cause: error });
    });
}

/** Waits until exactly `leader` carries the leader value and every member in `followers` the follower value. */
async function converged(g: Group, recorder: LabelRecorder, leader: string, followers: string[], what: string) {
  await eventually(async () => {
    const pods = await admin().core.listNamespacedPod({ namespace: g.namespace });
    const roles = new Map(pods.items.map((p) => [p.metadata!.name!, p.metadata?.labels?.role ?? null]));
    return roles.get(leader) === 'leader' && followers.every((f) => roles.get(f) === 'follower') && recorder.leaders().join() === leader;
  }, { timeoutMs: 30_000, intervalMs: 25, what });
  // The transition is complete: exactly one member of the group leads.
  expect(recorder.leaders()).toEqual([leader]);
}

/** `run --watch` for every member, redis-0 elected, and a recorder of the group's pods. */
async function startResidents(g: Group, wrappers: Map<string, RunningCli>): Promise<LabelRecorder> {
  for (const m of g.members) writeElection(g.files.get(m)!, electionText(m === 'redis-0' ? 'leader' : 'follower'));
  for (const m of g.members) {
    wrappers.set(m, startCli(['run', '-c', g.files.get(m)!, '--timeout', '10', '--', 'sleep', '100000'], podEnv(g.namespace, m, g.saDir)));
  }
  const recorder = new LabelRecorder(g.namespace);
  await recorder.start();
  return recorder;
}

async function stopResidents(recorder: LabelRecorder | undefined, wrappers: Map<string, RunningCli>): Promise<void> {
  recorder?.stop();
  for (const w of wrappers.values()) {
    w.signalGroup('SIGCONT');
    w.signalGroup('SIGTERM');
    await w.exited;
  }
}

describe(`failover simulation (seed ${seed})`, () => {
  describe('members running `run --watch`', () => {
    let g: Group;
    let recorder: LabelRecorder;
    const wrappers = new Map<string, RunningCli>();

    beforeAll(async () => {
      g = await createGroup('failover-run', 4);
      recorder = await startResidents(g, wrappers);
    });

    afterAll(() => stopResidents(recorder, wrappers));

    it(`${transitions} random transitions: partitions, late and duplicated files, elections in progress`, async () => {
      const rng = random(seed);
      let leader = 'redis-0';
      await converged(g, recorder, leader, g.members.filter((m) => m !== leader), 'the first election');
      const kinds = { plain: 0, partition: 0, late: 0, running: 0 };
      const write = (m: string, state: State) => renameElection(g.files.get(m)!, electionText(state));

      for (let t = 1; t <= transitions; t++) {
        const next = rng.pick(g.members.filter((m) => m !== leader));
        const others = g.members.filter((m) => m !== next);
        const kind = rng.pick(['plain', 'partition', 'late', 'running'] as const);
        kinds[kind]++;
        const context = `transition ${t} (${kind}): ${leader} -> ${next}`;

        if (kind === 'partition') {
          // The old leader is cut off: its Supervisor renders nothing new and its wrapper cannot act.
          const old = wrappers.get(leader)!;
          old.signal('SIGSTOP');
          for (const m of others.filter((m) => m !== leader)) write(m, 'follower');
          write(next, 'leader');
          await eventually(async () => recorder.leaders().join() === next, { timeoutMs: 30_000, what: `${context}: promotion` });
          // Lost as soon as the new leader has run: it cannot clean its own label, the new leader did.
          expect((await admin().podLabels(g.namespace, leader)).role).toBeUndefined();
          // It rejoins: gossip tells it the result, and it runs again.
          write(leader, 'follower');
          old.signal('SIGCONT');
        } else if (kind === 'late') {
          for (const m of others) write(m, 'follower');
          write(next, 'leader');
          // The old leader's Supervisor still believes it leads, briefly, then learns the result.
          write(leader, 'leader');
          await new Promise((resolve) => setTimeout(resolve, rng.next() * 150));
          write(leader, 'follower');
        } else if (kind === 'running') {
          for (const m of g.members) write(m, 'running');
          await new Promise((resolve) => setTimeout(resolve, rng.next() * 100));
          for (const m of others) write(m, 'follower');
          write(next, 'leader');
        } else {
          await Promise.all(g.members.map(async (m) => write(m, m === next ? 'leader' : 'follower')));
          const again = rng.pick(g.members);
          write(again, again === next ? 'leader' : 'follower'); // a duplicated update
        }
        leader = next;
        await converged(g, recorder, leader, others, context);
      }

      recorder.assertComplete();
      expect(recorder.violations, `two leaders on record, seed ${seed}`).toEqual([]);
      expect(Object.values(kinds).every((n) => n > 0), `every kind of transition happened: ${JSON.stringify(kinds)}`).toBe(true);
      console.log(`run --watch simulation, seed ${seed}: ${transitions} transitions ${JSON.stringify(kinds)}, ${recorder.changes.length} pod changes recorded, no moment with two leaders`);
    }, 600_000);
  });

  // The members' pods run on the real node, so that a partitioned holder's pod can be reported unready by
  // the kubelet itself (the node lifecycle controller marks the pods of a node it cannot reach Ready=False;
  // here the pod's own readiness probe starts failing). The members' wrappers run beside the test.
  describe.skipIf(!node)(`contested leadership: members running \`run --watch\`, several of whose elections say they lead${node ? '' : ` (skipped: ${unavailable})`}`, () => {
    let g: Group;
    let recorder: LabelRecorder;
    const wrappers = new Map<string, RunningCli>();

    beforeAll(async () => {
      importToolImage(node!, tempDir('failover-image'));
      g = await createGroup('failover-contest', 4, probedPod);
      for (const m of g.members) await readiness(g, m, true, `${m} Ready by its probe`);
      recorder = await startResidents(g, wrappers);
    }, 120_000);

    afterAll(() => stopResidents(recorder, wrappers));

    const phases = ['two, stale claim ends first', 'two, rightful claim ends first', 'three, random order', 'holder partitioned', 'waiting claimant partitioned'] as const;
    const rounds = 2;
    it(`${phases.length * rounds} contested phases: two and three claimants, claims ending in either order, a claimant partitioned`, async () => {
      const rng = random(seed + 2);
      const write = (m: string, state: State) => renameElection(g.files.get(m)!, electionText(state));
      // Long enough for every member to act on what it saw several times over: the label must not move meanwhile.
      const hold = () => new Promise((resolve) => setTimeout(resolve, 1500 + rng.next() * 1000));
      const holdsAlone = (m: string, what: string) => eventually(async () => recorder.leaders().join() === m, { timeoutMs: 30_000, intervalMs: 10, what });
      let leader = 'redis-0';
      await converged(g, recorder, leader, g.members.filter((m) => m !== leader), 'the first election');
      const counts: string[] = [];

      for (let round = 1; round <= rounds; round++) {
        for (const phase of phases) try {
          const from = recorder.changes.length;
          const context = `round ${round}, ${phase}`;
          const others = g.members.filter((m) => m !== leader);
          const stale = rng.pick(others);
          // Each claim moves the label at most once, and so does the end of the claim holding it.
          let bound = 0;
          let next = leader;

          if (phase === 'two, stale claim ends first' || phase === 'two, rightful claim ends first') {
            write(stale, 'leader');
            await holdsAlone(stale, `${context}: the newest claim taking the label`);
            await hold();
            expect(recorder.moves(from).map((m) => m.pod), `${context}: moves while both claim`).toEqual([stale]);
            const ending = phase === 'two, stale claim ends first' ? stale : leader;
            write(ending, 'follower');
            next = ending === stale ? leader : stale;
            bound = 2;
          } else if (phase === 'three, random order') {
            const second = rng.pick(others.filter((m) => m !== stale));
            write(stale, 'leader');
            await holdsAlone(stale, `${context}: the second claim taking the label`);
            write(second, 'leader');
            await holdsAlone(second, `${context}: the third claim taking the label`);
            await hold();
            expect(recorder.moves(from).map((m) => m.pod), `${context}: moves while three claim`).toEqual([stale, second]);
            const order = [leader, stale, second].sort(() => rng.next() - 0.5);
            for (const ending of order.slice(0, 2)) {
              write(ending, 'follower');
              await hold();
            }
            next = order[2]!;
            bound = 2 + 2;
          } else if (phase === 'holder partitioned') {
            write(stale, 'leader');
            await holdsAlone(stale, `${context}: the newest claim taking the label`);
            await hold();
            // The stale holder is cut off: its wrapper cannot act, and its pod is reported unready.
            wrappers.get(stale)!.signal('SIGSTOP');
            rmSync(join(g.dir, stale, 'ready'));
            await readiness(g, stale, false, `${context}: the kubelet reporting ${stale} unready`);
            await holdsAlone(leader, `${context}: the waiting claimant taking the label from an unready holder`);
            await hold();
            // It rejoins and learns the election result.
            write(stale, 'follower');
            writeFileSync(join(g.dir, stale, 'ready'), 'ok\n');
            await readiness(g, stale, true, `${context}: the kubelet reporting ${stale} Ready again`);
            wrappers.get(stale)!.signal('SIGCONT');
            bound = 2;
          } else {
            write(stale, 'leader');
            await holdsAlone(stale, `${context}: the newest claim taking the label`);
            await hold();
            // The waiting claimant is cut off, and the holder's claim ends meanwhile: no leader until it is back.
            wrappers.get(leader)!.signal('SIGSTOP');
            write(stale, 'follower');
            await eventually(async () => recorder.leaders().length === 0, { timeoutMs: 30_000, what: `${context}: the stale holder stepping down` });
            await hold();
            expect(recorder.leaders(), `${context}: nobody takes the label of a claimant that is cut off`).toEqual([]);
            wrappers.get(leader)!.signal('SIGCONT');
            bound = 2;
          }
          leader = next;
          await converged(g, recorder, leader, g.members.filter((m) => m !== leader), context);
          const moves = recorder.moves(from);
          counts.push(`${phase}: ${moves.length}`);
          expect(moves.length, `${context}: label moves (${moves.map((m) => m.pod).join(' -> ')})`).toBeLessThanOrEqual(bound);
          expect(recorder.violations, `${context}: two leaders on record, seed ${seed + 2}`).toEqual([]);
        } catch (error) {
          const logs = [...wrappers].map(([m, w]) => `--- ${m}\n${w.stderr().split('\n').slice(-25).join('\n')}`).join('\n');
          throw new Error(`${(error as Error).message}\n${logs}`, { cause: error });
        }
      }
      recorder.assertComplete();
      console.log(`contested phases, seed ${seed + 2}: label moves per phase ${JSON.stringify(counts)}, ${recorder.moves().length} in all, ${recorder.changes.length} pod changes recorded, no moment with two leaders`);
    }, 600_000);
  });

  describe('members calling `apply` from their hooks', () => {
    it(`${transitions} random transitions with concurrent, duplicated and partitioned hook runs`, async () => {
      const g = await createGroup('failover-apply', 4);
      const recorder = new LabelRecorder(g.namespace);
      await recorder.start();
      const rng = random(seed + 1);
      const hook = (m: string, state: State) => {
        // Rendered once: a duplicated run reads the file its first run reads. Writing it again in place
        // would truncate it under a run that has already started reading, which no Supervisor does for one
        // render (a fast start reaches the read while the other hooks are still being spawned).
        const path = `${g.files.get(m)!}.${state}`;
        const file = existsSync(path) ? path : writeElection(path, electionText(state));
        return runCli(['apply', '-c', file, '--timeout', '20'], podEnv(g.namespace, m, g.saDir));
      };
      let leader: string | undefined;
      let duplicated = 0;
      let partitioned = 0;
      try {
        for (let t = 1; t <= transitions; t++) {
          const next = rng.pick(g.members.filter((m) => m !== leader));
          // A partitioned old leader never runs its hook: only the new leader's run can take its label.
          const cutOff = leader !== undefined && rng.next() < 0.4 ? leader : undefined;
          if (cutOff) partitioned++;
          const runs = g.members.filter((m) => m !== cutOff).map((m) => hook(m, m === next ? 'leader' : 'follower'));
          if (rng.next() < 0.5) {
            const twice = rng.pick(g.members.filter((m) => m !== cutOff));
            runs.push(hook(twice, twice === next ? 'leader' : 'follower'));
            duplicated++;
          }
          const results = await Promise.all(runs);
          for (const r of results) expect(r.exitCode, r.stderr).toBe(0);
          // Complete: every hook has run. Exactly the new leader leads, as the API server says now (the
          // recorder's watch can trail the hooks' exits by a moment on a busy machine: it must catch up).
          const pods = await admin().core.listNamespacedPod({ namespace: g.namespace });
          expect(pods.items.filter((p) => p.metadata?.labels?.role === 'leader').map((p) => p.metadata!.name), `transition ${t}: -> ${next}`).toEqual([next]);
          await eventually(() => recorder.leaders().join() === next, { what: `transition ${t}: the record catching up` });
          leader = next;
        }
        recorder.assertComplete();
        expect(recorder.violations, `two leaders on record, seed ${seed + 1}`).toEqual([]);
        expect(partitioned).toBeGreaterThan(0);
        expect(duplicated).toBeGreaterThan(0);
        console.log(`apply simulation, seed ${seed + 1}: ${transitions} transitions, ${partitioned} with a partitioned old leader, ${duplicated} with a duplicated hook run, ${recorder.changes.length} pod changes recorded, no moment with two leaders`);
      } finally {
        recorder.stop();
      }
    }, 600_000);
  });
});
