// Pull images from OCI distribution registries into the local store.
//
// The manifest walk, platform choice, config checks, layer unpacking and the
// record commit are import.ts's (importManifest/pickManifest): a registry is
// one more ManifestSource. What is added here: fetching manifests and blobs
// over the API (registry.ts), streaming blobs into the store with digest and
// size verification (temp file in <store>/tmp, then rename), in-process
// de-duplication of concurrent pulls, blob downloads and layer unpacks, the
// no-progress watchdog, and progress lines in the daemon log.
//
// gzip and zstd layers are both unpacked (unpack.ts sniffs which); Docker
// schema 1 manifests are refused before any layer is downloaded.
import { createHash } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { RegistriesConfig } from '../config.js';
import type { Logger } from '../log.js';
import { digestHex, fsyncDir, randomSuffix, sha256Hex } from './fsutil.js';
import {
  fmtPlatform,
  hostPlatform,
  importManifest,
  INDEX_TYPES,
  MANIFEST_TYPES,
  MT,
  pickManifest,
  type Descriptor,
  type ManifestSource,
  type OciManifest,
  type Platform,
} from './import.js';
import { normalizeReference, parseReference, type ParsedReference } from './reference.js';
import {
  credentialsKey,
  describeErrorBody,
  endpointsFor,
  MANIFEST_ACCEPT,
  readBody,
  RegistryClient,
  RegistryError,
  streamError,
  type Credentials,
  type Endpoint,
} from './registry.js';
import { DigestMismatchError, MAX_JSON_BLOB, type ImageRecord, type ImageStore, type LayerRecord } from './store.js';

export interface PullOptions {
  creds?: Credentials;
  /** default linux/<host arch> */
  platform?: Platform;
}

/** Counters of one pull, logged at most once a second. */
class Progress {
  bytes = 0;
  totalBytes = 0;
  layersDone = 0;
  layersTotal = 0;
  private lastLogged = -1;
  private timer?: NodeJS.Timeout;
  readonly started = Date.now();

  constructor(
    private readonly log: Logger,
    private readonly image: string,
    private readonly onBytes?: (n: number) => void,
  ) {}

  /** `n` more bytes of a layer arrived. */
  add(n: number): void {
    this.bytes += n;
    this.onBytes?.(n);
  }

  start(): void {
    this.timer = setInterval(() => this.report(), 1000);
    this.timer.unref();
  }

  private report(): void {
    if (this.bytes === this.lastLogged) return;
    this.lastLogged = this.bytes;
    this.log.info('pull progress', {
      image: this.image,
      bytes: this.bytes,
      totalBytes: this.totalBytes,
      layers: `${this.layersDone}/${this.layersTotal}`,
      seconds: Math.round((Date.now() - this.started) / 100) / 10,
    });
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}

export class Puller {
  private readonly pulls = new Map<string, Promise<ImageRecord>>();
  private readonly blobs = new Map<string, Promise<void>>();
  private readonly layers = new Map<string, Promise<void>>();
  private cleaned?: Promise<void>;

  constructor(
    readonly store: ImageStore,
    readonly config: RegistriesConfig,
    readonly log: Logger,
    /** Told of every chunk of layer bytes downloaded (the metrics' image_pull_bytes_total). */
    private readonly onBytes?: (n: number) => void,
  ) {}

  get stallMs(): number {
    return this.config.pullProgressTimeoutSeconds * 1000;
  }

  /**
   * Pull `ref` (tag or digest; short names are docker.io's) and return the
   * committed image record. Concurrent pulls of the same reference with the
   * same credentials share one pull.
   */
  pull(ref: string, opts: PullOptions = {}): Promise<ImageRecord> {
    const parsed = parseReference(ref);
    const platform = opts.platform ?? hostPlatform();
    // No credentials in the request: the config's for the image's host (registry.auths).
    const creds = opts.creds ?? configCredentials(this.config, parsed.domain);
    const key = `${normalizeReference(ref)}|${credentialsKey(creds)}|${fmtPlatform(platform)}`;
    let p = this.pulls.get(key);
    if (!p) {
      p = this.doPull(parsed, creds, platform).finally(() => this.pulls.delete(key));
      this.pulls.set(key, p);
    }
    return p;
  }

