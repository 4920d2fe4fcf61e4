// API failures in the words a user reads: what a refused or failed call means, its exit code, and what to do.

import { ExitCode, HabPodRoleError } from './errors.ts';

/** What the RBAC rule for a request looks like, so a 403 can name the rule that is missing. */
export interface Rule {
  verb: string;
  resource: string;
  namespace: string;
  name?: string;
}

/** A non-2xx answer from the API server, with the Status fields that explain it. */
export class ApiStatusError extends Error {
  readonly status: number;
  readonly reason: string;
  readonly serverMessage: string;
  readonly retryAfter: string | undefined;

  constructor(status: number, reason: string, serverMessage: string, retryAfter: string | undefined) {
    super(`${status} ${reason}: ${serverMessage}`);
    this.status = status;
    this.reason = reason;
    this.serverMessage = serverMessage;
    this.retryAfter = retryAfter;
  }
}

// Errors from the socket layer that say nothing about the request itself: trying again may work.
const transientNetworkCodes = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN',
  'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE', 'UND_ERR_SOCKET',
]);
export const retryableStatuses = new Set([429, 500, 502, 503, 504]);
/**
 * What ended a call, as the client saw it: the request (as the RBAC rule it needs), the error (an
 * ApiStatusError, or one of the connection); whether retries ran out of time (`exhausted`), whether the
 * deadline had passed when it ended, and whether the client was closed.
 */
export class ApiCallError extends Error {
  override name = 'ApiCallError';
  readonly rule: Rule;
  override readonly cause: unknown;
  readonly server: string;
  readonly source: string;
  readonly timeoutSeconds: number;
  readonly exhausted: boolean;
  readonly outOfTime: boolean;
  readonly closed: boolean;

  constructor(fields: { rule: Rule; cause: unknown; server: string; source: string; timeoutSeconds: number; exhausted: boolean; outOfTime: boolean; closed: boolean }) {
    super(`${fields.rule.verb} ${fields.rule.resource} failed: ${brief(fields.cause)}`);
    this.rule = fields.rule;
    this.cause = fields.cause;
    this.server = fields.server;
    this.source = fields.source;
    this.timeoutSeconds = fields.timeoutSeconds;
    this.exhausted = fields.exhausted;
    this.outOfTime = fields.outOfTime;
    this.closed = fields.closed;
  }
}

/** The sentence of a failure for a log line: a failed call's user sentence, else the error's own message. */
export function failureMessage(error: unknown): string {
  const explained = userError(error);
  return (explained as Error)?.message ?? String(explained);
}

/**
 * The one sentence (and exit code) a failed call means to the user; anything else is returned as it is.
 * Commands call it where they catch a failure, as kubectl does at its edge: the client only says what happened.
 */
