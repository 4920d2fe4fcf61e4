// Bundles src/bin.ts into ESM: the entry plus chunks loaded on demand, so each command loads only what it uses.
import { build } from 'esbuild';

import { chmodSync, rmSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, resolve } from 'node:path';

// A hook starts this program on every election; each plugin below removes start-up work, as measured
// with `node --cpu-prof` (bench/RESULTS.md has the figures).

// Node builds an ES module facade for a built-in on its first `import`, reading every export, and
// reading util's exports loads its lazy parts (parseArgs, diff, worker threads: about 4 ms). Built-ins
// are therefore taken with require(); util's names are listed so that nothing enumerates it either.
const builtins = new Set(builtinModules.flatMap((name) => [name, `node:${name}`]));
const utilNames = ['aborted', 'callbackify', 'debuglog', 'deprecate', 'format', 'formatWithOptions', 'inherits', 'inspect', 'isDeepStrictEqual', 'promisify', 'stripVTControlCharacters', 'styleText', 'TextDecoder', 'TextEncoder', 'types'];
const builtinsThroughRequire = {
  name: 'builtins-through-require',
  setup(build) {
    build.onResolve({ filter: /^[a-z0-9:_/]+$/ }, (args) => (builtins.has(args.path) && args.namespace !== 'builtin' ? { path: args.path.replace(/^node:/, ''), namespace: 'builtin' } : undefined));
    build.onLoad({ filter: /.*/, namespace: 'builtin' }, ({ path }) =>
      path === 'util'
        ? { contents: `const util = require('node:util'); export default util; export const { ${utilNames.join(', ')} } = util;`, loader: 'js' }
        : { contents: `module.exports = require('node:${path}');`, loader: 'js' },
    );
  },
};

// yargs and its layout helpers import string-width, whose import builds an ICU segmenter (~15 ms);
// route them through the stand-in, which loads it only for text that is not plain ASCII.
const lazyStringWidth = {
  name: 'lazy-string-width',
  setup(build) {
    const standIn = resolve('tools/lazy-string-width.mjs');
    build.onResolve({ filter: /^string-width$/ }, (args) => (args.importer === standIn ? undefined : { path: standIn }));
  },
};

// `node tools/bundle.mjs` writes the npm package's dist/: ESM, the entry plus chunks.
// `node tools/bundle.mjs --single-file FILE` writes one CommonJS script with no chunks and no imports,
// which is what a single executable application can run: its require() reaches built-ins only, and
// there is no file beside it to load a chunk from; and, beside FILE, kubeconfig-plugins.cjs, which the
// executable carries as an asset (tools/build-sea.sh).
const shared = {
  entryPoints: { 'hab-pod-role': 'src/bin.ts' },
  bundle: true,
  platform: 'node',
  target: 'node22',
  minifySyntax: true,
  treeShaking: true,
  plugins: [builtinsThroughRequire, lazyStringWidth],
  logLevel: 'warning',
};

const singleFile = process.argv.indexOf('--single-file');
if (singleFile !== -1) {
  const outfile = process.argv[singleFile + 1];
  if (!outfile) throw new Error('--single-file needs the path of the script to write');
  const cjs = {
    ...shared,
    format: 'cjs',
    legalComments: 'inline',
    // yargs's ESM shims ask import.meta.url where they live, which CommonJS has no name for: give them this file's URL.
    define: { 'import.meta.url': '__habPodRoleUrl' },
    banner: { js: "const __habPodRoleUrl = require('node:url').pathToFileURL(__filename).href;" },
  };
  // client-node (2 MB of the 3 MB script) is needed only for kubeconfig users with exec plugins and the
  // like. In the main script its mere presence cost every start ~13 ms and ~11 MiB (its source and code
  // cache are read in full), so it goes beside the script, as a single executable's asset, evaluated on demand.
  const assetName = 'kubeconfig-plugins.cjs';
  await build({ ...cjs, entryPoints: ['src/kubeconfig-plugins.ts'], outfile: join(dirname(outfile), assetName) });
  const pluginsAsAsset = {
    name: 'kubeconfig-plugins-as-asset',
    setup(build) {
      build.onResolve({ filter: /\/kubeconfig-plugins\.ts$/ }, () => ({ path: assetName, namespace: 'sea-asset' }));
      build.onLoad({ filter: /.*/, namespace: 'sea-asset' }, ({ path }) => ({
        loader: 'js',
        contents: `const { getAsset } = require('node:sea');
const loaded = { exports: {} };
require('node:vm').compileFunction(getAsset(${JSON.stringify(path)}, 'utf8'), ['exports', 'require', 'module', '__filename', '__dirname'], { filename: ${JSON.stringify(path)} })(loaded.exports, require, loaded, ${JSON.stringify(path)}, '.');
module.exports = loaded.exports;`,
      }));
    },
  };
  // Built-ins stay esbuild's plain require() here: the ES facade the plugin above avoids does not exist in
  // CommonJS, and its wrapper modules would be imported through __toESM, which copies every export of
  // each built-in (9 ms of each start, measured against the same build with the plugin).
  await build({ ...cjs, entryPoints: ['src/bin.ts'], outfile, plugins: [lazyStringWidth, pluginsAsAsset] });
} else {
  rmSync('dist', { recursive: true, force: true });
  await build({
    ...shared,
    outdir: 'dist',
    outExtension: { '.js': '.mjs' },
    chunkNames: 'chunks/[name]-[hash]',
    splitting: true,
    format: 'esm',
    sourcemap: 'linked',
    legalComments: 'linked',
    banner: {
      // Bundled CommonJS dependencies still call require(); give them one.
      js: "#!/usr/bin/env node\nimport { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
    },
  });
  chmodSync('dist/hab-pod-role.mjs', 0o755);
}
