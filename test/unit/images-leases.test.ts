// Image leases: a CreateContainer in flight holds its image against
// RemoveImage, and a removal in progress holds off new leases.
import { useTestImages } from '../helpers/suite.js';
import test, { type ExecutionContext } from 'ava';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TEST_TAGS, type BuiltTestImages } from '../../hack/build-test-images.js';
import { importImage } from '../../src/images/import.js';
import { ImageLeases } from '../../src/images/leases.js';
import { ImageInUseError, ImageStore, type ImageRecord } from '../../src/images/store.js';

let imgs: BuiltTestImages;
useTestImages((b) => (imgs = b));

/** A store with busybox and layered (which shares busybox's only layer). */
async function newStore(t: ExecutionContext): Promise<{ s: ImageStore; bb: ImageRecord; layered: ImageRecord }> {
  const d = await mkdtemp(join(tmpdir(), 'cm-leases-'));
  t.teardown(() => rm(d, { recursive: true, force: true }));
  const s = new ImageStore(join(d, 'images'));
  const [bb] = await importImage(s, imgs.ociDir);
  const [layered] = await importImage(s, imgs.layeredDir);
  return { s, bb: bb!, layered: layered! };
}

/** Lets every pending callback run (fs work included) without settling on a time. */
const ticks = async (n = 20) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

test('ImageLeases: holders, idempotent release, removal refused while leased, leases refused while removing', async (t) => {
  const l = new ImageLeases();
  const r1 = l.acquire('img', 'a (being created)')!;
  const r2 = l.acquire('img', 'b (being created)')!;
  t.deepEqual(l.holders('img'), ['a (being created)', 'b (being created)']);
  t.deepEqual(l.holders('other'), []);
  t.deepEqual(l.beginRemoval('img', ['ctr-1']), { users: ['ctr-1', 'a (being created)', 'b (being created)'] });
  r1();
  r1();
  t.deepEqual(l.holders('img'), ['b (being created)'], 'a second release of the same lease frees nothing else');
  t.deepEqual(l.beginRemoval('img'), { users: ['b (being created)'] });
  r2();
  t.deepEqual(l.beginRemoval('img', ['ctr-1']), { users: ['ctr-1'] }, 'records count too');

  const removal = l.beginRemoval('img');
  if (!('done' in removal)) return t.fail('removal refused with no users');
  t.is(l.acquire('img', 'c'), undefined, 'no lease while the image is being removed');
  t.truthy(l.acquire('other', 'c'), 'other images lease as usual');
  let ended = false;
  void l.removal('img').then(() => (ended = true));
  await ticks(2);
  t.false(ended);
  removal.done();
  await ticks(2);
  t.true(ended);
  t.truthy(l.acquire('img', 'c'), 'leases again once the removal ended');
  await l.removal('none'); // no removal: settles at once
});

test('store: a leased image cannot be removed, its layers stay; after release it goes, shared layers stay', async (t) => {
  const { s, bb, layered } = await newStore(t);
  const lease = (await s.lease(TEST_TAGS.layered, 'ctr-9 (being created)'))!;
  t.is(lease.image.id, layered.id);
  const e = await t.throwsAsync(s.removeImage(layered.id), { instanceOf: ImageInUseError });
  t.deepEqual((e as ImageInUseError).users, ['ctr-9 (being created)']);
  t.truthy(await s.get(layered.id));
  for (const dir of s.layerDirs(layered)) t.true(existsSync(dir));
  // Untagging is not removal; deleting through the last tag is.
  await t.throwsAsync(s.remove(TEST_TAGS.layered), { instanceOf: ImageInUseError });
  // The records' users are checked with the leases.
  lease.release();
  const e2 = await t.throwsAsync(s.removeImage(layered.id, () => ['ctr-1']), { instanceOf: ImageInUseError });
  t.deepEqual((e2 as ImageInUseError).users, ['ctr-1']);
  lease.release();
  t.true((await s.removeImage(layered.id))!.deleted);
  t.false(existsSync(s.layerDir(layered.layers[1]!.chainId)));
  t.true(existsSync(s.layerDir(bb.layers[0]!.chainId)), 'the layer busybox shares stays');
  t.is(await s.lease(TEST_TAGS.layered, 'late'), undefined);
  t.is((await s.lease(TEST_TAGS.oci, 'other'))!.image.id, bb.id);
});

