// ReopenContainerLog after kubelet-style rotation, and the ImageService over the socket.
import test from 'ava';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFileSync, renameSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { podConfig, containerConfig, waitFor, testImages, BUSYBOX } from '../helpers/daemon.js';
import { useDaemon } from '../helpers/suite.js';
import { projectRoot } from '../../src/util/paths.js';

const run = promisify(execFile);

const d = useDaemon('log/image tests');
if (d) {

  test.serial('ReopenContainerLog after a rename: old lines stay in the rotated file, new ones go to a new file, none lost', async (t) => {
    const cfg = podConfig('rotate', {}, join(d.logDir, 'rotate'));
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: cfg });
    const { container_id: ctr } = await d.client.call('CreateContainer', {
      pod_sandbox_id: pod,
      config: containerConfig('counter', ['sh', '-c', 'i=0; while true; do echo n $i; i=$((i+1)); sleep 0.02; done']),
      sandbox_config: cfg,
    });
    await d.client.call('StartContainer', { container_id: ctr });
    const logPath = (await d.client.call('ContainerStatus', { container_id: ctr })).status.log_path as string;
    await waitFor('some lines', () => readFileSync(logPath, 'utf8').split('\n').length > 10);
    const rotated = `${logPath}.20261124-000000`;
    renameSync(logPath, rotated);
    await d.client.call('ReopenContainerLog', { container_id: ctr });
    t.true(existsSync(logPath));
    await waitFor('lines in the new file', () => readFileSync(logPath, 'utf8').split('\n').length > 10);
    await d.client.call('StopContainer', { container_id: ctr, timeout: 0 });
    const nums = (file: string) =>
      readFileSync(file, 'utf8')
        .trim()
        .split('\n')
        .map((l) => Number(/stdout F n (\d+)$/.exec(l)?.[1]));
    const all = [...nums(rotated), ...nums(logPath)];
    t.deepEqual(all, all.map((_v, i) => i), 'consecutive across the reopen');
    t.true(nums(rotated).length > 0 && nums(logPath).length > 0);
    await t.throwsAsync(d.client.call('ReopenContainerLog', { container_id: ctr }), { message: /not running/ });
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
  });

  test.serial('images: CLI import, List/Status/FsInfo, RemoveImage refused while used, then removed', async (t) => {
    const imgs = await testImages();
    // The CLI imports into the daemon's store while it runs; the daemon sees it without a restart.
    const { stdout } = await run(process.execPath, ['--import', 'tsx', join(projectRoot(), 'src', 'cli.ts'), 'images', 'import', imgs.dockerTar, '--work-dir', d.workDir, '--config', '/dev/null'], { cwd: projectRoot() });
    t.regex(stdout, /cri-mesos\.test\/busybox:docker/);
    const list = await d.client.call('ListImages', {});
    const tags = list.images.flatMap((i: { repo_tags: string[] }) => i.repo_tags);
    t.true(tags.includes('cri-mesos.test/busybox:docker'));
    t.true(tags.includes(BUSYBOX));
    const st = await d.client.call('ImageStatus', { image: { image: BUSYBOX }, verbose: true });
    t.true(st.image.id.startsWith('sha256:'));
    t.true(Number(st.image.size) > 0);
    t.truthy(st.info.info);
    t.is((await d.client.call('ImageStatus', { image: { image: 'not/there:1' } })).image, null);
    const fs = await d.client.call('ImageFsInfo', {});
    t.true(Number(fs.image_filesystems[0].used_bytes.value) > 1_000_000);
    t.true(Number(fs.image_filesystems[0].inodes_used.value) > 100);
    // No registry is reachable from the test machines: a clear UNAVAILABLE (registry-pull.test.ts pulls from loopback ones).
    // Tests stay on loopback: nothing listens on 127.0.0.1:1.
    await t.throwsAsync(d.client.call('PullImage', { image: { image: '127.0.0.1:1/alpine:3' } }), { message: /127\.0\.0\.1:1/ });

    const cfg = podConfig('img');
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: cfg });
    const { container_id: ctr } = await d.client.call('CreateContainer', {
      pod_sandbox_id: pod,
      config: containerConfig('user', ['true'], { image: { image: 'cri-mesos.test/busybox:docker' }, log_path: '' }),
      sandbox_config: cfg,
    });
    const err = (await t.throwsAsync(d.client.call('RemoveImage', { image: { image: 'cri-mesos.test/busybox:docker' } }))) as unknown as { code: number; details: string };
    t.is(err.code, status.FAILED_PRECONDITION);
    t.regex(err.details, new RegExp(ctr));
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
    await d.client.call('RemoveImage', { image: { image: 'cri-mesos.test/busybox:docker' } });
    const after = await d.client.call('ListImages', {});
    t.false(after.images.flatMap((i: { repo_tags: string[] }) => i.repo_tags).includes('cri-mesos.test/busybox:docker'));
    // Removing again is fine.
    await d.client.call('RemoveImage', { image: { image: 'cri-mesos.test/busybox:docker' } });
  });
}
