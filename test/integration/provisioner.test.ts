// Overlay provisioner on the host (root): mount from imported layers, see
// whiteouts and opaque dirs applied, writes land in upper, destroy leaves no
// mount and no dir.
import { useTestImages } from '../helpers/suite.js';
import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readFileSync, renameSync, statSync } from 'node:fs';
import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBusyboxImages, TEST_TAGS, type BuiltTestImages } from '../../hack/build-test-images.js';
import { importImage } from '../../src/images/import.js';
import { ImageStore, type ImageRecord } from '../../src/images/store.js';
import { Provisioner, mountPoints } from '../../src/provisioner/provisioner.js';
import { readImageUser } from '../../src/provisioner/user.js';
import { MNT_DETACH, native } from '../../src/native/index.js';
import { PROVISIONER_TRASH_PREFIX } from '../../src/paths.js';

const isRoot = process.getuid?.() === 0;
const rootTest = isRoot ? test.serial : test.skip;
if (!isRoot) console.warn('provisioner.test: NOT ROOT — overlay mount tests are SKIPPED (they need CAP_SYS_ADMIN)');

let imgs: BuiltTestImages;
useTestImages((b) => (imgs = b));

interface Env {
  store: ImageStore;
  prov: Provisioner;
  busybox: ImageRecord;
  layered: ImageRecord;
}

async function env(t: ExecutionContext): Promise<Env> {
  const work = await mkdtemp(join(tmpdir(), 'cm-prov-'));
  const store = new ImageStore(join(work, 'images'));
  const prov = new Provisioner(join(work, 'provisioner'), store);
  // Unmount whatever a failing test left before removing the tree.
  t.teardown(async () => {
    for (const m of [...(await mountPoints())].filter((p) => p.startsWith(work + '/'))) {
      try {
        native().umount2(m, MNT_DETACH);
      } catch {
        /* already gone */
      }
    }
    await rm(work, { recursive: true, force: true });
  });
  const [busybox] = await importImage(store, imgs.ociDir);
  const [layered] = await importImage(store, imgs.layeredDir);
  return { store, prov, busybox: busybox!, layered: layered! };
}

function mountinfoLine(path: string): string | undefined {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .find((l) => l.split(' ')[4] === path);
}

rootTest('provision mounts the image as an overlay; whiteouts hide, writes land in upper; destroy cleans up', async (t) => {
  const { prov, store, layered } = await env(t);
  const { rootfs } = await prov.provision('ctr1', layered);
  t.is(rootfs, join(prov.root, 'ctr1', 'rootfs'));
  const line = mountinfoLine(rootfs);
  t.truthy(line, 'rootfs is a mount point');
  t.regex(line!, / - overlay overlay /);
  t.true(await prov.isMounted('ctr1'));

  // Content of the bottom layer, through the mount; busybox runs from it.
  t.true(statSync(join(rootfs, 'bin/busybox')).isFile());
  t.is(lstatSync(join(rootfs, 'bin/sh')).isSymbolicLink(), true);
  t.is(execFileSync(join(rootfs, 'bin/busybox'), ['cat', join(rootfs, 'etc/layered')], { encoding: 'utf8' }), 'top layer\n');
  // Whiteout in the top layer hides etc/motd; the opaque dir hides the base's .profile.
  t.false(existsSync(join(rootfs, 'etc/motd')));
  t.true(existsSync(join(store.layerDir(layered.layers[0]!.chainId), 'etc/motd')), 'the base layer still has it');
  t.deepEqual(readdirSync(join(rootfs, 'home/tester')), ['new.txt']);
  t.true(existsSync(join(rootfs, 'etc/passwd')));

  // Writes and deletes go to upper; the layers stay untouched.
  await writeFile(join(rootfs, 'written'), 'hello');
  await unlink(join(rootfs, 'etc/passwd'));
  const upper = join(prov.root, 'ctr1', 'upper');
  t.is(readFileSync(join(upper, 'written'), 'utf8'), 'hello');
  t.true(lstatSync(join(upper, 'etc/passwd')).isCharacterDevice(), 'deletion is a whiteout in upper');
  for (const d of store.layerDirs(layered)) t.false(existsSync(join(d, 'written')));
  t.true(existsSync(join(store.layerDir(layered.layers[0]!.chainId), 'etc/passwd')));

  await prov.destroy('ctr1');
  t.is(mountinfoLine(rootfs), undefined, 'no mount left in /proc/self/mountinfo');
  t.false(existsSync(join(prov.root, 'ctr1')));
  t.false(await prov.isMounted('ctr1'));
  await prov.destroy('ctr1'); // idempotent
  t.true(existsSync(join(store.layerDir(layered.layers[0]!.chainId), 'bin/busybox')), 'layers survive destroy');
});

rootTest('provision is idempotent; containers of one image get separate uppers', async (t) => {
  const { prov, busybox } = await env(t);
  const a = await prov.provision('a', busybox);
  const again = await prov.provision('a', busybox);
  t.deepEqual(a, again);
  const count = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.split(' ')[4] === a.rootfs).length;
  t.is(count, 1, 'mounted once');
  const b = await prov.provision('b', busybox);
  await writeFile(join(a.rootfs, 'only-a'), 'x');
  t.false(existsSync(join(b.rootfs, 'only-a')));
  t.like(await readImageUser(a.rootfs, 'tester'), { uid: 1000, gid: 1000 });
  await prov.destroy('a');
  await prov.destroy('b');
  // Gone at once under their ids; their trees are deleted in the background.
  t.false(existsSync(prov.containerDir('a')));
  t.false(existsSync(prov.containerDir('b')));
  await prov.deleted();
  t.deepEqual(readdirSync(prov.root), []);
});

