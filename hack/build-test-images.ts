// Build the test images from Debian's busybox-static (/bin/busybox), with our
// own tar/gzip/sha256 code, no external tools:
//
//   <out>/busybox-oci/        OCI layout, cri-mesos.test/busybox:latest (one layer)
//   <out>/busybox-oci.tar     the same layout packed as a tar
//   <out>/busybox-docker.tar  docker-archive, cri-mesos.test/busybox:docker (same layer, uncompressed)
//   <out>/layered-oci/        OCI layout, cri-mesos.test/layered:latest: the busybox layer plus
//                             a layer with a whiteout (etc/motd) and an opaque dir (home/tester)
//
// Usage: npx tsx hack/build-test-images.ts <outdir>    (skips work when up to date)
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';

export const BUSYBOX = '/bin/busybox';
const BUILDER_VERSION = '3';
/** Fixed timestamps keep the output byte-for-byte reproducible. */
const EPOCH = new Date('2024-01-01T00:00:00Z');

export const TEST_TAGS = {
  oci: 'cri-mesos.test/busybox:latest',
  docker: 'cri-mesos.test/busybox:docker',
  layered: 'cri-mesos.test/layered:latest',
} as const;

export interface TarEntrySpec {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'block-device' | 'fifo';
  mode?: number;
  uid?: number;
  gid?: number;
  content?: Buffer | string;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** Extra PAX records, e.g. { 'SCHILY.xattr.user.foo': 'bar' }. */
  pax?: Record<string, string>;
  mtime?: Date;
}

