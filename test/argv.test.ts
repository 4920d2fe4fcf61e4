// quickParse reads a command line exactly as yargs does, or leaves it to yargs: compared on generated lines and environments.

import { afterEach, describe, expect, it, vi } from 'vitest';
import { quickParse } from '../src/argv.ts';
import { commands, parseCommand } from '../src/cli.ts';
import { seeded } from './support/random.ts';

afterEach(() => {
  vi.unstubAllEnvs();
});

// Pieces of command lines: well-formed ones, and the kinds quickParse must leave to yargs.
const pieces: string[][] = [
  ['-c', 'e.toml'], ['--config', 'e.toml'], ['--config=e.toml'], ['--pod', 'redis-1'], ['--pod=12'], ['-n', 'db'], ['--namespace', 'db'],
  ['--label-key', 'example.com/role'], ['--leader-value=primary'], ['--follower-value', 'replica'], ['--group-selector', 'app=redis'],
  ['--kubeconfig', '/k'], ['--service-account-dir', '/sa'], ['--timeout', '5'], ['--timeout=2.5'], ['--request-timeout', '3'],
  ['--dry-run', 'client'], ['--dry-run=server'], ['--force'], ['-v'], ['--verbose'], ['--log-format', 'json'], ['--log-format=text'],
  ['--watch'], ['--no-watch'], ['--start-on-label-error'], ['-o', 'json'], ['--output', 'table'],
  // For yargs: bad values, unknown names, positionals, negations, values that look like flags, odd forms.
  ['--timeout', 'abc'], ['--timeout', '0'], ['--timeout', '-1'], ['--timeout', '1e3'], ['--timeout', '05'], ['--log-format', 'xml'], ['-o', 'yaml'],
  ['--no-force'], ['--force', 'true'], ['--force=false'], ['--verbose=true'], ['stray'], ['--pod'], ['--pod', '-x'], ['--pod', '--force'],
  ['--lable-key', 'x'], ['--labelKey', 'x'], ['-x'], ['-cv'], ['-c'], ['--config', ''], ['--pod=', 'x'], ['---pod', 'x'], ['--POD', 'x'],
];
const services: string[][] = [[], ['--'], ['--', 'redis-server', '--port', '6379'], ['--', 'sleep', '10']];
const environments: Record<string, string>[] = [
  {}, { HAB_POD_ROLE_SERVICE_ACCOUNT_DIR: '/sa' }, { HAB_POD_ROLE_LABEL_KEY: 'tier' }, { HAB_POD_ROLE_FORCE: 'true' }, { HAB_POD_ROLE_FORCE: 'yes' },
  { HAB_POD_ROLE_TIMEOUT: '7' }, { HAB_POD_ROLE_TIMEOUT: 'soon' }, { HAB_POD_ROLE_LOG_FORMAT: 'json' }, { HAB_POD_ROLE_LOG_FORMAT: 'xml' },
  { HAB_POD_ROLE_WATCH: 'false' }, { HAB_POD_ROLE_BOGUS: '1' }, { HAB_POD_ROLE_VERBOSE: 'true', HAB_POD_ROLE_CONFIG: '/e.toml' }, { HAB_POD_ROLE_C: 'x' },
];

/** yargs' answer for the line, with this environment: its arguments, or the message it refuses the line with. */
async function yargsParse(name: string, args: string[], env: Record<string, string>): Promise<Record<string, unknown> | string> {
  vi.unstubAllEnvs();
  for (const key of Object.keys(process.env)) if (key.startsWith('HAB_POD_ROLE_')) vi.stubEnv(key, undefined);
  for (const [key, value] of Object.entries(env)) vi.stubEnv(key, value);
  return parseCommand(name, args).catch((error: Error) => error.message);
}

describe('quickParse', () => {
  it('gives what yargs gives for every line it takes, across generated lines and environments, and takes the hooks\' lines', async () => {
    const rng = seeded(1602);
    let taken = 0;
    let left = 0;
    for (let i = 0; i < 1000; i++) {
      const name = rng.pick(['apply', 'run', 'status', 'rbac'] as const);
      const args = [...Array.from({ length: rng.int(5) }, () => rng.pick(pieces)).flat(), ...(name === 'run' ? rng.pick(services) : [])];
      const env = rng.pick(environments);
      const quick = quickParse(commands[name]!.specs, args, env, 'HAB_POD_ROLE');
      if (quick === undefined) {
        left++;
        continue;
      }
      taken++;
      expect(quick, `${name} ${args.join(' ')} with ${JSON.stringify(env)}`).toEqual(await yargsParse(name, args, env));
    }
    // Both kinds are really met: lines it reads, and lines it leaves to yargs.
    expect(taken).toBeGreaterThan(100);
    expect(left).toBeGreaterThan(100);
  });

  it('reads what the hooks and the resident run, with the service account directory from the environment', async () => {
    const env = { HAB_POD_ROLE_SERVICE_ACCOUNT_DIR: '/sa' };
    for (const [name, args] of [
      ['apply', ['-c', '/hab/svc/redis/config/election.toml']],
      ['apply', ['--config', '/e.toml', '--pod', 'redis-0', '-n', 'db', '--timeout', '10', '--log-format', 'json']],
      ['run', ['-c', '/e.toml', '--', 'redis-server', '/hab/svc/redis/config/redis.config']],
      ['status', ['-o', 'json', '--kubeconfig', '/k']],
    ] as const) {
      const quick = quickParse(commands[name]!.specs, [...args], env, 'HAB_POD_ROLE');
      expect(quick, `${name} ${args.join(' ')}`).toBeDefined();
      expect(quick).toEqual(await yargsParse(name, [...args], env));
    }
  });
});
