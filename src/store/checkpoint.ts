// Versioned JSON checkpoints written atomically (tmp + fsync + rename), as
// Mesos' slave::state::checkpoint does, so a crash never leaves half a record.
import { openSync, writeSync, fsyncSync, closeSync, renameSync, readFileSync, readdirSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';

export const CHECKPOINT_VERSION = 1;

export function writeAtomic(path: string, data: string | Buffer, mode = 0o600): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'w', mode);
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
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

export function writeCheckpoint(path: string, record: object): void {
  writeAtomic(path, JSON.stringify({ version: CHECKPOINT_VERSION, ...record }));
}

export function readCheckpoint<T extends Versioned>(path: string): T {
  const parsed = JSON.parse(readFileSync(path, 'utf8')) as T;
  if (typeof parsed !== 'object' || parsed === null || parsed.version !== CHECKPOINT_VERSION) {
    throw new Error(`unsupported checkpoint version in ${path}`);
  }
  return parsed;
}

/** Every record in a directory; bad ones are reported, not fatal. */
export function readCheckpointDir<T extends Versioned>(dir: string, onBad: (file: string, err: unknown) => void): T[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
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
