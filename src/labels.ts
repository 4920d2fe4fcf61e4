// Pure label logic: Kubernetes name and label syntax, how the role is written, and the patch that applies it.

/** How the role is written on the pod. */
export interface LabelScheme {
  key: string;
  leader: string;
  follower: string;
}

export const defaultLabelScheme: LabelScheme = { key: 'role', leader: 'leader', follower: 'follower' };

// Syntax as in k8s.io/apimachinery/pkg/util/validation (IsQualifiedName, IsValidLabelValue).
const nameMaxLength = 63;
const prefixMaxLength = 253;
const namePattern = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const dnsSubdomainPattern = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const dnsLabelPattern = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const reservedDomains = ['kubernetes.io', 'k8s.io'];

/** A DNS subdomain (RFC 1123), as pod names and label key prefixes are: lower case, digits, '-' and '.', at most 253 characters. */
export const isDnsSubdomain = (name: string) => name.length <= prefixMaxLength && dnsSubdomainPattern.test(name);
/** A DNS label, as namespace names are: the same without '.', at most 63 characters. */
export const isDnsLabel = (name: string) => name.length <= nameMaxLength && dnsLabelPattern.test(name);

/** Returns why `key` is not a label key this tool may write, or undefined when it is fine. */
export function labelKeyProblem(key: string): string | undefined {
  const syntax = labelKeySyntaxProblem(key);
  if (syntax) return syntax;
  const slash = key.indexOf('/');
  const prefix = slash === -1 ? undefined : key.slice(0, slash);
  // Kubernetes reserves these domains and their subdomains for its own components.
  if (prefix !== undefined && reservedDomains.some((d) => prefix === d || prefix.endsWith(`.${d}`))) {
    return `label key "${key}" is under a prefix Kubernetes reserves (kubernetes.io, k8s.io); choose your own prefix`;
  }
  return undefined;
}

/** Why `key` is not a label key at all (selecting on a reserved key is fine; writing one is not). */
function labelKeySyntaxProblem(key: string): string | undefined {
  const slash = key.indexOf('/');
  const prefix = slash === -1 ? undefined : key.slice(0, slash);
  const name = slash === -1 ? key : key.slice(slash + 1);
  if (name.length === 0) return `label key "${key}" has an empty name`;
  if (name.length > nameMaxLength) return `label key "${key}" has a name longer than ${nameMaxLength} characters`;
  if (!namePattern.test(name)) {
    return `label key "${key}" must be letters, digits, '-', '_' or '.', starting and ending with a letter or digit (with an optional DNS prefix and '/')`;
  }
  if (prefix !== undefined && !isDnsSubdomain(prefix)) {
    return `label key prefix "${prefix}" must be a lowercase DNS subdomain of at most ${prefixMaxLength} characters`;
  }
  return undefined;
}

/**
 * Returns why `selector` is not a label selector the API server would take, or undefined when it is
 * fine: requirements separated by commas, each `key`, `!key`, `key=value`, `key==value`, `key!=value`,
 * `key in (a,b)`, `key notin (a,b)`, `key>n` or `key<n` (the grammar of k8s.io/apimachinery labels.Parse).
 * Checked here so a bad selector is refused before any request, naming where it came from.
 */
export function labelSelectorProblem(selector: string): string | undefined {
  const key = '([^\\s!=<>(),]+)';
  const value = '([^\\s!=<>(),]*)';
  const forms: [RegExp, (m: RegExpExecArray) => (string | undefined)[]][] = [
    [new RegExp(`^!\\s*${key}$`), (m) => [labelKeySyntaxProblem(m[1]!)]],
    [new RegExp(`^${key}$`), (m) => [labelKeySyntaxProblem(m[1]!)]],
    [new RegExp(`^${key}\\s*(?:==|=|!=)\\s*${value}$`), (m) => [labelKeySyntaxProblem(m[1]!), selectorValueProblem(m[2]!)]],
    [new RegExp(`^${key}\\s*[<>]\\s*(-?\\d+)$`), (m) => [labelKeySyntaxProblem(m[1]!)]],
    [new RegExp(`^${key}\\s+(?:in|notin)\\s*\\(([^()]*)\\)$`), (m) => [labelKeySyntaxProblem(m[1]!), ...m[2]!.split(',').map((v) => selectorValueProblem(v.trim()))]],
  ];
  for (const requirement of splitOutsideParentheses(selector)) {
    const text = requirement.trim();
    const form = forms.find(([pattern]) => pattern.test(text));
    if (!form) return `"${text}" is not a label selector requirement (key, !key, key=value, key!=value, key in (a,b), key notin (a,b))`;
    const problem = form[1](form[0].exec(text)!).find((p) => p !== undefined);
    if (problem) return problem;
  }
  return undefined;
}

/** A value in a selector may be empty; otherwise it follows the label value syntax. */
function selectorValueProblem(value: string): string | undefined {
  return value === '' ? undefined : labelValueProblem(value);
}

function splitOutsideParentheses(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '(') depth++;
    else if (text[i] === ')') depth--;
    else if (text[i] === ',' && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

/** Returns why `value` cannot be a role value, or undefined when it is fine. */
export function labelValueProblem(value: string): string | undefined {
  // Kubernetes allows an empty value, but a Service selecting on "" would match pods meant to be routable as neither.
  if (value.length === 0) return 'a role label value must not be empty';
  if (value.length > nameMaxLength) return `label value "${value}" is longer than ${nameMaxLength} characters`;
  if (!namePattern.test(value)) {
    return `label value "${value}" must be letters, digits, '-', '_' or '.', starting and ending with a letter or digit`;
  }
  return undefined;
}

/** A JSON merge patch that sets (or, with null, removes) one label and nothing else. */
export interface LabelPatch {
  metadata: { labels: Record<string, string | null> };
}

export function labelPatch(key: string, value: string | null): LabelPatch {
  return { metadata: { labels: { [key]: value } } };
}

/** Whether the pod's labels already say what the election says. */
export function labelIsCurrent(labels: Record<string, string> | undefined, key: string, value: string | null): boolean {
  const current = labels?.[key];
  return value === null ? current === undefined : current === value;
}

/** What applying an election to a pod's labels means: the value before, after, and the patch if one is needed. */
export interface LabelPlan {
  key: string;
  from: string | undefined;
  to: string | null;
  /** Undefined when the pod already says what the election says. */
  patch: LabelPatch | undefined;
}

/**
 * Plans the change for one pod. A value under the role key that is neither role value means the key
 * belongs to something else (say `app`, which a StatefulSet selects on): it is refused unless forced.
 */
export function planLabel(labels: Record<string, string> | undefined, scheme: LabelScheme, to: string | null, force: boolean): LabelPlan {
  const from = labels?.[scheme.key];
  if (from !== undefined && from !== scheme.leader && from !== scheme.follower && !force) {
    throw new ForeignLabelError(scheme.key, from, scheme);
  }
  const patch = labelIsCurrent(labels, scheme.key, to) ? undefined : labelPatch(scheme.key, to);
  return { key: scheme.key, from, to, patch };
}

export class ForeignLabelError extends Error {
  readonly key: string;
  readonly value: string;

  constructor(key: string, value: string, scheme: LabelScheme) {
    super(`label ${key}=${value} is neither "${scheme.leader}" nor "${scheme.follower}"`);
    this.key = key;
    this.value = value;
  }
}
