// Notices change: the election file (rewritten in place or renamed over), and the pod or its group on the API server.

import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { groupMembers, type GroupSpec } from './group.ts';
import { brief, type KubeClient } from './kube.ts';
import type { Pod } from './pod.ts';
import type { PodIdentity } from './identity.ts';
import type { Logger } from './log.ts';
import { backoffDelay } from './retry.ts';

/**
 * Calls `onChange` once things settle after the file changes. The directory is watched, not the file:
 * a file renamed over the old one is a new inode that a watch on the old one would never see.
 */
export function watchFile(path: string, onChange: () => void, debounceMs: number): { close(): void } {
  const name = basename(path);
  let timer: NodeJS.Timeout | undefined;
  const watcher: FSWatcher = watch(dirname(path), { persistent: false }, (_event, filename) => {
    if (filename !== null && filename !== name) return;
    clearTimeout(timer);
    timer = setTimeout(onChange, debounceMs);
  });
  return {
    close() {
      clearTimeout(timer);
      watcher.close();
    },
  };
}

/**
 * Reports the pod as the API server sees it: once read, then on every change, for as long as it runs.
 * A dropped connection is re-established with backoff; an expired watch (410) starts from a fresh read,
 * and every fresh read is reported too, so a change missed while disconnected is still noticed.
 */
export function watchPod(client: KubeClient, identity: PodIdentity, onPod: (pod: Pod) => void, log: Logger, watchSeconds = 300): { stop(): void } {
  return follow(client, `pod ${identity.namespace}/${identity.name}`, log, async () => {
    const pod = await client.getPod(identity.namespace, identity.name);
    onPod(pod);
    return pod.metadata?.resourceVersion ?? '';
  }, (version, signal) => client.watchPods(identity.namespace, { name: identity.name }, version, onPod, { signal, watchSeconds }));
}

/**
 * Reports the members of this pod's group (see `groupMembers`) the same way: after a fresh list, then
 * after every change of any of them. Without a selector that is a watch of the namespace's pods, so it
 * is kept only while needed (by a member whose election says it leads).
 */
export function watchGroup(client: KubeClient, identity: PodIdentity, group: GroupSpec, onMembers: (members: Pod[]) => void, log: Logger, watchSeconds = 300): { stop(): void } {
  const pods = new Map<string, Pod>();
  const report = () => {
    const self = pods.get(identity.name) ?? { metadata: { name: identity.name, namespace: identity.namespace } };
    onMembers(groupMembers([...pods.values()], self, group));
  };
  const seen = (pod: Pod, type: string) => {
    if (type === 'DELETED') pods.delete(pod.metadata?.name ?? '');
    else pods.set(pod.metadata?.name ?? '', pod);
    report();
  };
  return follow(client, `the group of pod ${identity.namespace}/${identity.name}`, log, async () => {
    const list = await client.listPodsAt(identity.namespace, group.selector);
    pods.clear();
    for (const pod of list.items) pods.set(pod.metadata?.name ?? '', pod);
    report();
    return list.resourceVersion;
  }, (version, signal) => client.watchPods(identity.namespace, { labelSelector: group.selector }, version, seen, { signal, watchSeconds }));
}

/**
 * The loop both watches share: `read` reads afresh (and reports it), returning the version to watch from;
 * `stream` follows changes from a version until the stream ends, expires (then it reads again) or fails
 * (then it retries with backoff).
 */
function follow(
  client: KubeClient,
  what: string,
  log: Logger,
  read: () => Promise<string>,
  stream: (version: string, signal: AbortSignal) => Promise<{ resourceVersion: string; expired: boolean }>,
): { stop(): void } {
  const abort = new AbortController();
  const loop = async () => {
    for (let failures = 0; !abort.signal.aborted; ) {
      try {
        client.renewDeadline();
        let version = await read();
        for (;;) {
          const result = await stream(version, abort.signal);
          failures = 0;
          if (result.expired) break; // read afresh: the version we had is gone
          version = result.resourceVersion;
        }
      } catch (error) {
        if (abort.signal.aborted) return;
        const delay = backoffDelay(failures++, 500, 30_000, Math.random) + 100;
        log.warn(`Watching ${what} failed, retrying in ${delay} ms: ${(error as Error).message ?? brief(error)}`);
        await new Promise((resolve) => setTimeout(resolve, delay).unref());
      }
    }
  };
  void loop();
  return { stop: () => abort.abort() };
}
