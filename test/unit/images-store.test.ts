// Image store + import: resolution, digest verification, shared layers,
// removal and garbage collection, the three input formats, refusals.
import { useTestImages } from '../helpers/suite.js';
import test, { type ExecutionContext } from 'ava';
import { existsSync, readdirSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import {
  buildBusyboxImages,
  buildImageBlobs,
  makeTar,
  sha256,
  TEST_TAGS,
  writeOciLayout,
  type BuiltTestImages,
} from '../../hack/build-test-images.js';
import { importImage } from '../../src/images/import.js';
import { ImageStore, chainIds } from '../../src/images/store.js';

let imgs: BuiltTestImages;
useTestImages((b) => (imgs = b));

async function newStore(t: ExecutionContext): Promise<ImageStore> {
  const d = await mkdtemp(join(tmpdir(), 'cm-store-'));
  t.teardown(() => rm(d, { recursive: true, force: true }));
  const s = new ImageStore(join(d, 'images'));
  await s.init();
  return s;
}

const visible = (dir: string) => readdirSync(dir).filter((n) => !n.startsWith('.'));

test('import an OCI layout: record, tags, repo digest, size, config', async (t) => {
  const s = await newStore(t);
  const [rec] = await importImage(s, imgs.ociDir);
  t.truthy(rec);
  t.regex(rec!.id, /^sha256:[a-f0-9]{64}$/);
  t.deepEqual(rec!.repoTags, [TEST_TAGS.oci]);
  t.is(rec!.repoDigests.length, 1);
  t.is(rec!.repoDigests[0], `cri-mesos.test/busybox@${rec!.manifestDigest}`);
  t.deepEqual(rec!.config.Cmd, ['sh']);
  t.true(rec!.config.Env![0]!.startsWith('PATH='));
  t.is(rec!.layers.length, 1);
  const layerBlob = await readFile(s.blobPath(rec!.layers[0]!.digest));
  const cfg = await s.readBlob(rec!.id);
  t.is(rec!.size, layerBlob.length + cfg.length);
  t.true(existsSync(join(s.layerDir(rec!.layers[0]!.chainId), 'bin', 'busybox')));
  t.deepEqual(s.layerDirs(rec!), [s.layerDir(rec!.layers[0]!.chainId)]);
});

test('resolve by short name, full tag, name@digest, id and id prefix', async (t) => {
  const s = await newStore(t);
  const [rec] = await importImage(s, imgs.ociDir);
  const id = rec!.id;
  const hex = id.slice(7);
  for (const ref of [
    'cri-mesos.test/busybox',
    'cri-mesos.test/busybox:latest',
    `cri-mesos.test/busybox@${rec!.manifestDigest}`,
    id,
    hex,
    hex.slice(0, 12),
    `sha256:${hex.slice(0, 16)}`,
  ]) {
    t.is((await s.resolve(ref))?.id, id, ref);
  }
  for (const ref of ['cri-mesos.test/busybox:nope', 'busybox', hex.slice(0, 11), `sha256:${'0'.repeat(64)}`, 'NOT A REF', `other.test/x@${rec!.manifestDigest}`]) {
    t.is(await s.resolve(ref), undefined, ref);
  }
});

test('docker-archive import: tags, no repo digests, same layer stored once', async (t) => {
  const s = await newStore(t);
  const [oci] = await importImage(s, imgs.ociDir);
  const [dock] = await importImage(s, imgs.dockerTar);
  t.deepEqual(dock!.repoTags, [TEST_TAGS.docker]);
  t.deepEqual(dock!.repoDigests, []);
  t.not(dock!.id, oci!.id);
  // Uncompressed blob vs gzip blob, same diffID → the same chain ID → one layer dir.
  t.not(dock!.layers[0]!.digest, oci!.layers[0]!.digest);
  t.is(dock!.layers[0]!.chainId, oci!.layers[0]!.chainId);
  t.is(visible(s.layersDir).length, 1);
  t.is((await s.list()).length, 2);
});

test('an OCI layout packed as a tar imports like the directory', async (t) => {
  const s = await newStore(t);
  const [a] = await importImage(s, imgs.ociTar);
  t.deepEqual(a!.repoTags, [TEST_TAGS.oci]);
  t.deepEqual(visible(s.tmpDir), [], 'the unpacked archive is cleaned up');
});

test('two images sharing a base layer store it once; chain IDs are computed per OCI', async (t) => {
  const s = await newStore(t);
  const [bb] = await importImage(s, imgs.ociDir);
  const [lay] = await importImage(s, imgs.layeredDir);
  t.is(lay!.layers.length, 2);
  t.is(lay!.layers[0]!.chainId, bb!.layers[0]!.chainId);
  t.deepEqual(
    lay!.layers.map((l) => l.chainId),
    chainIds(lay!.layers.map((l) => l.diffId)),
  );
  t.is(visible(s.layersDir).length, 2);
  // lowerdirs: top first
  t.deepEqual(s.layerDirs(lay!), [s.layerDir(lay!.layers[1]!.chainId), s.layerDir(lay!.layers[0]!.chainId)]);
});

test('remove: untag first, delete with the last tag, free only unshared blobs and layers', async (t) => {
  const s = await newStore(t);
  const [bb] = await importImage(s, imgs.ociDir, { tags: ['cri-mesos.test/busybox:second'] });
  const [lay] = await importImage(s, imgs.layeredDir);
  t.deepEqual(bb!.repoTags.sort(), ['cri-mesos.test/busybox:latest', 'cri-mesos.test/busybox:second']);

  const r1 = await s.remove('cri-mesos.test/busybox:second');
  t.deepEqual(r1, { id: bb!.id, untagged: ['cri-mesos.test/busybox:second'], deleted: false });
  t.deepEqual((await s.get(bb!.id))!.repoTags, ['cri-mesos.test/busybox:latest']);

  // Removing the layered image frees its top layer and own blobs, keeps the shared base.
  const r2 = await s.remove(TEST_TAGS.layered);
  t.true(r2!.deleted);
  t.false(existsSync(s.layerDir(lay!.layers[1]!.chainId)));
  t.true(existsSync(s.layerDir(lay!.layers[0]!.chainId)));
  t.false(await s.hasBlob(lay!.id));
  t.false(await s.hasBlob(lay!.manifestDigest));
  t.false(await s.hasBlob(lay!.layers[1]!.digest));
  t.true(await s.hasBlob(lay!.layers[0]!.digest), 'base layer blob is shared with busybox');

  // By id: everything goes.
  t.true((await s.remove(bb!.id))!.deleted);
  t.deepEqual(await s.list(), []);
  t.deepEqual(visible(s.layersDir), []);
  t.deepEqual(visible(s.blobsDir), []);
  t.is(await s.remove('cri-mesos.test/busybox'), undefined, 'unknown → undefined');
});

test('a tag moves to the newly imported image; the old one stays untagged', async (t) => {
  const s = await newStore(t);
  const [bb] = await importImage(s, imgs.ociDir);
  const [lay] = await importImage(s, imgs.layeredDir, { tags: [TEST_TAGS.oci] });
  t.is((await s.resolve(TEST_TAGS.oci))!.id, lay!.id);
  t.deepEqual((await s.get(bb!.id))!.repoTags, []);
});

test('a second store instance (another process) sees new and removed images without restart', async (t) => {
  const s = await newStore(t);
  const reader = new ImageStore(s.root);
  t.deepEqual(await reader.list(), []);
  const [rec] = await importImage(s, imgs.ociDir);
  t.is((await reader.resolve('cri-mesos.test/busybox'))?.id, rec!.id);
  await s.remove(rec!.id);
  t.is(await reader.resolve('cri-mesos.test/busybox'), undefined);
});

test('putBlobFromFile verifies the digest and leaves nothing on mismatch', async (t) => {
  const s = await newStore(t);
  const f = join(s.root, 'x');
  await writeFile(f, 'hello');
  await t.throwsAsync(s.putBlobFromFile(f, sha256('other')), { message: /digest mismatch/ });
  t.deepEqual(readdirSync(s.blobsDir), []);
  await s.putBlobFromFile(f, sha256('hello'), 5);
  t.true(await s.hasBlob(sha256('hello')));
  await t.throwsAsync(s.putBlob(Buffer.from('a'), sha256('b')), { message: /digest mismatch/ });
});

async function copyLayout(t: ExecutionContext, src: string): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'cm-layout-'));
  t.teardown(() => rm(d, { recursive: true, force: true }));
  await cp(src, join(d, 'l'), { recursive: true });
  return join(d, 'l');
}

