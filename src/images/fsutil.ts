// Small filesystem helpers shared by the store, import and the provisioner.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, lstatSync, readlinkSync } from 'node:fs';
import { mkdir, open, rename, rm, lstat, readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';

export function sha256Hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export function randomSuffix(): string {
  return randomBytes(6).toString('hex');
}

/** Hex part of `sha256:<hex>`; throws on anything else (digests become file names). */
export function digestHex(digest: string): string {
  const m = /^sha256:([a-f0-9]{64})$/.exec(digest);
  if (!m) throw new Error(`unsupported or malformed digest ${JSON.stringify(digest)} (only sha256 is supported)`);
  return m[1]!;
}

/** fsync a directory so a rename inside it survives a crash. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Write a file atomically: temp file in the same dir, fsync, rename, fsync dir. */
export async function writeFileAtomic(path: string, data: string | Buffer, mode = 0o644): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.tmp-${randomSuffix()}`);
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => {});
    await rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  await fsyncDir(dir);
}

/** sha256 and length of a file, streamed. */
export async function hashFile(path: string): Promise<{ digest: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  await pipeline(
    createReadStream(path),
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        h.update(chunk);
        size += chunk.length;
        cb();
      },
    }),
  );
  return { digest: `sha256:${h.digest('hex')}`, size };
}

/** Bytes (allocated blocks) and inodes under a tree, hard links counted once. */
export async function diskUsage(root: string): Promise<{ bytes: number; inodes: number }> {
  const seen = new Set<string>();
  let bytes = 0;
  let inodes = 0;
  const walk = async (p: string): Promise<void> => {
    let st;
    try {
      st = await lstat(p, { bigint: false });
    } catch {
      return; // vanished while walking (concurrent remove)
    }
    const key = `${st.dev}:${st.ino}`;
    if (!seen.has(key)) {
      seen.add(key);
      bytes += st.blocks * 512;
      inodes += 1;
    }
    if (st.isDirectory()) {
      let names: string[] = [];
      try {
        names = await readdir(p);
      } catch {
        return;
      }
      for (const n of names) await walk(join(p, n));
    }
  };
  await walk(root);
  return { bytes, inodes };
}

/** Error code of a Node or native error, if any. */
export function errCode(e: unknown): string | undefined {
  if (e && typeof e === 'object') {
    const c = (e as { code?: unknown }).code;
    if (typeof c === 'string') return c;
    const m = (e as { message?: unknown }).message;
    if (typeof m === 'string') {
      const mm = /\b(E[A-Z]{2,})\b/.exec(m);
      if (mm) return mm[1];
    }
  }
  return undefined;
}

/**
 * Resolve `rel` inside `root` the way a process chrooted at `root` would:
 * symlinks are followed, but absolute targets restart at `root` and `..`
 * stops at `root`, so the result never names anything outside `root`.
 * Missing components are kept lexically. Throws ELOOP after 40 links.
 */
export async function secureResolve(root: string, rel: string): Promise<string> {
  return secureResolveSync(root, rel);
}

/**
 * secureResolve in the calling thread: a few lstats of local files, 1-5 µs each, where each
 * await on fs/promises was a thread-pool round trip (CreateContainer resolves /etc/passwd and
 * /etc/group of the image this way).
 */
export function secureResolveSync(root: string, rel: string): string {
  const pending = rel.split('/');
  const out: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const c = pending.shift()!;
    if (c === '' || c === '.') continue;
    if (c === '..') {
      out.pop();
      continue;
    }
    const p = join(root, ...out, c);
    let st;
    try {
      st = lstatSync(p);
    } catch (e) {
      if (errCode(e) !== 'ENOENT' && errCode(e) !== 'ENOTDIR') throw e;
      out.push(c);
      continue;
    }
    if (!st.isSymbolicLink()) {
      out.push(c);
      continue;
    }
    if (++links > 40) {
      throw Object.assign(new Error(`too many levels of symbolic links resolving ${rel} in ${root}`), { code: 'ELOOP' });
    }
    const target = readlinkSync(p);
    if (target.startsWith('/')) out.length = 0;
    pending.unshift(...target.split('/'));
  }
  return out.length === 0 ? root : join(root, ...out);
}
