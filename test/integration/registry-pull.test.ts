// PullImage from real registries on loopback (Debian's docker-registry, with
// no auth, htpasswd basic auth, and token auth behind our JWT token server),
// over the daemon's socket. Images are built from busybox-static and pushed
// with the Registry API v2. A proxy we control slows, stalls or cuts blobs.
import test, { type ExecutionContext } from 'ava';
import { status } from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { busyboxLayer, makeTar } from '../../hack/build-test-images.js';
import { hostPlatform } from '../../src/images/import.js';
import { containerConfig, podConfig, TestDaemon, waitFor } from '../helpers/daemon.js';
import { useDaemon } from '../helpers/suite.js';
import { BlobProxy, buildImage, buildIndex, registryAvailable, TestRegistry, type BuiltImage } from '../helpers/registry.js';

const STALL_SECONDS = 3;
const tmp = mkdtempSync(join(tmpdir(), 'cm-regpull-'));
const configFile = join(tmp, 'config.toml');
const outside = join(tmp, 'outside');
const escapeName = `escape-${randomBytes(4).toString('hex')}`;
const cleanups: (() => Promise<void> | void)[] = [];

let reg: TestRegistry;
let regBasic: TestRegistry;
let regToken: TestRegistry;
const img: Record<string, BuiltImage> = {};
let multiIndex: { raw: Buffer; digest: string; mediaType: string };
let dockerList: { raw: Buffer; digest: string; mediaType: string };
let arch = 'amd64';

interface GrpcErr {
  code: number;
  details: string;
}

const enabled = registryAvailable() && ['amd64', 'arm64'].includes(hostPlatform().architecture);
if (!enabled) {
  // Counted as skipped, never as passed.
  test.skip('registry pull tests need docker-registry, htpasswd and openssl (hack/deps.sh installs them), on amd64 or arm64', () => {});
}

if (enabled) {
  test.serial.before(async () => {
    arch = hostPlatform().architecture;
    mkdirSync(outside);
    const base = await busyboxLayer();
    const marker = (name: string, text: string) => makeTar([{ name, content: text }]);
    img.busybox = buildImage([base]);
    img.layered = buildImage([base, await marker('etc/layered', 'top\n')]);
    img.docker = buildImage([base], { docker: true, config: { Cmd: ['sh'], Labels: { kind: 'docker' } } });
    img.dockerOther = buildImage([await marker('other', 'arch\n')], { docker: true, architecture: arch === 'amd64' ? 'arm64' : 'amd64' });
    img.native = buildImage([base], { config: { Cmd: ['sh'], Labels: { kind: 'native' } } });
    img.foreign = buildImage([await marker('foreign', 'not for this host\n')], { architecture: arch === 'amd64' ? 'arm64' : 'amd64' });
    img.runme = buildImage([base, await marker('marker', 'pulled\n')]);
    img.evilDots = buildImage([await makeTar([{ name: 'ok', content: 'x' }, { name: `../${escapeName}`, content: 'pwned' }])]);
    img.evilLink = buildImage([await makeTar([{ name: 'evil', type: 'symlink', linkname: outside }, { name: 'evil/pwned', content: 'x' }])]);
    img.zstd = buildImage([base, await marker('zstd-marker', 'zstd layer\n')], { zstd: true });
    const other = arch === 'amd64' ? 'arm64' : 'amd64';
    multiIndex = buildIndex([
      { image: img.native, os: 'linux', architecture: arch },
      { image: img.foreign, os: 'linux', architecture: other },
    ]);
    dockerList = buildIndex(
      [
        { image: img.dockerOther, os: 'linux', architecture: other },
        { image: img.docker, os: 'linux', architecture: arch },
      ],
      true,
    );

    reg = await TestRegistry.start();
    cleanups.push(() => reg.stop());
    await reg.pushImage('test/busybox', '1', img.busybox!);
    await reg.pushImage('library/busybox', 'latest', img.busybox!);
    await reg.pushImage('test/layered', '1', img.layered!);
    await reg.pushImage('test/docker', '1', img.docker!);
    await reg.pushIndex('test/multi', '1', [img.native!, img.foreign!], multiIndex);
    await reg.pushIndex('test/dockerlist', '1', [img.docker!, img.dockerOther!], dockerList);
    await reg.pushImage('test/foreign', '1', img.foreign!);
    await reg.pushImage('test/runme', '1', img.runme!);
    await reg.pushImage('test/evil-dots', '1', img.evilDots!);
    await reg.pushImage('test/evil-link', '1', img.evilLink!);
    await reg.pushImage('test/zstd', '1', img.zstd!);

    regBasic = await TestRegistry.start({ basic: { users: { alice: 's3cret' } } });
    cleanups.push(() => regBasic.stop());
    await regBasic.pushImage('test/busybox', '1', img.busybox!);

    regToken = await TestRegistry.start({ token: { users: { alice: 's3cret' }, refreshTokens: { 'refresh-abc': 'alice' } } });
    cleanups.push(() => regToken.stop());
    await regToken.pushImage('test/busybox', '1', img.busybox!);

    writeFileSync(
      configFile,
      `[registry]\nmirrors = { "docker.io" = ["http://${reg.host}"] }\nfallback_to_upstream = false\npull_progress_timeout_seconds = ${STALL_SECONDS}\n`,
    );
  });
}

