// A bad input's refusal: the HabPodRoleError a promise rejects with, as its exit code and sentence (counted in the failure matrix).

import { HabPodRoleError } from '../../src/errors.ts';
import { matrix } from './matrix.ts';

export async function refusal(promise: Promise<unknown>): Promise<{ code: number; message: string }> {
  matrix.inputs();
  const error = await promise.then(() => undefined, (e: unknown) => e);
  if (!(error instanceof HabPodRoleError)) throw error ?? new Error('expected a refusal');
  return { code: error.exitCode, message: error.message };
}
