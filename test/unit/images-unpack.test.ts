// Layer unpacking: path safety, whiteouts, metadata. Device nodes and
// trusted.* xattrs need root; those tests skip loudly otherwise.
import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gzipSync } from 'node:zlib';
import { busyboxLayer, makeTar, sha256, type TarEntrySpec } from '../../hack/build-test-images.js';
import { importImage } from '../../src/images/import.js';
import { ImageStore } from '../../src/images/store.js';
import { cleanEntryPath, createZstdDecompress, detectCompression, unpackLayerFile, unpackTar, UnsafeLayerError } from '../../src/images/unpack.js';
import { native } from '../../src/native/index.js';

const isRoot = process.getuid?.() === 0;
const rootTest = isRoot ? test : test.skip;
if (!isRoot) console.warn('images-unpack: NOT ROOT — device node, whiteout and ownership tests are SKIPPED');

async function dirs(t: ExecutionContext) {
  const base = await mkdtemp(join(tmpdir(), 'cm-unpack-'));
  t.teardown(() => rm(base, { recursive: true, force: true }));
  const layer = join(base, 'layer');
  const outside = join(base, 'outside');
  await mkdir(layer);
  await mkdir(outside);
  return { base, layer, outside };
}

async function unpack(entries: TarEntrySpec[], target: string) {
  return unpackTar(Readable.from([await makeTar(entries)]), target);
}

test('cleanEntryPath normalizes and refuses climbing out', (t) => {
  t.deepEqual(cleanEntryPath('./a//b/./c/'), ['a', 'b', 'c']);
  t.deepEqual(cleanEntryPath('/etc/passwd'), ['etc', 'passwd']);
  t.deepEqual(cleanEntryPath('a/../b'), ['b']);
  t.deepEqual(cleanEntryPath('./'), []);
  t.throws(() => cleanEntryPath('../x'), { instanceOf: UnsafeLayerError });
  t.throws(() => cleanEntryPath('a/../../x'), { instanceOf: UnsafeLayerError });
  t.throws(() => cleanEntryPath('/../x'), { instanceOf: UnsafeLayerError });
});

test('an entry named ../escape is refused and nothing lands outside', async (t) => {
  const { base, layer } = await dirs(t);
  await t.throwsAsync(unpack([{ name: 'ok', content: 'x' }, { name: '../escape', content: 'pwned' }], layer), {
    instanceOf: UnsafeLayerError,
    message: /escapes the layer root/,
  });
  t.false(existsSync(join(base, 'escape')));
});

test('a nested a/../../escape is refused', async (t) => {
  const { base, layer } = await dirs(t);
  await t.throwsAsync(unpack([{ name: 'a/', type: 'directory' }, { name: 'a/../../escape', content: 'pwned' }], layer), {
    instanceOf: UnsafeLayerError,
  });
  t.false(existsSync(join(base, 'escape')));
});

test('absolute entry paths stay inside the layer', async (t) => {
  const { layer } = await dirs(t);
  const name = `cm-abs-${process.pid}-${Date.now()}`;
  await unpack([{ name: `/${name}/f`, content: 'inside' }], layer);
  t.false(existsSync(`/${name}`));
  t.is(readFileSync(join(layer, name, 'f'), 'utf8'), 'inside');
});

test('writing through a symlink to an absolute outside dir is refused', async (t) => {
  const { layer, outside } = await dirs(t);
  await t.throwsAsync(
    unpack([{ name: 'evil', type: 'symlink', linkname: outside }, { name: 'evil/pwned', content: 'x' }], layer),
    { instanceOf: UnsafeLayerError, message: /symlink "evil"/ },
  );
  t.deepEqual(readdirSync(outside), []);
});

test('writing through a relative symlink that climbs out is refused', async (t) => {
  const { layer, outside } = await dirs(t);
  await t.throwsAsync(
    unpack([{ name: 'd/', type: 'directory' }, { name: 'd/up', type: 'symlink', linkname: '../../outside' }, { name: 'd/up/pwned', content: 'x' }], layer),
    { instanceOf: UnsafeLayerError },
  );
  t.deepEqual(readdirSync(outside), []);
});

