// The hab-launch stand-in (launcher.c) built as a static program: no interpreter or libraries to point at core/glibc.

import { execFileSync } from 'node:child_process';
import { join, resolve } from 'node:path';

const source = resolve(import.meta.dirname, 'launcher.c');

/** Compiles the stand-in into `dir` and returns its path. */
export function buildLauncher(dir: string): string {
  const binary = join(dir, 'hab-launch');
  execFileSync('gcc', ['-static', '-O2', '-Wall', '-Werror', '-o', binary, source], { stdio: ['ignore', 'ignore', 'pipe'] });
  return binary;
}
