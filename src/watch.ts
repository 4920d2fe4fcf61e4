// Notices change: the election file (rewritten in place or renamed over), and the pod or its group through API watches.

import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { groupMembers, type GroupSpec } from './group.ts';
import { failureMessage } from './api-errors.ts';
import type { KubeClient } from './kube.ts';
import type { Pod } from './pod.ts';
import type { PodIdentity } from './identity.ts';
import type { Logger } from './log.ts';
import { backoffDelay } from './retry.ts';

/**
 * Calls `onChange(false)` as soon as the file may have changed (once for the events of one turn of the event
 * loop), and `onChange(true)` once no change has come for `quietMs`. A file rewritten in place is empty for a
 * moment (and a long one cut short): a reader takes a file it cannot read for a broken one only when the
 * writes have settled. The directory is watched, not the file: a file renamed over the old one is a new
 * inode that a watch on the old one would never see.
 */
export function watchFile(path: string, onChange: (settled: boolean) => void, quietMs: number): { close(): void } {
  const name = basename(path);
  let quiet: NodeJS.Timeout | undefined;
  let pending = false;
  let closed = false;
  const watcher: FSWatcher = watch(dirname(path), { persistent: false }, (_event, filename) => {
    if (filename !== null && filename !== name) return;
    clearTimeout(quiet);
    quiet = setTimeout(() => onChange(true), quietMs);
    if (pending) return;
    pending = true;
    setImmediate(() => {
      pending = false;
      if (!closed) onChange(false);
    });
  });
  return {
    close() {
      closed = true;
      clearTimeout(quiet);
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
  return follow(`pod ${identity.namespace}/${identity.name}`, log, async () => {
    const pod = await client.getPod(identity.namespace, identity.name, client.deadline());
    onPod(pod);
    return pod.metadata?.resourceVersion ?? '';
  }, async (version, signal) => readWatch(await client.openWatch(identity.namespace, { name: identity.name }, version, { signal, watchSeconds }), version, onPod));
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
  return follow(`the group of pod ${identity.namespace}/${identity.name}`, log, async () => {
    const list = await client.listPodsAt(identity.namespace, group.selector, client.deadline());
    pods.clear();
    for (const pod of list.items) pods.set(pod.metadata?.name ?? '', pod);
    report();
    return list.resourceVersion;
  }, async (version, signal) => readWatch(await client.openWatch(identity.namespace, { labelSelector: group.selector }, version, { signal, watchSeconds }), version, seen));
}

/**
 * The loop both watches share: `read` reads afresh (and reports it), returning the version to watch from;
 * `stream` follows changes from a version until the stream ends, expires (then it reads again) or fails
 * (then it retries with backoff).
 */
function follow(
  what: string,
  log: Logger,
  read: () => Promise<string>,
  stream: (version: string, signal: AbortSignal) => Promise<{ resourceVersion: string; expired: boolean }>,
): { stop(): void } {
  const abort = new AbortController();
  const loop = async () => {
    for (let failures = 0; !abort.signal.aborted; ) {
      try {
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
        log.warn(`Watching ${what} failed, retrying in ${delay} ms: ${failureMessage(error)}`);
        await new Promise((resolve) => setTimeout(resolve, delay).unref());
      }
    }
  };
  void loop();
  return { stop: () => abort.abort() };
}

/** A watch event as the API server streams it: a change of an object, a bookmark, or an ERROR carrying a Status. */
interface WatchEvent {
  type: string;
  object: Pod & { code?: number; message?: string };
}

/**
 * Reads a watch's events (one JSON object a line, split anywhere across chunks) and reports each change of
 * a pod. Resolves when the server ends the stream, with the last version seen, and `expired` when the
 * server no longer has that version (410): the caller then reads afresh. Bookmarks only move the version.
 */
export function readWatch(
  events: NodeJS.ReadableStream,
  resourceVersion: string,
  onChange: (pod: Pod, type: 'ADDED' | 'MODIFIED' | 'DELETED') => void,
): Promise<{ resourceVersion: string; expired: boolean }> {
  return new Promise((resolve, reject) => {
    let version = resourceVersion;
    let buffered = '';
    let settled = false;
    const settle = (outcome: { resourceVersion: string; expired: boolean } | Error) => {
      if (settled) return;
      settled = true;
      if (outcome instanceof Error) reject(outcome);
      else resolve(outcome);
    };
    events.on('data', (chunk: string | Buffer) => {
      buffered += String(chunk);
      for (let newline = buffered.indexOf('\n'); newline !== -1 && !settled; newline = buffered.indexOf('\n')) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        if (line.trim() === '') continue;
        let event: WatchEvent;
        try {
          event = JSON.parse(line) as WatchEvent;
        } catch {
          settle(new Error(`the API server sent a watch event that is not JSON: ${line.slice(0, 80)}`));
          destroy(events);
          return;
        }
        if (event.type === 'ERROR') {
          destroy(events);
          settle(event.object.code === 410 ? { resourceVersion: version, expired: true } : new Error(`the API server ended the watch: ${event.object.message ?? 'watch error'} (${event.object.code ?? 'no code'})`));
          return;
        }
        version = event.object.metadata?.resourceVersion ?? version;
        if (event.type === 'MODIFIED' || event.type === 'ADDED' || event.type === 'DELETED') onChange(event.object, event.type);
      }
    });
    events.on('end', () => settle({ resourceVersion: version, expired: false }));
    events.on('error', (error: Error) => settle(error));
    // Closed without an end: the connection dropped (or the watch was stopped).
    events.on('close', () => settle(new Error('the watch connection closed before the API server ended it')));
  });
}

function destroy(stream: NodeJS.ReadableStream): void {
  (stream as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
}