test('a symlink to /tmp used as a parent is refused', async (t) => {
  const { layer } = await dirs(t);
  const victim = `cm-victim-${process.pid}-${Date.now()}`;
  await t.throwsAsync(unpack([{ name: 'tmp', type: 'symlink', linkname: '/tmp' }, { name: `tmp/${victim}`, content: 'x' }], layer), {
    instanceOf: UnsafeLayerError,
  });
  t.false(existsSync(join('/tmp', victim)));
});

test('hard links must point inside the layer', async (t) => {
  const { layer, outside } = await dirs(t);
  await writeFile(join(outside, 'secret'), 'host secret');
  await t.throwsAsync(unpack([{ name: 'h', type: 'link', linkname: '../outside/secret' }], layer), { instanceOf: UnsafeLayerError });
  // An absolute target means "this layer's /etc/passwd", which it does not have: refused, host file untouched.
  await t.throwsAsync(unpack([{ name: 'h2', type: 'link', linkname: '/etc/passwd' }], layer), {
    instanceOf: UnsafeLayerError,
    message: /not inside this layer/,
  });
  // Through a symlink of the layer to the outside.
  await t.throwsAsync(
    unpack([{ name: 's', type: 'symlink', linkname: outside }, { name: 'h3', type: 'link', linkname: 's/secret' }], layer),
    { instanceOf: UnsafeLayerError },
  );
  t.is(statSync(join(outside, 'secret')).nlink, 1);
  t.false(existsSync(join(layer, 'h')));
  t.false(existsSync(join(layer, 'h2')));
  t.false(existsSync(join(layer, 'h3')));
});

test('a file entry replaces a symlink instead of writing through it', async (t) => {
  const { layer, outside } = await dirs(t);
  await writeFile(join(outside, 'target'), 'original');
  await unpack([{ name: 'f', type: 'symlink', linkname: join(outside, 'target') }, { name: 'f', content: 'new' }], layer);
  t.is(readFileSync(join(outside, 'target'), 'utf8'), 'original');
  t.true(lstatSync(join(layer, 'f')).isFile());
  t.is(readFileSync(join(layer, 'f'), 'utf8'), 'new');
});

test('a whiteout through a symlink is refused', async (t) => {
  const { layer, outside } = await dirs(t);
  await writeFile(join(outside, 'x'), 'keep');
  await t.throwsAsync(unpack([{ name: 'd', type: 'symlink', linkname: outside }, { name: 'd/.wh.x', content: '' }], layer), {
    instanceOf: UnsafeLayerError,
  });
  t.is(readFileSync(join(outside, 'x'), 'utf8'), 'keep');
});

test('regular content: files, dirs, symlinks, hard links, modes, mtimes, xattrs', async (t) => {
  const { layer } = await dirs(t);
  const mtime = new Date('2020-02-02T02:02:02Z');
  const res = await unpack(
    [
      { name: 'usr/', type: 'directory', mode: 0o755, mtime },
      { name: 'usr/bin/', type: 'directory', mode: 0o750, mtime },
      { name: 'usr/bin/tool', content: '#!/bin/sh\n', mode: 0o4755, mtime, pax: { 'SCHILY.xattr.user.cm': 'hello' } },
      { name: 'usr/bin/alias', type: 'link', linkname: 'usr/bin/tool' },
      { name: 'usr/bin/sym', type: 'symlink', linkname: 'tool' },
      { name: 'deep/a/b/c', content: 'implicit parents' },
    ],
    layer,
  );
  t.is(res.entries, 6);
  const tool = statSync(join(layer, 'usr/bin/tool'));
  t.is(tool.mode & 0o7777, 0o4755);
  t.is(tool.mtime.getTime(), mtime.getTime());
  t.is(statSync(join(layer, 'usr/bin')).mode & 0o777, 0o750);
  t.is(statSync(join(layer, 'usr/bin')).mtime.getTime(), mtime.getTime(), 'dir mtime restored after its children');
  t.is(statSync(join(layer, 'usr/bin/alias')).ino, tool.ino);
  t.is(lstatSync(join(layer, 'usr/bin/sym')).isSymbolicLink(), true);
  t.is(readFileSync(join(layer, 'deep/a/b/c'), 'utf8'), 'implicit parents');
  t.is(native().lgetxattr(join(layer, 'usr/bin/tool'), 'user.cm')?.toString(), 'hello');
});