function assertEmptyStore(t: ExecutionContext, s: ImageStore) {
  t.deepEqual(visible(s.imagesDir), [], 'no image records');
  t.deepEqual(readdirSync(s.layersDir), [], 'no layers, no temp dirs');
  t.deepEqual(readdirSync(s.blobsDir), [], 'no blobs, no temp files');
}

test('a corrupted layer blob fails the import and leaves nothing', async (t) => {
  const s = await newStore(t);
  const l = await copyLayout(t, imgs.ociDir);
  const idx = JSON.parse(await readFile(join(l, 'index.json'), 'utf8'));
  const man = JSON.parse(await readFile(join(l, 'blobs/sha256', idx.manifests[0].digest.slice(7)), 'utf8'));
  const p = join(l, 'blobs/sha256', man.layers[0].digest.slice(7));
  const buf = await readFile(p);
  buf[buf.length - 20] ^= 0xff;
  await writeFile(p, buf);
  await t.throwsAsync(importImage(s, l), { message: /digest mismatch/ });
  assertEmptyStore(t, s);
});

test('a corrupted manifest blob is detected', async (t) => {
  const s = await newStore(t);
  const l = await copyLayout(t, imgs.ociDir);
  const idx = JSON.parse(await readFile(join(l, 'index.json'), 'utf8'));
  const p = join(l, 'blobs/sha256', idx.manifests[0].digest.slice(7));
  await writeFile(p, (await readFile(p, 'utf8')).replace('"schemaVersion":2', '"schemaVersion": 2'));
  await t.throwsAsync(importImage(s, l), { message: /digest mismatch/ });
  assertEmptyStore(t, s);
});

