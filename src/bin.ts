// Process entry point: every command, `run` included, goes to the command line, which ends with the exit code.

// Hooks start this program again and again: Node keeps its compiled code between runs (Node >= 22.1). A
// single executable carries its compiled code inside (useCodeCache), and loading node:module there would
// only cost its start the module and its source-map support.
if (!process.getBuiltinModule('node:sea').isSea()) process.getBuiltinModule('node:module').enableCompileCache?.();

// Loaded as a chunk of its own, and without top-level await: the single executable's script is CommonJS, which has none.
void import('./cli.ts')
  .then(({ main }) => main(process.argv.slice(2)))
  .then((code) => {
    process.exitCode = code;
  });