rootTest('ownership, devices and fifos (root)', async (t) => {
  const { layer } = await dirs(t);
  await unpack(
    [
      { name: 'home/', type: 'directory' },
      { name: 'home/u/', type: 'directory', uid: 1000, gid: 1001, mode: 0o700 },
      { name: 'home/u/f', content: 'x', uid: 1000, gid: 1001, mode: 0o2755 },
      { name: 'home/u/l', type: 'symlink', linkname: 'f', uid: 1000, gid: 1001 },
      { name: 'dev/', type: 'directory' },
      { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
      { name: 'dev/loopx', type: 'block-device', devmajor: 7, devminor: 200, mode: 0o660 },
      { name: 'dev/fifo', type: 'fifo', mode: 0o600 },
    ],
    layer,
  );
  const f = statSync(join(layer, 'home/u/f'));
  t.deepEqual([f.uid, f.gid, f.mode & 0o7777], [1000, 1001, 0o2755], 'setgid survives chown');
  const l = lstatSync(join(layer, 'home/u/l'));
  t.deepEqual([l.uid, l.gid], [1000, 1001]);
  const n = lstatSync(join(layer, 'dev/null'));
  t.true(n.isCharacterDevice());
  t.is(n.rdev, (1 << 8) | 3);
  t.is(n.mode & 0o777, 0o666);
  t.true(lstatSync(join(layer, 'dev/loopx')).isBlockDevice());
  t.true(lstatSync(join(layer, 'dev/fifo')).isFIFO());
});

rootTest('whiteouts become 0:0 char devices, opaque markers become trusted.overlay.opaque=y (root)', async (t) => {
  const { layer } = await dirs(t);
  await unpack(
    [
      { name: 'etc/', type: 'directory' },
      { name: 'etc/.wh.motd', content: '' },
      { name: 'home/', type: 'directory' },
      { name: 'home/tester/', type: 'directory', uid: 1000, gid: 1000 },
      { name: 'home/tester/.wh..wh..opq', content: '' },
      { name: 'home/tester/new.txt', content: 'only me' },
      { name: 'var/.wh..wh.plnk', type: 'directory' },
    ],
    layer,
  );
  const wh = lstatSync(join(layer, 'etc/motd'));
  t.true(wh.isCharacterDevice());
  t.is(wh.rdev, 0);
  t.false(existsSync(join(layer, 'etc/.wh.motd')));
  t.is(native().lgetxattr(join(layer, 'home/tester'), 'trusted.overlay.opaque')?.toString(), 'y');
  t.false(existsSync(join(layer, 'home/tester/.wh..wh..opq')));
  t.deepEqual(readdirSync(join(layer, 'home/tester')), ['new.txt']);
  t.false(existsSync(join(layer, 'var/.wh..wh.plnk')), 'aufs bookkeeping is ignored');
});

rootTest('a layer cannot forge trusted.overlay.* xattrs (root)', async (t) => {
  const { layer } = await dirs(t);
  await unpack([{ name: 'd/', type: 'directory', pax: { 'SCHILY.xattr.trusted.overlay.redirect': '/etc' } }], layer);
  t.is(native().lgetxattr(join(layer, 'd'), 'trusted.overlay.redirect'), null);
});

test('a truncated tar fails', async (t) => {
  const { layer } = await dirs(t);
  const tarBuf = await makeTar([{ name: 'big', content: Buffer.alloc(4096, 1) }]);
  await t.throwsAsync(unpackTar(Readable.from([tarBuf.subarray(0, 1024)]), layer));
});

// ---- compressed layers (zstd made by Debian's zstd CLI, gzip by zlib) ----

/** `zstd -q -c ARGS` of `data`. */
function zstd(data: Buffer, ...args: string[]): Buffer {
  try {
    return execFileSync('zstd', ['-q', '-c', ...args], { input: data, maxBuffer: 1 << 28 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new Error("the zstd CLI is missing: install Debian's zstd (apt-get install -y zstd, or bash hack/deps.sh --test)");
    }
    throw e;
  }
}

/** Everything unpacking sets on a tree: type, mode, owner, size, content, link target, mtime. */
function tree(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const p = join(root, r);
      const st = lstatSync(p);
      let what = `${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.mtimeMs}`;
      if (st.isSymbolicLink()) what += ` -> ${readlinkSync(p)}`;
      else if (st.isFile()) what += ` ${st.size} ${createHash('sha256').update(readFileSync(p)).digest('hex')}`;
      out[r] = what;
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}

async function unpackBlob(t: ExecutionContext, base: string, name: string, blob: Buffer) {
  const file = join(base, name);
  await writeFile(file, blob);
  const dir = join(base, `${name}.d`);
  await mkdir(dir);
  const res = await unpackLayerFile(file, dir);
  return { ...res, dir, compression: await detectCompression(file), files: tree(dir) };
}

test('a zstd layer unpacks to the same files and diffID as the same tar uncompressed (and gzip)', async (t) => {
  const { base } = await dirs(t);
  const tarBuf = await busyboxLayer();
  const plain = await unpackBlob(t, base, 'layer.tar', tarBuf);
  const gz = await unpackBlob(t, base, 'layer.tar.gz', gzipSync(tarBuf));
  const zst = await unpackBlob(t, base, 'layer.tar.zst', zstd(tarBuf));
  const zst19 = await unpackBlob(t, base, 'layer19.tar.zst', zstd(tarBuf, '-19'));
  t.is(plain.compression, 'none');
  t.is(gz.compression, 'gzip');
  t.is(zst.compression, 'zstd');
  t.true(Object.keys(plain.files).length > 20, 'the busybox layer has its applet links');
  t.truthy(plain.files['bin/busybox']);
  for (const r of [gz, zst, zst19]) {
    t.is(r.diffId, sha256(tarBuf), 'diffID is the sha256 of the uncompressed tar');
    t.deepEqual(r.files, plain.files);
    t.is(r.entries, plain.entries);
    t.is(r.bytes, plain.bytes);
  }
});

test('concatenated and skippable zstd frames decode as one stream, however the input is chunked', async (t) => {
  const { base } = await dirs(t);
  const text = Buffer.from('cri-mesos zstd test line\n'.repeat(40000));
  const tarBuf = await makeTar([
    { name: 'd/', type: 'directory' },
    { name: 'd/zeros', content: Buffer.alloc(3 << 20) },
    { name: 'd/text', content: text },
    { name: 'd/link', type: 'symlink', linkname: 'text' },
  ]);
  const cut = 777_777;
  const skippable = Buffer.concat([Buffer.from([0x5e, 0x2a, 0x4d, 0x18, 5, 0, 0, 0]), Buffer.from('hello')]);
  const blob = Buffer.concat([skippable, zstd(tarBuf.subarray(0, cut)), zstd(tarBuf.subarray(cut), '-19')]);
  const plain = await unpackBlob(t, base, 'layer.tar', tarBuf);
  const zst = await unpackBlob(t, base, 'layer.tar.zst', blob);
  t.is(zst.compression, 'zstd');
  t.is(zst.diffId, sha256(tarBuf));
  t.deepEqual(zst.files, plain.files);
  t.is(readFileSync(join(zst.dir, 'd/text'), 'utf8'), text.toString());

  // Odd chunk sizes split frame headers and block headers everywhere.
  const small = zstd(await makeTar([{ name: 'f', content: text.subarray(0, 50_000) }]));
  for (const size of [1, 7, 4099]) {
    const chunks: Buffer[] = [];
    for (let o = 0; o < small.length; o += size) chunks.push(small.subarray(o, o + size));
    const out: Buffer[] = [];
    await pipeline(Readable.from(chunks), createZstdDecompress(), async (src: AsyncIterable<Buffer>) => {
      for await (const c of src) out.push(c);
    });
    t.is(sha256(Buffer.concat(out)), sha256(await makeTar([{ name: 'f', content: text.subarray(0, 50_000) }])), `chunks of ${size}`);
  }
});

/** An OCI layout of one image whose single layer blob is `blob` (diffID: sha256 of `tarBuf`), typed +zstd. */
async function zstdLayout(dir: string, tarBuf: Buffer, blob: Buffer, tag: string): Promise<void> {
  await mkdir(join(dir, 'blobs/sha256'), { recursive: true });
  const put = async (b: Buffer) => {
    await writeFile(join(dir, 'blobs/sha256', sha256(b).slice(7)), b);
    return { digest: sha256(b), size: b.length };
  };
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [sha256(tarBuf)] } }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...(await put(config)) },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd', ...(await put(blob)) }],
    }),
  );
  const m = await put(manifest);
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...m, annotations: { 'org.opencontainers.image.ref.name': tag } }],
    }),
  );
}

