// Versioned JSON checkpoints written atomically (tmp + fsync + rename), as
// Mesos' slave::state::checkpoint does, so a crash never leaves half a record.
import { openSync, writeSync, fsyncSync, closeSync, renameSync, readFileSync, readdirSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';

export const CHECKPOINT_VERSION = 1;

export interface WriteOptions {
  mode?: number;
  /**
   * fsync the file and its directory (default). Runtime-dir files live on a
   * tmpfs that a power loss wipes anyway: rename alone keeps them whole
   * across a daemon crash, so they skip the syncs.
   */
  durable?: boolean;
}

export function writeAtomic(path: string, data: string | Buffer, opts: WriteOptions = {}): void {
  const durable = opts.durable ?? true;
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'w', opts.mode ?? 0o600);
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    if (durable) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  if (!durable) return;
  const dfd = openSync(dir, 'r');
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
}

export interface Versioned {
  version: number;
}

export function writeCheckpoint(path: string, record: object, opts: WriteOptions = {}): void {
  writeAtomic(path, JSON.stringify({ version: CHECKPOINT_VERSION, ...record }), opts);
}

export function readCheckpoint<T extends Versioned>(path: string): T {
  const parsed = JSON.parse(readFileSync(path, 'utf8')) as T;
  if (typeof parsed !== 'object' || parsed === null || parsed.version !== CHECKPOINT_VERSION) {
    throw new Error(`unsupported checkpoint version in ${path}`);
  }
  return parsed;
}

/**
 * Every record in a directory; bad ones are reported, not fatal. Only a missing
 * directory means "no records": any other error is thrown, since reading it as
 * empty would make recovery destroy every container.
 */
export function readCheckpointDir<T extends Versioned>(dir: string, onBad: (file: string, err: unknown) => void): T[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: T[] = [];
  for (const name of names) {
    if (!name.endsWith('.json') || name.startsWith('.')) continue;
    try {
      out.push(readCheckpoint<T>(join(dir, name)));
    } catch (err) {
      onBad(join(dir, name), err);
    }
  }
  return out;
}

export function removeCheckpoint(path: string): void {
  rmSync(path, { force: true });
}
