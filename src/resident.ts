// `hab-pod-role run`: the parent the Supervisor sees. It stays small: no command-line parser, no Kubernetes library.

import { setFlagsFromString } from 'node:v8';
import { credentialsFromHandoff } from './credentials.ts';
import { keepLabel, type Keeper } from './keeper.ts';
import { openClient } from './connect.ts';
import type { KubeClient } from './kube.ts';
import { createLogger } from './log.ts';
import type { RunHandoff } from './run.ts';
import { runPrepareStep, startService } from './spawn.ts';

/**
 * A short-lived copy of the tool parses the arguments and labels the pod, so the code for that never
 * loads here; then the service starts, and while it runs the label follows the election file.
 */
export async function runResident(argv: string[]): Promise<number> {
  // This process waits beside the service for months and does little work when it wakes. V8's optimising
  // compilers would still compile its hot paths after a few hundred elections, for ~13 MiB that never comes
  // back (measured); the interpreter and baseline code are fast enough for a label write now and then.
  setFlagsFromString('--no-opt');
  setFlagsFromString('--no-maglev');
  const prepared = await runPrepareStep(argv);
  // --help and --version end here with 0; a failed label ends here with the code `apply` would give.
  if (prepared.exitCode !== 0 || prepared.handoff === undefined) return prepared.exitCode;
  const handoff = JSON.parse(prepared.handoff) as RunHandoff;
  const log = createLogger({ format: handoff.logFormat, verbose: handoff.verbose });

  const service = startService(handoff.command, log);
  let keeper: Keeper | undefined;
  let client: KubeClient | undefined;
  if (handoff.watch && handoff.target && handoff.credentials) {
    const fromHandoff = () => credentialsFromHandoff(handoff.credentials!);
    client = openClient(fromHandoff(), async () => fromHandoff(), handoff, log);
    keeper = keepLabel(client, handoff.target, log);
  }
  const exitCode = await service.exited;
  keeper?.stop();
  client?.close();
  return exitCode;
}
