// Integration set-up: builds the CLI and the control-plane binaries, starts a control plane and its real node for this run, stops them after.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { TestProject } from 'vitest/node';
import { buildControlPlane, startControlPlane, stopControlPlane, type ControlPlane } from '../../tools/control-plane.ts';
import { NodeBusyError } from '../../tools/node.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    controlPlane: ControlPlane;
    /** Why this run has no real node (the tests that need one skip, saying this); empty when it has one. */
    nodeUnavailable: string;
  }
}

const repoRoot = resolve(import.meta.dirname, '../..');

export default async function setup(project: TestProject) {
  // The tests run the artifact users run, so build it from the current sources first.
  execFileSync(process.execPath, [join(repoRoot, 'tools/bundle.mjs')], { cwd: repoRoot, stdio: 'inherit' });
  const binDir = buildControlPlane();
  // Everything the run creates goes under one directory, removed at the end: the test workers start
  // after this and inherit TMPDIR, so their temporary directories land here too.
  const root = mkdtempSync(join(tmpdir(), 'hab-pod-role-test-'));
  process.env.TMPDIR = root;
  const dir = join(root, 'cluster');
  mkdirSync(dir);
  const { plane, nodeUnavailable } = await start(dir, binDir, root);
  project.provide('controlPlane', plane);
  project.provide('nodeUnavailable', nodeUnavailable);
  return async () => {
    try {
      await stopControlPlane(dir);
      assertNoSecretsInOutput(dir);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  };
}

/**
 * The real node is on unless REAL_NODE=off, the run is not root, or another run holds the node
 * (there is one per machine): then the tests that need it are skipped, saying why.
 */
async function start(dir: string, binDir: string, root: string): Promise<{ plane: ControlPlane; nodeUnavailable: string }> {
  // globalSetup has no timeout of its own: the start-up gets its deadline here.
  const withoutNode = async (why: string) => {
    console.warn(`no real node in this run: ${why}; the tests that need one are skipped`);
    return { plane: await startControlPlane({ dir, binDir, deadlineMs: 120_000 }), nodeUnavailable: why };
  };
  if (process.env.REAL_NODE === 'off') return withoutNode('REAL_NODE=off');
  if (process.getuid?.() !== 0) return withoutNode('the real node needs root (containerd, cgroups, a bridge)');
  try {
    return { plane: await startControlPlane({ dir, binDir, deadlineMs: 120_000, node: { scratchDir: root } }), nodeUnavailable: '' };
  } catch (error) {
    if (error instanceof NodeBusyError) return withoutNode(error.message);
    throw error;
  }
}

/** No token minted in this run, nor the admin token, may appear anywhere in what the tool printed. */
function assertNoSecretsInOutput(dir: string): void {
  const read = (file: string) => (existsSync(join(dir, file)) ? readFileSync(join(dir, file), 'utf8') : '');
  const output = read('tool-output.log');
  const secrets = [...read('minted-tokens').split('\n').filter(Boolean), read('tokens.csv').split(',')[0]!];
  const leaked = secrets.filter((secret) => output.includes(secret));
  if (leaked.length > 0) throw new Error(`${leaked.length} of ${secrets.length} tokens appeared in the tool's output`);
  console.log(`secrets scan: ${output.length} bytes of the tool's output checked against ${secrets.length} tokens, none found`);
}