  private async doPull(ref: ParsedReference, creds: Credentials | undefined, platform: Platform): Promise<ImageRecord> {
    this.cleaned ??= this.store.cleanupTemp().catch(() => {});
    await this.cleaned;
    await this.store.init();
    const name = ref.digest ? `${ref.name}@${ref.digest}` : `${ref.name}:${ref.tag ?? 'latest'}`;
    const client = new RegistryClient(ref.domain, creds);
    const progress = new Progress(this.log, name, this.onBytes);
    const { ep, top } = await this.resolveTop(client, ref, name);
    this.log.info('pulling image', { image: name, from: ep.label, digest: top.digest, mediaType: top.mediaType });
    progress.start();
    try {
      const src = new RegistrySource(this, client, ep, ref.path, progress);
      src.remember(top.digest, top.raw);
      const chain: Descriptor[] = [];
      const manifest = await pickManifest(src, { mediaType: top.mediaType, digest: top.digest, size: top.raw.length }, platform, chain, 0);
      const { value: m, raw } = await src.readBlobJson<OciManifest>(manifest);
      const mediaType = m.mediaType ?? manifest.mediaType ?? MT.ociManifest;
      if (!MANIFEST_TYPES.includes(mediaType)) throw new RegistryError('unsupported', `${name}: unsupported manifest media type ${mediaType}`);
      if (!m.config || !Array.isArray(m.layers)) throw new RegistryError('invalid', `${name}: manifest ${manifest.digest} has no config or layers`);
      progress.layersTotal = m.layers.length;
      for (const l of m.layers) if (!(await this.store.hasBlob(l.digest))) progress.totalBytes += l.size;
      const rec = await importManifest(this.store, src, {
        manifestDigest: manifest.digest,
        manifestRaw: raw,
        manifestMediaType: mediaType,
        manifest: m,
        extraBlobs: chain,
        tags: ref.digest ? [] : [`${ref.name}:${ref.tag ?? 'latest'}`],
        repoDigests: [`${ref.name}@${top.digest}`],
        platform,
      });
      const ms = Date.now() - progress.started;
      this.log.info('pulled image', {
        image: name,
        id: rec.id,
        digest: top.digest,
        layers: m.layers.length,
        downloadedBytes: progress.bytes,
        ms,
        mbPerSecond: Math.round((progress.bytes / 1e6 / Math.max(ms, 1)) * 1000 * 10) / 10,
      });
      return rec;
    } catch (e) {
      this.log.warn('pull failed', { image: name, error: (e as Error).message, ms: Date.now() - progress.started });
      throw e;
    } finally {
      progress.stop();
    }
  }

  /** Fetch the manifest or index the reference names: mirrors first, then the registry. */
  private async resolveTop(client: RegistryClient, ref: ParsedReference, name: string): Promise<{ ep: Endpoint; top: FetchedManifest }> {
    const endpoints = endpointsFor(ref.domain, this.config);
    const errors: { ep: Endpoint; err: unknown }[] = [];
    for (const ep of endpoints) {
      try {
        const top = await fetchManifest(client, ep, ref.path, ref.digest ?? ref.tag ?? 'latest', ref.digest, this.stallMs);
        return { ep, top };
      } catch (e) {
        errors.push({ ep, err: e });
        if (ep.mirror) this.log.info('mirror failed, trying the next endpoint', { image: name, mirror: ep.label, error: (e as Error).message });
      }
    }
    // The registry's own answer counts, unless it was unreachable and a mirror knew better.
    const last = errors[errors.length - 1]!;
    const decisive = errors.find((x) => x.err instanceof RegistryError && x.err.kind !== 'unavailable' && x.err.kind !== 'stalled');
    const pick = last.err instanceof RegistryError && last.err.kind === 'unavailable' && decisive ? decisive : last;
    if (errors.length === 1) throw pick.err;
    const msg = errors.map((x) => (x.err as Error).message).join('; ');
    throw pick.err instanceof RegistryError ? new RegistryError(pick.err.kind, msg) : new Error(msg);
  }

  /** Download a layer blob into the store once, however many pulls want it at the same time. */
  fetchBlobOnce(digest: string, run: () => Promise<void>): Promise<void> {
    let p = this.blobs.get(digest);
    if (!p) {
      p = run().finally(() => this.blobs.delete(digest));
      this.blobs.set(digest, p);
    }
    return p;
  }

