// The one module that spawns: runs the service as a well-behaved parent (like tini or dumb-init) and mirrors its exit.

import { constants } from 'node:os';
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
 * Until the service starts, the signals it would get are this process's own: the first one is noted and
 * `onSignal` told (so the labelling stops), and `run` then ends as a process killed by it would (128 + n),
 * never starting the service. Handlers, not the default action, also because PID 1 ignores signals without one.
 */
export function holdSignals(onSignal: (signal: NodeJS.Signals) => void): { received(): NodeJS.Signals | undefined; release(): void } {
  let first: NodeJS.Signals | undefined;
  const hold = (signal: NodeJS.Signals) => {
    if (first !== undefined) return;
    first = signal;
    onSignal(signal);
  };
  for (const signal of forwardedSignals) process.on(signal, hold);
  return {
    received: () => first,
    release: () => {
      for (const signal of forwardedSignals) process.off(signal, hold);
    },
  };
}

/** Passes every signal in `forwardedSignals` that this process receives on to `child`, until the returned function is called. */
function forwardSignals(child: { kill(signal: NodeJS.Signals): boolean }): () => void {
  const forward = (signal: NodeJS.Signals) => {
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
export function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + (constants.signals[signal] ?? 0);
}
