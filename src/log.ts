// Log lines on stderr only (stdout belongs to the service), as prefixed text or as JSON.

export type LogFormat = 'text' | 'json';
export type Fields = Record<string, string | number | boolean | null | undefined>;

export interface Logger {
  info(message: string, fields?: Fields): void;
  warn(message: string, fields?: Fields): void;
  error(message: string, fields?: Fields): void;
  /** Shown only with --verbose. */
  debug(message: string, fields?: Fields): void;
}

const prefix = 'hab-pod-role';

export function createLogger(options: { format: LogFormat; verbose: boolean; write?: (line: string) => void }): Logger {
  const write = options.write ?? ((line: string) => process.stderr.write(line));
  const emit = (level: string, message: string, fields: Fields = {}) => {
    if (options.format === 'json') {
      write(`${JSON.stringify({ time: new Date().toISOString(), level, msg: message, ...fields })}\n`);
      return;
    }
    const tag = level === 'info' ? '' : `${level}: `;
    const extra = Object.entries(fields)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => ` ${k}=${typeof v === 'string' && /[\s"]/.test(v) ? JSON.stringify(v) : String(v)}`)
      .join('');
    write(`${prefix}: ${tag}${message}${extra}\n`);
  };
  return {
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warning', m, f),
    error: (m, f) => emit('error', m, f),
    debug: (m, f) => {
      if (options.verbose) emit('debug', m, f);
    },
  };
}
