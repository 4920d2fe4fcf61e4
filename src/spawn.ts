// The one module that spawns: runs the service as a well-behaved parent (like tini or dumb-init) and mirrors its exit.

import { spawn } from 'node:child_process';
import { constants } from 'node:os';
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
 * Starts `command` with this process's stdin, stdout, stderr and environment, forwarding signals to it.
 * The service stays in this process group: when the Supervisor signals the group, the service gets the
 * signal directly and once more through us. That is harmless for TERM (a service shutting down ignores a
 * second one), and keeping the group means the Supervisor's final KILL still reaches the service.
 * node:child_process, not execa: this process stays beside the service for its whole life, and execa's
 * modules held about 10 MiB of it (measured from smaps_rollup) for what is one spawn.
 */
export function startService(command: string[], log: Logger): Service {
  const [file, ...args] = command as [string, ...string[]];
  const child = spawn(file, args, { stdio: 'inherit' });
  const stopForwarding = forwardSignals(child);
  // As execa's cleanup did: should this process exit before the service (a bug), the service is told to stop.
  // Never escalated to KILL by us: a database saving its data on TERM must be allowed to finish.
  const orphaned = () => child.kill();
  process.on('exit', orphaned);
  const exited = new Promise<number>((resolve) => {
    const done = (status: number) => {
      stopForwarding();
      process.off('exit', orphaned);
      resolve(status);
    };
    child.once('exit', (code, signal) => done(signal ? signalExitCode(signal) : (code ?? 0)));
    child.on('error', (error: NodeJS.ErrnoException) => {
      // Only a spawn that failed has no pid; a signal that could not be delivered is not the service's end.
      if (child.pid !== undefined) return;
      if (error.code === 'ENOENT') {
        log.error(`Command not found: ${file}; check the command after -- and PATH.`);
        done(ExitCode.commandNotFound);
        return;
      }
      log.error(`Cannot execute ${file} (${error.code ?? error.message}); check that it is an executable file.`);
      done(ExitCode.cannotExecute);
    });
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
