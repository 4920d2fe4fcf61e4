// The command line: parses arguments, runs a command, and turns every failure into one sentence and an exit code.

import type { ArgumentsCamelCase, Argv, InferredOptionTypes } from 'yargs';
import packageJson from '../package.json' with { type: 'json' };
import { camel, quickParse, type OptionSpecs } from './argv.ts';
import { applyNewest, clientDryRun, describeOutcome, prepareApply, readGroup, type ApplyOutcome } from './apply.ts';
import { userError } from './api-errors.ts';
import { connect } from './connect.ts';
import { readElectionFile } from './election.ts';
import { resolvePodIdentity } from './identity.ts';
import { formatTable, leaderProblem, statusRows } from './status.ts';
import { ExitCode, HabPodRoleError, usageError } from './errors.ts';
import { createLogger, type LogFormat, type Logger } from './log.ts';
import { checkGroupSelectorOption, defaults, desiredLabel, parseSeconds, type CommonOptions } from './settings.ts';


/** The options of apply, run and status: told to yargs, and read by quickParse, from this one table. */
const commonOptionSpecs = {
  config: { alias: 'c', type: 'string', describe: 'Election file rendered by the Supervisor (TOML)' },
  'label-key': { type: 'string', describe: 'Label key for the role [default: role, or label.key in the file]' },
  'leader-value': { type: 'string', describe: 'Label value for the leader [default: leader]' },
  'follower-value': { type: 'string', describe: 'Label value for a follower [default: follower]' },
  'group-selector': { type: 'string', describe: 'Label selector of the pods that share the election [default: group.selector in the file, else the pods with the same controller]' },
  pod: { type: 'string', describe: 'Pod to label [default: POD_NAME, else HOSTNAME]' },
  namespace: { alias: 'n', type: 'string', describe: "Pod's namespace [default: POD_NAMESPACE, else the service account's]" },
  kubeconfig: { type: 'string', describe: 'Kubeconfig to use instead of in-cluster credentials [default: KUBECONFIG]' },
  'service-account-dir': { type: 'string', describe: `Directory with token, ca.crt, namespace [default: ${defaults.serviceAccountDir}]` },
  // Read by parseSeconds, not as type number: yargs would turn "abc" into NaN before a message could quote it.
  timeout: { coerce: (v: unknown) => parseSeconds('--timeout', v), default: defaults.timeoutSeconds, describe: 'Seconds to keep retrying the API server before giving up [number]' },
  'request-timeout': { coerce: (v: unknown) => parseSeconds('--request-timeout', v), default: defaults.requestTimeoutSeconds, describe: 'Seconds one API request may take [number]' },
  'dry-run': { type: 'string', describe: 'client: print the patch, send nothing; server: have the API server validate it, persist nothing' },
  force: { type: 'boolean', default: false, describe: 'Overwrite a role key that holds neither role value' },
  verbose: { alias: 'v', type: 'boolean', default: false, describe: 'Say where identity and credentials came from, and each API request' },
  'log-format': { choices: ['text', 'json'] as const, default: 'text' as const, describe: 'Format of the log lines on stderr' },
} as const satisfies OptionSpecs;

const runOptionSpecs = {
  ...commonOptionSpecs,
  watch: { type: 'boolean', default: true, describe: 'Follow election file changes and repair label drift while the service runs (--no-watch: label once)' },
  'start-on-label-error': { type: 'boolean', default: false, describe: 'Start the service even if labelling fails (after removing a leader value, if possible)' },
} as const satisfies OptionSpecs;

const statusOptionSpecs = {
  ...commonOptionSpecs,
  output: { alias: 'o', choices: ['table', 'json'] as const, default: 'table' as const, describe: 'Table for people, JSON for scripts' },
} as const satisfies OptionSpecs;

const rbacOptionSpecs = {
  namespace: { alias: 'n', type: 'string', default: 'default', describe: 'Namespace of the pods' },
  'service-account': { type: 'string', default: 'hab-pod-role', describe: 'Service account the pods run as (names the other objects too)' },
  'label-key': { type: 'string', describe: 'Label key the policy lets the account write [default: role]' },
  'leader-value': { type: 'string', describe: 'Label value for the leader [default: leader]' },
  'follower-value': { type: 'string', describe: 'Label value for a follower [default: follower]' },
  policy: { type: 'boolean', default: true, describe: 'Include the ValidatingAdmissionPolicy (--no-policy: RBAC only, for Kubernetes < 1.30)' },
  'log-format': { choices: ['text', 'json'] as const, default: 'text' as const, describe: 'Format of the log lines on stderr' },
} as const satisfies OptionSpecs;

