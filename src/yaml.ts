// Pure YAML writer for the manifests the tool prints: block maps and lists, flow lists of scalars, comments.

/** A value with comment lines printed above it (above its key, or above its list item). */
export class Commented {
  readonly comment: string[];
  readonly value: unknown;

  constructor(comment: string[], value: unknown) {
    this.comment = comment;
    this.value = value;
  }
}

export const commented = (comment: string[], value: unknown) => new Commented(comment, value);

/** The value with every comment taken off: what goes to the API server. */
export function plain<T>(value: T): T {
  if (value instanceof Commented) return plain(value.value) as T;
  if (Array.isArray(value)) return value.map(plain) as T;
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)])) as T;
  return value;
}

/** The documents as one YAML stream, separated by `---`. */
export function toYaml(documents: unknown[]): string {
  return documents.map((d) => {
    const { comment, value } = unwrap(d);
    return [...comment.map((c) => `# ${c}`), ...mapLines(value as Record<string, unknown>, '')].join('\n');
  }).join('\n---\n') + '\n';
}

function mapLines(map: Record<string, unknown>, indent: string): string[] {
  return Object.entries(map).flatMap(([key, entry]) => {
    const { comment, value } = unwrap(entry);
    const head = [...comment.map((c) => `${indent}# ${c}`), `${indent}${scalar(key)}:`];
    return withValue(head, value, indent);
  });
}

/** `head` ends with `key:` or `-`; the value goes on that line when it fits there, below it otherwise. */
function withValue(head: string[], value: unknown, indent: string): string[] {
  const last = head.length - 1;
  const inline = (text: string) => [...head.slice(0, last), `${head[last]} ${text}`];
  // A literal block keeps multi-line CEL readable; one that starts with a space would need an indentation indicator.
  if (typeof value === 'string' && value.includes('\n') && !/^\s/.test(value)) {
    return [...inline(value.endsWith('\n') ? '|' : '|-'), ...value.replace(/\n$/, '').split('\n').map((l) => (l ? `${indent}  ${l}` : ''))];
  }
  if (Array.isArray(value)) {
    if (value.every((v) => !(v instanceof Commented) && (v === null || typeof v !== 'object'))) return inline(`[${value.map(quoted).join(', ')}]`);
    return [...head, ...value.flatMap((item) => listItem(item, `${indent}  `))];
  }
  if (value !== null && typeof value === 'object') {
    return Object.keys(value).length === 0 ? inline('{}') : [...head, ...mapLines(value as Record<string, unknown>, `${indent}  `)];
  }
  return inline(scalar(value));
}

function listItem(entry: unknown, indent: string): string[] {
  const { comment, value } = unwrap(entry);
  const comments = comment.map((c) => `${indent}# ${c}`);
  if (value !== null && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length > 0) {
    // The first key shares the dash's line; the rest line up under it.
    const [first, ...rest] = mapLines(value as Record<string, unknown>, `${indent}  `);
    return [...comments, `${indent}- ${first!.trimStart()}`, ...rest];
  }
  return withValue([...comments, `${indent}-`], value, indent);
}

function unwrap(entry: unknown): { comment: string[]; value: unknown } {
  return entry instanceof Commented ? { comment: entry.comment, value: entry.value } : { comment: [], value: entry };
}

// Plain scalars YAML reads back as the same string: no indicators, no words YAML 1.1 reads as booleans or null.
const plainPattern = /^[A-Za-z_][A-Za-z0-9._/-]*$/;
const ambiguous = /^(y|yes|n|no|true|false|on|off|null)$/i;

function scalar(value: unknown): string {
  if (typeof value === 'string') return plainPattern.test(value) && !ambiguous.test(value) ? value : JSON.stringify(value);
  return value === null || value === undefined ? 'null' : String(value);
}

/** In flow lists, strings are always quoted, as Kubernetes' own examples write `verbs: ["get"]`. */
function quoted(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : scalar(value);
}
