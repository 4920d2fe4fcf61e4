// Runs the built hab-pod-role as a separate process, the way a Habitat hook does.

import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa, type Options } from 'execa';
import { controlPlane, repoRoot } from './cluster.ts';

/** Everything the tool prints in any test goes here too, for the scan for secrets at the end of the run. */
export function recordOutput(...texts: string[]): void {
  appendFileSync(join(controlPlane().dir, 'tool-output.log'), `${texts.join('\n')}\n`);
}

export const cliPath = join(repoRoot, 'dist/hab-pod-role.mjs');

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** API requests the run reports having sent (from its closing log line), if it says. */
  requests: number | undefined;
}

/**
 * What every run of the tool gets besides what its test says: PATH, no home, and the test run's own
 * temporary directory, so nothing Node writes there (its compile cache) outlives the run.
 */
export const baseEnv = (): Record<string, string | undefined> => ({ PATH: process.env.PATH, HOME: '/nonexistent', TMPDIR: process.env.TMPDIR });

export async function runCli(args: string[], env: Record<string, string | undefined>, options: Options = {}): Promise<CliResult> {
  const result = await execa(process.execPath, [cliPath, ...args], {
    // Only what the test says: nothing from the developer's shell (KUBECONFIG, HOME's kubeconfig).
    env: { ...baseEnv(), ...env },
    extendEnv: false,
    reject: false,
    stdin: 'ignore',
    timeout: 60_000,
    ...options,
  });
  return cliResult(result.exitCode, String(result.stdout ?? ''), String(result.stderr ?? ''));
}

/** What a finished run left: recorded for the secrets scan, with the request count its closing line reports. */
function cliResult(exitCode: number | undefined, stdout: string, stderr: string): CliResult {
  recordOutput(stdout, stderr);
  const requests = /requests=(\d+)/.exec(stderr)?.[1];
  return { exitCode: exitCode ?? -1, stdout, stderr, requests: requests === undefined ? undefined : Number(requests) };
}

export interface RunningCli {
  pid: number;
  /** Everything it wrote to stderr so far. */
  stderr(): string;
  stdout(): string;
  /** Signals its whole process group, as the Habitat Supervisor does when it stops a service. */
  signalGroup(signal: NodeJS.Signals): void;
  signal(signal: NodeJS.Signals): void;
  exited: Promise<CliResult>;
}

/** Starts the CLI in a process group of its own, the way the Supervisor starts a hook, and leaves it running. */
export function startCli(args: string[], env: Record<string, string | undefined>, command: string[] = [process.execPath, cliPath]): RunningCli {
  const child = execa(command[0]!, [...command.slice(1), ...args], {
    env: { ...baseEnv(), ...env },
    extendEnv: false,
    reject: false,
    stdin: 'ignore',
    detached: true,
    forceKillAfterDelay: false,
    cleanup: true,
  });
  let stderr = '';
  let stdout = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const pid = child.pid!;
  const exited = child.then((result) => cliResult(result.exitCode, stdout, stderr));
  return {
    pid,
    stderr: () => stderr,
    stdout: () => stdout,
    signalGroup: (signal) => process.kill(-pid, signal),
    signal: (signal) => process.kill(pid, signal),
    exited,
  };
}
