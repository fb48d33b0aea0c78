// The local image store: content-addressed blobs, unpacked layers shared by
// chain ID, and one JSON record per image.
//
//   <root>/blobs/sha256/<hex>      verified content (manifests, configs, layer blobs)
//   <root>/layers/<chainID hex>/   one unpacked layer = one overlay lowerdir
//   <root>/images/<id hex>.json    image record (tags, digests, config summary, chain)
//   <root>/lock                    cross-process lock for record changes
//
// Every file appears by rename, so a reader (the daemon) never sees half of
// anything while another process (`cri-mesos images import`) writes. Records
// are read on demand and cached by (inode, mtime, size), so new images show
// up without a restart.
import { Code, StatusError } from '../errors.js';
import { createHash } from 'node:crypto';
import { createReadStream, readdirSync, statSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink, lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { digestHex, diskUsage, errCode, fsyncDir, randomSuffix, sha256Hex, writeFileAtomic } from './fsutil.js';
import { ImageLeases } from './leases.js';
import { DIGEST, looksLikeId, normalizeTag, parseReference } from './reference.js';
import { unpackLayerFile } from './unpack.js';

/** The parts of the OCI image config the runtime needs (the full config stays a blob). */
export interface ImageConfigSummary {
  User?: string;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  WorkingDir?: string;
  ExposedPorts?: Record<string, object>;
  Volumes?: Record<string, object>;
  Labels?: Record<string, string>;
  StopSignal?: string;
}

export interface LayerRecord {
  /** Digest of the blob as stored (compressed or not). */
  digest: string;
  mediaType: string;
  size: number;
  /** sha256 of the uncompressed tar. */
  diffId: string;
  chainId: string;
}

export interface ImageRecord {
  version: 1;
  /** Config digest, `sha256:<hex>`. */
  id: string;
  repoTags: string[];
  repoDigests: string[];
  /** Digest of the platform manifest. */
  manifestDigest: string;
  manifestMediaType: string;
  /** Compressed layers + config, as registries and containerd count it. */
  size: number;
  config: ImageConfigSummary;
  os: string;
  architecture: string;
  created?: string;
  /** Bottom layer first. */
  layers: LayerRecord[];
  /** Every blob this image holds on to (indexes, manifest, config, layers). */
  blobs: string[];
  importedAt: string;
}

export interface RemoveResult {
  /** The image the reference named. */
  id: string;
  untagged: string[];
  /** True when the record itself is gone (no tags left or removed by id/digest). */
  deleted: boolean;
}

export const MAX_JSON_BLOB = 16 * 1024 * 1024;

export class ImageStore {
  readonly blobsDir: string;
  readonly layersDir: string;
  readonly imagesDir: string;
  readonly tmpDir: string;
  /** Images held by CreateContainers in flight (see leases.ts). */
  readonly leases = new ImageLeases();
  private readonly lockPath: string;
  private ready?: Promise<void>;
  private cache = new Map<string, { key: string; rec: ImageRecord }>();
  private lockChain: Promise<void> = Promise.resolve();
  private usageCache?: { at: number; value: { bytes: number; inodes: number } };

  constructor(readonly root: string) {
    this.blobsDir = join(root, 'blobs', 'sha256');
    this.layersDir = join(root, 'layers');
    this.imagesDir = join(root, 'images');
    this.tmpDir = join(root, 'tmp');
    this.lockPath = join(root, 'lock');
  }

  /** Create the directories (idempotent; every method calls it). */
  init(): Promise<void> {
    this.ready ??= (async () => {
      for (const d of [this.blobsDir, this.layersDir, this.imagesDir, this.tmpDir]) {
        await mkdir(d, { recursive: true, mode: 0o700 });
      }
    })();
    return this.ready;
  }

  // ---- blobs -------------------------------------------------------------

  blobPath(digest: string): string {
    return join(this.blobsDir, digestHex(digest));
  }

  async hasBlob(digest: string): Promise<boolean> {
    return exists(this.blobPath(digest));
  }

  /**
   * Copy `src` into the store as `digest`, verifying digest (and size when
   * given) on the way. The blob appears only complete and verified.
   */
  async putBlobFromFile(src: string, digest: string, size?: number): Promise<void> {
    await this.init();
    const dest = this.blobPath(digest);
    if (await exists(dest)) return;
    const tmp = join(this.blobsDir, `.tmp-${randomSuffix()}`);
    const fh = await open(tmp, 'wx', 0o644);
    const h = createHash('sha256');
    let n = 0;
    try {
      for await (const chunk of createReadStream(src) as AsyncIterable<Buffer>) {
        h.update(chunk);
        n += chunk.length;
        let off = 0;
        while (off < chunk.length) off += (await fh.write(chunk, off)).bytesWritten;
      }
      const got = `sha256:${h.digest('hex')}`;
      if (got !== digest) throw new DigestMismatchError(src, digest, got);
      if (size !== undefined && n !== size) throw new Error(`blob ${digest} from ${src}: size ${n}, expected ${size}`);
      await fh.sync();
    } catch (e) {
      await fh.close().catch(() => {});
      await rm(tmp, { force: true });
      throw e;
    }
    await fh.close();
    await rename(tmp, dest);
    await fsyncDir(this.blobsDir);
  }

  /** Store bytes as a blob; `digest` (when given) must match. Returns the digest. */
  async putBlob(data: Buffer, digest?: string): Promise<string> {
    await this.init();
    const got = `sha256:${sha256Hex(data)}`;
    if (digest && got !== digest) throw new DigestMismatchError('(memory)', digest, got);
    const dest = this.blobPath(got);
    if (!(await exists(dest))) await writeFileAtomic(dest, data);
    return got;
  }

  /** Read a small blob, re-verifying its digest (disk corruption shows up here, not as bad JSON). */
  async readBlob(digest: string): Promise<Buffer> {
    const p = this.blobPath(digest);
    const st = await stat(p);
    if (st.size > MAX_JSON_BLOB) throw new Error(`blob ${digest} is too large to read into memory (${st.size} bytes)`);
    const data = await readFile(p);
    const got = `sha256:${sha256Hex(data)}`;
    if (got !== digest) throw new DigestMismatchError(p, digest, got);
    return data;
  }

  // ---- layers ------------------------------------------------------------

  layerDir(chainId: string): string {
    return join(this.layersDir, digestHex(chainId));
  }

  async hasLayer(chainId: string): Promise<boolean> {
    return exists(this.layerDir(chainId));
  }

  /**
   * Unpack the stored blob `layer.digest` as layer `layer.chainId` unless it
   * is already there. Unpacks into a temp dir beside the final one and
   * renames it into place only after the diffID matched: a bad or unsafe
   * layer leaves nothing behind.
   */
  async ensureLayer(layer: LayerRecord): Promise<void> {
    await this.init();
    const dest = this.layerDir(layer.chainId);
    if (await exists(dest)) return;
    const tmp = join(this.layersDir, `.tmp-${randomSuffix()}`);
    await mkdir(tmp, { mode: 0o755 });
    try {
      const res = await unpackLayerFile(this.blobPath(layer.digest), tmp, { mediaType: layer.mediaType });
      if (res.diffId !== layer.diffId) {
        throw new DigestMismatchError(`layer ${layer.digest} (uncompressed)`, layer.diffId, res.diffId);
      }
      try {
        await rename(tmp, dest);
      } catch (e) {
        // Another importer finished the same layer first; theirs is as good as ours.
        if (errCode(e) !== 'ENOTEMPTY' && errCode(e) !== 'EEXIST') throw e;
        await rm(tmp, { recursive: true, force: true });
      }
      await fsyncDir(this.layersDir);
    } catch (e) {
      await rm(tmp, { recursive: true, force: true });
      throw e;
    }
  }

  /** Overlay lowerdirs of an image: top layer first, as `lowerdir=` wants them. */
  layerDirs(image: ImageRecord): string[] {
    return image.layers.map((l) => this.layerDir(l.chainId)).reverse();
  }

  // ---- records -----------------------------------------------------------

  private recordPath(id: string): string {
    return join(this.imagesDir, `${digestHex(id)}.json`);
  }

  /** All images, read fresh from disk (cached by inode/mtime/size). */
  async list(): Promise<ImageRecord[]> {
    await this.init();
    // readdir and the stats in the calling thread: every CreateContainer resolves its image
    // through here, and an await per record was a thread-pool round trip each (1.2 ms of the
    // call with two images). Records whose stat is unchanged come from the cache.
    const names = readdirSync(this.imagesDir).filter((n) => /^[a-f0-9]{64}\.json$/.test(n));
    const out: ImageRecord[] = [];
    const live = new Set<string>();
    for (const n of names) {
      const rec = await this.loadRecord(join(this.imagesDir, n));
      if (rec) {
        out.push(rec);
        live.add(n);
      }
    }
    for (const k of this.cache.keys()) if (!live.has(k)) this.cache.delete(k);
    return out.sort((a, b) => a.id.localeCompare(b.id));
  }

  private async loadRecord(p: string): Promise<ImageRecord | undefined> {
    const name = p.slice(this.imagesDir.length + 1);
    let st;
    try {
      st = statSync(p);
    } catch {
      return undefined; // removed since readdir
    }
    const key = `${st.ino}:${st.mtimeMs}:${st.size}`;
    const hit = this.cache.get(name);
    if (hit && hit.key === key) return hit.rec;
    try {
      const rec = JSON.parse(await readFile(p, 'utf8')) as ImageRecord;
      if (rec.version !== 1 || !DIGEST.test(rec.id)) return undefined;
      this.cache.set(name, { key, rec });
      return rec;
    } catch {
      return undefined; // a damaged record hides one image, it does not break listing
    }
  }

  async get(id: string): Promise<ImageRecord | undefined> {
    await this.init();
    if (!DIGEST.test(id)) return undefined;
    return this.loadRecord(this.recordPath(id));
  }

  /**
   * Find an image by: id (`sha256:<hex>`), tag (full or short name, default
   * tag latest), `name@sha256:<manifest or index digest>`, or a unique id
   * prefix of at least 12 hex digits (with or without `sha256:`).
   */
  async resolve(ref: string): Promise<ImageRecord | undefined> {
    return (await this.resolveWithKind(ref))?.image;
  }

  private async resolveWithKind(ref: string): Promise<{ image: ImageRecord; kind: 'id' | 'tag' | 'digest' } | undefined> {
    const images = await this.list();
    if (DIGEST.test(ref)) {
      const img = images.find((i) => i.id === ref);
      return img && { image: img, kind: 'id' };
    }
    let parsed;
    try {
      parsed = parseReference(ref);
    } catch {
      parsed = undefined;
    }
    if (parsed?.digest) {
      const want = `${parsed.name}@${parsed.digest}`;
      const img = images.find((i) => i.repoDigests.includes(want));
      if (img) return { image: img, kind: 'digest' };
    } else if (parsed) {
      const tag = `${parsed.name}:${parsed.tag ?? 'latest'}`;
      const img = images.find((i) => i.repoTags.includes(tag));
      if (img) return { image: img, kind: 'tag' };
    }
    if (looksLikeId(ref)) {
      const prefix = ref.startsWith('sha256:') ? ref : `sha256:${ref}`;
      const hits = images.filter((i) => i.id.startsWith(prefix));
      if (hits.length > 1) throw new Error(`image id prefix ${ref} is ambiguous (${hits.length} images)`);
      if (hits.length === 1) return { image: hits[0]!, kind: 'id' };
    }
    return undefined;
  }

  /**
   * Resolve `ref` (as `resolve`) and lease the image for `holder` in one
   * step: no removal can start in between. Waits out a removal of the image
   * in progress and resolves again, so the caller gets the image with its
   * layers intact, or undefined when it is gone. `release` is idempotent.
   */
  async lease(ref: string, holder: string): Promise<{ image: ImageRecord; release: () => void } | undefined> {
    for (;;) {
      const found = await this.resolve(ref);
      if (!found) return undefined;
      const release = this.leases.acquire(found.id, holder);
      if (!release) {
        await this.leases.removal(found.id);
        continue;
      }
      // A removal that ended between resolving and leasing left no record.
      const image = await this.get(found.id);
      if (image) return { image, release };
      release();
    }
  }

  /**
   * Add or merge an image record. Tags move: a tag the new record carries is
   * taken from any other image (which stays, untagged, as docker does).
   * Fails with LayerVanishedError when a concurrent remove freed one of its
   * layers or blobs since they were written; the importer then retries.
   */
  async commit(rec: ImageRecord): Promise<ImageRecord> {
    return this.withLock(async () => {
      for (const b of rec.blobs) if (!(await this.hasBlob(b))) throw new LayerVanishedError(b);
      for (const l of rec.layers) if (!(await this.hasLayer(l.chainId))) throw new LayerVanishedError(l.chainId);
      const tags = unique(rec.repoTags.map((t) => normalizeTag(t)));
      const existing = await this.get(rec.id);
      const merged: ImageRecord = existing
        ? {
            ...rec,
            repoTags: unique([...existing.repoTags, ...tags]),
            repoDigests: unique([...existing.repoDigests, ...rec.repoDigests]),
            blobs: unique([...existing.blobs, ...rec.blobs]),
            importedAt: existing.importedAt,
          }
        : { ...rec, repoTags: tags };
      for (const other of await this.list()) {
        if (other.id === rec.id) continue;
        const keep = other.repoTags.filter((t) => !tags.includes(t));
        if (keep.length !== other.repoTags.length) {
          await writeFileAtomic(this.recordPath(other.id), JSON.stringify({ ...other, repoTags: keep }, null, 2));
        }
      }
      await writeFileAtomic(this.recordPath(rec.id), JSON.stringify(merged, null, 2));
      this.usageCache = undefined;
      return merged;
    });
  }

  /**
   * Remove by reference. A tag reference untags (the image goes when its last
   * tag does); an id or digest reference removes the image with all its
   * names. Blobs and layers no other image uses are freed. Unknown → undefined.
   * Deleting a leased image fails with ImageInUseError (untagging does not).
   */
  async remove(ref: string): Promise<RemoveResult | undefined> {
    return this.withLock(async () => {
      const hit = await this.resolveWithKind(ref);
      if (!hit) return undefined;
      const img = hit.image;
      if (hit.kind === 'tag') {
        const p = parseReference(ref);
        const tag = `${p.name}:${p.tag ?? 'latest'}`;
        const left = img.repoTags.filter((t) => t !== tag);
        if (left.length > 0) {
          // The repo digest of a name goes with its last tag.
          const names = new Set(left.map((t) => t.slice(0, t.lastIndexOf(':'))));
          const digests = img.repoDigests.filter((d) => names.has(d.slice(0, d.indexOf('@'))));
          await writeFileAtomic(this.recordPath(img.id), JSON.stringify({ ...img, repoTags: left, repoDigests: digests }, null, 2));
          return { id: img.id, untagged: [tag], deleted: false };
        }
      }
      await this.deleteLocked(img);
      return { id: img.id, untagged: img.repoTags, deleted: true };
    });
  }

  /**
   * Remove an image and all its names by id. `users()` (the container
   * records using it) is asked under the lock, with the leases: any user →
   * ImageInUseError and nothing removed.
   */
  async removeImage(id: string, users: () => string[] = () => []): Promise<RemoveResult | undefined> {
    return this.withLock(async () => {
      const img = await this.get(id);
      if (!img) return undefined;
      await this.deleteLocked(img, users);
      return { id: img.id, untagged: img.repoTags, deleted: true };
    });
  }

  /**
   * Delete the record, then free only this image's blobs and layers that no
   * remaining record references. (Blobs of an import still in flight are not
   * touched unless shared with this image; its commit notices and retries.)
   * Refused while the image is leased or `users()` names anyone; until it
   * ends, leases of the image wait (so no create mounts half-deleted layers).
   */
  private async deleteLocked(img: ImageRecord, users: () => string[] = () => []): Promise<void> {
    // Check and mark in one synchronous step (see leases.ts).
    const removal = this.leases.beginRemoval(img.id, users());
    if ('users' in removal) throw new ImageInUseError(img.id, removal.users);
    try {
      await unlink(this.recordPath(img.id)).catch((e: unknown) => {
        if (errCode(e) !== 'ENOENT') throw e;
      });
      this.cache.delete(`${digestHex(img.id)}.json`);
      const rest = await this.list();
      const usedBlobs = new Set(rest.flatMap((r) => r.blobs));
      const usedLayers = new Set(rest.flatMap((r) => r.layers.map((l) => l.chainId)));
      for (const l of img.layers) {
        if (!usedLayers.has(l.chainId)) await this.removeLayerDir(l.chainId);
      }
      for (const b of img.blobs) {
        if (usedBlobs.has(b)) continue;
        await unlink(this.blobPath(b)).catch(() => {});
      }
      this.usageCache = undefined;
    } finally {
      removal.done();
    }
  }

  /**
   * Undo a failed import: drop those of `blobs` and layer `chainIds` that no
   * image record references (the import may have added them; others may
   * share them).
   */
  async discard(blobs: string[], chainIds: string[]): Promise<void> {
    await this.withLock(async () => {
      const recs = await this.list();
      const usedBlobs = new Set(recs.flatMap((r) => r.blobs));
      const usedLayers = new Set(recs.flatMap((r) => r.layers.map((l) => l.chainId)));
      for (const c of chainIds) if (!usedLayers.has(c)) await this.removeLayerDir(c);
      for (const b of blobs) if (!usedBlobs.has(b)) await unlink(this.blobPath(b)).catch(() => {});
      this.usageCache = undefined;
    });
  }

  /** Rename first so no one sees a half-deleted lowerdir under its real name. */
  private async removeLayerDir(chainId: string): Promise<void> {
    const doomed = join(this.layersDir, `.del-${randomSuffix()}`);
    try {
      await rename(this.layerDir(chainId), doomed);
    } catch (e) {
      if (errCode(e) === 'ENOENT') return;
      throw e;
    }
    await rm(doomed, { recursive: true, force: true });
  }

  /** Bytes and inodes actually used under the store (cached for 5 s: it walks the tree). */
  async fsUsage(): Promise<{ bytes: number; inodes: number }> {
    await this.init();
    const now = Date.now();
    if (this.usageCache && now - this.usageCache.at < 5000) return this.usageCache.value;
    const value = await diskUsage(this.root);
    this.usageCache = { at: now, value };
    return value;
  }

  /** Remove leftovers of crashed imports/removes older than `maxAgeMs`. */
  async cleanupTemp(maxAgeMs = 60 * 60 * 1000): Promise<void> {
    await this.init();
    const now = Date.now();
    for (const dir of [this.blobsDir, this.layersDir, this.imagesDir, this.tmpDir]) {
      for (const n of await readdir(dir)) {
        if (dir !== this.tmpDir && !n.startsWith('.tmp-') && !n.startsWith('.del-')) continue;
        const p = join(dir, n);
        const st = await lstat(p).catch(() => undefined);
        if (st && now - st.mtimeMs > maxAgeMs) await rm(p, { recursive: true, force: true });
      }
    }
  }

  // ---- locking -----------------------------------------------------------

  /**
   * Serialize record changes: in-process by a promise chain, across processes
   * by an O_EXCL lock file holding our pid (taken over when that pid is dead).
   */
  async withLock<T>(fn: () => Promise<T>): Promise<T> {
    await this.init();
    const prev = this.lockChain;
    let release!: () => void;
    this.lockChain = new Promise<void>((r) => (release = r));
    await prev;
    try {
      await this.acquireFileLock();
      try {
        return await fn();
      } finally {
        await unlink(this.lockPath).catch(() => {});
      }
    } finally {
      release();
    }
  }

  private async acquireFileLock(): Promise<void> {
    const deadline = Date.now() + 120_000;
    for (;;) {
      try {
        const fh = await open(this.lockPath, 'wx', 0o600);
        await fh.writeFile(String(process.pid));
        await fh.close();
        return;
      } catch (e) {
        if (errCode(e) !== 'EEXIST') throw e;
      }
      const owner = Number((await readFile(this.lockPath, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(owner) && owner > 0 && !pidAlive(owner)) {
        await unlink(this.lockPath).catch(() => {});
        continue;
      }
      if (Date.now() > deadline) throw new Error(`image store ${this.root} is locked by pid ${owner || '?'}`);
      await sleep(20);
    }
  }
}

export class DigestMismatchError extends StatusError {
  constructor(what: string, expected: string, got: string) {
    super(Code.DATA_LOSS, `digest mismatch for ${what}: expected ${expected}, got ${got}`);
    this.name = 'DigestMismatchError';
  }
}

/** The image is used by the named containers (records or creates in flight). */
export class ImageInUseError extends StatusError {
  constructor(
    readonly id: string,
    readonly users: string[],
  ) {
    super(Code.FAILED_PRECONDITION, `image ${id} is in use by container(s) ${users.join(', ')}`);
    this.name = 'ImageInUseError';
  }
}

export class LayerVanishedError extends StatusError {
  constructor(what: string) {
    super(Code.ABORTED, `${what} was removed from the store while the image was being imported`);
    this.name = 'LayerVanishedError';
  }
}

function unique<T>(xs: T[]): T[] {
  return [...new Set(xs)];
}

async function exists(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch (e) {
    if (errCode(e) === 'ENOENT') return false;
    throw e;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errCode(e) === 'EPERM';
  }
}

/** chainID(L0) = diffID(L0); chainID(Ln) = sha256(chainID(Ln-1) + " " + diffID(Ln)). */
export function chainIds(diffIds: string[]): string[] {
  const out: string[] = [];
  for (const d of diffIds) {
    const prev = out[out.length - 1];
    out.push(prev === undefined ? d : `sha256:${sha256Hex(`${prev} ${d}`)}`);
  }
  return out;
}
