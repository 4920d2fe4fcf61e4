// The command line without a cluster: every mistake is one sentence and a documented exit code, and nothing is sent.

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { main } from '../src/cli.ts';
import { ExitCode } from '../src/errors.ts';
import { matrix } from './support/matrix.ts';

let stderr: string;
let stdout: string;
beforeEach(() => {
  stderr = '';
  stdout = '';
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => ((stderr += String(chunk)), true));
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((stdout += String(chunk)), true));
  // yargs prints help and the version through console.log.
  vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => void (stdout += `${args.join(' ')}\n`));
});
afterEach(() => {
  vi.restoreAllMocks();
});

/** Runs the command line once as a bad input; its stderr must be exactly one line. */
async function refused(argv: string[]): Promise<{ code: number; line: string }> {
  matrix.inputs();
  stderr = '';
  const code = await main(argv);
  const lines = stderr.split('\n').filter((l) => l !== '');
  expect(lines).toHaveLength(1);
  return { code, line: lines[0]! };
}

describe('usage errors (64), each in one sentence', () => {
  it('names an unknown command and the ones there are', async () => {
    expect(await refused(['lable'])).toEqual({ code: ExitCode.usage, line: 'hab-pod-role: error: Unknown command: lable; name one of apply, run, status or rbac (see hab-pod-role --help).' });
  });

  it('quotes a --timeout that is not a number as typed', async () => {
    expect(await refused(['apply', '-c', 'e.toml', '--timeout', 'abc'])).toEqual({ code: ExitCode.usage, line: 'hab-pod-role: error: --timeout must be a positive number of seconds, not "abc"; see hab-pod-role --help.' });
    expect((await refused(['status', '--request-timeout=0'])).line).toBe('hab-pod-role: error: --request-timeout must be a positive number of seconds, not "0"; see hab-pod-role --help.');
  });

  it('names an unknown flag once, as typed', async () => {
    expect(await refused(['apply', '-c', 'e.toml', '--lable-key', 'x'])).toEqual({ code: ExitCode.usage, line: 'hab-pod-role: error: Unknown argument: --lable-key; see hab-pod-role --help.' });
  });

  it('asks for the election file', async () => {
    const { code, line } = await refused(['apply']);
    expect(code).toBe(ExitCode.usage);
    expect(line).toMatch(/^hab-pod-role: error: No election file given: pass --config PATH/);
  });

  it('refuses a bad label key from a flag before reading anything', async () => {
    const { code, line } = await refused(['status', '--label-key', 'kubernetes.io/role']);
    expect(code).toBe(ExitCode.usage);
    expect(line).toMatch(/^hab-pod-role: error: --label-key: label key "kubernetes.io\/role" is under a prefix Kubernetes reserves/);
  });

  it('logs the refusal as JSON when asked to, even before the arguments parse', async () => {
    const { code, line } = await refused(['apply', '--log-format', 'json', '--bogus']);
    expect(code).toBe(ExitCode.usage);
    expect(JSON.parse(line)).toMatchObject({ level: 'error', msg: 'Unknown argument: --bogus; see hab-pod-role --help.' });
  });
});

describe('rbac', () => {
  it('prints the manifest for a namespace to stdout, and nothing on stderr', async () => {
    expect(await main(['rbac', '--namespace', 'redis'])).toBe(ExitCode.ok);
    expect(stdout).toMatch(/^# The objects hab-pod-role's pods need, as printed by: hab-pod-role rbac --namespace redis\n/);
    expect(stderr).toBe('');
  });

  it('refuses a namespace that is not a DNS label', async () => {
    expect((await refused(['rbac', '--namespace', 'Redis'])).code).toBe(ExitCode.usage);
    expect(stdout).toBe('');
  });
});

describe('help and version', () => {
  it('prints the version and exits 0', async () => {
    expect(await main(['--version'])).toBe(ExitCode.ok);
    expect(stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });
});