test('a layer whose content does not match the config diff_id is refused', async (t) => {
  const s = await newStore(t);
  const d = await mkdtemp(join(tmpdir(), 'cm-layout-'));
  t.teardown(() => rm(d, { recursive: true, force: true }));
  const layer = await makeTar([{ name: 'f', content: 'real' }]);
  const img = { tags: ['cri-mesos.test/bad:diffid'], layers: [layer], config: {} };
  await writeOciLayout(join(d, 'l'), [img]);
  // Rewrite the config with a wrong diff_id and re-chain config → manifest → index.
  const b = buildImageBlobs(img);
  const cfg = JSON.parse(b.config.toString());
  cfg.rootfs.diff_ids = [sha256('something else')];
  const cfgRaw = Buffer.from(JSON.stringify(cfg));
  const man = JSON.parse(b.manifest.toString());
  man.config = { ...man.config, digest: sha256(cfgRaw), size: cfgRaw.length };
  const manRaw = Buffer.from(JSON.stringify(man));
  await writeFile(join(d, 'l/blobs/sha256', sha256(cfgRaw).slice(7)), cfgRaw);
  await writeFile(join(d, 'l/blobs/sha256', sha256(manRaw).slice(7)), manRaw);
  await writeFile(
    join(d, 'l/index.json'),
    JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256(manRaw), size: manRaw.length, annotations: { 'org.opencontainers.image.ref.name': 'cri-mesos.test/bad:diffid' } }] }),
  );
  await t.throwsAsync(importImage(s, join(d, 'l')), { message: /digest mismatch.*uncompressed/ });
  assertEmptyStore(t, s);
});