test('a corrupted zstd layer fails cleanly: a clear error, and an import leaves nothing in the store', async (t) => {
  const { base } = await dirs(t);
  const tarBuf = await makeTar([
    { name: 'a', content: Buffer.alloc(1 << 20, 'a') },
    { name: 'b', content: createHash('sha512').update('seed').digest().toString('hex').repeat(20000) },
  ]);
  const good = zstd(tarBuf);
  const truncated = good.subarray(0, Math.floor(good.length / 2));
  const garbage = Buffer.concat([good.subarray(0, 4), Buffer.alloc(200, 0xff)]);
  const flipped = Buffer.from(good);
  for (let i = 64; i < flipped.length; i += 101) flipped[i]! ^= 0x5a;

  const dir = join(base, 'u');
  await mkdir(dir);
  await writeFile(join(base, 'trunc.zst'), truncated);
  await t.throwsAsync(unpackLayerFile(join(base, 'trunc.zst'), dir), { message: /Zstandard stream: unexpected end of data/ });
  await writeFile(join(base, 'garbage.zst'), garbage);
  await t.throwsAsync(unpackLayerFile(join(base, 'garbage.zst'), dir), { message: /Zstandard stream: invalid data/ });

  const s = new ImageStore(join(base, 'store'));
  await s.init();
  const cases: [string, Buffer, RegExp][] = [
    ['truncated', truncated, /Zstandard stream: unexpected end of data/],
    ['garbage', garbage, /Zstandard stream: invalid data/],
    // fzstd does not check the frame checksum: damage it cannot see is caught by the diffID.
    ['flipped', flipped, /Zstandard stream|digest mismatch.*uncompressed/],
  ];
  for (const [name, blob, message] of cases) {
    const l = join(base, `layout-${name}`);
    await zstdLayout(l, tarBuf, blob, `cri-mesos.test/zstd-${name}:1`);
    await t.throwsAsync(importImage(s, l), { message }, name);
    t.deepEqual(readdirSync(s.imagesDir).filter((n) => !n.startsWith('.')), [], `${name}: no image records`);
    t.deepEqual(readdirSync(s.layersDir), [], `${name}: no layers, no temp dirs`);
    t.deepEqual(readdirSync(s.blobsDir), [], `${name}: no blobs, no temp files`);
  }

  // The intact blob, through the same path, imports.
  await zstdLayout(join(base, 'layout-good'), tarBuf, good, 'cri-mesos.test/zstd-good:1');
  const [rec] = await importImage(s, join(base, 'layout-good'));
  t.is(rec!.layers[0]!.mediaType, 'application/vnd.oci.image.layer.v1.tar+zstd');
  t.is(rec!.layers[0]!.diffId, sha256(tarBuf));
  t.is(readFileSync(join(s.layerDir(rec!.layers[0]!.chainId), 'a'), 'utf8'), 'a'.repeat(1 << 20));
});
