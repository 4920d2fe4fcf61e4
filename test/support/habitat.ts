// A plan built as hab-plan-build builds it (in a studio-like root), and its package run as an exported image runs it.

import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { coreOrigin } from './core-origin.ts';
import { tempDir } from './election.ts';

const support = import.meta.dirname;

export interface Built {
  /** Where the package is installed, as the build saw it: /hab/pkgs/ORIGIN/NAME/VERSION/RELEASE. */
  prefix: string;
  /** The directory that was /hab during the build. */
  hab: string;
  exitCode: number | undefined;
  /** stdout and stderr of the build, interleaved. */
  output: string;
}

export interface Ran {
  exitCode: number | undefined;
  stdout: string;
  stderr: string;
}

/**
 * Runs test/support/hab-plan-build.sh on `planDir` with the core origin installed and /hab a fresh
 * directory, as `hab pkg build` runs in a studio. The environment is this process's (npm needs its
 * registry and CA settings), as a studio keeps the caller's proxy and registry settings.
 */
export async function buildPlan(planDir: string, origin: string): Promise<Built> {
  const work = tempDir('studio');
  const hab = join(work, 'hab');
  mkdirSync(join(hab, 'pkgs'), { recursive: true });
  symlinkSync(coreOrigin(), join(hab, 'pkgs/core'));
  const result = await execa('bash', [join(support, 'hab-root.sh'), 'studio', work, 'bash', join(support, 'hab-plan-build.sh'), planDir], {
    env: { HAB_ORIGIN: origin },
    reject: false,
    stdin: 'ignore',
    all: true,
  });
  return { prefix: result.stdout.trim().split('\n').at(-1) ?? '', hab, exitCode: result.exitCode, output: result.all };
}

/** The files of a package under the build's /hab: `installed` is a /hab/... path. */
export function onDisk(built: Built, installed: string): string {
  return join(built.hab, installed.replace(/^\/hab\//, ''));
}

/**
 * What `hab pkg export container` puts in an image: the package and its runtime dependencies (TDEPS)
 * under /hab/pkgs, and busybox at /bin with a link per applet. Nothing else: no /usr, no /lib64, no node.
 */
export function exportImage(built: Built): string {
  const root = imageRoot();
  const ident = built.prefix.replace(/^\/hab\/pkgs\//, '');
  const tdeps = readFileSync(onDisk(built, `${built.prefix}/TDEPS`), 'utf8').split('\n').filter(Boolean);
  for (const pkg of [ident, ...tdeps]) {
    cpSync(onDisk(built, `/hab/pkgs/${pkg}`), join(root, 'hab/pkgs', pkg), { recursive: true, dereference: true });
  }
  return root;
}

/** An image's root with busybox at /bin (a link per applet) and nothing else yet. */
export function imageRoot(): string {
  const root = join(tempDir('image'), 'root');
  mkdirSync(join(root, 'bin'), { recursive: true });
  copyFileSync(busybox(), join(root, 'bin/busybox'));
  chmodSync(join(root, 'bin/busybox'), 0o755);
  for (const applet of execFileSync(busybox(), ['--list'], { encoding: 'utf8' }).split('\n').filter(Boolean)) {
    if (applet !== 'busybox') symlinkSync('busybox', join(root, 'bin', applet));
  }
  return root;
}

/** The command line that runs `command` in the image at `root` with only `env`, as a container would. */
export function inImage(root: string, env: Record<string, string>, command: string[]): string[] {
  return ['bash', join(support, 'hab-root.sh'), 'image', root, ...Object.entries(env).map(([k, v]) => `${k}=${v}`), '--', ...command];
}

/** The PATH a hook of a service depending on this package gets: the image's /bin, then the package's bin dirs. */
export function hookPath(built: Built): string {
  return `/bin:${readFileSync(onDisk(built, `${built.prefix}/PATH`), 'utf8').trim()}`;
}

/**
 * Runs `script` as a hook in the image: a /bin/sh script executed directly (its interpreter line picks
 * the shell), with only PATH and HOME set, as root inside a chroot of the image.
 */
let hooks = 0;
export async function runHook(root: string, path: string, script: string): Promise<Ran> {
  const name = `hook-${++hooks}`;
  writeFileSync(join(root, name), `#!/bin/sh\n${script}\n`, { mode: 0o755 });
  const [file, ...args] = inImage(root, { PATH: path, HOME: '/' }, [`/${name}`]);
  const { exitCode, stdout, stderr } = await execa(file!, args, { reject: false, stdin: 'ignore' });
  return { exitCode, stdout, stderr };
}

/** A statically linked busybox (Debian's busybox-static), which works in a root with no libraries. */
function busybox(): string {
  const path = execFileSync('bash', ['-c', 'command -v busybox'], { encoding: 'utf8' }).trim();
  if (!execFileSync('file', ['-L', path], { encoding: 'utf8' }).includes('statically linked')) {
    throw new Error(`${path} is not statically linked; install Debian's busybox-static (make system-deps)`);
  }
  return path;
}
