// The one module that spawns: runs the service as a well-behaved parent (like tini or dumb-init) and mirrors its exit.

import { constants } from 'node:os';
import { isSea } from 'node:sea';
import { execa } from 'execa';
import { ExitCode } from './errors.ts';
import type { Logger } from './log.ts';

/** Every signal a process manager or terminal sends that Node can catch; each is passed on to the service. */
export const forwardedSignals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH', 'SIGALRM'];

export interface Service {
  pid: number | undefined;
  /** The exit status to end with, as a shell would report it: the code, 128 + signal, 127, 126. */
  exited: Promise<number>;
}

/**
 * Starts `command` with this process's stdin, stdout and stderr, forwarding signals to it. The service
 * stays in this process group: when the Supervisor signals the group, the service gets the signal
 * directly and once more through us. That is harmless for TERM (a service shutting down ignores a
 * second one), and keeping the group means the Supervisor's final KILL still reaches the service.
 */
export function startService(command: string[], log: Logger): Service {
  const [file, ...args] = command as [string, ...string[]];
  const child = execa(file, args, {
    stdio: 'inherit',
    reject: false,
    // Never escalate to KILL ourselves: a database saving its data on TERM must be allowed to finish.
    forceKillAfterDelay: false,
    // The service's environment is ours, untouched (no extra PATH entries).
    preferLocal: false,
    extendEnv: true,
  });
  const stopForwarding = forwardSignals(child);

  const exited = child.then((result) => {
    stopForwarding();
    if (result.signal) return signalExitCode(result.signal);
    if (typeof result.exitCode === 'number') return result.exitCode;
    if (result.code === 'ENOENT') {
      log.error(`Command not found: ${file}; check the command after -- and PATH.`);
      return ExitCode.commandNotFound;
    }
    log.error(`Cannot execute ${file} (${result.code ?? result.originalMessage}); check that it is an executable file.`);
    return ExitCode.cannotExecute;
  });
  return { pid: child.pid, exited };
}

/**
 * Runs this program again with `argv` as the first step of `run`: it labels the pod and writes the
 * handoff JSON to fd 3. A signal that arrives meanwhile is passed on, and the service is never started.
 */
export async function runPrepareStep(argv: string[]): Promise<{ exitCode: number; handoff: string | undefined }> {
  const [file, ...args] = thisProgram();
  const child = execa(file, [...args, ...argv], {
    env: { HABPODROLE_HANDOFF_FD: '3' },
    stdio: ['ignore', 'inherit', 'inherit', 'pipe'],
    reject: false,
    forceKillAfterDelay: false,
  });
  let interrupted: NodeJS.Signals | undefined;
  const stopForwarding = forwardSignals(child, (signal) => (interrupted ??= signal));
  const result = await child;
  stopForwarding();
  const signal = interrupted ?? result.signal;
  if (signal) return { exitCode: signalExitCode(signal), handoff: undefined };
  const handoff = String(result.stdio[3] ?? '');
  return { exitCode: result.exitCode ?? ExitCode.software, handoff: handoff === '' ? undefined : handoff };
}

/**
 * The command that starts this program again: Node with its options and this script, or, as a single
 * executable, just the executable (it is its own script; Node puts its argv[0] where a script would be).
 */
function thisProgram(): [string, ...string[]] {
  return isSea() ? [process.execPath] : [process.execPath, ...process.execArgv, process.argv[1]!];
}

/** Passes every signal in `forwardedSignals` that this process receives on to `child`, until the returned function is called. */
function forwardSignals(child: { kill(signal: NodeJS.Signals): boolean }, received?: (signal: NodeJS.Signals) => void): () => void {
  const forward = (signal: NodeJS.Signals) => {
    received?.(signal);
    try {
      child.kill(signal);
    } catch {
      // A child that has already exited cannot receive it; that is not an error (tini and dumb-init agree).
    }
  };
  for (const signal of forwardedSignals) process.on(signal, forward);
  return () => {
    for (const signal of forwardedSignals) process.off(signal, forward);
  };
}

/** The status a shell reports for a process killed by `signal`. */
function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + (constants.signals[signal] ?? 0);
}