/**
 * Holds the store's next resolve() after it has read the record: `recordRead` says it got there,
 * `open()` lets it return. Later calls pass straight through.
 */
function holdNextResolve(s: ImageStore) {
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  let read!: () => void;
  const recordRead = new Promise<void>((r) => (read = r));
  const resolve = s.resolve.bind(s);
  s.resolve = async (ref) => {
    const rec = await resolve(ref);
    s.resolve = resolve;
    read();
    await gate;
    return rec;
  };
  return { recordRead, open };
}

test('store: a lease asked for during a removal waits for it, then finds nothing (never half-deleted layers)', async (t) => {
  const { s, bb, layered } = await newStore(t);
  // Hold the lease's resolution after it has read the record...
  const held = holdNextResolve(s);
  const leasing = s.lease(TEST_TAGS.layered, 'ctr-late (being created)');
  await held.recordRead;
  // ...and the removal after it unlinked the record, before it frees layers (its next list()).
  let openList!: () => void;
  const listGate = new Promise<void>((r) => (openList = r));
  let reached!: () => void;
  const atList = new Promise<void>((r) => (reached = r));
  const list = s.list.bind(s);
  s.list = async () => {
    reached();
    await listGate;
    return list();
  };
  const removing = s.removeImage(layered.id);
  await atList;
  s.list = list;
  held.open();
  let leased: unknown = 'pending';
  void leasing.then((r) => (leased = r));
  await ticks();
  t.is(leased, 'pending', 'the lease waits for the removal in progress');
  t.true(existsSync(s.layerDir(layered.layers[1]!.chainId)), 'removal is held before freeing layers');
  openList();
  t.true((await removing)!.deleted);
  t.is(await leasing, undefined, 'the image is gone: the create answers NOT_FOUND');
  t.false(existsSync(s.layerDir(layered.layers[1]!.chainId)));
  t.true(existsSync(s.layerDir(bb.layers[0]!.chainId)));
});

test('store: a lease whose image was removed after it resolved it (removal already over) finds nothing', async (t) => {
  const { s, layered } = await newStore(t);
  const held = holdNextResolve(s);
  const leasing = s.lease(TEST_TAGS.layered, 'ctr-slow (being created)');
  await held.recordRead;
  t.true((await s.removeImage(layered.id))!.deleted, 'no lease yet: the removal goes through');
  held.open();
  t.is(await leasing, undefined);
  t.deepEqual(s.leases.holders(layered.id), [], 'the lease it took to check was let go');
});

test('store: lease and removal racing at any point: one of them wins, a lease never holds a removed image', async (t) => {
  const { s, layered } = await newStore(t);
  const outcomes = new Set<string>();
  for (let delay = 0; delay < 12; delay++) {
    if (!(await s.get(layered.id))) await importImage(s, imgs.layeredDir);
    const removing = s.removeImage(layered.id).then(
      () => 'removed',
      (e: unknown) => (e instanceof ImageInUseError ? 'refused' : Promise.reject(e)),
    );
    await ticks(delay);
    const lease = await s.lease(TEST_TAGS.layered, `ctr-${delay}`);
    const removed = await removing;
    outcomes.add(`${removed}/${lease ? 'leased' : 'none'}`);
    if (lease) {
      for (const dir of s.layerDirs(lease.image)) t.true(existsSync(dir), `delay ${delay}: leased layers are there`);
      t.truthy(await s.get(lease.image.id));
      lease.release();
    }
    // Refused only for our lease; removed only when the lease found nothing.
    t.is(removed, lease ? 'refused' : 'removed', `delay ${delay}`);
  }
  t.log([...outcomes].join(', '));
});
