// Marks what a test adds to the failure matrix (faults tried, bad inputs tried, writes that should not have happened); the summary reporter adds it up.

import { TestRunner } from 'vitest';

export interface MatrixCount {
  faults: number;
  inputs: number;
  /** Observed, not assumed: the test counts the writes it saw where it expects none, then asserts. */
  unwantedWrites: number;
}

declare module 'vitest' {
  interface TaskMeta {
    matrix?: MatrixCount;
  }
}

function add(part: Partial<MatrixCount>): void {
  const test = TestRunner.getCurrentTest();
  if (!test) throw new Error('matrix counts belong inside a test');
  const count = (test.meta.matrix ??= { faults: 0, inputs: 0, unwantedWrites: 0 });
  for (const key of Object.keys(part) as (keyof MatrixCount)[]) count[key] += part[key] ?? 0;
}

export const matrix = {
  /** A fault of the API server, network, credentials, signals or service, injected in this test. */
  fault: (n = 1) => add({ faults: n }),
  /** Bad input (file, flags, environment) given to the tool in this test. */
  inputs: (n = 1) => add({ inputs: n }),
  /** Writes seen where none should be; pass 0 when the check found none, so the total is counted, not assumed. */
  unwantedWrites: (n: number) => add({ unwantedWrites: n }),
};