test('a malicious layer fails the import with a clear error and leaves nothing in the store', async (t) => {
  const s = await newStore(t);
  const d = await mkdtemp(join(tmpdir(), 'cm-layout-'));
  t.teardown(() => rm(d, { recursive: true, force: true }));
  const good = await makeTar([{ name: 'ok', content: 'fine' }]);
  const evil = await makeTar([{ name: 'x', content: 'x' }, { name: '../escape', content: 'pwned' }]);
  await writeOciLayout(join(d, 'l'), [{ tags: ['cri-mesos.test/evil:1'], layers: [good, evil], config: {} }]);
  await t.throwsAsync(importImage(s, join(d, 'l')), { message: /escapes the layer root/ });
  assertEmptyStore(t, s);
  t.false(existsSync(join(s.layersDir, '..', 'escape')));
  t.false(existsSync(join(s.layersDir, 'escape')));
});

test('a layer is decoded by its bytes, not its media type (a plain tar typed +zstd imports, as containerd does)', async (t) => {
  const s = await newStore(t);
  const d = await mkdtemp(join(tmpdir(), 'cm-layout-'));
  t.teardown(() => rm(d, { recursive: true, force: true }));
  await writeOciLayout(join(d, 'l'), [{ tags: ['cri-mesos.test/z:1'], layers: [await makeTar([{ name: 'f', content: 'x' }])], config: {} }]);
  const idx = JSON.parse(await readFile(join(d, 'l/index.json'), 'utf8'));
  const mp = join(d, 'l/blobs/sha256', idx.manifests[0].digest.slice(7));
  const man = JSON.parse(await readFile(mp, 'utf8'));
  man.layers[0].mediaType = 'application/vnd.oci.image.layer.v1.tar+zstd';
  const raw = Buffer.from(JSON.stringify(man));
  await writeFile(join(d, 'l/blobs/sha256', sha256(raw).slice(7)), raw);
  idx.manifests[0] = { ...idx.manifests[0], digest: sha256(raw), size: raw.length };
  await writeFile(join(d, 'l/index.json'), JSON.stringify(idx));
  const layerTar = await makeTar([{ name: 'f', content: 'x' }]);
  const [img] = await importImage(s, join(d, 'l'));
  t.is(img!.layers[0]!.mediaType, 'application/vnd.oci.image.layer.v1.tar+zstd');
  t.is(img!.layers[0]!.diffId, sha256(layerTar));
});

test('an index picks linux/amd64 through nested indexes; the tag resolves through the index digest', async (t) => {
  const s = await newStore(t);
  const d = await mkdtemp(join(tmpdir(), 'cm-layout-'));
  t.teardown(() => rm(d, { recursive: true, force: true }));
  const l = join(d, 'l');
  await mkdir(join(l, 'blobs/sha256'), { recursive: true });
  const put = async (b: Buffer) => {
    await writeFile(join(l, 'blobs/sha256', sha256(b).slice(7)), b);
    return { digest: sha256(b), size: b.length };
  };
  const mk = async (arch: string) => {
    const b = buildImageBlobs({ tags: [], layers: [await makeTar([{ name: 'arch', content: arch }])], config: { Labels: { arch } } });
    for (const x of b.blobs) await put(x.data);
    // buildImageBlobs writes amd64 into the config; patch arm64 for the decoy (and re-chain).
    if (arch !== 'amd64') {
      const cfg = JSON.parse(b.config.toString());
      cfg.architecture = arch;
      const c = Buffer.from(JSON.stringify(cfg));
      await put(c);
      const man = JSON.parse(b.manifest.toString());
      man.config = { ...man.config, digest: sha256(c), size: c.length };
      return { ...(await put(Buffer.from(JSON.stringify(man)))), mediaType: 'application/vnd.oci.image.manifest.v1+json', platform: { os: 'linux', architecture: arch } };
    }
    return { digest: b.manifestDigest, size: b.manifest.length, mediaType: 'application/vnd.oci.image.manifest.v1+json', platform: { os: 'linux', architecture: arch } };
  };
  const inner = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [await mk('arm64'), await mk('amd64')] }));
  const innerD = await put(inner);
  const outer = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{ ...innerD, mediaType: 'application/vnd.oci.image.index.v1+json' }] }));
  const outerD = await put(outer);
  await writeFile(join(l, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(
    join(l, 'index.json'),
    JSON.stringify({ schemaVersion: 2, manifests: [{ ...outerD, mediaType: 'application/vnd.oci.image.index.v1+json', annotations: { 'org.opencontainers.image.ref.name': 'cri-mesos.test/multi:1' } }] }),
  );
  const [rec] = await importImage(s, l, { platform: { os: 'linux', architecture: 'amd64' } });
  t.is(rec!.architecture, 'amd64');
  t.deepEqual(rec!.config.Labels, { arch: 'amd64' });
  t.is((await s.resolve(`cri-mesos.test/multi@${outerD.digest}`))?.id, rec!.id);
  t.true(rec!.blobs.includes(outerD.digest) && rec!.blobs.includes(innerD.digest));
  await t.throwsAsync(importImage(await newStore(t), l, { platform: { os: 'linux', architecture: 's390x' } }), { message: /no image for linux\/s390x/ });
});

