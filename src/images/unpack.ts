// Layer unpacking: a tar stream becomes one overlayfs lower directory.
//
// Safety model: every entry path is cleaned lexically and must stay inside
// the target; no entry may be written through a symlink that is already in
// the layer (a parent that is a symlink is refused, the last component is
// replaced, never followed); hard links must point at an existing
// non-directory of this same layer. Whiteouts become what overlayfs reads:
// a 0:0 char device for `.wh.<name>`, `trusted.overlay.opaque=y` for
// `.wh..wh..opq`.
//
// Layer blobs may be uncompressed, gzip or zstd; the compression is sniffed
// from the blob's first bytes (as containerd does), not taken from the media
// type. zstd is decoded by fzstd (pure JS, streaming) fed in small slices, so
// a layer is never held in memory whole and back-pressure reaches the file.
import { Code, StatusError } from '../errors.js';
import { createHash } from 'node:crypto';
import { open, lstat, mkdir, rm, symlink, link, lchown, chmod, lutimes, readdir } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { Duplex, PassThrough, Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { Decompress as ZstdDecoder } from 'fzstd';
import tar from 'tar-stream';
import { native } from '../native/index.js';
import { errCode } from './fsutil.js';

const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFIFO = 0o010000;

const WHITEOUT_PREFIX = '.wh.';
const OPAQUE_MARKER = '.wh..wh..opq';
export const OVERLAY_OPAQUE_XATTR = 'trusted.overlay.opaque';

/** A layer that tries to write outside its directory or through a symlink. */
export class UnsafeLayerError extends StatusError {
  constructor(message: string) {
    super(Code.FAILED_PRECONDITION, message);
    this.name = 'UnsafeLayerError';
  }
}

export interface UnpackOptions {
  /** Apply tar ownership (lchown). Default: only when running as root. */
  chown?: boolean;
}

export interface UnpackResult {
  entries: number;
  /** Bytes of regular file content written. */
  bytes: number;
}

/**
 * Clean a tar entry name into path components relative to the layer root.
 * Leading `/` and `./` are dropped (tar members are relative to the archive
 * root, as GNU tar and containerd treat them); `..` may not climb above the root.
 */
export function cleanEntryPath(name: string): string[] {
  if (name.includes('\0')) throw new UnsafeLayerError(`tar entry ${JSON.stringify(name)} contains a NUL byte`);
  const out: string[] = [];
  for (const c of name.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') {
      if (out.length === 0) throw new UnsafeLayerError(`tar entry ${JSON.stringify(name)} escapes the layer root`);
      out.pop();
      continue;
    }
    out.push(c);
  }
  return out;
}

/** Unpack an uncompressed layer tar from `source` into the existing, empty directory `target`. */
export async function unpackTar(source: Readable, target: string, opts: UnpackOptions = {}): Promise<UnpackResult> {
  const u = new Unpacker(target, opts.chown ?? process.getuid?.() === 0);
  const extract = tar.extract();
  const feeding = pipeline(source, extract);
  let feedError: unknown;
  feeding.catch((e: unknown) => {
    feedError = e;
  });
  try {
    for await (const entry of extract) {
      await u.entry(entry);
    }
    await feeding;
  } catch (e) {
    extract.destroy();
    source.destroy();
    await feeding.catch(() => {});
    // A refusal from the unpacker is the interesting error; stream errors follow from it.
    throw e ?? feedError;
  }
  await u.finish();
  return { entries: u.entries, bytes: u.bytes };
}

export type Compression = 'gzip' | 'zstd' | 'none';

/** A zstd frame (28 b5 2f fd) or a skippable frame (5? 2a 4d 18), which a zstd stream may start with. */
function isZstdMagic(b: Buffer): boolean {
  return b.readUInt32BE(0) === 0x28b52ffd || (b.readUInt32LE(0) & 0xfffffff0) === 0x184d2a50;
}

/**
 * Sniff the compression of a layer blob from its first bytes. The media type
 * is not trusted for this (images mislabel gzip as tar and the other way
 * round); it is accepted for symmetry with callers that have one.
 */
