// Container images without a registry: a rootfs laid out from host paths, written as a docker-archive for `ctr images import`.
//
// A docker-archive is a tar of manifest.json, the image config (named by its digest) and one layer.tar;
// the config's rootfs.diff_ids is the sha256 of the uncompressed layer. Everything is made with a fixed
// owner, order and time, so the same inputs give the same image ID.

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, cpSync, existsSync, lstatSync, mkdirSync, openSync, readFileSync, readSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export type ImageEntry =
  /** A host file or directory, copied to the same path in the image unless `to` says otherwise; a program brings its shared libraries. */
  | { from: string; to?: string }
  | { symlink: string; target: string }
  | { file: string; content: string; mode?: number };

export interface ImageSpec {
  /** For example `local.test/pause:1`; pods name it with `imagePullPolicy: Never`. */
  tag: string;
  entries: ImageEntry[];
  entrypoint?: string[];
  cmd?: string[];
  env?: string[];
  workingDir?: string;
}

const tarFlags = ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0'];

/** Lays out the image's rootfs in `workDir` and writes the docker-archive there; returns its path. */
export function buildImage(spec: ImageSpec, workDir: string): string {
  const name = spec.tag.replace(/[^a-zA-Z0-9.-]+/g, '_');
  const stage = join(workDir, `${name}.build`);
  rmSync(stage, { recursive: true, force: true });
  const rootfs = join(stage, 'rootfs');
  mkdirSync(rootfs, { recursive: true });
  for (const entry of spec.entries) addEntry(rootfs, entry);

  const layer = join(stage, 'layer.tar');
  execFileSync('tar', [...tarFlags, '-C', rootfs, '-cf', layer, '.']);
  const diffId = `sha256:${sha256(readFileSync(layer))}`;
  const config = JSON.stringify({
    architecture: process.arch === 'arm64' ? 'arm64' : 'amd64',
    os: 'linux',
    config: {
      Env: spec.env ?? ['PATH=/usr/local/bin:/usr/bin:/bin'],
      ...(spec.entrypoint ? { Entrypoint: spec.entrypoint } : {}),
      ...(spec.cmd ? { Cmd: spec.cmd } : {}),
      ...(spec.workingDir ? { WorkingDir: spec.workingDir } : {}),
    },
    rootfs: { type: 'layers', diff_ids: [diffId] },
  });
  const configName = `${sha256(config)}.json`;
  writeFileSync(join(stage, configName), config);
  writeFileSync(join(stage, 'manifest.json'), JSON.stringify([{ Config: configName, RepoTags: [spec.tag], Layers: ['layer.tar'] }]));

  const archive = join(workDir, `${name}.tar`);
  execFileSync('tar', [...tarFlags, '-C', stage, '-cf', archive, 'manifest.json', configName, 'layer.tar']);
  rmSync(stage, { recursive: true, force: true });
  return archive;
}

/** busybox-static with a link for each of its applets (sh, sleep, cat, ...), as in a busybox image. */
export function busyboxEntries(busybox = '/bin/busybox'): ImageEntry[] {
  const applets = execFileSync(busybox, ['--list-full'], { encoding: 'utf8' }).split('\n').filter(Boolean);
  return [
    { from: busybox, to: '/bin/busybox' },
    ...applets.filter((a) => a !== 'bin/busybox').map((a) => ({ symlink: `/${a}`, target: '/bin/busybox' })),
  ];
}

function addEntry(rootfs: string, entry: ImageEntry): void {
  if ('symlink' in entry) {
    const at = join(rootfs, entry.symlink);
    mkdirSync(dirname(at), { recursive: true });
    rmSync(at, { force: true });
    symlinkSync(entry.target, at);
  } else if ('file' in entry) {
    const at = join(rootfs, entry.file);
    mkdirSync(dirname(at), { recursive: true });
    writeFileSync(at, entry.content, { mode: entry.mode ?? 0o644 });
  } else {
    copy(entry.from, join(rootfs, entry.to ?? entry.from));
    // ldd lists the whole closure (the loader too), so the libraries need no ldd of their own.
    if (lstatSync(entry.from).isFile()) for (const lib of sharedLibraries(entry.from)) if (!existsSync(join(rootfs, lib))) copy(lib, join(rootfs, lib));
  }
}

function copy(from: string, to: string): void {
  mkdirSync(dirname(to), { recursive: true });
  cpSync(from, to, { recursive: true, dereference: true });
}

/** The shared libraries (and loader) a dynamically linked program needs; none for a static one or a script. */
export function sharedLibraries(file: string): string[] {
  const head = Buffer.alloc(4);
  const fd = openSync(file, 'r');
  readSync(fd, head, 0, 4, 0);
  closeSync(fd);
  if (head.toString('latin1') !== '\x7fELF') return [];
  let out: string;
  try {
    out = execFileSync('ldd', [file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return []; // "not a dynamic executable"
  }
  return [...out.matchAll(/(\/\S+) \(0x/g)].map((m) => m[1]!);
}

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
