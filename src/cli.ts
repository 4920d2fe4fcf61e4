// The command line: parses arguments, runs a command, and turns every failure into one sentence and an exit code.

import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { apply, describeOutcome } from './apply.ts';
import { ExitCode, HabPodRoleError } from './errors.ts';
import { createLogger, type LogFormat, type Logger } from './log.ts';
import { defaults, type CommonOptions } from './settings.ts';

const version = process.env.HAB_POD_ROLE_VERSION_OVERRIDE ?? '0.1.0';

function commonOptions<T>(y: Argv<T>) {
  return y
    .option('config', { alias: 'c', type: 'string', describe: 'Election file rendered by the Supervisor (TOML)' })
    .option('label-key', { type: 'string', describe: 'Label key for the role [default: role, or label.key in the file]' })
    .option('leader-value', { type: 'string', describe: 'Label value for the leader [default: leader]' })
    .option('follower-value', { type: 'string', describe: 'Label value for a follower [default: follower]' })
    .option('pod', { type: 'string', describe: 'Pod to label [default: POD_NAME, else HOSTNAME]' })
    .option('namespace', { alias: 'n', type: 'string', describe: "Pod's namespace [default: POD_NAMESPACE, else the service account's]" })
    .option('kubeconfig', { type: 'string', describe: 'Kubeconfig to use instead of in-cluster credentials [default: KUBECONFIG]' })
    .option('service-account-dir', { type: 'string', describe: `Directory with token, ca.crt, namespace [default: ${defaults.serviceAccountDir}]` })
    .option('timeout', { type: 'number', default: defaults.timeoutSeconds, describe: 'Seconds to keep retrying the API server before giving up' })
    .option('request-timeout', { type: 'number', default: defaults.requestTimeoutSeconds, describe: 'Seconds one API request may take' })
    .option('dry-run', { type: 'string', describe: 'client: print the patch, send nothing; server: have the API server validate it, persist nothing' })
    .option('force', { type: 'boolean', default: false, describe: 'Overwrite a role key that holds neither role value' })
    .option('verbose', { alias: 'v', type: 'boolean', default: false, describe: 'Say where identity and credentials came from, and each API request' })
    .option('log-format', { choices: ['text', 'json'] as const, default: 'text' as const, describe: 'Format of the log lines on stderr' });
}

export async function main(argv: string[]): Promise<number> {
  // Until the arguments are parsed, a usage error is logged in the format the caller most likely asked for.
  let log: Logger = createLogger({ format: earlyLogFormat(argv), verbose: argv.includes('--verbose') || argv.includes('-v') });
  try {
    await yargs(argv)
      .scriptName('hab-pod-role')
      .usage('$0 <command> [options]\n\nPuts a Habitat leader election result on this pod as a role label.')
      // Every option can also come from the environment: --label-key from HAB_POD_ROLE_LABEL_KEY, and so on.
      .env('HAB_POD_ROLE')
      // `--no-x` negation would make a mistyped `--no-such` read as an unknown `such`: flags mean what they say.
      .parserConfiguration({ 'populate--': true, 'parse-positional-numbers': false, 'boolean-negation': false })
      .strict()
      .exitProcess(false)
      .version(version)
      .help()
      .fail((message, error) => {
        throw error ?? new HabPodRoleError(ExitCode.usage, `${usageMessage(message, argv)}; see hab-pod-role --help.`);
      })
      .command(
        'apply',
        'Label this pod as the election file says, then exit',
        (y) => commonOptions(y),
        async (args) => {
          log = createLogger({ format: args.logFormat as LogFormat, verbose: args.verbose });
          const outcome = await apply(args as unknown as CommonOptions, log, (text) => process.stdout.write(text));
          log.info(describeOutcome(outcome), { requests: outcome.requestsSent });
        },
      )
      .demandCommand(1, 'Name a command: apply')
      .parseAsync();
    return ExitCode.ok;
  } catch (error) {
    if (error instanceof HabPodRoleError) {
      log.error(error.message);
      log.debug('cause', { cause: String((error.cause as Error)?.stack ?? error.cause ?? '') });
      return error.exitCode;
    }
    log.error(`Unexpected failure (a bug; please report it): ${(error as Error)?.message ?? String(error)}`);
    log.debug('stack', { stack: (error as Error)?.stack });
    return ExitCode.software;
  }
}

/** yargs lists an unknown `--some-flag` twice (as some-flag and someFlag) and without dashes: name each once, as typed. */
function usageMessage(message: string, argv: string[]): string {
  const unknown = /^Unknown arguments?: (.*)$/.exec(message);
  if (!unknown) return message.replace(/\.$/, '');
  const names = unknown[1]!.split(', ');
  const camel = (n: string) => n.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
  const typed = names
    .filter((n) => !names.some((other) => other !== n && camel(other) === n))
    .map((n) => (argv.includes(n) ? n : n.length === 1 ? `-${n}` : `--${n}`));
  return `Unknown argument${typed.length > 1 ? 's' : ''}: ${typed.join(', ')}`;
}

function earlyLogFormat(argv: string[]): LogFormat {
  const i = argv.findIndex((a) => a === '--log-format' || a.startsWith('--log-format='));
  const value = i === -1 ? process.env.HAB_POD_ROLE_LOG_FORMAT : argv[i]!.includes('=') ? argv[i]!.split('=')[1] : argv[i + 1];
  return value === 'json' ? 'json' : 'text';
}
