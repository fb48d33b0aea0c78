// Versioned JSON checkpoints written atomically (tmp + fsync + rename), as
// Mesos' slave::state::checkpoint does, so a crash never leaves half a record.
import { openSync, writeSync, fsyncSync, closeSync, renameSync, readFileSync, readdirSync, mkdirSync, unlinkSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';

export const CHECKPOINT_VERSION = 1;

export interface WriteOptions {
  mode?: number;
  /**
   * - true (default): fsync the file, rename, fsync its directory, then return.
   * - 'group': write and rename now (whole across a daemon crash from here on), and leave the
   *   fsyncs to the group committer below, which syncs every file written meanwhile in one
   *   batch on libuv's thread pool (in the daemon, once the CRI calls pause: at most 200 ms
   *   later). Only a power loss or kernel crash before then can lose the change (then the file
   *   is the old version, or empty and quarantined at recovery).
   * - false: no fsync. Runtime-dir files live on a tmpfs that a power loss wipes anyway.
   */
  durable?: boolean | 'group';
}

export function writeAtomic(path: string, data: string | Buffer, opts: WriteOptions = {}): void {
  const durable = opts.durable ?? true;
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'w', opts.mode ?? 0o600);
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    if (durable === true) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  if (durable === 'group') return groupCommit(path, dir);
  if (!durable) return;
  const dfd = openSync(dir, 'r');
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
}

// ---- group commit ------------------------------------------------------------------------
// A RunPodSandbox wrote its record with two fsync pairs (put, then READY), 2-4 ms of the call on
// this VM's disk, on the event loop. Now records are renamed in place at once and synced here:
// files first, then their directories, in parallel on the thread pool, while the caller goes on.
// Writes made while a batch is on disk form the next batch: one fsync per file per batch however
// often it was rewritten.

const pendingFiles = new Set<string>();
const pendingDirs = new Set<string>();
let committing: Promise<void> | undefined;
let onCommitError: (path: string, err: unknown) => void = () => {};
let commitWhen: () => Promise<void> = () => Promise.resolve();
const stats = { batches: 0, files: 0 };

function groupCommit(path: string, dir: string): void {
  pendingFiles.add(path);
  pendingDirs.add(dir);
  committing ??= runCommits();
}

async function runCommits(): Promise<void> {
  // Let the writes of this turn of the event loop join the first batch.
  await new Promise((resolve) => setImmediate(resolve));
  await commitWhen();
  while (pendingFiles.size > 0 || pendingDirs.size > 0) {
    const files = [...pendingFiles];
    const dirs = [...pendingDirs];
    pendingFiles.clear();
    pendingDirs.clear();
    stats.batches++;
    stats.files += files.length;
    await Promise.all(files.map(syncPath));
    await Promise.all(dirs.map(syncPath));
  }
  committing = undefined;
}

async function syncPath(path: string): Promise<void> {
  let fh;
  try {
    fh = await open(path, 'r');
    await fh.sync();
  } catch (err) {
    // Deleted (or renamed over) since: nothing of it left to sync.
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') onCommitError(path, err);
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

/** Resolves once every 'group' write made so far is fsync'd (daemon stop, tests). */
export async function checkpointsCommitted(): Promise<void> {
  while (committing) await committing;
}

/** Who hears of a failed fsync (the daemon logs it); a failed sync leaves the file as the kernel has it. */
export function setCommitErrorHandler(handler: (path: string, err: unknown) => void): void {
  onCommitError = handler;
}

/**
 * What a batch waits for, after the end of the turn of the event loop that wrote its first file,
 * before it syncs (default: nothing). The daemon: a quiet moment between CRI calls, so that the
 * fsyncs do not take the CPU and the disk from the call that follows the write.
 */
export function setCommitWhen(when: () => Promise<void>): void {
  commitWhen = when;
}

/** Batches and files synced so far by the group committer. */
export function groupCommitStats(): { batches: number; files: number } {
  return { ...stats };
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

/** One unlink (rmSync's force first lstats the path); a missing record is fine. */
export function removeCheckpoint(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