export function userError(failure: unknown): unknown {
  if (!(failure instanceof ApiCallError)) return failure;
  const { rule, server, source, timeoutSeconds } = failure;
  const error = failure.cause;
  // Already a sentence (credentials that could not be resolved for the request, say).
  if (error instanceof HabPodRoleError) return error;
  const unavailable = () =>
    new HabPodRoleError(
      ExitCode.unavailable,
      `The API server at ${server} did not answer successfully within --timeout ${timeoutSeconds}s (last error: ${brief(error)}); check that it is reachable from this pod, or raise --timeout.`,
      { cause: error },
    );
  // Retries that ran out of time on anything but a refusal: the server is unavailable. A refusal that
  // outlasted the start-up grace is reported as a refusal (77).
  if (failure.exhausted && !isRefusal(error)) return unavailable();
  const pod = `pod "${rule.name}" in namespace "${rule.namespace}"`;
  const what = rule.name === undefined ? `${rule.resource} in namespace "${rule.namespace}"` : pod;
  // An admission policy (the README's, or one of the cluster's) says what it refused and why: pass that on.
  const admissionRefusal = (message: string) => {
    const refusal = /ValidatingAdmissionPolicy '([^']+)' with binding '[^']*' denied request: (.*)$/s.exec(message);
    if (!refusal) return undefined;
    const reason = refusal[2]!.trim().replace(/\.$/, '');
    return new HabPodRoleError(ExitCode.noPermission, `The admission policy ${refusal[1]} refused to ${rule.verb} ${what}: ${reason}.`, { cause: error });
  };
  if (error instanceof ApiStatusError) {
    switch (error.status) {
      case 401:
        return new HabPodRoleError(
          ExitCode.noPermission,
          `The API server rejected the credentials from ${source} (401 Unauthorized), also after re-reading them; the token is expired or revoked, so check the service-account token mount.`,
          { cause: error },
        );
      case 403: {
        const refusal = admissionRefusal(error.serverMessage);
        if (refusal) return refusal;
        const who = /User "([^"]+)"/.exec(error.serverMessage)?.[1] ?? 'this identity';
        return new HabPodRoleError(
          ExitCode.noPermission,
          `Forbidden: ${who} may not ${rule.verb} ${rule.resource} in namespace "${rule.namespace}"; add the RBAC rule {apiGroups: [""], resources: ["${rule.resource}"], verbs: ["${rule.verb}"]} to a Role in "${rule.namespace}" bound to it (see the README's RBAC section).`,
          { cause: error },
        );
      }
      case 409:
        return new HabPodRoleError(
          ExitCode.unavailable,
          `The ${pod} changed while it was being written (409 Conflict), and kept changing until --timeout ${timeoutSeconds}s ran out; another writer is racing this one, so check what else labels these pods.`,
          { cause: error },
        );
      case 404:
        if (rule.name === undefined) break;
        return new HabPodRoleError(
          ExitCode.config,
          `The ${pod} does not exist; set POD_NAME and POD_NAMESPACE from the downward API (fieldRef metadata.name and metadata.namespace) or pass --pod and --namespace.`,
          { cause: error },
        );
      case 422:
        return admissionRefusal(error.serverMessage) ?? new HabPodRoleError(ExitCode.dataError, `The API server rejected the label change on the ${pod}: ${error.serverMessage}.`, { cause: error });
      case 400:
        if (rule.verb === 'list') {
          return new HabPodRoleError(ExitCode.dataError, `The API server rejected the group's label selector: ${error.serverMessage}; fix [group] selector.`, { cause: error });
        }
        break;
    }
    if (retryableStatuses.has(error.status)) return unavailable();
    return new HabPodRoleError(ExitCode.software, `Unexpected answer from the API server to ${rule.verb} ${what}: ${error.message}.`, { cause: error });
  }
  if (isTlsError(error)) {
    return new HabPodRoleError(
      ExitCode.config,
      `The API server at ${server} presented a certificate that cannot be verified (${(error as NodeJS.ErrnoException).code}); check the certificate authority in the kubeconfig or the service account's ca.crt.`,
      { cause: error },
    );
  }
  if ((!failure.closed && isTransient(error)) || failure.outOfTime) return unavailable();
  return new HabPodRoleError(ExitCode.software, `Unexpected failure talking to the API server: ${brief(error)}.`, { cause: error });
}

/** The HTTP status behind a failed call, if the API server answered. */
export function statusOf(error: unknown): number | undefined {
  const cause = error instanceof ApiCallError ? error.cause : undefined;
  return cause instanceof ApiStatusError ? cause.status : undefined;
}

/** Whether a conditional write lost a race (the pod changed since it was read): read again and retry. */
export function lostRace(error: unknown): boolean {
  return statusOf(error) === 409;
}

/** A 401 or 403: the server refused who this is, or what it asked. */
export function isRefusal(error: unknown): error is ApiStatusError {
  return error instanceof ApiStatusError && (error.status === 401 || error.status === 403);
}

/** A failure of the connection, not of the request (a TLS failure is neither): trying again may work. */
export function isTransient(error: unknown): boolean {
  if (isTlsError(error)) return false;
  const code = (error as NodeJS.ErrnoException)?.code;
  return (error as Error)?.name === 'TimeoutError' || (code !== undefined && transientNetworkCodes.has(code));
}

function isTlsError(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException)?.code ?? '';
  return code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL') || /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|LEAF_SIGNATURE/.test(code);
}

/** A short description of an error for a log line or a message: never headers, so never a token. */
export function brief(error: unknown): string {
  if (error instanceof ApiStatusError) return `${error.status} ${error.reason}`;
  const e = error as NodeJS.ErrnoException;
  return e?.code ? `${e.code}${e.message && !e.message.includes(e.code) ? ` ${e.message}` : ''}` : String(e?.message ?? error);
}
