// Noticing change without a cluster: watch events decoded from a stream, and the election file's directory watch.

import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Pod } from '../src/pod.ts';
import { readWatch, watchFile } from '../src/watch.ts';
import { tempDir } from './support/election.ts';
import { eventually } from './support/eventually.ts';

const pod = (name: string, resourceVersion: string, role?: string): Pod => ({ metadata: { name, resourceVersion, labels: role ? { role } : {} } });
const line = (type: string, object: unknown) => `${JSON.stringify({ type, object })}\n`;

describe('readWatch', () => {
  it('reports each change, with lines split anywhere across chunks, and ends with the last version', async () => {
    const events = new PassThrough();
    const seen: string[] = [];
    const done = readWatch(events, '10', (p, type) => seen.push(`${type} ${p.metadata?.name} ${p.metadata?.labels?.role ?? '-'}`));
    const text = line('ADDED', pod('redis-0', '11', 'leader')) + '\n' + line('MODIFIED', pod('redis-0', '12')) + line('DELETED', pod('redis-1', '13'));
    for (let i = 0; i < text.length; i += 7) events.write(text.slice(i, i + 7));
    events.end();
    expect(await done).toEqual({ resourceVersion: '13', expired: false });
    expect(seen).toEqual(['ADDED redis-0 leader', 'MODIFIED redis-0 -', 'DELETED redis-1 -']);
  });

  it('takes a bookmark as a version only', async () => {
    const events = new PassThrough();
    const seen: string[] = [];
    const done = readWatch(events, '10', (p) => seen.push(p.metadata?.name ?? ''));
    events.end(line('BOOKMARK', { metadata: { resourceVersion: '42' } }));
    expect(await done).toEqual({ resourceVersion: '42', expired: false });
    expect(seen).toEqual([]);
  });

  it('says a version the server no longer has (410) is expired, so the caller reads afresh', async () => {
    const events = new PassThrough();
    const done = readWatch(events, '10', () => undefined);
    events.write(line('MODIFIED', pod('redis-0', '11')));
    events.write(line('ERROR', { kind: 'Status', code: 410, message: 'too old resource version: 10 (11)' }));
    expect(await done).toEqual({ resourceVersion: '11', expired: true });
  });

  it('fails on another ERROR, on a line that is not JSON, and when the connection closes early', async () => {
    const error = new PassThrough();
    const failed = readWatch(error, '1', () => undefined);
    error.write(line('ERROR', { kind: 'Status', code: 500, message: 'etcd is unhappy' }));
    await expect(failed).rejects.toThrow('the API server ended the watch: etcd is unhappy (500)');

    const garbage = new PassThrough();
    const broken = readWatch(garbage, '1', () => undefined);
    garbage.write('<html>\n');
    await expect(broken).rejects.toThrow(/not JSON: <html>/);

    const dropped = new PassThrough();
    const cut = readWatch(dropped, '1', () => undefined);
    dropped.write(line('MODIFIED', pod('redis-0', '2')));
    dropped.destroy();
    await expect(cut).rejects.toThrow('the watch connection closed before the API server ended it');
  });
});

describe('watchFile', () => {
  let dir: string;
  beforeEach(() => {
    dir = tempDir('watch');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('notices the file rewritten in place and renamed over, and ignores its neighbours', async () => {
    const path = join(dir, 'election.toml');
    writeFileSync(path, 'a');
    let changes = 0;
    const watcher = watchFile(path, () => changes++, 20);
    try {
      writeFileSync(join(dir, 'other.toml'), 'x');
      await new Promise((r) => setTimeout(r, 100));
      expect(changes).toBe(0);
      for (const text of ['b', 'c', 'd']) writeFileSync(path, text);
      await eventually(() => changes >= 1, { what: 'the rewrite noticed' });
    } finally {
      watcher.close();
    }
    // A watch of its own, so a late callback of the burst above cannot stand in for the rename's.
    let renames = 0;
    const second = watchFile(path, () => renames++, 20);
    try {
      writeFileSync(`${path}.new`, 'e');
      renameSync(`${path}.new`, path);
      await eventually(() => renames > 0, { what: 'the rename noticed' });
    } finally {
      second.close();
    }
  });

  it('says at once that the file may have changed, and once more when the writes have settled', async () => {
    const path = join(dir, 'election.toml');
    writeFileSync(path, 'a');
    const calls: boolean[] = [];
    const watcher = watchFile(path, (settled) => calls.push(settled), 20);
    try {
      writeFileSync(path, '');
      writeFileSync(path, 'b');
      await eventually(() => calls.includes(true), { what: 'the settled call' });
      // The first call does not wait for the writes to settle; the settled one comes after every other.
      expect(calls[0]).toBe(false);
      expect(calls.indexOf(true)).toBe(calls.length - 1);
    } finally {
      watcher.close();
    }
  });
});