const d = enabled ? useDaemon('registry pull tests', { importImages: false, flags: ['--config', configFile] }) : undefined;

test.after.always(async () => {
  for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => {});
  rmSync(tmp, { recursive: true, force: true });
});

async function pull(daemon: TestDaemon, image: string, auth?: Record<string, string>, timeoutMs = 60_000): Promise<string> {
  const r = await daemon.client.call('PullImage', { image: { image }, ...(auth ? { auth } : {}) }, timeoutMs);
  return r.image_ref as string;
}

async function pullFails(t: ExecutionContext, daemon: TestDaemon, image: string, auth?: Record<string, string>): Promise<GrpcErr> {
  const e = (await t.throwsAsync(pull(daemon, image, auth))) as unknown as GrpcErr;
  return e;
}

function storeDir(daemon: TestDaemon): string {
  return join(daemon.workDir, 'images');
}

function blobFiles(daemon: TestDaemon): string[] {
  return readdirSync(join(storeDir(daemon), 'blobs', 'sha256')).filter((n) => /^[a-f0-9]{64}$/.test(n));
}

function layerDirs(daemon: TestDaemon): string[] {
  return readdirSync(join(storeDir(daemon), 'layers')).filter((n) => /^[a-f0-9]{64}$/.test(n));
}

function hasBlob(daemon: TestDaemon, digest: string): boolean {
  return existsSync(join(storeDir(daemon), 'blobs', 'sha256', digest.slice(7)));
}

function leftovers(daemon: TestDaemon): string[] {
  const s = storeDir(daemon);
  return [
    ...readdirSync(join(s, 'tmp')),
    ...readdirSync(join(s, 'blobs', 'sha256')).filter((n) => n.startsWith('.')),
    ...readdirSync(join(s, 'layers')).filter((n) => n.startsWith('.')),
  ];
}

async function proxy(): Promise<BlobProxy> {
  const p = await BlobProxy.start(reg.host);
  cleanups.push(() => p.stop());
  return p;
}

