// Section 2 of the benchmark: failover convergence of the Redis example's pods on the real node, elections through the gossip stand-in.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KubeConfig, Watch, type V1EndpointSlice } from '@kubernetes/client-node';
import type { ControlPlane } from '../tools/control-plane.ts';
import { eventually } from '../test/support/eventually.ts';
import { exampleIdent } from '../test/support/redis-image.ts';
import { members, RedisOnNode, type Member } from '../test/support/redis-node.ts';
import { monotonicMs } from '../test/support/supervisor.ts';
import { watchLeaders } from './leaders.ts';

/** One labelling style: the name it is reported under, and the image it runs in (undefined: the example as shipped). */
interface Style {
  name: string;
  variant?: { tag: string; edits: Record<string, (text: string) => string> };
}

const styles: Style[] = [
  { name: 'run --watch' },
  {
    name: 'apply from reconfigure',
    // The run hook's resident labels once at the start and then only runs Redis: the reconfigure hook's
    // `apply` is all that follows the election.
    variant: {
      tag: `${exampleIdent}:0.1.0-no-watch`,
      edits: {
        'hooks/run': (text) => {
          const edited = text.replace('exec hab-pod-role run \\', 'exec hab-pod-role run --no-watch \\');
          if (edited === text) throw new Error('the example\'s run hook no longer starts with `exec hab-pod-role run \\`; update bench/failover.ts');
          return edited;
        },
      },
    },
  },
  {
    name: 'run --watch, reconfigure doing nothing',
    // Not a way to run the example (Redis would keep its old replication role): it shows how much of the
    // run --watch figure is the three reconfigure hooks (redis-cli, a cold `apply`) sharing the CPU with
    // the residents at the moment they label. The health check, which would then find Redis in the wrong
    // role and make the pod unready, does nothing either.
    variant: {
      tag: `${exampleIdent}:0.1.0-idle-reconfigure`,
      edits: { 'hooks/reconfigure': () => '#!/bin/sh\nexit 0\n', 'hooks/health-check': () => '#!/bin/sh\nexit 0\n' },
    },
  },
];

export interface StyleResult {
  /** From the first rewrite of the old or new leader's election.toml to only the new leader carrying role=leader (ms). */
  labels: number[];
  /** From the same moment to the redis-leader EndpointSlice listing only the new leader as ready (ms). */
  endpoints: number[];
  /** How much later the later of the two Supervisors began its rewrite (ms): part of `labels` no member's tool can act in. */
  rewriteGap: number[];
  /** From the new leader's own rewrite, the moment its resident can first act, to the labels saying so (ms). */
  fromNewLeaderFile: number[];
  /** Of the promotions, how many the reconfigure hook's `apply` found already labelled (the resident was first). */
  foundLabelled: number;
  promotions: number;
  /** How often the EndpointSlice controller put redis-leader back in its queue (1 s backoff) because its cache lagged its own write. */
  staleRequeues: number;
}

/**
 * The EndpointSlice controller's log lines saying it retried redis-leader because its informer had not yet
 * seen the slice it wrote last (pkg/controller/endpointslice: a stale cache is an error, retried after its
 * 1 s backoff). Two label changes close together, as in a failover, can meet that.
 */
function staleRequeues(plane: ControlPlane, namespace: string): number {
  const log = readFileSync(join(plane.dir, 'kube-controller-manager.log'), 'utf8');
  return log.split('\n').filter((l) => l.includes(`key="${namespace}/redis-leader"`) && l.includes('EndpointSlice informer cache is out of date')).length;
}

/** Watches the pods' leader labels and the redis-leader EndpointSlice; resolves a wanted state with the moment it was seen. */
async function observe(plane: ControlPlane, namespace: string) {
  const leaders = await watchLeaders(plane.kubeconfig, namespace, monotonicMs);
  const kc = new KubeConfig();
  kc.loadFromFile(plane.kubeconfig);
  const ready = new Map<string, string[]>();
  let endpoints = '';
  const waiters: { want: string; resolve: (at: number) => void }[] = [];
  const slices = await new Watch(kc).watch(`/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices`, { labelSelector: 'kubernetes.io/service-name=redis-leader' }, (type: string, slice: V1EndpointSlice) => {
    if (type === 'DELETED') ready.delete(slice.metadata!.name!);
    else ready.set(slice.metadata!.name!, (slice.endpoints ?? []).filter((e) => e.conditions?.ready).map((e) => e.targetRef?.name ?? e.addresses[0]!));
    endpoints = [...ready.values()].flat().sort().join();
    const at = monotonicMs();
    for (const w of waiters.splice(0)) if (w.want === endpoints) w.resolve(at); else waiters.push(w);
  }, () => undefined);
  const until = (key: 'labels' | 'endpoints', want: string): Promise<number> =>
    key === 'labels' ? leaders.until(want) : new Promise((resolve) => (endpoints === want ? resolve(monotonicMs()) : waiters.push({ want, resolve })));
  return { until, stop: () => { leaders.stop(); slices.abort(); } };
}

