// Integration set-up: builds the CLI and the control-plane binaries, starts a control plane for this run, stops it after.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { TestProject } from 'vitest/node';
import { buildControlPlane, startControlPlane, stopControlPlane, type ControlPlane } from '../../tools/control-plane.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    controlPlane: ControlPlane;
  }
}

const repoRoot = resolve(import.meta.dirname, '../..');

export default async function setup(project: TestProject) {
  // The tests run the artifact users run, so build it from the current sources first.
  execFileSync(process.execPath, [join(repoRoot, 'tools/bundle.mjs')], { cwd: repoRoot, stdio: 'inherit' });
  const binDir = buildControlPlane();
  const dir = mkdtempSync(join(tmpdir(), 'hab-pod-role-cluster-'));
  // globalSetup has no timeout of its own: the start-up gets its deadline here.
  const plane = await startControlPlane({ dir, binDir, deadlineMs: 120_000 });
  project.provide('controlPlane', plane);
  return async () => {
    await stopControlPlane(dir);
    rmSync(dir, { recursive: true, force: true });
  };
}
