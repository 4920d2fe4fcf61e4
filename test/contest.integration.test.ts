// Contested leadership, as a user meets it: two `run --watch` members of one group whose election files both say leader.

import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli, startCli, type RunningCli } from './support/cli.ts';
import { admin, createNamespace, podEnv } from './support/cluster.ts';
import { electionText, renameElection, tempDir, writeElection } from './support/election.ts';
import { eventually } from './support/eventually.ts';
import { LabelRecorder } from './support/recorder.ts';

/** How long both claims last: the issue measured 31 label moves in this time before the settling rule. */
const claimSeconds = Number(process.env.CONTEST_SECONDS ?? 40);

const running: RunningCli[] = [];
afterAll(async () => {
  for (const r of running.splice(0)) {
    r.signalGroup('SIGCONT');
    r.signalGroup('SIGTERM');
    await r.exited;
  }
});

describe('two residents claiming leadership at once', () => {
  it(`settle within a few label moves for ${claimSeconds} s, report the conflict, and hand back at once when the stale claim ends`, async () => {
    const namespace = await createNamespace('contest');
    const saDir = (await admin().serviceAccount(namespace)).dir;
    const owner = await admin().createOwner(namespace, 'redis');
    const dir = tempDir('contest');
    const members = ['redis-0', 'redis-1', 'redis-2'];
    const files = new Map(members.map((m) => [m, join(dir, `${m}.toml`)]));
    for (const m of members) await admin().createPod(namespace, m, { app: 'redis' }, owner);
    const recorder = new LabelRecorder(namespace);
    await recorder.start();
    const start = (m: string) => {
      const cli = startCli(['run', '-c', files.get(m)!, '--timeout', '10', '--', 'sleep', '100000'], podEnv(namespace, m, saDir));
      running.push(cli);
      return cli;
    };
    try {
      // redis-0 is the rightful leader; redis-2 follows.
      writeElection(files.get('redis-0')!, electionText('leader'));
      writeElection(files.get('redis-2')!, electionText('follower'));
      const rightful = start('redis-0');
      const follower = start('redis-2');
      await eventually(() => recorder.leaders().join() === 'redis-0', { what: 'the first leader' });
      const contestFrom = recorder.changes.length;

      // redis-1 restarts as an old leader does (habitat issue 7636): its Supervisor starts from the cache, saying leader.
      writeElection(files.get('redis-1')!, electionText('leader'));
      const stale = start('redis-1');
      await new Promise((resolve) => setTimeout(resolve, claimSeconds * 1000));

      const moves = recorder.moves(contestFrom);
      console.log(`contest: ${moves.length} label moves in ${claimSeconds} s of two claims (${moves.map((m) => m.pod).join(' -> ')}), ${recorder.violations.length} moments with two leaders`);
      expect(recorder.violations, 'two leaders on record').toEqual([]);
      expect(moves.length, 'label moves while both claim').toBeLessThanOrEqual(4);
      const holder = recorder.leaders()[0]!;
      expect([['redis-0'], ['redis-1']]).toContainEqual([holder]);
      const waiting = holder === 'redis-0' ? 'redis-1' : 'redis-0';
      const cli = { 'redis-0': rightful, 'redis-1': stale } as Record<string, RunningCli>;

      // Both report it: a warning in each log, an Event on each pod naming the other, and status says who claims.
      for (const [self, other] of [[holder, waiting], [waiting, holder]] as const) {
        await eventually(() => new RegExp(`warning: .*leadership is contested.*pod ${namespace}/${other}`).test(cli[self]!.stderr()), { what: `${self}'s warning naming ${other}` })
          .catch((e: Error) => { throw new Error(`${e.message}; stderr of ${self}: ${cli[self]!.stderr()}`); });
        const events = await admin().core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${self},reason=RoleContested` });
        expect(events.items.length, `RoleContested on ${self}`).toBeGreaterThan(0);
        expect(events.items.every((e) => e.type === 'Warning' && e.message!.includes(`pod ${namespace}/${other}`)), `RoleContested on ${self} names ${other}`).toBe(true);
      }
      expect(follower.stderr()).not.toContain('contested');
      const status = await runCli(['status', '-o', 'json'], podEnv(namespace, 'redis-2', saDir));
      expect(status.exitCode).toBe(1);
      expect(status.stderr).toContain(`the elections of 2 members say they lead (redis-0, redis-1): ${holder} carries role=leader`);
      expect((JSON.parse(status.stdout) as { pods: { name: string; claim: string | null }[] }).pods.map((p) => [p.name, p.claim])).toEqual(
        members.map((m) => [m, m === holder ? 'holds' : m === waiting ? 'waits' : null]),
      );

      // The claim of the member holding the label ends (its Supervisor catches up): the other gets the label
      // back from its own resident, without any hook running.
      const endFrom = recorder.changes.length;
      const ended = Date.now();
      renameElection(files.get(holder)!, electionText('follower'));
      await eventually(() => recorder.leaders().join() === waiting, { what: `${waiting} labelled again`, intervalMs: 5 })
        .catch((e: Error) => { recorder.assertComplete(); throw new Error(`${e.message}; stderr of ${waiting}: ${cli[waiting]!.stderr()}`); });
      const back = recorder.moves(endFrom);
      console.log(`contest: ${waiting} carried role=leader again ${back[0]!.at - ended} ms after ${holder}'s claim ended`);
      expect(back.map((m) => m.pod)).toEqual([waiting]);
      expect(recorder.violations).toEqual([]);
      const settled = await runCli(['status'], podEnv(namespace, 'redis-2', saDir));
      expect(settled.exitCode, settled.stderr).toBe(0);
      recorder.assertComplete();
    } finally {
      recorder.stop();
    }
  }, 120_000 + claimSeconds * 1000);
});