export async function detectCompression(path: string, _mediaType?: string): Promise<Compression> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(4);
    const { bytesRead } = await fh.read(buf, 0, 4, 0);
    if (bytesRead >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) return 'gzip';
    if (bytesRead === 4 && isZstdMagic(buf)) return 'zstd';
    return 'none';
  } finally {
    await fh.close();
  }
}

/**
 * Compressed bytes handed to the zstd decoder at once. fzstd decodes
 * synchronously and cannot pause mid-push, so this bounds what one step can
 * produce: a block is at least 4 bytes and (checked below) at most 128 KiB
 * of output, so a slice yields at most 2 KiB / 4 × 128 KiB = 64 MiB, about
 * what zlib may produce from one 64 KiB read of a gzip bomb.
 */
const ZSTD_SLICE = 2048;
/** fzstd's ZstdErrorCode, worded here. */
const ZSTD_ERRORS = [
  'invalid data',
  'window size too large',
  'invalid block type',
  'FSE accuracy too high',
  'match distance too far back',
  'unexpected end of data',
];
/** Block_Maximum_Size of RFC 8878 (fzstd does not check it). */
const ZSTD_MAX_BLOCK = 128 * 1024;

/**
 * A streaming zstd decompressor (concatenated and skippable frames included).
 * The content checksum is not verified by fzstd; layers are verified by
 * their diffID instead, as for gzip.
 */
export function createZstdDecompress(): Duplex {
  return Duplex.from(async function* (source: AsyncIterable<Buffer>) {
    let out: Buffer[] = [];
    const dec = new ZstdDecoder((chunk) => {
      if (chunk.length > ZSTD_MAX_BLOCK) throw new Error(`a block decodes to ${chunk.length} bytes (more than 128 KiB)`);
      if (chunk.length) out.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
    });
    const feed = (data: Uint8Array, final: boolean): Buffer[] => {
      try {
        dec.push(data, final);
      } catch (e) {
        const code = (e as { code?: unknown }).code;
        const why = typeof code === 'number' ? ZSTD_ERRORS[code] : undefined;
        throw new Error(`corrupt or unsupported Zstandard stream: ${why ?? (e as Error).message}`);
      }
      const o = out;
      out = [];
      return o;
    };
    for await (const chunk of source) {
      for (let off = 0; off < chunk.length; off += ZSTD_SLICE) {
        yield* feed(chunk.subarray(off, off + ZSTD_SLICE), false);
      }
    }
    yield* feed(new Uint8Array(0), true);
  });
}

function decompressor(c: Compression): Duplex | undefined {
  if (c === 'gzip') return createGunzip();
  if (c === 'zstd') return createZstdDecompress();
  return undefined;
}

/**
 * Unpack a (possibly gzip- or zstd-compressed) layer blob into `target`; returns the
 * diffID (sha256 of the uncompressed tar) for the caller to verify.
 */
export async function unpackLayerFile(
  blobPath: string,
  target: string,
  opts: UnpackOptions & { mediaType?: string } = {},
): Promise<UnpackResult & { diffId: string }> {
  const compression = await detectCompression(blobPath, opts.mediaType);
  const hash = createHash('sha256');
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      cb(null, chunk);
    },
  });
  const file = createReadStream(blobPath);
  const tarStream = new PassThrough();
  const decomp = decompressor(compression);
  const feeding = decomp ? pipeline(file, decomp, tap, tarStream) : pipeline(file, tap, tarStream);
  feeding.catch(() => {});
  let res: UnpackResult;
  try {
    res = await unpackTar(tarStream, target, opts);
    await feeding;
  } catch (e) {
    file.destroy();
    await feeding.catch(() => {});
    throw e;
  }
  return { ...res, diffId: `sha256:${hash.digest('hex')}` };
}

class Unpacker {
  entries = 0;
  bytes = 0;
  /** Relative dirs known to be real directories (not symlinks); cleared whenever something is removed. */
  private safeDirs = new Set<string>();
  private dirTimes: { path: string; mtime: Date }[] = [];

  constructor(
    private readonly root: string,
    private readonly doChown: boolean,
  ) {}

  private abs(comps: string[]): string {
    return comps.length === 0 ? this.root : join(this.root, ...comps);
  }

  async entry(entry: tar.Entry): Promise<void> {
    const h = entry.header;
    this.entries++;
    try {
      await this.apply(h, entry);
    } finally {
      // Whatever was not read (non-files, refusals) must be drained for the parser to go on.
      entry.resume();
    }
  }