/** Each style in turn: the example started for the first and redeployed with each next one's image, stopped at the end. */
export async function measureFailovers(plane: ControlPlane, failovers: number): Promise<Record<string, StyleResult>> {
  const results: Record<string, StyleResult> = {};
  let example: RedisOnNode | undefined;
  try {
    for (const style of styles) {
      if (example) await example.redeploy(style.variant);
      else example = await RedisOnNode.start(plane, plane.node!, style.variant);
      results[style.name] = await measureStyle(plane, example, style, failovers);
    }
    return results;
  } finally {
    await example?.stop();
  }
}

/** `failovers` leader changes among the example's three pods, as deployed for `style`. */
async function measureStyle(plane: ControlPlane, example: RedisOnNode, style: Style, failovers: number): Promise<StyleResult> {
  const watches = await observe(plane, example.namespace);
  try {
    let leader: Member = 'redis-0';
    await example.elect(leader);
    await eventually(async () => Object.values(await example.ready()).every(Boolean), { what: 'the three pods Ready by their probe', timeoutMs: 90_000, intervalMs: 200 }).catch(async (error: Error) => {
      const outputs = await Promise.all(members.map(async (m) => `--- ${m}\n${(await example.state(m).catch(() => ({ output: ['(no answer)'] }))).output.slice(-20).join('\n')}`));
      throw new Error(`${style.name}: ${error.message} (${JSON.stringify(await example.ready())})\n${outputs.join('\n')}`, { cause: error });
    });
    await watches.until('labels', leader);
    await watches.until('endpoints', leader);
    const result: StyleResult = { labels: [], endpoints: [], rewriteGap: [], fromNewLeaderFile: [], foundLabelled: 0, promotions: failovers, staleRequeues: 0 };
    const requeuedBefore = staleRequeues(plane, example.namespace);
    for (let i = 0; i < failovers; i++) {
      const next: Member = members[(members.indexOf(leader) + 1) % members.length]!;
      const posted = monotonicMs();
      const labelled = watches.until('labels', next);
      const routed = watches.until('endpoints', next);
      // The gossip stand-in's census: the next member won, everyone alive. Each Supervisor re-renders and
      // runs reconfigure; the answer says when it began rewriting election.toml.
      const ticks = await example.census(next);
      const rewrites = [leader, next].map((m) => ticks[m]?.rewritten['config/election.toml']);
      if (rewrites.some((t) => t === undefined)) throw new Error(`failover ${i + 1}: ${leader}'s or ${next}'s Supervisor did not rewrite election.toml (${JSON.stringify(ticks)})`);
      const started = Math.min(...(rewrites as number[]));
      // The stand-ins' clock is this machine's monotonic clock: a rewrite before the census was sent means it is not.
      if (started < posted) throw new Error(`failover ${i + 1}: a Supervisor reports a rewrite ${(posted - started).toFixed(1)} ms before the census was sent; its clock is not this machine's monotonic clock`);
      const [labelsAt, endpointsAt] = await Promise.all([labelled, routed]);
      result.labels.push(labelsAt - started);
      result.endpoints.push(endpointsAt - started);
      result.rewriteGap.push(Math.max(...(rewrites as number[])) - started);
      result.fromNewLeaderFile.push(labelsAt - rewrites[1]!);
      leader = next;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    result.staleRequeues = staleRequeues(plane, example.namespace) - requeuedBefore;
    // Who wrote the new leader's label: the reconfigure hook's apply says "already" when the resident had.
    for (const m of members) {
      const lines = (await example.state(m)).output.filter((l) => l.includes('hook[reconfigure]'));
      result.foundLabelled += lines.filter((l) => l.includes(': already role=leader')).length;
    }
    return result;
  } finally {
    watches.stop();
  }
}

/** The node's parts as this machine has them, for the record. */
export function nodeVersions(): string {
  const first = (command: string, args: string[]) => execFileSync(command, args, { encoding: 'utf8' }).split('\n')[0]!.trim();
  return [
    `containerd ${/ v?(\d[\w.~+-]*)/.exec(first('containerd', ['--version']))?.[1] ?? '?'}`,
    `runc ${/version (\S+)/.exec(first('runc', ['--version']))?.[1] ?? '?'}`,
    `redis-server ${/v=(\S+)/.exec(first('redis-server', ['--version']))?.[1] ?? '?'}`,
  ].join(', ');
}