/** Parsed arguments, as far as logging goes: every command has --log-format, most --verbose. */
type LogOptions = { [option: string]: unknown };

interface Command {
  describe: string;
  specs: OptionSpecs;
  usage?: string | undefined;
  /** Runs the command on its parsed arguments (from quickParse or from yargs). */
  run: (args: Record<string, unknown>, log: Logger) => Promise<number>;
}

/** A command whose `run` gets its arguments typed as its options declare them. */
function command<S extends OptionSpecs>(describe: string, specs: S, run: (args: ArgumentsCamelCase<InferredOptionTypes<S>>, log: Logger) => Promise<number>, usage?: string): Command {
  return { describe, specs, usage, run: (args, log) => run(args as ArgumentsCamelCase<InferredOptionTypes<S>>, log) };
}

export const commands: Record<string, Command> = {
  apply: command('Label this pod as the election file says, then exit', commonOptionSpecs, async (args, log) => {
    const outcome = await apply(args, log);
    log.info(describeOutcome(outcome), { requests: outcome.requestsSent });
    return ExitCode.ok;
  }),
  run: command(
    'Label this pod, then run the service (after --) and keep the label in step with the election',
    runOptionSpecs,
    async (args, log) => {
      // Loaded only here: a hook running apply never pays for spawning, the keeper or the watches.
      const { run } = await import('./run.ts');
      return run(args, log);
    },
    '$0 run [options] -- <service> [args...]',
  ),
  status: command("Show the group's pods and their roles; exit 1 unless exactly one leads", statusOptionSpecs, (args, log) => status(args, log)),
  rbac: command(
    "Print what the tool's account needs in a namespace: ServiceAccount, Role, RoleBinding, and the admission policy that confines it",
    rbacOptionSpecs,
    async (args) => {
      // Loaded only here: hooks never pay for the manifests.
      const { rbacManifest } = await import('./rbac.ts');
      process.stdout.write(rbacManifest(args));
      return ExitCode.ok;
    },
    '$0 rbac [options] | kubectl apply -f -',
  ),
};

/**
 * One command's arguments as yargs parses them. Just the named command's options: going through yargs'
 * command tree would lay out the whole help text on every start (yargs caches it when a command handler
 * runs), ~10 ms a hook never prints.
 */
export async function parseCommand(name: string, args: string[]): Promise<Record<string, unknown>> {
  return withOptions(commands[name]!)(await parser(args, [name, ...args]))
    .check((parsed) => parsed._.length === 0 || `Unknown argument${parsed._.length > 1 ? 's' : ''}: ${parsed._.join(', ')}`)
    .parseAsync();
}

/** A command's options, as yargs is told them. */
const withOptions = (command: Command) => (y: Argv) => (command.usage ? y.usage(command.usage) : y).options(command.specs);

