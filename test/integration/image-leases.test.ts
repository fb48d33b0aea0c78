// Image leases over the socket: RemoveImage sent while a CreateContainer of
// the image is in flight is refused, the create goes on and its container
// runs; a failed create lets go of its image. The daemon holds a create once
// its rootfs is mounted through its test-only hook, CRI_MESOS_TEST_HOLD_CREATE
// (src/cri/runtime/create-container.ts): no timing guesses.
import test from 'ava';
import { status } from '@grpc/grpc-js';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TEST_TAGS } from '../../hack/build-test-images.js';
import { importImage } from '../../src/images/import.js';
import { ImageStore } from '../../src/images/store.js';
import { BUSYBOX, containerConfig, podConfig, testImages, waitFor } from '../helpers/daemon.js';
import { useDaemon } from '../helpers/suite.js';

const LAYERED = TEST_TAGS.layered;
const holdDir = mkdtempSync(join(tmpdir(), 'cm-hold-'));
test.after.always(() => rmSync(holdDir, { recursive: true, force: true }));

interface GrpcErr {
  code: number;
  details: string;
}

const d = useDaemon('image lease tests', { env: { CRI_MESOS_TEST_HOLD_CREATE: holdDir } });
if (d) {
  const store = () => new ImageStore(join(d.workDir, 'images'));

  test.serial('RemoveImage while a CreateContainer of the image is in flight: refused; the create succeeds and runs; removable once the container is gone', async (t) => {
    const layered = (await store().resolve(LAYERED))!;
    const bb = (await store().resolve(BUSYBOX))!;
    const cfg = podConfig('lease');
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: cfg });
    t.teardown(() => d.client.call('RemovePodSandbox', { pod_sandbox_id: pod }).catch(() => undefined));
    const hold = join(holdDir, 'held.hold');
    writeFileSync(hold, '');
    t.teardown(() => rmSync(hold, { force: true }));
    const creating = d.client.call('CreateContainer', {
      pod_sandbox_id: pod,
      config: containerConfig('held', ['sh', '-c', 'cat /etc/layered; sleep 300'], { image: { image: LAYERED } }),
      sandbox_config: cfg,
    });
    creating.catch(() => undefined); // awaited below; not unhandled while we wait
    await waitFor('the create to be held with its rootfs mounted', () => existsSync(join(holdDir, 'held.held')));

    const refused = (await t.throwsAsync(d.client.call('RemoveImage', { image: { image: LAYERED } }))) as unknown as GrpcErr;
    t.is(refused.code, status.FAILED_PRECONDITION);
    t.regex(refused.details, new RegExp(`image ${LAYERED} \\(${layered.id}\\) is in use by container\\(s\\) [0-9a-f]+ \\(being created\\)`));
    t.truthy((await d.client.call('ImageStatus', { image: { image: LAYERED } })).image, 'nothing removed');
    for (const dir of store().layerDirs(layered)) t.true(existsSync(dir), dir);

    rmSync(hold);
    const { container_id: ctr } = await creating;
    t.regex(refused.details, new RegExp(`${ctr} \\(being created\\)`), 'the refusal named this create');
    await d.client.call('StartContainer', { container_id: ctr });
    const st = await waitFor('held running', async () => {
      const s = await d.client.call('ContainerStatus', { container_id: ctr });
      return s.status.state === 'CONTAINER_RUNNING' ? s.status : undefined;
    });
    t.is(st.image_ref, layered.id);
    const out = await d.client.call('ExecSync', { container_id: ctr, cmd: ['cat', '/etc/layered'], timeout: 10 });
    t.is(out.exit_code, 0);
    t.is(Buffer.from(out.stdout).toString(), 'top layer\n');

    // The record holds the image now.
    const inUse = (await t.throwsAsync(d.client.call('RemoveImage', { image: { image: layered.id } }))) as unknown as GrpcErr;
    t.is(inUse.code, status.FAILED_PRECONDITION);
    t.regex(inUse.details, new RegExp(`in use by container\\(s\\) ${ctr}$`));

    await d.client.call('StopContainer', { container_id: ctr, timeout: 0 });
    await d.client.call('RemoveContainer', { container_id: ctr });
    await d.client.call('RemoveImage', { image: { image: LAYERED } });
    t.is((await d.client.call('ImageStatus', { image: { image: LAYERED } })).image, null);
    t.false(existsSync(store().layerDir(layered.layers[1]!.chainId)));
    // The layer busybox shares stays, and busybox still runs.
    t.true(existsSync(store().layerDir(bb.layers[0]!.chainId)));
    const { id: after } = await d.runContainer(pod, cfg, 'after', ['sleep', '300']);
    const ok = await d.client.call('ExecSync', { container_id: after, cmd: ['true'], timeout: 10 });
    t.is(ok.exit_code, 0);
  });

  test.serial('a CreateContainer that fails after provisioning lets go of its image: RemoveImage then succeeds', async (t) => {
    if (!(await store().resolve(LAYERED))) await importImage(store(), (await testImages()).layeredDir);
    const cfg = podConfig('lease-fail');
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: cfg });
    t.teardown(() => d.client.call('RemovePodSandbox', { pod_sandbox_id: pod }).catch(() => undefined));
    // The user is resolved in the mounted rootfs, so this fails with the lease taken and the overlay up.
    const failed = (await t.throwsAsync(
      d.client.call('CreateContainer', {
        pod_sandbox_id: pod,
        config: containerConfig('nouser', ['true'], { image: { image: LAYERED }, linux: { security_context: { run_as_username: 'nobody-here' } } }),
        sandbox_config: cfg,
      }),
    )) as unknown as GrpcErr;
    t.regex(failed.details, /nobody-here/);
    t.deepEqual((await d.client.call('ListContainers', { filter: { pod_sandbox_id: pod } })).containers, []);
    await d.client.call('RemoveImage', { image: { image: LAYERED } });
    t.is((await d.client.call('ImageStatus', { image: { image: LAYERED } })).image, null);
    // A create of the removed image: NOT_FOUND, cleanly.
    const gone = (await t.throwsAsync(
      d.client.call('CreateContainer', { pod_sandbox_id: pod, config: containerConfig('gone', ['true'], { image: { image: LAYERED } }), sandbox_config: cfg }),
    )) as unknown as GrpcErr;
    t.is(gone.code, status.NOT_FOUND);
  });
}
