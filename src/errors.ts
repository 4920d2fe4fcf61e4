// The one error type: a sentence for the user and the sysexits code the process ends with.

/** Exit codes follow sysexits(3), so hooks and the Supervisor can tell failures apart. */
export const ExitCode = {
  ok: 0,
  /** `status` only: the group has no leader, several, or several members whose elections say they lead. */
  notOneLeader: 1,
  /** The command line is wrong. */
  usage: 64,
  /** The election file (or a label in it) is wrong. */
  dataError: 65,
  /** The API server cannot be reached, or keeps failing, within the deadline. */
  unavailable: 69,
  /** A bug: anything not foreseen. */
  software: 70,
  /** The API server refused the credentials (401) or the request (403). */
  noPermission: 77,
  /**
   * No pod identity, no credentials, or they name a pod that does not exist; or the cluster is set up
   * against the label (a mutating webhook rewriting it).
   */
  config: 78,
  /** `run`: the service command cannot be executed (as a shell reports it). */
  cannotExecute: 126,
  /** `run`: the service command is not found (as a shell reports it). */
  commandNotFound: 127,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** A failure the user can act on: `message` is one sentence saying what is wrong and what to do. */
export class HabPodRoleError extends Error {
  override name = 'HabPodRoleError';
  readonly exitCode: ExitCodeValue;

  constructor(exitCode: ExitCodeValue, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.exitCode = exitCode;
  }
}

export const usageError = (message: string) => new HabPodRoleError(ExitCode.usage, message);
export const dataError = (message: string, cause?: unknown) => new HabPodRoleError(ExitCode.dataError, message, { cause });
export const configError = (message: string, cause?: unknown) => new HabPodRoleError(ExitCode.config, message, { cause });
