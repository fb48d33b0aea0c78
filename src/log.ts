import winston from 'winston';

export type Logger = winston.Logger;

export interface LogOptions {
  level: string;
  format: 'text' | 'json';
}

/** One structured line per event: logfmt-like text (containerd's shape) or JSON (CRI-O's). */
export function createLogger(opts: LogOptions): Logger {
  const text = winston.format.printf((info) => {
    const { level, message, timestamp, ...rest } = info as Record<string, unknown>;
    const fields = Object.entries(rest)
      .filter(([k]) => typeof k === 'string')
      .map(([k, v]) => `${k}=${formatValue(v)}`)
      .join(' ');
    return `time="${String(timestamp)}" level=${String(level)} msg=${JSON.stringify(String(message))}${fields ? ' ' + fields : ''}`;
  });
  return winston.createLogger({
    level: opts.level,
    format: winston.format.combine(
      winston.format.timestamp(),
      opts.format === 'json' ? winston.format.json() : text,
    ),
    transports: [new winston.transports.Console({ stderrLevels: Object.keys(winston.config.npm.levels) })],
  });
}

function formatValue(v: unknown): string {
  if (typeof v === 'string') return /^[\w./:@-]+$/.test(v) ? v : JSON.stringify(v);
  if (v instanceof Error) return JSON.stringify(v.message);
  return JSON.stringify(v);
}

/** A logger that drops everything (unit tests). */
export function silentLogger(): Logger {
  return winston.createLogger({ silent: true, transports: [new winston.transports.Console({ silent: true })] });
}