rootTest('recover unmounts and deletes the tree of a removed container a crash left renamed aside', async (t) => {
  const { prov, store, busybox } = await env(t);
  const a = await prov.provision('a', busybox);
  await writeFile(join(a.rootfs, 'written'), 'x');
  // What a kill -9 right after destroy's rename leaves: the dir aside, its rootfs still mounted.
  renameSync(prov.containerDir('a'), join(prov.root, `${PROVISIONER_TRASH_PREFIX}a`));
  t.true([...(await mountPoints())].some((m) => m.startsWith(prov.root)));
  t.deepEqual(await prov.recover([]), []);
  t.deepEqual(readdirSync(prov.root), []);
  t.false([...(await mountPoints())].some((m) => m.startsWith(prov.root)), 'unmounted before the delete');
  t.true(existsSync(join(store.layerDir(busybox.layers[0]!.chainId), 'bin/busybox')), 'the layer was not removed through the mount');
});

rootTest('recover removes (and unmounts) unknown containers, keeps known ones', async (t) => {
  const { prov, busybox } = await env(t);
  const keep = await prov.provision('keep', busybox);
  const drop = await prov.provision('drop', busybox);
  const removed = await prov.recover(['keep']);
  t.deepEqual(removed, ['drop']);
  t.is(mountinfoLine(drop.rootfs), undefined);
  t.false(existsSync(join(prov.root, 'drop')));
  t.truthy(mountinfoLine(keep.rootfs));
  t.true(existsSync(join(keep.rootfs, 'bin/busybox')));
  await prov.destroy('keep');
});

rootTest('bad container ids and missing layers are refused', async (t) => {
  const { prov, store, busybox } = await env(t);
  await t.throwsAsync(prov.provision('../x', busybox), { message: /invalid container id/ });
  await t.throwsAsync(prov.provision('a/b', busybox), { message: /invalid container id/ });
  await rm(store.layerDir(busybox.layers[0]!.chainId), { recursive: true });
  await t.throwsAsync(prov.provision('c', busybox), { message: /layer dir .* is missing/ });
  t.false(await prov.isMounted('c'));
});

/** A user namespace pinned at a file of `dir` (container ids 0..65535 are host ids 100000..), unpinned at the end. */
async function pinnedUserns(t: ExecutionContext, dir: string): Promise<string> {
  const pin = `${dir}.userns`;
  await native().nsPin({ user: { uidMap: '0 100000 65536\n', gidMap: '0 100000 65536\n' }, pins: [{ type: 'user', path: pin }] });
  t.teardown(() => {
    try {
      native().umount2(pin, MNT_DETACH);
    } catch {
      /* gone */
    }
  });
  return pin;
}

rootTest('in a user namespace: the layers are idmapped, never chowned; the upper dir is the namespace root; no staging mount stays', async (t) => {
  const { prov, store, busybox } = await env(t);
  const userns = await pinnedUserns(t, prov.root + '-ns');
  const layer = join(store.layerDir(busybox.layers[0]!.chainId), 'bin/busybox');
  const { rootfs } = await prov.provision('u', busybox, { userns, rootUid: 100000, rootGid: 100000 });
  // Seen from the host, the rootfs holds the image's root files as the namespace root's host ids.
  t.deepEqual([statSync(join(rootfs, 'bin/busybox')).uid, statSync(join(rootfs, 'bin/busybox')).gid], [100000, 100000]);
  t.is(statSync(join(rootfs, 'home/tester')).uid, 101000);
  // The layer itself is untouched; the upper dir (the rootfs' "/") is the namespace root's.
  t.is(statSync(layer).uid, 0);
  t.deepEqual([statSync(rootfs).uid, statSync(join(prov.root, 'u', 'upper')).gid], [100000, 100000]);
  t.false(existsSync(join(prov.root, 'u', 'idmapped')), 'the idmapped layers are not attached anywhere any more');
  t.false([...(await mountPoints())].some((m) => m.includes('/idmapped/')));
  // Its parents are searchable by others (the namespace root must reach the rootfs).
  for (let p = join(rootfs, '..'); p !== tmpdir(); p = join(p, '..')) t.is(statSync(p).mode & 0o001, 0o001, p);
  await prov.destroy('u');
  t.false(existsSync(join(prov.root, 'u')));
  t.true(existsSync(layer), 'layers survive destroy');
});

rootTest('destroy detaches an idmapped layer a crash left attached, and never removes through it', async (t) => {
  const { prov, store, busybox } = await env(t);
  const userns = await pinnedUserns(t, prov.root + '-ns');
  const layerDir = store.layerDir(busybox.layers[0]!.chainId);
  // What a crash between attaching a layer and detaching it leaves: a layer mounted under the container's dir.
  const stage = join(prov.root, 'crash', 'idmapped', '0');
  execFileSync('mkdir', ['-p', stage]);
  const fd = await native().idmappedTree(layerDir, userns, false);
  try {
    native().moveMount(fd, stage);
  } finally {
    native().close(fd);
  }
  t.true(existsSync(join(stage, 'bin/busybox')));
  await prov.destroy('crash');
  t.false(existsSync(join(prov.root, 'crash')));
  t.true(existsSync(join(layerDir, 'bin/busybox')), 'the layer was not removed through the mount');
});