  unpackOnce(layer: LayerRecord): Promise<void> {
    let p = this.layers.get(layer.chainId);
    if (!p) {
      p = this.store.ensureLayer(layer).finally(() => this.layers.delete(layer.chainId));
      this.layers.set(layer.chainId, p);
    }
    return p;
  }
}

interface FetchedManifest {
  digest: string;
  mediaType: string;
  raw: Buffer;
}

/** GET a manifest by tag or digest, with every Accept type; verify what can be verified. */
async function fetchManifest(
  client: RegistryClient,
  ep: Endpoint,
  repo: string,
  reference: string,
  expectDigest: string | undefined,
  stallMs: number,
): Promise<FetchedManifest> {
  const what = `${ep.label}/${repo}:${reference}`.replace(/:(sha256:)/, '@$1');
  const res = await client.request(ep, `${repo}/manifests/${reference}`, { accept: MANIFEST_ACCEPT, repo, stallMs });
  const body = await readBody(res, MAX_JSON_BLOB, `manifest ${what}`);
  if (res.status === 404) throw new RegistryError('not-found', `${what}: not found (${describeErrorBody(body) || 'HTTP 404'})`);
  if (res.status === 403) throw new RegistryError('denied', `${what}: access denied (${describeErrorBody(body) || 'HTTP 403'})`);
  if (res.status !== 200) throw new RegistryError('unavailable', `${what}: HTTP ${res.status} ${describeErrorBody(body)}`);
  const digest = `sha256:${sha256Hex(body)}`;
  if (expectDigest && digest !== expectDigest) throw new DigestMismatchError(`manifest ${what}`, expectDigest, digest);
  const header = res.headers['docker-content-digest'];
  if (!expectDigest && typeof header === 'string' && header.startsWith('sha256:') && header !== digest) {
    throw new DigestMismatchError(`manifest ${what} (Docker-Content-Digest)`, header, digest);
  }
  let parsed: { mediaType?: string; schemaVersion?: number; manifests?: unknown };
  try {
    parsed = JSON.parse(body.toString('utf8')) as typeof parsed;
  } catch {
    throw new RegistryError('invalid', `manifest ${what} is not JSON`);
  }
  const ct = String(res.headers['content-type'] ?? '').split(';')[0]!.trim();
  if (parsed.schemaVersion === 1 || /^application\/vnd\.docker\.distribution\.manifest\.v1\+(prettyjws|json)$/.test(ct)) {
    throw new RegistryError('unsupported', `${what}: Docker schema 1 manifests are not supported (push the image again with a current client)`);
  }
  const mediaType =
    parsed.mediaType ?? ([...INDEX_TYPES, ...MANIFEST_TYPES].includes(ct) ? ct : Array.isArray(parsed.manifests) ? MT.ociIndex : MT.ociManifest);
  return { digest, mediaType, raw: body };
}

/** A registry repository as a ManifestSource for importManifest/pickManifest. */
class RegistrySource implements ManifestSource {
  readonly label: string;
  readonly layerConcurrency: number;
  private readonly cache = new Map<string, Buffer>();

  constructor(
    private readonly puller: Puller,
    private readonly client: RegistryClient,
    private readonly ep: Endpoint,
    private readonly repo: string,
    private readonly progress: Progress,
  ) {
    this.label = `${ep.label}/${repo}`;
    this.layerConcurrency = puller.config.maxConcurrentDownloads;
  }

  remember(digest: string, raw: Buffer): void {
    this.cache.set(digest, raw);
  }

