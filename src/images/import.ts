// Import images from local files into the store: an OCI image layout (a
// directory, or a tar of one) or a `docker save` archive. Every blob is
// verified against its digest, every layer's uncompressed content against
// the config's diff_ids.
import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  chainIds,
  ImageStore,
  LayerVanishedError,
  MAX_JSON_BLOB,
  type ImageConfigSummary,
  type ImageRecord,
  type LayerRecord,
} from './store.js';
import { notFound, unimplemented } from '../errors.js';
import { digestHex, hashFile, randomSuffix, secureResolve, sha256Hex } from './fsutil.js';
import { normalizeTag, parseReference } from './reference.js';
import { detectCompression, unpackLayerFile } from './unpack.js';

export const MT = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

export const INDEX_TYPES: string[] = [MT.ociIndex, MT.dockerList];
export const MANIFEST_TYPES: string[] = [MT.ociManifest, MT.dockerManifest];

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface ImportOptions {
  /** Extra tags for every imported image. */
  tags?: string[];
  /** Repository for OCI ref names that are only a tag (e.g. skopeo's `oci:dir:latest`). */
  repository?: string;
  /** Platform picked from indexes; default linux/<host arch>. */
  platform?: Platform;
}

export interface Descriptor {
  mediaType?: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { os?: string; architecture?: string; variant?: string };
}