  private async apply(h: tar.Headers, body: Readable): Promise<void> {
    const comps = cleanEntryPath(h.name);
    const display = JSON.stringify(h.name);
    if (comps.length === 0) {
      if (h.type !== 'directory') throw new UnsafeLayerError(`tar entry ${display} would replace the layer root`);
      await this.setMeta(this.root, h, false);
      this.dirTimes.push({ path: this.root, mtime: h.mtime ?? new Date(0) });
      return;
    }
    const base = comps[comps.length - 1]!;
    const parent = comps.slice(0, -1);

    if (base.startsWith(WHITEOUT_PREFIX)) {
      await this.ensureParents(comps, display);
      if (base === OPAQUE_MARKER) {
        native().lsetxattr(this.abs(parent), OVERLAY_OPAQUE_XATTR, Buffer.from('y'), 0);
        return;
      }
      // Other .wh..wh.* names are aufs bookkeeping (hard-link dirs); nothing to do.
      if (base.startsWith(WHITEOUT_PREFIX + WHITEOUT_PREFIX)) return;
      const name = base.slice(WHITEOUT_PREFIX.length);
      if (name === '' || name === '.' || name === '..') throw new UnsafeLayerError(`bad whiteout entry ${display}`);
      const p = this.abs([...parent, name]);
      await this.clear(p, [...parent, name], false);
      native().mknod(p, S_IFCHR, 0, 0);
      if (this.doChown) await lchown(p, h.uid ?? 0, h.gid ?? 0);
      return;
    }

    await this.ensureParents(comps, display);
    const p = this.abs(comps);
    switch (h.type) {
      case 'directory': {
        const existing = await this.clear(p, comps, true);
        if (!existing) await mkdir(p, 0o700);
        await this.setMeta(p, h, false);
        this.safeDirs.add(comps.join('/'));
        this.dirTimes.push({ path: p, mtime: h.mtime ?? new Date(0) });
        return;
      }
      case 'file':
      case 'contiguous-file': {
        await this.clear(p, comps, false);
        const fh = await open(p, 'wx', 0o600);
        let n = 0;
        try {
          for await (const chunk of body as AsyncIterable<Buffer>) {
            n += chunk.length;
            let off = 0;
            while (off < chunk.length) {
              const { bytesWritten } = await fh.write(chunk, off, chunk.length - off);
              off += bytesWritten;
            }
          }
        } finally {
          await fh.close();
        }
        this.bytes += n;
        await this.setMeta(p, h, true);
        return;
      }
      case 'symlink': {
        if (!h.linkname) throw new Error(`tar entry ${display}: symlink without a target`);
        await this.clear(p, comps, false);
        await symlink(h.linkname, p);
        if (this.doChown) await lchown(p, h.uid ?? 0, h.gid ?? 0);
        await this.setTimes(p, h);
        return;
      }
      case 'link': {
        const targetComps = cleanEntryPath(h.linkname ?? '');
        if (targetComps.length === 0) throw new UnsafeLayerError(`hard link ${display} points at the layer root`);
        const tdisplay = JSON.stringify(h.linkname);
        // The target's parents must be real directories of this layer, the target itself must exist here.
        for (let i = 1; i < targetComps.length; i++) {
          const st = await lstat(this.abs(targetComps.slice(0, i))).catch(() => undefined);
          if (!st || st.isSymbolicLink() || !st.isDirectory()) {
            throw new UnsafeLayerError(`hard link ${display} → ${tdisplay}: the target is not inside this layer`);
          }
        }
        const target = this.abs(targetComps);
        const st = await lstat(target).catch(() => undefined);
        if (!st) throw new UnsafeLayerError(`hard link ${display} → ${tdisplay}: the target is not inside this layer`);
        if (st.isDirectory()) throw new UnsafeLayerError(`hard link ${display} → ${tdisplay}: the target is a directory`);
        if (targetComps.join('/') === comps.join('/')) return;
        await this.clear(p, comps, false);
        await link(target, p);
        return;
      }
      case 'character-device':
      case 'block-device':
      case 'fifo': {
        await this.clear(p, comps, false);
        const kind = h.type === 'fifo' ? S_IFIFO : h.type === 'block-device' ? S_IFBLK : S_IFCHR;
        native().mknod(p, kind | ((h.mode ?? 0o644) & 0o7777), h.devmajor ?? 0, h.devminor ?? 0);
        await this.setMeta(p, h, true);
        return;
      }
    }
    throw new Error(`tar entry ${display}: unsupported entry type ${String(h.type)}`);
  }

