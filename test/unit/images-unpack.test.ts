// Layer unpacking: path safety, whiteouts, metadata. Device nodes and
// trusted.* xattrs need root; those tests skip loudly otherwise.
import test, { type ExecutionContext } from 'ava';
import { existsSync, lstatSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { makeTar, type TarEntrySpec } from '../../hack/build-test-images.js';
import { cleanEntryPath, unpackTar, UnsafeLayerError } from '../../src/images/unpack.js';
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