export function hostPlatform(): Platform {
  const arch = ({ x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' } as Record<string, string>)[process.arch];
  return { os: 'linux', architecture: arch ?? 'amd64' };
}

/** Import everything found at `path`. Returns the resulting image records. */
export async function importImage(store: ImageStore, path: string, opts: ImportOptions = {}): Promise<ImageRecord[]> {
  await store.init();
  const st = await stat(path);
  if (st.isDirectory()) return importDir(store, path, opts);
  if (!st.isFile()) throw new Error(`${path} is neither a directory nor a file`);
  // A tar (maybe gzip'd) of a layout or a docker archive: unpack it (same
  // path-safety rules as layers, no ownership) and import the directory.
  const tmp = join(store.tmpDir, `import-${randomSuffix()}`);
  await mkdir(tmp, { mode: 0o700 });
  try {
    try {
      await unpackLayerFile(path, tmp, { chown: false });
    } catch (e) {
      throw new Error(`${path}: not a readable image archive: ${(e as Error).message}`);
    }
    return await importDir(store, tmp, opts, path);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

async function importDir(store: ImageStore, dir: string, opts: ImportOptions, label = dir): Promise<ImageRecord[]> {
  const src = new Source(dir, label);
  if (await src.exists('manifest.json')) return importDockerArchive(store, src, opts);
  if (await src.exists('index.json')) return importOciLayout(store, src, opts);
  throw new Error(`${label}: neither an OCI image layout (index.json) nor a docker archive (manifest.json)`);
}

/** Where manifests, indexes and configs come from (a layout dir, or a registry). */
export interface JsonBlobSource {
  readonly label: string;
  /** Read a JSON blob, checking digest and descriptor size. */
  readBlobJson<T>(desc: Descriptor): Promise<{ value: T; raw: Buffer }>;
}

/** A JsonBlobSource that can also put layer blobs into the store. */
export interface ManifestSource extends JsonBlobSource {
  /** Make the (verified) blob of `layer` present in the store. */
  putLayerBlob(store: ImageStore, layer: LayerRecord): Promise<void>;
  /** Unpack a stored layer blob (default: store.ensureLayer). */
  unpackLayer?(store: ImageStore, layer: LayerRecord): Promise<void>;
  /** Layers fetched and unpacked at once (default 1). */
  layerConcurrency?: number;
}

/** Files of the layout/archive, resolved so that no symlink leads out of it. */
class Source implements ManifestSource {
  constructor(
    readonly dir: string,
    readonly label: string,
  ) {}

  path(rel: string): Promise<string> {
    return secureResolve(this.dir, rel);
  }

  async exists(rel: string): Promise<boolean> {
    return stat(await this.path(rel)).then(
      (s) => s.isFile(),
      () => false,
    );
  }

  async readJson<T>(rel: string): Promise<{ value: T; raw: Buffer }> {
    const p = await this.path(rel);
    const st = await stat(p).catch(() => {
      throw new Error(`${this.label}: ${rel} is missing`);
    });
    if (st.size > MAX_JSON_BLOB) throw new Error(`${this.label}: ${rel} is too large`);
    const raw = await readFile(p);
    try {
      return { value: JSON.parse(raw.toString('utf8')) as T, raw };
    } catch (e) {
      throw new Error(`${this.label}: ${rel} is not valid JSON: ${(e as Error).message}`);
    }
  }

  blobRel(digest: string): string {
    return `blobs/sha256/${digestHex(digest)}`;
  }

  /** Read a JSON blob, checking digest and descriptor size. */
  async readBlobJson<T>(desc: Descriptor): Promise<{ value: T; raw: Buffer }> {
    const r = await this.readJson<T>(this.blobRel(desc.digest));
    const got = `sha256:${sha256Hex(r.raw)}`;
    if (got !== desc.digest) throw new Error(`${this.label}: digest mismatch for blob ${desc.digest}: content hashes to ${got}`);
    if (typeof desc.size === 'number' && desc.size !== r.raw.length) {
      throw new Error(`${this.label}: blob ${desc.digest} is ${r.raw.length} bytes, the descriptor says ${desc.size}`);
    }
    return r;
  }

  async putLayerBlob(store: ImageStore, l: LayerRecord): Promise<void> {
    const p = await this.path(this.blobRel(l.digest));
    await store.putBlobFromFile(p, l.digest, l.size).catch((e: unknown) => {
      if ((e as { code?: string }).code === 'ENOENT') throw new Error(`${this.label}: layer blob ${l.digest} is missing`);
      throw e;
    });
  }
}

// ---- OCI image layout ------------------------------------------------------

export interface OciIndex {
  schemaVersion?: number;
  mediaType?: string;
  manifests?: Descriptor[];
}

export interface OciManifest {
  schemaVersion?: number;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
}

export interface ImageConfigFile {
  architecture?: string;
  os?: string;
  variant?: string;
  created?: string;
  config?: ImageConfigSummary & Record<string, unknown>;
  rootfs?: { type?: string; diff_ids?: string[] };
}

async function importOciLayout(store: ImageStore, src: Source, opts: ImportOptions): Promise<ImageRecord[]> {
  if (await src.exists('oci-layout')) {
    const { value } = await src.readJson<{ imageLayoutVersion?: string }>('oci-layout');
    if (!value.imageLayoutVersion?.startsWith('1.')) {
      throw new Error(`${src.label}: unsupported imageLayoutVersion ${JSON.stringify(value.imageLayoutVersion)}`);
    }
  }
  const { value: index } = await src.readJson<OciIndex>('index.json');
  const platform = opts.platform ?? hostPlatform();
  const top = (index.manifests ?? []).filter((d) => !d.platform || platformMatches(d.platform, platform));
  if (top.length === 0) throw new Error(`${src.label}: index.json lists no image for ${fmtPlatform(platform)}`);

  // Several index entries may name the same image (one per tag): import each manifest once.
  const byManifest = new Map<string, { chain: Descriptor[]; manifest: Descriptor; names: string[]; topDigest: string }>();
  for (const d of top) {
    const chain: Descriptor[] = [];
    const manifest = await pickManifest(src, d, platform, chain, 0);
    const names = refNames(d, opts, src.label);
    const entry = byManifest.get(manifest.digest);
    if (entry) entry.names.push(...names);
    else byManifest.set(manifest.digest, { chain, manifest, names, topDigest: d.digest });
  }
  const out: ImageRecord[] = [];
  for (const e of byManifest.values()) {
    const { value: m, raw } = await src.readBlobJson<OciManifest>(e.manifest);
    const mediaType = m.mediaType ?? e.manifest.mediaType ?? MT.ociManifest;
    if (!MANIFEST_TYPES.includes(mediaType)) throw new Error(`${src.label}: unsupported manifest media type ${mediaType}`);
    if (!m.config || !Array.isArray(m.layers)) throw new Error(`${src.label}: manifest ${e.manifest.digest} has no config or layers`);
    const names = [...e.names, ...(opts.tags ?? [])].map((n) => normalizeTag(n));
    const repoDigests = [...new Set(names.map((t) => `${parseReference(t).name}@${e.topDigest}`))];
    out.push(
      await importManifest(store, src, {
        manifestDigest: e.manifest.digest,
        manifestRaw: raw,
        manifestMediaType: mediaType,
        manifest: m,
        extraBlobs: e.chain,
        tags: names,
        repoDigests,
        platform,
      }),
    );
  }
  return out;
}

/** Follow (possibly nested) indexes down to one platform manifest. */
export async function pickManifest(src: JsonBlobSource, d: Descriptor, platform: Platform, chain: Descriptor[], depth: number): Promise<Descriptor> {
  if (depth > 8) throw new Error(`${src.label}: indexes nested too deeply`);
  const mt = d.mediaType ?? '';
  if (MANIFEST_TYPES.includes(mt)) return d;
  if (!INDEX_TYPES.includes(mt)) {
    if (/zstd/.test(mt)) throw unimplemented(`${src.label}: ${mt} is not supported`);
    // Media type missing: look inside.
    const { value } = await src.readBlobJson<OciIndex & OciManifest>(d);
    if (!Array.isArray(value.manifests)) return d;
  }
  const { value: idx, raw } = await src.readBlobJson<OciIndex>(d);
  chain.push({ ...d, size: raw.length });
  const candidates = (idx.manifests ?? []).filter((m) => m.platform && platformMatches(m.platform, platform));
  // Prefer an exact variant match, then any; an index without platforms (nesting) passes through its single entry.
  const pick =
    candidates.find((m) => !platform.variant || m.platform?.variant === platform.variant) ??
    (idx.manifests?.length === 1 && !idx.manifests[0]!.platform ? idx.manifests[0] : undefined);
  if (!pick) {
    const have = (idx.manifests ?? []).map((m) => (m.platform ? fmtPlatform(m.platform as Platform) : '?')).join(', ');
    throw notFound(`${src.label}: index ${d.digest} has no image for ${fmtPlatform(platform)} (it has: ${have || 'nothing'})`);
  }
  return pickManifest(src, pick, platform, chain, depth + 1);
}

export function platformMatches(p: { os?: string; architecture?: string; variant?: string }, want: Platform): boolean {
  return p.os === want.os && p.architecture === want.architecture && (!want.variant || !p.variant || p.variant === want.variant);
}

export function fmtPlatform(p: { os?: string; architecture?: string; variant?: string }): string {
  return `${p.os ?? '?'}/${p.architecture ?? '?'}${p.variant ? '/' + p.variant : ''}`;
}

/**
 * Names an index entry carries: containerd's full-name annotation, else the
 * OCI ref name when it is a full reference; a bare tag needs `repository`.
 */
function refNames(d: Descriptor, opts: ImportOptions, label: string): string[] {
  const a = d.annotations ?? {};
  const full = a['io.containerd.image.name'];
  if (full) return [full];
  const ref = a['org.opencontainers.image.ref.name'];
  if (!ref) return [];
  if (/[/:@]/.test(ref)) {
    try {
      normalizeTag(ref);
      return [ref];
    } catch (e) {
      throw new Error(`${label}: ${(e as Error).message}`);
    }
  }
  return opts.repository ? [`${opts.repository}:${ref}`] : [];
}

export interface ManifestImport {
  manifestDigest: string;
  manifestRaw: Buffer;
  manifestMediaType: string;
  manifest: OciManifest;
  /** Index blobs on the way to the manifest (kept so name@index-digest stays resolvable). */
  extraBlobs: Descriptor[];
  tags: string[];
  repoDigests: string[];
  platform?: Platform;
}

export async function importManifest(store: ImageStore, src: ManifestSource, mi: ManifestImport): Promise<ImageRecord> {
  const m = mi.manifest;
  const { value: cfg, raw: cfgRaw } = await src.readBlobJson<ImageConfigFile>(m.config);
  if (mi.platform && cfg.architecture && (cfg.os !== mi.platform.os || cfg.architecture !== mi.platform.architecture)) {
    throw notFound(`${src.label}: image is for ${fmtPlatform(cfg)}, this host needs ${fmtPlatform(mi.platform)}`);
  }
  const diffIds = cfg.rootfs?.diff_ids ?? [];
  if (diffIds.length !== m.layers.length) {
    throw new Error(`${src.label}: config lists ${diffIds.length} diff_ids for ${m.layers.length} layers`);
  }
  const chains = chainIds(diffIds);
  const layers: LayerRecord[] = m.layers.map((l, i) => {
    const mediaType = l.mediaType ?? MT.ociLayerGzip;
    if (/foreign|nondistributable/.test(mediaType)) {
      throw unimplemented(`${src.label}: layer ${l.digest} is a foreign (non-distributable) layer, which is not supported`);
    }
    return { digest: l.digest, mediaType, size: l.size, diffId: diffIds[i]!, chainId: chains[i]! };
  });

  // What this import adds, so a failure can take it back out.
  const addedBlobs: string[] = [];
  const addedLayers: string[] = [];
  try {
    return await writeAndCommit(store, src, mi, cfgRaw, cfg, layers, addedBlobs, addedLayers);
  } catch (e) {
    await store.discard(addedBlobs, addedLayers).catch(() => {});
    throw e;
  }
}

async function writeAndCommit(
  store: ImageStore,
  src: ManifestSource,
  mi: ManifestImport,
  cfgRaw: Buffer,
  cfg: ImageConfigFile,
  layers: LayerRecord[],
  addedBlobs: string[],
  addedLayers: string[],
): Promise<ImageRecord> {
  const m = mi.manifest;
  const putJson = async (raw: Buffer, digest: string) => {
    if (!(await store.hasBlob(digest))) addedBlobs.push(digest);
    await store.putBlob(raw, digest);
  };
  for (let attempt = 0; ; attempt++) {
    await forEachLimit(layers, src.layerConcurrency ?? 1, async (l) => {
      if (!(await store.hasLayer(l.chainId))) addedLayers.push(l.chainId);
      if (!(await store.hasBlob(l.digest))) {
        addedBlobs.push(l.digest);
        await src.putLayerBlob(store, l);
      }
      await (src.unpackLayer ? src.unpackLayer(store, l) : store.ensureLayer(l));
    });
    await putJson(cfgRaw, m.config.digest);
    await putJson(mi.manifestRaw, mi.manifestDigest);
    for (const d of mi.extraBlobs) await putJson((await src.readBlobJson<unknown>(d)).raw, d.digest);

    const rec: ImageRecord = {
      version: 1,
      id: m.config.digest,
      repoTags: mi.tags,
      repoDigests: mi.repoDigests,
      manifestDigest: mi.manifestDigest,
      manifestMediaType: mi.manifestMediaType,
      size: layers.reduce((s, l) => s + l.size, 0) + cfgRaw.length,
      config: summarizeConfig(cfg.config),
      os: cfg.os ?? 'linux',
      architecture: cfg.architecture ?? 'amd64',
      created: cfg.created,
      layers,
      blobs: [...new Set([...mi.extraBlobs.map((d) => d.digest), mi.manifestDigest, m.config.digest, ...layers.map((l) => l.digest)])],
      importedAt: new Date().toISOString(),
    };
    try {
      return await store.commit(rec);
    } catch (e) {
      // A concurrent remove freed a shared layer between our unpack and commit: redo the missing parts.
      if (e instanceof LayerVanishedError && attempt < 3) continue;
      throw e;
    }
  }
}

/** Run `fn` over `items`, at most `limit` at once; the first failure fails the whole (after the running ones settle). */
export async function forEachLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: { e: unknown } | undefined;
  const worker = async () => {
    while (!failed && next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (e) {
        failed ??= { e };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failed) throw failed.e;
}

export function summarizeConfig(c: (ImageConfigSummary & Record<string, unknown>) | undefined): ImageConfigSummary {
  if (!c) return {};
  const out: ImageConfigSummary = {};
  const keys = ['User', 'Env', 'Entrypoint', 'Cmd', 'WorkingDir', 'ExposedPorts', 'Volumes', 'Labels', 'StopSignal'] as const;
  for (const k of keys) {
    if (c[k] !== undefined && c[k] !== null) (out as Record<string, unknown>)[k] = c[k];
  }
  return out;
}

// ---- docker save archive ---------------------------------------------------

interface DockerManifestEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

async function importDockerArchive(store: ImageStore, src: Source, opts: ImportOptions): Promise<ImageRecord[]> {
  const { value: entries } = await src.readJson<DockerManifestEntry[]>('manifest.json');
  if (!Array.isArray(entries) || entries.length === 0) throw new Error(`${src.label}: manifest.json lists no images`);
  const out: ImageRecord[] = [];
  for (const e of entries) {
    if (typeof e.Config !== 'string' || !Array.isArray(e.Layers)) throw new Error(`${src.label}: malformed manifest.json entry`);
    // The config's name, where it carries a digest, must match its content.
    const cfgPath = await src.path(e.Config);
    const cfgHash = await hashFile(cfgPath).catch(() => {
      throw new Error(`${src.label}: config ${e.Config} is missing`);
    });
    checkNamedDigest(src.label, e.Config, cfgHash.digest);
    const layerDescs: Descriptor[] = [];
    for (const rel of e.Layers) {
      const p = await src.path(rel);
      const h = await hashFile(p).catch(() => {
        throw new Error(`${src.label}: layer ${rel} is missing`);
      });
      checkNamedDigest(src.label, rel, h.digest);
      const c = await detectCompression(p);
      const mediaType = c === 'gzip' ? MT.ociLayerGzip : c === 'zstd' ? MT.ociLayerZstd : MT.ociLayer;
      layerDescs.push({ digest: h.digest, size: h.size, mediaType });
    }
    // docker save has no manifest: synthesize an OCI one so the store looks the same for every source.
    const manifest: OciManifest & { schemaVersion: number; mediaType: string } = {
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      config: { mediaType: MT.ociConfig, digest: cfgHash.digest, size: cfgHash.size },
      layers: layerDescs,
    };
    const manifestRaw = Buffer.from(JSON.stringify(manifest));
    // Blobs are read through their archive paths, not blobs/sha256.
    const pathSource = new ArchiveSource(src, e.Config, cfgHash.digest, e.Layers, layerDescs);
    const tags = [...(e.RepoTags ?? []), ...(opts.tags ?? [])].map((t) => normalizeTag(t));
    out.push(
      await importManifest(store, pathSource, {
        manifestDigest: `sha256:${sha256Hex(manifestRaw)}`,
        manifestRaw,
        manifestMediaType: MT.ociManifest,
        manifest,
        extraBlobs: [],
        tags,
        // Like `docker load`: an archive has no registry manifest, so no repo digests.
        repoDigests: [],
        platform: opts.platform ?? hostPlatform(),
      }),
    );
  }
  return out;
}

/** A docker archive names files by path; map digests back to those paths. */
class ArchiveSource extends Source {
  private readonly byDigest = new Map<string, string>();
  constructor(inner: Source, cfgRel: string, cfgDigest: string, layerRels: string[], layers: Descriptor[]) {
    super(inner.dir, inner.label);
    this.byDigest.set(cfgDigest, cfgRel);
    layers.forEach((l, i) => this.byDigest.set(l.digest, layerRels[i]!));
  }

  override blobRel(digest: string): string {
    return this.byDigest.get(digest) ?? super.blobRel(digest);
  }
}

/** `<hex>.json`, `blobs/sha256/<hex>` or `<hex>/layer.tar`-style names are not checked; only names that are digests. */
function checkNamedDigest(label: string, rel: string, digest: string): void {
  const m = /(?:^|\/)(?:sha256[:/])?([a-f0-9]{64})(?:\.json)?$/.exec(rel);
  if (m && `sha256:${m[1]}` !== digest) {
    throw new Error(`${label}: digest mismatch for ${rel}: content hashes to ${digest}`);
  }
}
