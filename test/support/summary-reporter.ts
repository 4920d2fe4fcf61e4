// Prints the closing lines CI reads: the failure matrix's totals, then "N passed, N failed, N skipped".
import type { Reporter, TestModule } from 'vitest/node';
import './matrix.ts';

export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    const counts = { passed: 0, failed: 0, skipped: 0 };
    const matrix = { faults: 0, survived: 0, inputs: 0, handled: 0, unwantedWrites: 0 };
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        const count = test.meta().matrix;
        if (count) {
          matrix.faults += count.faults;
          matrix.inputs += count.inputs;
          matrix.unwantedWrites += count.unwantedWrites;
          if (state === 'passed') {
            matrix.survived += count.faults;
            matrix.handled += count.inputs;
          }
        }
        if (state === 'passed') counts.passed++;
        else if (state === 'failed') counts.failed++;
        else counts.skipped++;
      }
      // A hook that failed (beforeAll, afterAll) leaves its tests skipped: the suite is the failure.
      for (const suite of module.children.allSuites()) if (suite.errors().length > 0) counts.failed++;
      // So is a file that failed to load, or whose own hooks failed: it may have no tests to count.
      if (module.errors().length > 0 || (module.state() === 'failed' && module.children.size === 0)) counts.failed++;
    }
    counts.failed += unhandledErrors.length;
    const n = (x: number) => x.toLocaleString('en-US');
    if (matrix.faults + matrix.inputs > 0) {
      process.stdout.write(
        `\nfailure matrix: ${n(matrix.faults)} faults tried, ${n(matrix.survived)} survived; ${n(matrix.inputs)} bad inputs tried, ${n(matrix.handled)} handled; ${n(matrix.unwantedWrites)} writes that should not have happened\n`,
      );
    }
    process.stdout.write(`\n${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped\n`);
  }
}
