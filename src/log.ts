import winston from 'winston';

export type Logger = winston.Logger;

export interface LogOptions {
  level: string;
  format: 'text' | 'json';
  /** where lines go (default: stderr) */
  stream?: NodeJS.WritableStream;
}

/** The pod a line is about, for lines that name it only by id. */
export interface PodFields {
  podName: string;
  podNamespace: string;
}

/**
 * Resolves a line's `pod` (a pod id) or `container` (a CRI container id, or a containerizer key:
 * `<pod>` or `<pod>.<container>`) field to its pod's name and namespace; undefined when unknown.
 */
export type PodLookup = (fields: Record<string, unknown>) => PodFields | undefined;

const podLookups = new WeakMap<Logger, PodLookup>();

/** Every later line of `log` (and of its children) that names a known pod gets podName and podNamespace. */
export function setPodLookup(log: Logger, lookup: PodLookup): void {
  podLookups.set(log, lookup);
}

/** podName and podNamespace of a pod's metadata, for lines whose pod has no record (yet, or any more). */
export function podFields(metadata: { name?: string; namespace?: string } | null | undefined): Partial<PodFields> {
  return metadata ? { podName: metadata.name ?? '', podNamespace: metadata.namespace ?? '' } : {};
}

/**
 * One structured line per event. Text is logfmt-like (containerd's shape). JSON is one object per
 * line with the keys log shippers expect (logrus' and CRI-O's): `time` (RFC 3339, UTC, ms),
 * `level`, `msg`, then the fields, an error as `err` (its message).
 */
export function createLogger(opts: LogOptions): Logger {
  const text = winston.format.printf((info) => {
    const { level, message, timestamp, ...rest } = info as Record<string, unknown>;
    const fields = Object.entries(rest)
      .filter(([k]) => typeof k === 'string')
      .map(([k, v]) => `${k}=${formatValue(v)}`)
      .join(' ');
    return `time="${String(timestamp)}" level=${String(level)} msg=${JSON.stringify(String(message))}${fields ? ' ' + fields : ''}`;
  });
  const json = winston.format.printf((info) => {
    const { level, message, timestamp, ...rest } = info as Record<string, unknown>;
    const out: Record<string, unknown> = { time: timestamp, level, msg: message instanceof Error ? message.message : message };
    for (const [k, v] of Object.entries(rest)) {
      const key = k === 'error' ? 'err' : k;
      // A field named like a reserved key keeps its value under fields.<key>, as logrus does.
      out[RESERVED.has(key) ? `fields.${key}` : key] = v instanceof Error ? v.message : v;
    }
    return JSON.stringify(out, (_, v: unknown) => (typeof v === 'bigint' ? v.toString() : v instanceof Error ? v.message : v));
  });
  let logger: Logger | undefined;
  const pods = winston.format((info) => {
    const lookup = logger && podLookups.get(logger);
    if (lookup && info.podName === undefined && (info.pod !== undefined || info.container !== undefined)) {
      const p = lookup(info);
      if (p) Object.assign(info, p);
    }
    return info;
  });
  const transport = opts.stream
    ? new winston.transports.Stream({ stream: opts.stream })
    : new winston.transports.Console({ stderrLevels: Object.keys(winston.config.npm.levels) });
  logger = winston.createLogger({
    level: opts.level,
    format: winston.format.combine(pods(), winston.format.timestamp(), opts.format === 'json' ? json : text),
    transports: [transport],
  });
  dropBelowLevel(logger);
  return logger;
}

/**
 * winston builds, formats and pipes every line and drops one below the level only at the
 * transport: at the default level each debug line (two per read-only RPC) cost a timestamp,
 * the pod lookup, the printf and a stream hop for nothing. Lines below the level now stop
 * at the call; what is written does not change, and a later `logger.level` still counts.
 */
function dropBelowLevel(logger: Logger): void {
  const l = logger as unknown as Record<string, (...args: unknown[]) => Logger>;
  for (const level of Object.keys(logger.levels)) {
    const method = l[level]!;
    l[level] = function (this: Logger, ...args: unknown[]) {
      return logger.isLevelEnabled(level) ? method.apply(this, args) : this;
    };
  }
  const log = l.log!;
  l.log = function (this: Logger, level: unknown, ...args: unknown[]) {
    // log(info) with one object: its level is inside it
    const name = typeof level === 'string' ? level : (level as { level?: unknown } | null)?.level;
    return typeof name === 'string' && !logger.isLevelEnabled(name) ? this : log.apply(this, [level, ...args]);
  };
}

const RESERVED = new Set(['time', 'level', 'msg']);

function formatValue(v: unknown): string {
  if (typeof v === 'string') return /^[\w./:@-]+$/.test(v) ? v : JSON.stringify(v);
  if (v instanceof Error) return JSON.stringify(v.message);
  return JSON.stringify(v);
}

/** A logger that drops everything (unit tests). */
export function silentLogger(): Logger {
  return winston.createLogger({ silent: true, transports: [new winston.transports.Console({ silent: true })] });
}
