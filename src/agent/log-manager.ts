// Container log rotation, as the kubelet's container log manager (pkg/kubelet/logs/
// container_log_manager.go): every 10 s, each running container's log that reached
// --container-log-max-size is renamed to <log>.<YYYYMMDD-hhmmss> and the runtime is asked to
// reopen it (ReopenContainerLog); older rotated files are gzipped, and only
// --container-log-max-files - 2 of them are kept (with the live log and the one just rotated).
import { createReadStream, createWriteStream, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { Logger } from '../log.js';
import type { CriClient } from './cri-client.js';
import { isNotFound } from './cri-client.js';
import { Quantity } from './quantity.js';

export { DEFAULT_CONTAINER_LOG_MAX_SIZE, DEFAULT_CONTAINER_LOG_MAX_FILES } from './flag-defaults.js';
export const DEFAULT_CONTAINER_LOG_MONITOR_INTERVAL_MS = 10_000;
const COMPRESS_SUFFIX = '.gz';
const TMP_SUFFIX = '.tmp';

export interface LogPolicy {
  maxBytes: number;
  maxFiles: number;
}

/** Checks --container-log-max-size and --container-log-max-files as the kubelet's validation does. */
export function logPolicy(maxSize: string, maxFiles: number): LogPolicy {
  let q: Quantity;
  try {
    q = Quantity.parse(maxSize);
  } catch (err) {
    throw new Error(`--container-log-max-size ${JSON.stringify(maxSize)}: ${(err as Error).message}`);
  }
  if (q.sign() <= 0) throw new Error('--container-log-max-size must be greater than 0');
  if (!Number.isInteger(maxFiles) || maxFiles <= 1) throw new Error('--container-log-max-files must be greater than 1');
  return { maxBytes: q.value(), maxFiles };
}

/** "20060102-150405" in local time, as Go's Format of time.Now(). */
export function rotationTimestamp(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

export class ContainerLogManager {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly cri: CriClient,
    readonly policy: LogPolicy,
    private readonly log: Logger,
    readonly monitorIntervalMs = DEFAULT_CONTAINER_LOG_MONITOR_INTERVAL_MS,
  ) {}

  start(): void {
    const tick = async () => {
      if (this.stopped) return;
      await this.rotateLogs().catch((err) => this.log.warn('log rotation round failed', { error: (err as { details?: string }).details ?? (err as Error).message }));
      if (!this.stopped) this.timer = setTimeout(() => void tick(), this.monitorIntervalMs);
    };
    this.timer = setTimeout(() => void tick(), this.monitorIntervalMs);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /** One round over the running containers. */
  async rotateLogs(): Promise<void> {
    for (const c of await this.cri.listContainers()) {
      if (c.state !== 'CONTAINER_RUNNING') continue;
      let path: string;
      try {
        path = (await this.cri.containerStatus(c.id)).status?.log_path ?? '';
      } catch (err) {
        if (isNotFound(err)) continue;
        throw err;
      }
      if (!path) continue;
      let size = statSync(path, { throwIfNoEntry: false })?.size;
      if (size === undefined) {
        // A rotation that could not reopen may have lost the log: ask for it again.
        try {
          await this.cri.reopenContainerLog(c.id);
        } catch (err) {
          this.log.warn('cannot reopen a lost container log', { container: c.id, path, error: (err as { details?: string }).details ?? (err as Error).message });
          continue;
        }
        size = statSync(path, { throwIfNoEntry: false })?.size;
        if (size === undefined) continue;
      }
      if (size < this.policy.maxBytes) continue;
      try {
        await this.rotateLog(c.id, path);
      } catch (err) {
        this.log.warn('cannot rotate a container log', { container: c.id, path, error: (err as { details?: string }).details ?? (err as Error).message });
      }
    }
  }

  async rotateLog(id: string, log: string): Promise<void> {
    let logs = rotatedFiles(log);
    logs = this.cleanupUnusedLogs(logs);
    logs = this.removeExcessLogs(logs);
    for (const l of logs) if (!l.endsWith(COMPRESS_SUFFIX)) await compressLog(l);
    const rotated = `${log}.${rotationTimestamp(new Date())}`;
    renameSync(log, rotated);
    try {
      await this.cri.reopenContainerLog(id);
    } catch (err) {
      // Put it back, so that the next round tries again.
      renameSync(rotated, log);
      throw err;
    }
  }

  /** .tmp files and rotated files whose .gz exists were left by an interrupted round. */
  private cleanupUnusedLogs(logs: string[]): string[] {
    const inuse: string[] = [];
    for (const l of logs) {
      const unused = l.endsWith(TMP_SUFFIX) || (!l.endsWith(COMPRESS_SUFFIX) && logs.includes(l + COMPRESS_SUFFIX));
      if (unused) rmSync(l, { force: true });
      else inuse.push(l);
    }
    return inuse;
  }

  /** Keeps the newest maxFiles - 2 rotated files (the live log and the one about to rotate are the others). */
  private removeExcessLogs(logs: string[]): string[] {
    const sorted = [...logs].sort();
    const keep = Math.max(0, this.policy.maxFiles - 2);
    const excess = sorted.length - keep;
    for (const l of sorted.slice(0, Math.max(0, excess))) rmSync(l, { force: true });
    return sorted.slice(Math.max(0, excess));
  }
}

/** <log>.* beside the log. */
function rotatedFiles(log: string): string[] {
  const prefix = basename(log) + '.';
  try {
    return readdirSync(dirname(log))
      .filter((n) => n.startsWith(prefix))
      .map((n) => join(dirname(log), n));
  } catch {
    return [];
  }
}

/** gzip to <log>.gz through <log>.gz.tmp, then drop the original. */
async function compressLog(log: string): Promise<void> {
  const tmp = log + COMPRESS_SUFFIX + TMP_SUFFIX;
  await pipeline(createReadStream(log), createGzip(), createWriteStream(tmp, { mode: 0o644 }));
  renameSync(tmp, log + COMPRESS_SUFFIX);
  rmSync(log, { force: true });
}