  async readBlobJson<T>(desc: Descriptor): Promise<{ value: T; raw: Buffer }> {
    let raw = this.cache.get(desc.digest);
    if (!raw && (await this.puller.store.hasBlob(desc.digest))) raw = await this.puller.store.readBlob(desc.digest);
    if (!raw) {
      const mt = desc.mediaType;
      if (mt === undefined || INDEX_TYPES.includes(mt) || MANIFEST_TYPES.includes(mt)) {
        raw = (await fetchManifest(this.client, this.ep, this.repo, desc.digest, desc.digest, this.puller.stallMs)).raw;
      } else {
        const res = await this.client.request(this.ep, `${this.repo}/blobs/${desc.digest}`, { repo: this.repo, stallMs: this.puller.stallMs });
        const body = await readBody(res, MAX_JSON_BLOB, `blob ${this.label}@${desc.digest}`);
        if (res.status === 404) throw new RegistryError('not-found', `${this.label}: blob ${desc.digest} not found`);
        if (res.status !== 200) throw new RegistryError('unavailable', `${this.label}: blob ${desc.digest}: HTTP ${res.status} ${describeErrorBody(body)}`);
        raw = body;
      }
      const got = `sha256:${sha256Hex(raw)}`;
      if (got !== desc.digest) throw new DigestMismatchError(`${this.label}@${desc.digest}`, desc.digest, got);
      this.cache.set(desc.digest, raw);
    }
    if (typeof desc.size === 'number' && desc.size !== raw.length) {
      throw new RegistryError('invalid', `${this.label}: blob ${desc.digest} is ${raw.length} bytes, the descriptor says ${desc.size}`);
    }
    try {
      return { value: JSON.parse(raw.toString('utf8')) as T, raw };
    } catch {
      throw new RegistryError('invalid', `${this.label}: blob ${desc.digest} is not JSON`);
    }
  }

  async putLayerBlob(store: ImageStore, l: LayerRecord): Promise<void> {
    await this.puller.fetchBlobOnce(l.digest, async () => {
      if (await store.hasBlob(l.digest)) return;
      await this.download(store, l);
    });
  }

  async unpackLayer(store: ImageStore, l: LayerRecord): Promise<void> {
    // A failed concurrent pull may have discarded a blob we waited for.
    if (!(await store.hasLayer(l.chainId)) && !(await store.hasBlob(l.digest))) await this.putLayerBlob(store, l);
    await this.puller.unpackOnce(l);
    this.progress.layersDone++;
  }

  /** Stream a blob into <store>/tmp, hashing and counting; only a verified blob is renamed into blobs/. */
  private async download(store: ImageStore, l: LayerRecord): Promise<void> {
    const what = `${this.label}@${l.digest}`;
    const res = await this.client.request(this.ep, `${this.repo}/blobs/${l.digest}`, { repo: this.repo, stallMs: this.puller.stallMs });
    if (res.status !== 200) {
      const body = await readBody(res, 1 << 20, `blob ${what}`).catch(() => Buffer.alloc(0));
      if (res.status === 404) throw new RegistryError('not-found', `${what}: blob not found (${describeErrorBody(body) || 'HTTP 404'})`);
      throw new RegistryError('unavailable', `${what}: HTTP ${res.status} ${describeErrorBody(body)}`);
    }
    const len = res.headers['content-length'];
    if (len !== undefined && Number(len) !== l.size) {
      res.body.destroy();
      res.watchdog.stop();
      throw new RegistryError('invalid', `${what}: the registry sends ${len} bytes, the manifest says ${l.size}`);
    }
    const tmp = join(store.tmpDir, `pull-${digestHex(l.digest).slice(0, 16)}-${randomSuffix()}`);
    const fh = await open(tmp, 'wx', 0o644);
    const h = createHash('sha256');
    let n = 0;
    try {
      try {
        for await (const chunk of res.body as AsyncIterable<Buffer>) {
          res.watchdog.kick();
          n += chunk.length;
          if (n > l.size) throw new RegistryError('invalid', `${what}: more than the ${l.size} bytes the manifest says`);
          h.update(chunk);
          let off = 0;
          while (off < chunk.length) off += (await fh.write(chunk, off)).bytesWritten;
          this.progress.add(chunk.length);
        }
      } catch (e) {
        res.body.destroy();
        throw streamError(e, `blob ${what}`, res);
      } finally {
        res.watchdog.stop();
      }
      if (n !== l.size) throw new RegistryError('unavailable', `${what}: connection ended after ${n} of ${l.size} bytes`);
      const got = `sha256:${h.digest('hex')}`;
      if (got !== l.digest) throw new DigestMismatchError(what, l.digest, got);
      await fh.sync();
      await fh.close();
      await rename(tmp, store.blobPath(l.digest));
      await fsyncDir(store.blobsDir);
    } catch (e) {
      await fh.close().catch(() => {});
      await rm(tmp, { force: true });
      throw e;
    }
  }
}

/** The config's credentials for a registry host (registry.auths), as the CRI's AuthConfig would carry them. */
export function configCredentials(config: RegistriesConfig, host: string): Credentials | undefined {
  const a = config.auths[host];
  if (!a) return undefined;
  return { ...a, serverAddress: host };
}