test('bare-tag ref names need a repository; docker archive with a gzip layer', async (t) => {
  const s = await newStore(t);
  const d = await mkdtemp(join(tmpdir(), 'cm-layout-'));
  t.teardown(() => rm(d, { recursive: true, force: true }));
  await writeOciLayout(join(d, 'l'), [{ tags: ['v1'], layers: [await makeTar([{ name: 'f', content: 'x' }])], config: {} }]);
  const [untagged] = await importImage(s, join(d, 'l'));
  t.deepEqual(untagged!.repoTags, []);
  const [tagged] = await importImage(s, join(d, 'l'), { repository: 'example.com/app' });
  t.deepEqual(tagged!.repoTags, ['example.com/app:v1']);

  // A docker archive whose layer is gzip'd (some tools write those).
  const layer = await makeTar([{ name: 'g', content: 'gz' }]);
  const b = buildImageBlobs({ tags: [], layers: [layer], config: {} }, false);
  const archive = await makeTar([
    { name: `${b.configDigest.slice(7)}.json`, content: b.config },
    { name: 'l1/layer.tar', content: gzipSync(layer) },
    { name: 'manifest.json', content: JSON.stringify([{ Config: `${b.configDigest.slice(7)}.json`, RepoTags: ['gz:1'], Layers: ['l1/layer.tar'] }]) },
  ]);
  await writeFile(join(d, 'a.tar'), archive);
  const [g] = await importImage(s, join(d, 'a.tar'));
  t.deepEqual(g!.repoTags, ['docker.io/library/gz:1']);
  t.is(g!.layers[0]!.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
  t.true(existsSync(join(s.layerDir(g!.layers[0]!.chainId), 'g')));
});

test('a docker archive whose config name does not match its content is refused', async (t) => {
  const s = await newStore(t);
  const d = await mkdtemp(join(tmpdir(), 'cm-layout-'));
  t.teardown(() => rm(d, { recursive: true, force: true }));
  const layer = await makeTar([{ name: 'g', content: 'x' }]);
  const b = buildImageBlobs({ tags: [], layers: [layer], config: {} }, false);
  const wrong = 'b'.repeat(64);
  await writeFile(
    join(d, 'a.tar'),
    await makeTar([
      { name: `${wrong}.json`, content: b.config },
      { name: 'l1/layer.tar', content: layer },
      { name: 'manifest.json', content: JSON.stringify([{ Config: `${wrong}.json`, RepoTags: ['x:1'], Layers: ['l1/layer.tar'] }]) },
    ]),
  );
  await t.throwsAsync(importImage(s, join(d, 'a.tar')), { message: /digest mismatch/ });
  t.deepEqual(await s.list(), []);
});

test('fsUsage counts real bytes and inodes', async (t) => {
  const s = await newStore(t);
  const before = await s.fsUsage();
  await importImage(s, imgs.ociDir);
  const after = await s.fsUsage();
  t.true(after.bytes > before.bytes + 1_500_000, `${before.bytes} → ${after.bytes}`);
  t.true(after.inodes > before.inodes + 250, `${before.inodes} → ${after.inodes}`);
});
