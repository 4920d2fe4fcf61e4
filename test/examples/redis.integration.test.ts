// examples/redis end to end: real manifests, real hooks, real redis-server, the real tool; Habitat and the kubelet stood in for.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../support/eventually.ts';
import { recordOutput } from '../support/cli.ts';
import { controlPlane } from '../support/cluster.ts';
import { RedisExample } from '../support/redis-example.ts';

const isRoot = process.getuid?.() === 0;

// Network namespaces need root; skipped (and reported skipped) otherwise.
describe.runIf(isRoot)('the Redis example: a Service that follows the elected leader', () => {
  let example: RedisExample;
  const keys = Array.from({ length: 200 }, (_, i) => `key-${i}`);

  beforeAll(async () => {
    example = await RedisExample.start(controlPlane(), 'redis', 0);
  }, 120_000);

  afterAll(async () => {
    await example?.stop();
    if (example) recordOutput(...[...example.members.values()].flatMap((m) => m.output));
  });

  it('after the first election, redis-leader lists exactly the leader and writes reach the followers', async () => {
    expect(await example.elect('redis-0')).toEqual({ 'redis-0': 'started', 'redis-1': 'started', 'redis-2': 'started' });
    await eventually(async () => Object.values(await example.probe()).every(Boolean), { what: 'all three Redis answering', timeoutMs: 30_000 });
    await eventually(async () => (await example.kubelet.readyEndpoints('redis-leader')).map((e) => e.pod).join() === 'redis-0', { what: 'redis-leader listing redis-0' });
    expect(await example.kubelet.readyEndpoints('redis-leader')).toEqual([{ ip: example.network.ips.get('redis-0'), pod: 'redis-0' }]);
    await eventually(async () => (await example.kubelet.readyEndpoints('redis-follower')).map((e) => e.pod).join() === 'redis-1,redis-2', { what: 'redis-follower listing the others' });
    expect(await example.roles()).toEqual({ 'redis-0': 'leader', 'redis-1': 'follower', 'redis-2': 'follower' });

    await example.replicating('redis-0');
    // Writes through the leader Service, each acknowledged by both replicas (WAIT) before it counts.
    for (const key of keys) expect(await example.redisVia('redis-leader', 'set', key, `v-${key}`)).toBe('OK');
    await eventually(async () => (await example.redisVia('redis-leader', 'wait', '2', '1000')) === '2', { what: 'both replicas acknowledging' });
    for (const m of ['redis-1', 'redis-2'] as const) {
      expect(await example.redis(m, 'role')).toMatch(/^slave\n198\.18\.0\.10\n6379/);
      expect(await example.redis(m, 'get', keys.at(-1)!)).toBe(`v-${keys.at(-1)}`);
    }
    expect(await example.redisVia('redis-follower', 'dbsize')).toBe(String(keys.length));
  });

  it('on failover, the Service switches to the new leader, replication follows, the old label is gone, no acknowledged write is lost', async () => {
    // The leader fails: its Supervisor and Redis stop. Its pod cannot clean its own label.
    expect(await example.fail('redis-0')).toBe(0);
    await example.probe();
    expect((await example.roles())['redis-0']).toBe('leader');

    // The survivors hold an election, then learn its result; the Supervisor re-renders and runs reconfigure.
    expect(await example.elect(undefined, 'running')).toEqual({ 'redis-1': 'reconfigured', 'redis-2': 'reconfigured' });
    expect(await example.elect('redis-1')).toEqual({ 'redis-1': 'reconfigured', 'redis-2': 'reconfigured' });

    await eventually(async () => (await example.kubelet.readyEndpoints('redis-leader')).map((e) => e.pod).join() === 'redis-1', { what: 'redis-leader switching to redis-1' });
    expect(await example.roles()).toEqual({ 'redis-0': null, 'redis-1': 'leader', 'redis-2': 'follower' });
    expect(await example.kubelet.readyEndpoints('redis-follower')).toEqual([{ ip: example.network.ips.get('redis-2'), pod: 'redis-2' }]);

    // Redis was switched without a restart: the new leader is a master, the follower replicates it.
    expect(await example.redis('redis-1', 'role')).toMatch(/^master/);
    await example.replicating('redis-1');
    for (const key of keys) expect(await example.redisVia('redis-leader', 'get', key)).toBe(`v-${key}`);
    expect(await example.redisVia('redis-leader', 'set', 'after-failover', 'yes')).toBe('OK');
    await eventually(async () => (await example.redis('redis-2', 'get', 'after-failover')) === 'yes', { what: 'the new write reaching redis-2' });

    // The record shows who did what.
    const events = await example.admin.core.listNamespacedEvent({ namespace: example.namespace, fieldSelector: 'involvedObject.name=redis-0' });
    expect(events.items.map((e) => e.reason)).toContain('RoleDemoted');
    const output = example.members.get('redis-1')!.output.join('\n');
    expect(output).toContain('demoted stale leader redis-0');
  });
});
