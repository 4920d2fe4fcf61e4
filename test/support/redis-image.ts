// The Redis example's image, laid out as `hab pkg export container` lays one out, built without `hab` and imported into the node.
//
// What is in it, and only that:
// - /hab/pkgs: the example's package (its plan's config/, hooks/, default.toml, with IDENT, DEPS, TDEPS),
//   hab-pod-role as its plan builds it (test/support/hab-plan-build.sh, as the packaging test does) with
//   its runtime dependencies core/glibc and core/gcc-libs, and core/redis: Debian's redis-server and
//   redis-cli with the libraries they need, their interpreter and rpath pointed at core/glibc as a core
//   build's are (no /lib64 in the image, as there is none in an exported one).
// - busybox at /bin, PATH=/bin, /etc/passwd and /etc/group with the hab user (42), /init.sh as entrypoint.
// - The Supervisor stand-in (supervisor-main.ts, bundled) and the Node that runs it, under /hab/sup-standin:
//   outside PATH and outside the hooks' PATH, pointed at core/glibc and core/gcc-libs like everything else.
//   hab-sup needs no Node; the stand-in does. Nothing in the image can reach this Node by name.
// - The hab-launch stand-in (launcher.c, static) beside it, the container's PID 1, as in an exported image:
//   its init.sh execs `hab sup run`, which execs hab-launch (components/hab/src/command/launcher.rs,
//   become_command), which starts hab-sup as its child and reaps orphans; there is no other init.

import { copyFileSync, cpSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { buildImage, busyboxEntries, sharedLibraries } from '../../tools/image.ts';
import { importImage, type RealNode } from '../../tools/node.ts';
import { idents, pointAtCore, writePackageMetadata } from './core-origin.ts';
import { tempDir } from './election.ts';
import { buildPlan, exportImage, type Built } from './habitat.ts';
import { buildLauncher } from './launcher.ts';

const repoRoot = resolve(import.meta.dirname, '../..');

/** Both packages are built under an origin of the user's own (there is no core/hab-pod-role). */
export const origin = 'acme';
export const exampleIdent = `${origin}/redis-leader`;
/** What a user puts in the StatefulSet after exporting: the image is named after the package. */
export const imageName = `${origin}/redis-leader:0.1.0`;
const release = '20261201000000';
const redisIdent = `core/redis/7.0.15/${release}`;
const sup = '/hab/sup-standin';

/**
 * The same image with some of the example's files changed (a path under the package, such as `hooks/run`,
 * and what becomes of its text), under another tag: for measuring one labelling style at a time.
 */
export interface ImageVariant {
  tag: string;
  edits: Record<string, (text: string) => string>;
}

// One plan build per process: a variant differs only in the example's own files.
let planBuild: Promise<Built> | undefined;

/** Builds the image and loads it into the node's containerd; returns the tag. Takes about a minute (the plan build). */
export async function importRedisImage(node: RealNode, variant?: ImageVariant): Promise<string> {
  const built = await (planBuild ??= buildPlan(join(repoRoot, 'plans/hab-pod-role'), origin));
  if (built.exitCode !== 0) throw new Error(`the hab-pod-role plan did not build:\n${built.output}`);
  const toolIdent = built.prefix.replace(/^\/hab\/pkgs\//, '');
  // The package and its TDEPS, as the packaging test exports them.
  const exported = exportImage(built);
  const stage = tempDir('redis-image');
  const hab = join(stage, 'hab');
  cpSync(join(exported, 'hab'), hab, { recursive: true });

  // core/redis from Debian's binaries: each library glibc and gcc-libs do not provide goes into its lib/.
  const redis = join(hab, 'pkgs', redisIdent);
  mkdirSync(join(redis, 'bin'), { recursive: true });
  mkdirSync(join(redis, 'lib'), { recursive: true });
  const provided = new Set([idents.glibc, idents.gccLibs].flatMap((ident) => readdirSync(join(hab, 'pkgs', ident, 'lib'))));
  for (const bin of ['redis-server', 'redis-cli']) {
    copyFileSync(`/usr/bin/${bin}`, join(redis, 'bin', bin));
    for (const lib of sharedLibraries(`/usr/bin/${bin}`)) {
      const base = lib.split('/').at(-1)!;
      if (!provided.has(base)) copyFileSync(lib, join(redis, 'lib', base));
    }
    pointAtCore(join(redis, 'bin', bin), [`/hab/pkgs/${redisIdent}/lib`]);
  }
  writePackageMetadata(redis, redisIdent, [idents.glibc, idents.gccLibs], { PATH: `/hab/pkgs/${redisIdent}/bin` });

  // The example's package: what its plan installs (no build step) and the metadata hab-plan-build writes.
  const exampleFull = `${exampleIdent}/0.1.0/${release}`;
  const example = join(hab, 'pkgs', exampleFull);
  mkdirSync(example, { recursive: true });
  for (const part of ['config', 'hooks', 'default.toml', 'plan.sh']) cpSync(join(repoRoot, 'examples/redis', part), join(example, part), { recursive: true });
  for (const [path, edit] of Object.entries(variant?.edits ?? {})) writeFileSync(join(example, path), edit(readFileSync(join(example, path), 'utf8')));
  writePackageMetadata(example, exampleFull, [redisIdent, toolIdent], {}, [redisIdent, toolIdent, idents.glibc, idents.gccLibs]);

  // The stand-in and its Node, outside PATH.
  mkdirSync(join(stage, 'sup'), { recursive: true });
  await build({
    entryPoints: [join(repoRoot, 'test/support/supervisor-main.ts')],
    bundle: true, platform: 'node', format: 'cjs', target: 'node22', outfile: join(stage, 'sup/supervisor.cjs'), logLevel: 'error',
  });
  copyFileSync(process.execPath, join(stage, 'sup/node'));
  pointAtCore(join(stage, 'sup/node'));
  buildLauncher(join(stage, 'sup'));

  const tag = variant?.tag ?? imageName;
  const archive = buildImage({
    tag,
    entries: [
      ...busyboxEntries(),
      { from: hab, to: '/hab' },
      { from: join(stage, 'sup'), to: sup },
      // The exporter's init.sh hands the container's args to the Supervisor (`hab sup run IDENT ARGS`), which
      // hab-launch starts (components/pkg-export-container/defaults/init.sh.hbs).
      { file: '/init.sh', mode: 0o755, content: `#!/bin/sh\nexec ${sup}/hab-launch ${sup}/node ${sup}/supervisor.cjs run ${exampleIdent} "$@"\n` },
      { file: '/etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\nhab:x:42:42:hab:/hab:/bin/sh\n' },
      { file: '/etc/group', content: 'root:x:0:\nhab:x:42:hab\n' },
      { file: '/hab/svc/.keep', content: '' },
      { file: '/tmp/.keep', content: '' },
    ],
    entrypoint: ['/init.sh'],
    env: ['PATH=/bin'],
  }, stage);
  importImage(node, archive);
  return tag;
}
