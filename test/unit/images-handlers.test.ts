// CRI ImageService handlers over a real store.
import { useTestImages } from '../helpers/suite.js';
import test, { type ExecutionContext } from 'ava';
import { status } from '@grpc/grpc-js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBusyboxImages, TEST_TAGS, type BuiltTestImages } from '../../hack/build-test-images.js';
import { importImage } from '../../src/images/import.js';
import { ImageStore } from '../../src/images/store.js';
import { silentLogger } from '../../src/log.js';
import type { ImageServiceContext } from '../../src/cri/image/context.js';
import { listImages } from '../../src/cri/image/list-images.js';
import { imageStatus } from '../../src/cri/image/image-status.js';
import { removeImage } from '../../src/cri/image/remove-image.js';
import { imageFsInfo } from '../../src/cri/image/image-fs-info.js';
import { pullImage } from '../../src/cri/image/pull-image.js';
import type { StatusError } from '../../src/errors.js';

let imgs: BuiltTestImages;
useTestImages((b) => (imgs = b));

async function ctx(t: ExecutionContext, users: Record<string, string[]> = {}): Promise<ImageServiceContext> {
  const d = await mkdtemp(join(tmpdir(), 'cm-store-'));
  t.teardown(() => rm(d, { recursive: true, force: true }));
  const images = new ImageStore(join(d, 'images'));
  await importImage(images, imgs.ociDir);
  await importImage(images, imgs.layeredDir);
  return { images, log: silentLogger(), imageUsers: (id) => users[id] ?? [] };
}

const spec = (image: string) => ({ image, annotations: {}, user_specified_image: '', runtime_handler: '', image_ref: '' });

test('ListImages lists all, or the one a filter names', async (t) => {
  const c = await ctx(t);
  const all = await listImages(c, { filter: null });
  t.deepEqual(all.images!.map((i) => i.repo_tags![0]).sort(), [TEST_TAGS.oci, TEST_TAGS.layered].sort());
  const bb = all.images!.find((i) => i.repo_tags!.includes(TEST_TAGS.oci))!;
  t.regex(bb.id!, /^sha256:/);
  t.deepEqual(bb.spec, { image: bb.id, annotations: {} });
  t.is(bb.pinned, false);
  t.true(Number(bb.size) > 1_000_000);
  t.is(bb.repo_digests!.length, 1);
  const one = await listImages(c, { filter: { image: spec('cri-mesos.test/busybox') } });
  t.deepEqual(one.images!.map((i) => i.id), [bb.id]);
  t.deepEqual((await listImages(c, { filter: { image: spec('nope/nope') } })).images, []);
});

test('ImageStatus: found, verbose info with the OCI config, unknown → null', async (t) => {
  const c = await ctx(t);
  const r = await imageStatus(c, { image: spec(TEST_TAGS.layered), verbose: true });
  t.deepEqual(r.image!.repo_tags, [TEST_TAGS.layered]);
  t.is(r.image!.uid, null);
  t.is(r.image!.username, '');
  const info = JSON.parse(r.info!.info!);
  t.deepEqual(info.imageSpec.config.Cmd, ['sh']);
  t.is(info.imageSpec.rootfs.diff_ids.length, 2);
  t.truthy(info.chainID);
  t.deepEqual((await imageStatus(c, { image: spec(TEST_TAGS.oci), verbose: false })).info, {});
  t.deepEqual(await imageStatus(c, { image: spec('cri-mesos.test/missing:1'), verbose: true }), { image: null, info: {} });
  const e = await t.throwsAsync(imageStatus(c, { image: spec(''), verbose: false }));
  t.is((e as StatusError).status, status.INVALID_ARGUMENT);
});

test('RemoveImage: in use → FAILED_PRECONDITION naming the container; by tag removes the image; unknown → OK', async (t) => {
  const c0 = await ctx(t);
  const bb = (await c0.images.resolve(TEST_TAGS.oci))!;
  const c = { ...c0, imageUsers: (id: string) => (id === bb.id ? ['ctr-123'] : []) };
  const e = await t.throwsAsync(removeImage(c, { image: spec(bb.id) }));
  t.is((e as StatusError).status, status.FAILED_PRECONDITION);
  t.regex(e!.message, /ctr-123/);
  t.truthy(await c.images.resolve(TEST_TAGS.oci));

  await removeImage(c, { image: spec(TEST_TAGS.layered) });
  t.is(await c.images.resolve(TEST_TAGS.layered), undefined);
  t.deepEqual(await removeImage(c, { image: spec(TEST_TAGS.layered) }), {});
  t.deepEqual(await removeImage(c, { image: spec('sha256:' + '1'.repeat(64)) }), {});
});

test('ImageFsInfo reports the store usage', async (t) => {
  const c = await ctx(t);
  const r = await imageFsInfo(c, {});
  const fs = r.image_filesystems![0]!;
  t.is(fs.fs_id!.mountpoint, c.images.root);
  t.true(Number(fs.used_bytes!.value) > 1_000_000);
  t.true(Number(fs.inodes_used!.value) > 250);
  t.true(BigInt(fs.timestamp as string) > 1_600_000_000_000_000_000n);
});

test('PullImage: an unreachable registry falls back to a local image; a missing one is UNAVAILABLE with the import hint', async (t) => {
  const c = await ctx(t);
  const bb = (await c.images.resolve(TEST_TAGS.oci))!;
  // Tests stay on loopback: an unreachable registry is a closed port on 127.0.0.1.
  await importImage(c.images, imgs.ociDir, { tags: ['127.0.0.1:1/busybox:latest'] });
  t.deepEqual(await pullImage(c, { image: spec('127.0.0.1:1/busybox:latest'), auth: null, sandbox_config: null }), { image_ref: bb.id });
  const e = await t.throwsAsync(pullImage(c, { image: spec('127.0.0.1:1/alpine:3'), auth: null, sandbox_config: null }));
  t.is((e as StatusError).status, status.UNAVAILABLE);
  t.regex(e!.message, /127\.0\.0\.1:1/);
  t.regex(e!.message, /cri-mesos images import PATH/);
  const bad = await t.throwsAsync(pullImage(c, { image: spec('Bad Ref'), auth: null, sandbox_config: null }));
  t.is((bad as StatusError).status, status.INVALID_ARGUMENT);
});

test('numeric config User shows as uid, a name as username', async (t) => {
  const { imageMessage } = await import('../../src/cri/image/common.js');
  const c = await ctx(t);
  const rec = (await c.images.resolve(TEST_TAGS.oci))!;
  t.deepEqual(imageMessage({ ...rec, config: { User: '1000:1000' } }).uid, { value: '1000' });
  t.like(imageMessage({ ...rec, config: { User: 'tester' } }), { uid: null, username: 'tester' });
});