export async function main(argv: string[]): Promise<number> {
  // Until the arguments are parsed, a usage error is logged in the format the caller most likely asked for.
  let log: Logger = createLogger({ format: earlyLogFormat(argv), verbose: argv.includes('--verbose') || argv.includes('-v') });
  const started = (args: LogOptions) => (log = createLogger({ format: args.logFormat === 'json' ? 'json' : 'text', verbose: args.verbose === true }));
  try {
    const command = Object.hasOwn(commands, argv[0] ?? '') ? commands[argv[0]!]! : undefined;
    const ownArgs = argv.includes('--') ? argv.slice(0, argv.indexOf('--')) : argv;
    if (command && !ownArgs.some((a) => a === '--help' || a === '-h' || a === '--version')) {
      // What hooks do, read without loading yargs when the line is one quickParse reads as yargs would.
      const quick = quickParse(command.specs, argv.slice(1), process.env, envPrefix);
      if (quick) return await command.run(quick, started(quick));
      const args = await parseCommand(argv[0]!, argv.slice(1));
      return await command.run(args, started(args));
    }
    if (!command && argv[0] !== undefined && !argv[0].startsWith('-')) throw usageError(`Unknown command: ${argv[0]}; name one of apply, run, status or rbac (see hab-pod-role --help).`);
    // Help, the version, or no command: the whole command tree, which yargs documents.
    let exitCode: number = ExitCode.ok;
    let tree = (await parser(argv, argv))
      .usage('$0 <command> [options]\n\nPuts a Habitat leader election result on this pod as a role label.')
      .version(packageJson.version)
      .help()
      .alias('help', 'h');
    for (const [name, each] of Object.entries(commands)) {
      tree = tree.command(name, each.describe, withOptions(each), async (args) => {
        exitCode = await each.run(args, started(args));
      });
    }
    await tree.demandCommand(1, 'Name a command: apply, run, status or rbac').parseAsync();
    return exitCode;
  } catch (caught) {
    // The client says what happened; here, at the edge, a failed API call becomes its sentence.
    const error = userError(caught);
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

/** Every option can also come from the environment: --label-key from HAB_POD_ROLE_LABEL_KEY, and so on. */
const envPrefix = 'HAB_POD_ROLE';

/**
 * yargs set up as every command line is parsed: options from the environment too, strict, and failures as
 * usage errors. Loaded only here, for what quickParse leaves to it: help, the version, and mistakes.
 */
async function parser(args: string[], argv: string[]): Promise<Argv> {
  const { default: yargs } = await import('yargs');
  return (
    yargs(args)
      .scriptName('hab-pod-role')
      .env(envPrefix)
      .parserConfiguration({ 'populate--': true, 'parse-positional-numbers': false })
      .strict()
      .exitProcess(false)
      .help(false)
      .version(false)
      .fail((message, error) => {
        // yargs passes on what a command threw, and re-throws what an option's coerce threw as its own YError (message only).
        if (error && error.name !== 'YError') throw error;
        throw new HabPodRoleError(ExitCode.usage, `${usageMessage(message ?? error!.message, argv)}; see hab-pod-role --help.`);
      })
  );
}

async function apply(options: CommonOptions, log: Logger): Promise<ApplyOutcome> {
  const request = prepareApply(options, log);
  if (request.dryRun === 'client') {
    const { text, outcome } = clientDryRun(request);
    process.stdout.write(text);
    return outcome;
  }
  const { client } = await connect(options, request.serviceAccountDir, log);
  try {
    return (await applyNewest(client, request, log, client.deadline())).outcome;
  } finally {
    client.close();
  }
}

/** Reads the group as the file (if any), flags and environment define it, and prints it. */
async function status(options: CommonOptions & { output: 'table' | 'json' }, log: Logger): Promise<number> {
  const serviceAccountDir = options.serviceAccountDir ?? defaults.serviceAccountDir;
  checkGroupSelectorOption(options);
  // Without a file, the group and its label are as flags, environment and the defaults say.
  const file = options.config ? readElectionFile(options.config) : { election: { leader: false, follower: false, finished: false }, label: {}, group: {} };
  const { scheme, group } = desiredLabel(file, options, options.config ?? 'defaults');
  const identity = resolvePodIdentity(options, serviceAccountDir);
  const { client } = await connect(options, serviceAccountDir, log);
  try {
    const { members } = await readGroup(client, identity, group, client.deadline());
    const rows = statusRows(members, scheme);
    process.stdout.write(options.output === 'json' ? `${JSON.stringify({ key: scheme.key, pods: rows }, null, 2)}\n` : formatTable(rows, scheme));
    const problem = leaderProblem(rows, scheme);
    if (!problem) return ExitCode.ok;
    log.error(problem);
    return ExitCode.notOneLeader;
  } finally {
    client.close();
  }
}

/** yargs lists an unknown `--some-flag` twice (as some-flag and someFlag) and without dashes: name each once, as typed. */
function usageMessage(message: string, argv: string[]): string {
  const unknown = /^Unknown arguments?: (.*)$/.exec(message);
  if (!unknown) return message.replace(/\.$/, '');
  const names = unknown[1]!.split(', ');
  const typed = names
    .filter((n) => !names.some((other) => other !== n && camel(other) === n))
    .map((n) => (argv.includes(n) ? n : argv.includes(`--no-${n}`) ? `--no-${n}` : n.length === 1 ? `-${n}` : `--${n}`));
  return `Unknown argument${typed.length > 1 ? 's' : ''}: ${typed.join(', ')}`;
}

function earlyLogFormat(argv: string[]): LogFormat {
  const i = argv.findIndex((a) => a === '--log-format' || a.startsWith('--log-format='));
  const value = i === -1 ? process.env.HAB_POD_ROLE_LOG_FORMAT : argv[i]!.includes('=') ? argv[i]!.split('=')[1] : argv[i + 1];
  return value === 'json' ? 'json' : 'text';
}