  /**
   * Make the parent directories of `comps` exist as real directories of this
   * layer. A missing parent is created (0755 root, as containerd does); a
   * parent that is a symlink makes the layer unsafe.
   */
  private async ensureParents(comps: string[], display: string): Promise<void> {
    for (let i = 1; i < comps.length; i++) {
      const rel = comps.slice(0, i).join('/');
      if (this.safeDirs.has(rel)) continue;
      const p = this.abs(comps.slice(0, i));
      const st = await lstat(p).catch((e: unknown) => {
        if (errCode(e) === 'ENOENT') return undefined;
        throw e;
      });
      if (!st) {
        await mkdir(p, 0o755);
      } else if (st.isSymbolicLink()) {
        throw new UnsafeLayerError(`tar entry ${display} goes through the symlink ${JSON.stringify(rel)}`);
      } else if (!st.isDirectory()) {
        throw new Error(`tar entry ${display}: ${JSON.stringify(rel)} is not a directory`);
      }
      this.safeDirs.add(rel);
    }
  }

  /**
   * Remove whatever is at `p` so a new entry can take its place. A directory
   * is kept when `keepDir` (a dir entry over a dir merges). Returns true when
   * an existing directory was kept.
   */
  private async clear(p: string, comps: string[], keepDir: boolean): Promise<boolean> {
    const st = await lstat(p).catch((e: unknown) => {
      if (errCode(e) === 'ENOENT') return undefined;
      throw e;
    });
    if (!st) return false;
    if (st.isDirectory() && keepDir) return true;
    await rm(p, { recursive: true, force: true });
    if (st.isDirectory()) this.safeDirs.clear();
    this.safeDirs.delete(comps.join('/'));
    return false;
  }

  /** Ownership, then mode (chown clears set-id bits), then xattrs and times. `p` is never a symlink here. */
  private async setMeta(p: string, h: tar.Headers, times: boolean): Promise<void> {
    if (this.doChown) await lchown(p, h.uid ?? 0, h.gid ?? 0);
    await chmod(p, (h.mode ?? 0o644) & 0o7777);
    const pax = (h as { pax?: Record<string, string> | null }).pax;
    if (pax) {
      for (const [k, v] of Object.entries(pax)) {
        let name: string | undefined;
        let value: Buffer | undefined;
        if (k.startsWith('SCHILY.xattr.')) {
          name = k.slice('SCHILY.xattr.'.length);
          // tar-stream decodes PAX records as UTF-8; binary values are not byte-exact (see report).
          value = Buffer.from(v, 'utf8');
        } else if (k.startsWith('LIBARCHIVE.xattr.')) {
          name = decodeURIComponent(k.slice('LIBARCHIVE.xattr.'.length));
          value = Buffer.from(v, 'base64');
        }
        if (!name || !value) continue;
        // A layer must not forge overlayfs metadata (redirects, metacopy, opaque) on its own.
        if (name.startsWith('trusted.overlay.')) continue;
        try {
          native().lsetxattr(p, name, value, 0);
        } catch (e) {
          const c = errCode(e);
          if (c === 'ENOTSUP' || c === 'EOPNOTSUPP') continue;
          throw e;
        }
      }
    }
    if (times) await this.setTimes(p, h);
  }

  private async setTimes(p: string, h: tar.Headers): Promise<void> {
    const m = h.mtime ?? new Date(0);
    await lutimes(p, m, m);
  }

  /** Directory mtimes last: creating children changed them. */
  async finish(): Promise<void> {
    for (const d of this.dirTimes.reverse()) {
      await lutimes(d.path, d.mtime, d.mtime).catch(() => {});
    }
  }
}

/** Whether a layer dir has anything in it (used by tests and recovery). */
export async function isEmptyDir(p: string): Promise<boolean> {
  return (await readdir(p)).length === 0;
}