/** An uncompressed tar of `entries`, in order. */
export async function makeTar(entries: TarEntrySpec[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of pack) chunks.push(c as Buffer);
  })();
  for (const e of entries) {
    const type = e.type ?? 'file';
    const content = e.content === undefined ? undefined : Buffer.from(e.content);
    const header = {
      name: e.name,
      type,
      mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644),
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      mtime: e.mtime ?? EPOCH,
      linkname: e.linkname,
      devmajor: e.devmajor,
      devminor: e.devminor,
      size: type === 'file' ? (content?.length ?? 0) : 0,
      pax: e.pax,
    } as tar.Headers & { pax?: Record<string, string> };
    await new Promise<void>((res, rej) => {
      pack.entry(header, type === 'file' ? (content ?? Buffer.alloc(0)) : undefined, (err) => (err ? rej(err) : res()));
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

export function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export interface ImageSpecInput {
  tags: string[];
  /** Uncompressed layer tars, bottom first. */
  layers: Buffer[];
  /** The `config` object of the image config (Env, Cmd, ...). */
  config: Record<string, unknown>;
}

interface BuiltBlob {
  digest: string;
  data: Buffer;
}

/** Config, (gzip) layer blobs and manifest of an image, as a registry would hold them. */
export function buildImageBlobs(img: ImageSpecInput, gzip = true) {
  const layerBlobs = img.layers.map((l) => (gzip ? gzipSync(l, { level: 6 }) : l));
  const config = Buffer.from(
    JSON.stringify({
      created: EPOCH.toISOString(),
      architecture: 'amd64',
      os: 'linux',
      config: img.config,
      rootfs: { type: 'layers', diff_ids: img.layers.map((l) => sha256(l)) },
      history: img.layers.map(() => ({ created: EPOCH.toISOString(), created_by: 'hack/build-test-images.ts' })),
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
      layers: layerBlobs.map((b) => ({
        mediaType: gzip ? 'application/vnd.oci.image.layer.v1.tar+gzip' : 'application/vnd.oci.image.layer.v1.tar',
        digest: sha256(b),
        size: b.length,
      })),
    }),
  );
  const blobs: BuiltBlob[] = [
    ...layerBlobs.map((data) => ({ digest: sha256(data), data })),
    { digest: sha256(config), data: config },
    { digest: sha256(manifest), data: manifest },
  ];
  return { config, manifest, layerBlobs, blobs, manifestDigest: sha256(manifest), configDigest: sha256(config) };
}

/** Write an OCI image layout directory holding `images` (written to a temp dir, then renamed). */
export async function writeOciLayout(dir: string, images: ImageSpecInput[]): Promise<void> {
  const tmp = `${dir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(join(tmp, 'blobs', 'sha256'), { recursive: true });
  const manifests: unknown[] = [];
  for (const img of images) {
    const b = buildImageBlobs(img, true);
    for (const blob of b.blobs) await writeFile(join(tmp, 'blobs', 'sha256', blob.digest.slice(7)), blob.data);
    for (const tag of img.tags.length ? img.tags : [undefined]) {
      manifests.push({
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: b.manifestDigest,
        size: b.manifest.length,
        ...(tag ? { annotations: { 'org.opencontainers.image.ref.name': tag } } : {}),
      });
    }
  }
  await writeFile(join(tmp, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(join(tmp, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests }));
  await rm(dir, { recursive: true, force: true });
  await rename(tmp, dir);
}

/** Write a `docker save`-style archive (manifest.json, <config>.json, <id>/layer.tar uncompressed). */
export async function writeDockerArchive(file: string, images: ImageSpecInput[]): Promise<void> {
  const entries: TarEntrySpec[] = [];
  const manifest: unknown[] = [];
  for (const img of images) {
    const b = buildImageBlobs(img, false);
    const cfgName = `${b.configDigest.slice(7)}.json`;
    entries.push({ name: cfgName, content: b.config });
    const layerPaths: string[] = [];
    for (const l of img.layers) {
      // docker's legacy layer ids are not content digests; any unique hex works.
      const id = createHash('sha256').update(`${b.configDigest} ${sha256(l)}`).digest('hex');
      entries.push({ name: `${id}/`, type: 'directory' }, { name: `${id}/VERSION`, content: '1.0' }, { name: `${id}/layer.tar`, content: l });
      layerPaths.push(`${id}/layer.tar`);
    }
    manifest.push({ Config: cfgName, RepoTags: img.tags, Layers: layerPaths });
  }
  entries.push({ name: 'manifest.json', content: JSON.stringify(manifest) });
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, await makeTar(entries));
  await rename(tmp, file);
}

/** Pack an existing layout dir written by writeOciLayout into a tar. */
async function packLayoutDir(dir: string, file: string, images: ImageSpecInput[]): Promise<void> {
  const entries: TarEntrySpec[] = [
    { name: 'oci-layout', content: await readFile(join(dir, 'oci-layout')) },
    { name: 'index.json', content: await readFile(join(dir, 'index.json')) },
    { name: 'blobs/', type: 'directory' },
    { name: 'blobs/sha256/', type: 'directory' },
  ];
  const seen = new Set<string>();
  for (const img of images) {
    for (const b of buildImageBlobs(img, true).blobs) {
      if (seen.has(b.digest)) continue;
      seen.add(b.digest);
      entries.push({ name: `blobs/sha256/${b.digest.slice(7)}`, content: b.data });
    }
  }
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, await makeTar(entries));
  await rename(tmp, file);
}

export const PASSWD = 'root:x:0:0:root:/root:/bin/sh\ntester:x:1000:1000:tester:/home/tester:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n';
export const GROUP = 'root:x:0:\nwheel:x:10:tester\ntester:x:1000:\nusers:x:100:tester\nnogroup:x:65534:\n';

/**
 * The busybox rootfs layer: bin/busybox, one symlink per applet, etc/{passwd,group,motd}, tmp 1777, home/tester.
 * `hardlinks` makes the applets hard links instead, as in the Docker busybox images: masking or
 * replacing one applet path (/bin/ls) then leaves /bin/busybox, and so /bin/sh, alone.
 */
export async function busyboxLayer(busybox = BUSYBOX, opts: { hardlinks?: boolean } = {}): Promise<Buffer> {
  if (!existsSync(busybox)) {
    throw new Error(`${busybox} is missing: install Debian's busybox-static (apt-get install -y busybox-static)`);
  }
  const applets = execFileSync(busybox, ['--list'], { encoding: 'utf8' })
    .split('\n')
    .map((s) => s.trim())
    .filter((s) => /^[\w.[\]-]+$/.test(s) && s !== 'busybox')
    .sort();
  const dirs = ['bin/', 'dev/', 'etc/', 'home/', 'proc/', 'root/', 'sys/', 'usr/', 'usr/bin/', 'var/'];
  const entries: TarEntrySpec[] = [
    ...dirs.map((d): TarEntrySpec => ({ name: d, type: 'directory', mode: d === 'root/' ? 0o700 : 0o755 })),
    { name: 'home/tester/', type: 'directory', mode: 0o755, uid: 1000, gid: 1000 },
    { name: 'home/tester/.profile', content: 'export PS1="$ "\n', uid: 1000, gid: 1000 },
    { name: 'tmp/', type: 'directory', mode: 0o1777 },
    { name: 'bin/busybox', content: readFileSync(busybox), mode: 0o755 },
    ...applets.map((a): TarEntrySpec =>
      // A hard link's header mode is applied to the shared inode by docker's and containerd's
      // extractors (they chmod the link), so it must be the binary's own 0755.
      opts.hardlinks ? { name: `bin/${a}`, type: 'link', linkname: 'bin/busybox', mode: 0o755 } : { name: `bin/${a}`, type: 'symlink', linkname: 'busybox', mode: 0o777 },
    ),
    { name: 'etc/passwd', content: PASSWD },
    { name: 'etc/group', content: GROUP },
    { name: 'etc/motd', content: 'cri-mesos test image\n' },
  ];
  return makeTar(entries);
}

/** The second layer of cri-mesos.test/layered: a whiteout and an opaque directory. */
export async function layeredTopLayer(): Promise<Buffer> {
  return makeTar([
    { name: 'etc/', type: 'directory' },
    { name: 'etc/.wh.motd', content: '' },
    { name: 'etc/layered', content: 'top layer\n' },
    { name: 'home/', type: 'directory' },
    { name: 'home/tester/', type: 'directory', uid: 1000, gid: 1000 },
    { name: 'home/tester/.wh..wh..opq', content: '' },
    { name: 'home/tester/new.txt', content: 'only me\n', uid: 1000, gid: 1000 },
  ]);
}

export const BUSYBOX_CONFIG = {
  Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
  Cmd: ['sh'],
  WorkingDir: '/',
  Labels: { 'org.cri-mesos.test': 'busybox' },
};

export interface BuiltTestImages {
  ociDir: string;
  ociTar: string;
  dockerTar: string;
  layeredDir: string;
}

/** Build all test images into `outDir`; returns at once when they are up to date. */
export async function buildBusyboxImages(outDir: string, busybox = BUSYBOX): Promise<BuiltTestImages> {
  outDir = resolve(outDir);
  const paths = (dir: string): BuiltTestImages => ({
    ociDir: join(dir, 'busybox-oci'),
    ociTar: join(dir, 'busybox-oci.tar'),
    dockerTar: join(dir, 'busybox-docker.tar'),
    layeredDir: join(dir, 'layered-oci'),
  });
  const out = paths(outDir);
  const stamp = `${BUILDER_VERSION} ${sha256(readFileSync(busybox))}`;
  const upToDate = () =>
    existsSync(join(outDir, '.stamp')) && readFileSync(join(outDir, '.stamp'), 'utf8') === stamp && Object.values(out).every((p) => existsSync(p));
  if (upToDate()) return out;

  // Built aside and renamed into place whole: test files in other processes build at the same
  // time, and none may import a layout another is still writing.
  await mkdir(dirname(outDir), { recursive: true });
  const tmp = await mkdtemp(`${outDir}.build-`);
  await chmod(tmp, 0o755);
  const built = paths(tmp);
  const base = await busyboxLayer(busybox);
  const oci: ImageSpecInput = { tags: [TEST_TAGS.oci], layers: [base], config: BUSYBOX_CONFIG };
  await writeOciLayout(built.ociDir, [oci]);
  await packLayoutDir(built.ociDir, built.ociTar, [oci]);
  await writeDockerArchive(built.dockerTar, [
    { tags: [TEST_TAGS.docker], layers: [base], config: { ...BUSYBOX_CONFIG, Labels: { 'org.cri-mesos.test': 'busybox-docker' } } },
  ]);
  await writeOciLayout(built.layeredDir, [
    { tags: [TEST_TAGS.layered], layers: [base, await layeredTopLayer()], config: { ...BUSYBOX_CONFIG, Labels: { 'org.cri-mesos.test': 'layered' } } },
  ]);
  await writeFile(join(tmp, '.stamp'), stamp);
  for (let attempt = 1; ; attempt++) {
    try {
      await rename(tmp, outDir);
      return out;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if ((code !== 'ENOTEMPTY' && code !== 'EEXIST') || attempt === 3) throw err;
    }
    if (upToDate()) {
      // Another process put the same images there first.
      await rm(tmp, { recursive: true, force: true });
      return out;
    }
    // An older or half-written set: moved aside (unless another process just did), ours in its place.
    const old = await mkdtemp(`${outDir}.old-`);
    await rename(outDir, join(old, 'images')).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
    await rm(old, { recursive: true, force: true });
  }
}

/** Runs `fn(outDir)` when `moduleUrl` is the script node was started with; prints its result as JSON. */
export function runAsScript(moduleUrl: string, usage: string, fn: (outDir: string) => Promise<unknown>): void {
  if (!process.argv[1] || moduleUrl !== pathToFileURL(resolve(process.argv[1])).href) return;
  const outDir = process.argv[2];
  if (!outDir) {
    console.error(`usage: ${usage} <outdir>`);
    process.exit(2);
  }
  fn(outDir).then(
    (r) => console.log(JSON.stringify(r, null, 2)),
    (e: unknown) => {
      console.error(e instanceof Error ? e.message : e);
      process.exit(1);
    },
  );
}

runAsScript(import.meta.url, 'npx tsx hack/build-test-images.ts', buildBusyboxImages);
