// Process entry point: `run` goes to the small resident wrapper, everything else to the command line.

import module from 'node:module';

// Hooks start this program again and again: Node keeps its compiled code between runs (Node >= 22.1).
module.enableCompileCache?.();

const argv = process.argv.slice(2);
// The resident never loads the parser or the Kubernetes library: that keeps the process beside every service lean.
// No top-level await: the single executable's script is CommonJS, which has none.
const exitCode =
  argv[0] === 'run' && process.env.HABPODROLE_HANDOFF_FD === undefined
    ? import('./resident.ts').then(({ runResident }) => runResident(argv))
    : import('./cli.ts').then(({ main }) => main(argv));
void exitCode.then((code) => {
  process.exitCode = code;
});
