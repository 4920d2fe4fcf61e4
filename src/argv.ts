// A hook's command line read without yargs: the well-formed cases only, parsed exactly as yargs parses them, or not at all.

/** An option as yargs is told it (and as this reader reads it): the same object goes to both. */
export interface OptionSpec {
  alias?: string;
  type?: 'string' | 'boolean';
  default?: unknown;
  choices?: readonly string[];
  coerce?: (value: unknown) => unknown;
  describe: string;
}

export type OptionSpecs = Record<string, OptionSpec>;

/** An option's name as yargs also hands it over: `--dry-run` as `dryRun`. */
export const camel = (name: string) => name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
// What yargs-parser turns into a number when an option has no type; anything else is left to yargs.
const plainNumber = /^(0|[1-9][0-9]*)(\.[0-9]+)?$/;

/**
 * The arguments yargs would hand the command, for the cases every hook uses: `--name value`,
 * `--name=value`, a one-letter alias with its value, boolean flags, `--` and the service after it, and
 * options from HAB_POD_ROLE_* variables. Anything else (a positional, `--no-`, a repeated or unknown
 * option, a value that looks like a flag, a value a coerce or the choices refuse) gives undefined: yargs
 * then parses the line, and says what is wrong in its own words. Loading yargs costs a hook's start
 * about 10 ms, most of what the tool adds to Node's own start.
 */
export function quickParse(specs: OptionSpecs, args: string[], env: Record<string, string | undefined>, envPrefix: string): Record<string, unknown> | undefined {
  const names = new Map<string, string>();
  for (const [name, spec] of Object.entries(specs)) {
    names.set(name, name);
    if (spec.alias) names.set(spec.alias, name);
  }
  const given = new Map<string, unknown>();
  let service: string[] | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') {
      service = args.slice(i + 1);
      break;
    }
    const long = /^--([a-z][a-z-]*[a-z])(=(.*))?$/s.exec(arg);
    const short = /^-([a-z])$/.exec(arg);
    const name = long ? names.get(long[1]!) : short ? names.get(short[1]!) : undefined;
    // An unknown name, and a name typed twice (yargs makes a list of it), are yargs's to read.
    if (name === undefined || given.has(name)) return undefined;
    const spec = specs[name]!;
    let value: string | undefined = long?.[3];
    if (spec.type === 'boolean') {
      if (value !== undefined) return undefined;
      given.set(name, true);
      continue;
    }
    if (value === undefined) {
      value = args[++i];
      if (value === undefined || value.startsWith('-')) return undefined;
    }
    const read = typed(spec, value);
    if (read === undefined) return undefined;
    given.set(name, read.value);
  }
  for (const [key, raw] of Object.entries(env)) {
    if (!key.startsWith(`${envPrefix}_`) || raw === undefined) continue;
    const name = key.slice(envPrefix.length + 1).toLowerCase().replaceAll('_', '-');
    if (!Object.hasOwn(specs, name)) return undefined;
    if (given.has(name)) continue; // a flag wins over the environment, as in yargs
    const spec = specs[name]!;
    const read = spec.type === 'boolean' ? (raw === 'true' ? { value: true } : raw === 'false' ? { value: false } : undefined) : typed(spec, raw);
    if (read === undefined) return undefined;
    given.set(name, read.value);
  }
  const parsed: Record<string, unknown> = { _: [] };
  for (const [name, spec] of Object.entries(specs)) {
    let value = given.has(name) ? given.get(name) : spec.default;
    if (value === undefined) continue;
    if (spec.choices && !spec.choices.includes(value as string)) return undefined;
    if (spec.coerce) {
      try {
        value = spec.coerce(value);
      } catch {
        return undefined;
      }
    }
    for (const key of new Set([name, camel(name), ...(spec.alias ? [spec.alias] : [])])) parsed[key] = value;
  }
  // yargs names the service only when something follows `--`.
  if (service !== undefined && service.length > 0) parsed['--'] = service;
  parsed.$0 = 'hab-pod-role';
  return parsed;
}

/** A value as yargs-parser reads it for the option's type: a string, or for an untyped option a plain number. */
function typed(spec: OptionSpec, value: string): { value: unknown } | undefined {
  if (spec.type === 'string' || spec.choices) return { value };
  return plainNumber.test(value) ? { value: Number(value) } : undefined;
}
