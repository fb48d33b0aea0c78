// Status and List answers are encoded once per change (src/cri/encoded.ts): after every
// change, the very next call shows it, for the pod and the container, in their Status and
// in the List calls, with and without filters; verbose answers still carry their info.
import test from 'ava';
import { join } from 'node:path';
import { containerConfig, podConfig } from '../helpers/daemon.js';
import { useDaemon } from '../helpers/suite.js';

const d = useDaemon('status cache tests');
if (d) {
  const podStatus = async (id: string) => (await d.client.call('PodSandboxStatus', { pod_sandbox_id: id })).status;
  const ctrStatus = async (id: string) => (await d.client.call('ContainerStatus', { container_id: id })).status;
  const listedPod = async (id: string, filter: object = {}) =>
    ((await d.client.call('ListPodSandbox', { filter })).items as { id: string; state: string }[]).find((p) => p.id === id);
  const listedCtr = async (id: string, filter: object = {}) =>
    ((await d.client.call('ListContainers', { filter })).containers as { id: string; state: string }[]).find((c) => c.id === id);

  test.serial('every change shows at once in Status and List, asked again and again in between', async (t) => {
    const logDir = join(d.logDir, 'cache');
    const cfg = podConfig('cache', {}, logDir);
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: cfg });
    // asked twice: the second answer comes from the encoding of the first
    for (let i = 0; i < 2; i++) {
      t.is((await podStatus(pod)).state, 'SANDBOX_READY');
      t.is((await listedPod(pod))?.state, 'SANDBOX_READY');
      t.is((await listedPod(pod, { label_selector: { app: 'cache' } }))?.state, 'SANDBOX_READY');
    }

    // waits for a file, then exits 3
    const { container_id: ctr } = await d.client.call('CreateContainer', {
      pod_sandbox_id: pod,
      config: containerConfig('waiter', ['sh', '-c', 'while [ ! -e /tmp/go ]; do sleep 0.05; done; exit 3']),
      sandbox_config: cfg,
    });
    for (let i = 0; i < 2; i++) {
      const st = await ctrStatus(ctr);
      t.is(st.state, 'CONTAINER_CREATED');
      t.is(st.started_at, '0');
      t.is((await listedCtr(ctr))?.state, 'CONTAINER_CREATED');
    }

    await d.client.call('StartContainer', { container_id: ctr });
    const running = await ctrStatus(ctr);
    t.is(running.state, 'CONTAINER_RUNNING');
    t.true(BigInt(running.started_at) > 0n);
    t.is((await listedCtr(ctr))?.state, 'CONTAINER_RUNNING');
    t.is((await listedCtr(ctr, { state: { state: 'CONTAINER_RUNNING' } }))?.state, 'CONTAINER_RUNNING');
    t.is(await listedCtr(ctr, { state: { state: 'CONTAINER_CREATED' } }), undefined);

    // verbose answers are built each time, with the process's pid
    const verbose = await d.client.call('ContainerStatus', { container_id: ctr, verbose: true });
    t.true(JSON.parse(verbose.info.info).pid > 0);
    t.deepEqual((await d.client.call('ContainerStatus', { container_id: ctr })).info, {});
    t.true(JSON.parse((await d.client.call('PodSandboxStatus', { pod_sandbox_id: pod, verbose: true })).info.info).pid > 0);

    await d.client.call('UpdateContainerResources', { container_id: ctr, linux: { cpu_shares: 256, memory_limit_in_bytes: 96 << 20 } });
    const updated = await ctrStatus(ctr);
    t.is(Number(updated.resources.linux.cpu_shares), 256);
    t.is(Number(updated.resources.linux.memory_limit_in_bytes), 96 << 20);

    await d.client.call('ExecSync', { container_id: ctr, cmd: ['touch', '/tmp/go'], timeout: 10 });
    const exited = await d.waitExited(ctr);
    t.is(exited.exit_code, 3);
    t.is(exited.reason, 'Error');
    t.true(BigInt(exited.finished_at) >= BigInt(exited.started_at));
    t.is((await listedCtr(ctr))?.state, 'CONTAINER_EXITED');

    await d.client.call('StopPodSandbox', { pod_sandbox_id: pod });
    t.is((await podStatus(pod)).state, 'SANDBOX_NOTREADY');
    t.is((await listedPod(pod))?.state, 'SANDBOX_NOTREADY');
    t.is(await listedPod(pod, { state: { state: 'SANDBOX_READY' } }), undefined);

    await d.client.call('RemoveContainer', { container_id: ctr });
    const gone = await t.throwsAsync(ctrStatus(ctr));
    t.is((gone as { code?: number }).code, 5); // NOT_FOUND
    t.is(await listedCtr(ctr), undefined);

    await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
    const podGone = await t.throwsAsync(podStatus(pod));
    t.is((podGone as { code?: number }).code, 5);
    t.is(await listedPod(pod), undefined);
  });

  test.serial('List keeps created_at order and the same answers with and without filters', async (t) => {
    const pods: string[] = [];
    for (const name of ['order-a', 'order-b', 'order-c']) {
      const { pod_sandbox_id } = await d.client.call('RunPodSandbox', { config: podConfig(name, { labels: { app: name, group: 'order' } }) });
      pods.push(pod_sandbox_id);
    }
    t.teardown(async () => {
      for (const p of pods) {
        await d.client.call('StopPodSandbox', { pod_sandbox_id: p }).catch(() => undefined);
        await d.client.call('RemovePodSandbox', { pod_sandbox_id: p }).catch(() => undefined);
      }
    });
    const all = (await d.client.call('ListPodSandbox', {})).items as { id: string }[];
    const ours = all.filter((p) => pods.includes(p.id));
    t.deepEqual(
      ours.map((p) => p.id),
      pods,
    );
    const filtered = (await d.client.call('ListPodSandbox', { filter: { label_selector: { group: 'order' } } })).items as object[];
    t.deepEqual(filtered, ours);
    // the middle one stops: the next list shows it, the others' elements unchanged
    await d.client.call('StopPodSandbox', { pod_sandbox_id: pods[1] });
    const after = ((await d.client.call('ListPodSandbox', { filter: { label_selector: { group: 'order' } } })).items as { id: string; state: string }[]);
    t.deepEqual(
      after.map((p) => p.state),
      ['SANDBOX_READY', 'SANDBOX_NOTREADY', 'SANDBOX_READY'],
    );
    t.deepEqual(after[0], filtered[0]);
    t.deepEqual(after[2], filtered[2]);
  });
}
