// Runs the built hab-pod-role as a separate process, the way a Habitat hook does.

import { join } from 'node:path';
import { execa, type Options } from 'execa';
import { repoRoot } from './cluster.ts';

export const cliPath = join(repoRoot, 'dist/hab-pod-role.mjs');

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** API requests the run reports having sent (from its closing log line), if it says. */
  requests: number | undefined;
}

export async function runCli(args: string[], env: Record<string, string | undefined>, options: Options = {}): Promise<CliResult> {
  const result = await execa(process.execPath, [cliPath, ...args], {
    // Only what the test says: nothing from the developer's shell (KUBECONFIG, HOME's kubeconfig).
    env: { PATH: process.env.PATH, HOME: '/nonexistent', ...env },
    extendEnv: false,
    reject: false,
    stdin: 'ignore',
    timeout: 60_000,
    ...options,
  });
  const stderr = String(result.stderr ?? '');
  const requests = /requests=(\d+)/.exec(stderr)?.[1];
  return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout ?? ''), stderr, requests: requests === undefined ? undefined : Number(requests) };
}