if (d) {
  test.serial('pull by tag, by digest and through an OCI index (linux + host arch)', async (t) => {
    const ref = `${reg.host}/test/busybox:1`;
    t.is(await pull(d, ref), img.busybox!.configDigest);
    const st = await d.client.call('ImageStatus', { image: { image: ref } });
    t.deepEqual(st.image.repo_tags, [ref]);
    t.deepEqual(st.image.repo_digests, [`${reg.host}/test/busybox@${img.busybox!.manifestDigest}`]);
    t.true(Number(st.image.size) > 1_000_000);

    // By digest: already local, and also into a fresh name.
    t.is(await pull(d, `${reg.host}/test/busybox@${img.busybox!.manifestDigest}`), img.busybox!.configDigest);
    t.is(await pull(d, `${reg.host}/library/busybox@${img.busybox!.manifestDigest}`), img.busybox!.configDigest);
    const byDigest = await d.client.call('ImageStatus', { image: { image: `${reg.host}/library/busybox@${img.busybox!.manifestDigest}` } });
    t.is(byDigest.image.id, img.busybox!.configDigest);

    // An index: the host's entry is pulled, the other platform's blobs are not.
    const multi = `${reg.host}/test/multi:1`;
    t.is(await pull(d, multi), img.native!.configDigest);
    const ms = await d.client.call('ImageStatus', { image: { image: multi } });
    t.deepEqual(ms.image.repo_digests, [`${reg.host}/test/multi@${multiIndex.digest}`]);
    for (const l of img.foreign!.layerDigests) t.false(hasBlob(d, l));
    t.false(hasBlob(d, img.foreign!.configDigest));
    // Pull by the index digest.
    t.is(await pull(d, `${reg.host}/test/multi@${multiIndex.digest}`), img.native!.configDigest);
    // A single-platform image for another arch is refused.
    const e = await pullFails(t, d, `${reg.host}/test/foreign:1`);
    t.is(e.code, status.NOT_FOUND);
    t.regex(e.details, /this host needs/);
  });

  test.serial('Docker v2 schema 2 manifests and manifest lists', async (t) => {
    t.is(await pull(d, `${reg.host}/test/docker:1`), img.docker!.configDigest);
    t.is(await pull(d, `${reg.host}/test/dockerlist:1`), img.docker!.configDigest);
    const st = await d.client.call('ImageStatus', { image: { image: `${reg.host}/test/dockerlist:1` }, verbose: true });
    t.true(st.image.repo_digests.includes(`${reg.host}/test/dockerlist@${dockerList.digest}`));
    t.is(JSON.parse(st.info.info).manifestMediaType, 'application/vnd.docker.distribution.manifest.v2+json');
  });

  test.serial('docker.io short names go to the configured mirror (a later --config wins over /dev/null)', async (t) => {
    t.is(await pull(d, 'busybox'), img.busybox!.configDigest);
    const st = await d.client.call('ImageStatus', { image: { image: 'docker.io/library/busybox:latest' } });
    t.true(st.image.repo_tags.includes('docker.io/library/busybox:latest'));
    t.true(st.image.repo_digests.includes(`docker.io/library/busybox@${img.busybox!.manifestDigest}`));
    t.is((await d.client.call('ImageStatus', { image: { image: 'busybox' } })).image.id, img.busybox!.configDigest);
    t.regex(d.logs(), /msg="pulled image" image=docker.io\/library\/busybox:latest/);
  });

  test.serial('basic auth: right credentials pull, wrong or none are UNAUTHENTICATED naming the registry', async (t) => {
    const ref = `${regBasic.host}/test/busybox:1`;
    const none = await pullFails(t, d, ref);
    t.is(none.code, status.UNAUTHENTICATED);
    t.true(none.details.includes(regBasic.host), none.details);
    const wrong = await pullFails(t, d, ref, { username: 'alice', password: 'nope' });
    t.is(wrong.code, status.UNAUTHENTICATED);
    t.true(wrong.details.includes(regBasic.host));
    t.regex(wrong.details, /rejected the credentials of user "alice"/);
    t.is(await pull(d, ref, { username: 'alice', password: 's3cret' }), img.busybox!.configDigest);
    t.is(await pull(d, ref, { auth: Buffer.from('alice:s3cret').toString('base64') }), img.busybox!.configDigest);
    // Present locally is no excuse: wrong credentials still fail.
    t.is((await pullFails(t, d, ref, { username: 'alice', password: 'nope' })).code, status.UNAUTHENTICATED);
  });

  test.serial('token auth: the bearer challenge flow with user/password, identity token and registry token', async (t) => {
    const ref = `${regToken.host}/test/busybox:1`;
    const ts = regToken.tokenServer!;
    const none = await pullFails(t, d, ref);
    t.is(none.code, status.UNAUTHENTICATED);
    t.true(none.details.includes(regToken.host), none.details);
    const wrong = await pullFails(t, d, ref, { username: 'alice', password: 'nope' });
    t.is(wrong.code, status.UNAUTHENTICATED);
    t.true(wrong.details.includes(regToken.host), wrong.details);
    t.regex(wrong.details, /token server .* rejected the credentials of user "alice"/);
    t.is(await pull(d, ref, { username: 'alice', password: 's3cret' }), img.busybox!.configDigest);
    t.true(ts.seen.some((s) => s.user === 'alice' && s.scope.includes('repository:test/busybox:pull')));
    t.is(await pull(d, ref, { identity_token: 'refresh-abc' }), img.busybox!.configDigest);
    t.true(ts.seen.some((s) => s.grant === 'refresh_token' && s.user === 'alice'));
    const badRefresh = await pullFails(t, d, ref, { identity_token: 'refresh-wrong' });
    t.is(badRefresh.code, status.UNAUTHENTICATED);
    const token = ts.issue('alice', [{ type: 'repository', name: 'test/busybox', actions: ['pull'] }]);
    t.is(await pull(d, ref, { registry_token: token }), img.busybox!.configDigest);
    const useless = ts.issue('alice', [{ type: 'repository', name: 'other/repo', actions: ['pull'] }]);
    t.is((await pullFails(t, d, ref, { registry_token: useless })).code, status.UNAUTHENTICATED);
  });

  test.serial('a missing tag, repository or digest is NOT_FOUND; a malformed reference is INVALID_ARGUMENT', async (t) => {
    for (const ref of [`${reg.host}/test/busybox:nope`, `${reg.host}/test/nothere:1`, `${reg.host}/test/busybox@sha256:${'0'.repeat(64)}`]) {
      const e = await pullFails(t, d, ref);
      t.is(e.code, status.NOT_FOUND, ref);
      t.true(e.details.includes(reg.host), e.details);
    }
    const bad = await pullFails(t, d, 'Not A Ref');
    t.is(bad.code, status.INVALID_ARGUMENT);
  });

  test.serial('zstd layers (+zstd media type) are pulled, unpacked with diffID checks, and a pod runs them', async (t) => {
    // A daemon of its own: in `d` the busybox layer (same diffID, so the same
    // chain ID) is unpacked already, and the zstd blob would never be decoded.
    const fresh = await TestDaemon.start({ importImages: false, flags: ['--config', configFile] });
    t.teardown(() => fresh.teardown());
    const ref = `${reg.host}/test/zstd:1`;
    const manifest = JSON.parse(img.zstd!.manifest.toString()) as { layers: { mediaType: string }[] };
    t.deepEqual(
      manifest.layers.map((l) => l.mediaType),
      ['application/vnd.oci.image.layer.v1.tar+zstd', 'application/vnd.oci.image.layer.v1.tar+zstd'],
    );
    for (const digest of img.zstd!.layerDigests) {
      const blob = img.zstd!.blobs.find((b) => b.digest === digest)!.data;
      t.is(blob.readUInt32BE(0), 0x28b52ffd, 'the layer blob is real zstd');
    }
    t.is(await pull(fresh, ref), img.zstd!.configDigest);
    for (const l of img.zstd!.layerDigests) t.true(hasBlob(fresh, l));
    t.is(layerDirs(fresh).length, 2, 'both zstd layers were unpacked');
    t.deepEqual(leftovers(fresh), []);
    const st = await fresh.client.call('ImageStatus', { image: { image: ref } });
    t.is(st.image.id, img.zstd!.configDigest);

    const cfg = podConfig('zstd');
    const { pod_sandbox_id: pod } = await fresh.client.call('RunPodSandbox', { config: cfg });
    const { container_id: ctr } = await fresh.client.call('CreateContainer', {
      pod_sandbox_id: pod,
      config: containerConfig('zstd', ['sh', '-c', 'test "$(cat /zstd-marker)" = "zstd layer" && test -x /bin/busybox && ls /bin/ls'], {
        image: { image: ref },
        log_path: '',
      }),
      sandbox_config: cfg,
    });
    await fresh.client.call('StartContainer', { container_id: ctr });
    const cs = await fresh.waitExited(ctr);
    t.is(cs.exit_code, 0);
    await fresh.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
  });

  test.serial('malicious layers are refused and nothing is written outside the store', async (t) => {
    for (const [name, im] of [
      ['evil-dots', img.evilDots!],
      ['evil-link', img.evilLink!],
    ] as const) {
      const e = await pullFails(t, d, `${reg.host}/test/${name}:1`);
      t.is(e.code, status.FAILED_PRECONDITION, e.details);
      t.regex(e.details, /escapes|symlink/);
      for (const l of im.layerDigests) t.false(hasBlob(d, l), 'the layer blob was discarded');
      t.is((await d.client.call('ImageStatus', { image: { image: `${reg.host}/test/${name}:1` } })).image, null);
    }
    t.deepEqual(readdirSync(outside), []);
    t.false(existsSync(join(storeDir(d), 'layers', escapeName)));
    t.false(existsSync(join(storeDir(d), escapeName)));
    t.deepEqual(leftovers(d), []);
  });

  test.serial('a layer shared by two images is downloaded, stored and unpacked once; concurrent pulls are deduplicated', async (t) => {
    const fresh = await TestDaemon.start({ importImages: false, flags: ['--config', configFile] });
    t.teardown(() => fresh.teardown());
    const p = await proxy();
    p.mode = { kind: 'slow', chunk: 256 * 1024, intervalMs: 40 };
    const bb = `${p.host}/test/busybox:1`;
    const ids = await Promise.all([pull(fresh, bb), pull(fresh, bb), pull(fresh, bb), pull(fresh, `${p.host}/test/layered:1`)]);
    t.deepEqual(ids, [img.busybox!.configDigest, img.busybox!.configDigest, img.busybox!.configDigest, img.layered!.configDigest]);
    const layerBytes = (i: BuiltImage) => i.blobs.filter((b) => i.layerDigests.includes(b.digest)).reduce((s, b) => s + b.data.length, 0);
    // busybox layer once + the layered image's own top layer; configs are small and not counted twice either.
    const expected = layerBytes(img.layered!) + img.busybox!.blobs.find((b) => b.digest === img.busybox!.configDigest)!.data.length + img.layered!.blobs.find((b) => b.digest === img.layered!.configDigest)!.data.length;
    t.is(p.blobBytes, expected);
    // busybox: layer, config, manifest; layered: + top layer, config, manifest.
    t.is(blobFiles(fresh).length, 6);
    t.is(layerDirs(fresh).length, 2);
    t.deepEqual(leftovers(fresh), []);
    t.is((fresh.logs().match(/msg="pulling image"/g) ?? []).length, 2, 'three concurrent pulls of one reference are one pull');
  });

  test.serial('a pull interrupted by the registry dying mid-blob leaves a clean store; the next pull completes', async (t) => {
    const regKill = await TestRegistry.start();
    t.teardown(() => regKill.stop());
    const big = buildImage([await makeTar([{ name: 'big.bin', content: randomBytes(8 * 1024 * 1024) }])]);
    await regKill.pushImage('test/big', '1', big);
    const p = await BlobProxy.start(regKill.host);
    t.teardown(() => p.stop());
    p.mode = { kind: 'stall', after: 2 * 1024 * 1024 };
    const ref = `${p.host}/test/big:1`;
    const pending = pull(d, ref).then(
      () => undefined,
      (e: GrpcErr) => e,
    );
    await p.hit;
    // Half the blob is in a temp file now; kill the registry process (ours, by PID).
    await regKill.kill();
    const err = await pending;
    t.truthy(err, 'the pull failed');
    t.log(err?.details);
    t.true([status.UNAVAILABLE, status.DEADLINE_EXCEEDED].includes(err!.code), err!.details);
    for (const l of big.layerDigests) t.false(hasBlob(d, l), 'no half-written blob under its digest');
    t.deepEqual(leftovers(d), []);
    t.is((await d.client.call('ImageStatus', { image: { image: ref } })).image, null);

    await regKill.launch();
    p.mode = { kind: 'pass' };
    t.is(await pull(d, ref), big.configDigest);
    for (const l of big.layerDigests) t.true(hasBlob(d, l));
    t.deepEqual(leftovers(d), []);
    await d.client.call('RemoveImage', { image: { image: ref } });
  });

  test.serial('a connection cut mid-blob fails the pull; the next one restarts cleanly', async (t) => {
    const p = await proxy();
    p.mode = { kind: 'cut', after: 300 * 1024 };
    const ref = `${p.host}/test/layered:1`;
    // The shared busybox layer is local already (earlier tests); make sure the top layer is what is fetched.
    await d.client.call('RemoveImage', { image: { image: `${reg.host}/test/layered:1` } }).catch(() => undefined);
    const fresh = buildImage([await makeTar([{ name: 'cut.bin', content: randomBytes(1024 * 1024) }])]);
    await reg.pushImage('test/cut', '1', fresh);
    const e = await pullFails(t, d, `${p.host}/test/cut:1`);
    t.is(e.code, status.UNAVAILABLE, e.details);
    t.false(hasBlob(d, fresh.layerDigests[0]!));
    t.deepEqual(leftovers(d), []);
    p.mode = { kind: 'pass' };
    t.is(await pull(d, `${p.host}/test/cut:1`), fresh.configDigest);
    t.is(await pull(d, ref), img.layered!.configDigest);
  });

  test.serial(`the no-progress watchdog fails a stalled pull within ${STALL_SECONDS} s; a slow but moving pull succeeds`, async (t) => {
    const p = await proxy();
    const slowImg = buildImage([await makeTar([{ name: 'slow.bin', content: randomBytes(1200 * 1024) }])]);
    await reg.pushImage('test/slow', '1', slowImg);
    const ref = `${p.host}/test/slow:1`;
    p.mode = { kind: 'stall', after: 200 * 1024 };
    const t0 = Date.now();
    const e = await pullFails(t, d, ref);
    const took = (Date.now() - t0) / 1000;
    t.is(e.code, status.DEADLINE_EXCEEDED, e.details);
    t.regex(e.details, new RegExp(`no progress for ${STALL_SECONDS} s`));
    t.true(took >= STALL_SECONDS - 0.5 && took < STALL_SECONDS + 4, `failed after ${took} s`);
    t.false(hasBlob(d, slowImg.layerDigests[0]!));
    t.deepEqual(leftovers(d), []);

    // 300 KiB every 0.9 s: about 4 s in all, longer than the timeout, but never quiet for 3 s.
    p.mode = { kind: 'slow', chunk: 300 * 1024, intervalMs: 900 };
    const t1 = Date.now();
    t.is(await pull(d, ref), slowImg.configDigest);
    t.true((Date.now() - t1) / 1000 > STALL_SECONDS, 'the slow pull took longer than the no-progress timeout');
    t.regex(d.logs(), /msg="pull progress" image=[^ ]*test\/slow:1 bytes=\d+ totalBytes=\d+ layers=0\/1/);
  });

  test.serial('a pod runs a pulled image by tag; RemoveImage refuses while it is in use, then frees its blobs', async (t) => {
    const ref = `${reg.host}/test/runme:1`;
    t.is(await pull(d, ref), img.runme!.configDigest);
    const cfg = podConfig('pulled');
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: cfg });
    const { container_id: ctr } = await d.client.call('CreateContainer', {
      pod_sandbox_id: pod,
      config: containerConfig('runme', ['sh', '-c', 'test "$(cat /marker)" = pulled'], { image: { image: ref }, log_path: '' }),
      sandbox_config: cfg,
    });
    await d.client.call('StartContainer', { container_id: ctr });
    const st = await d.waitExited(ctr);
    t.is(st.exit_code, 0);
    const inUse = (await t.throwsAsync(d.client.call('RemoveImage', { image: { image: ref } }))) as unknown as GrpcErr;
    t.is(inUse.code, status.FAILED_PRECONDITION);
    t.true(inUse.details.includes(ctr));
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
    const own = img.runme!.layerDigests[1]!;
    t.true(hasBlob(d, own));
    await d.client.call('RemoveImage', { image: { image: ref } });
    t.is((await d.client.call('ImageStatus', { image: { image: ref } })).image, null);
    t.false(hasBlob(d, own));
    t.false(hasBlob(d, img.runme!.configDigest));
    t.false(hasBlob(d, img.runme!.manifestDigest));
    // The busybox layer is still used by other images.
    t.true(hasBlob(d, img.runme!.layerDigests[0]!));
  });
}
