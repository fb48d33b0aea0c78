// Bad input gets a clear gRPC error naming the field and loses nothing;
// RemovePodSandbox leaves no process, cgroup, mount, FIFO or directory.
import test from 'ava';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { podConfig, containerConfig, waitFor } from '../helpers/daemon.js';
import { isDeepStrictEqual } from 'node:util';
import { useDaemon } from '../helpers/suite.js';
import { POOL_CGROUP, pendingDeletes } from '../helpers/leaks.js';

async function rejects(t: import('ava').ExecutionContext, p: Promise<unknown>, code: number, field: RegExp) {
  const err = (await t.throwsAsync(p)) as unknown as { code: number; details: string } | undefined;
  t.is(err?.code, code, err?.details);
  t.regex(err?.details ?? '', field);
}

const d = useDaemon('error/cleanup tests');
if (d) {

  test.serial('bad requests are refused with the field named, and nothing stored is lost', async (t) => {
    const logDir = join(d.logDir, 'bad');
    const cfg = podConfig('bad', {}, logDir);
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: cfg });
    const { container_id: ok } = await d.client.call('CreateContainer', {
      pod_sandbox_id: pod,
      config: containerConfig('ok', ['sleep', '3600']),
      sandbox_config: cfg,
    });

    await rejects(t, d.client.call('RunPodSandbox', { config: { hostname: 'x' } }), status.INVALID_ARGUMENT, /config\.metadata/);
    await rejects(t, d.client.call('RunPodSandbox', {}), status.INVALID_ARGUMENT, /config/);
    await rejects(t, d.client.call('RunPodSandbox', { config: cfg }), status.ALREADY_EXISTS, /reserved/);
    await rejects(t, d.client.call('RunPodSandbox', { config: podConfig('h'), runtime_handler: 'nope' }), status.INVALID_ARGUMENT, /runtime_handler/);
    await rejects(t, d.client.call('PodSandboxStatus', { pod_sandbox_id: 'f00d' }), status.NOT_FOUND, /pod_sandbox_id/);
    await rejects(t, d.client.call('ContainerStatus', { container_id: 'f00d' }), status.NOT_FOUND, /container_id/);
    await rejects(t, d.client.call('StartContainer', { container_id: 'f00d' }), status.NOT_FOUND, /container_id/);
    await rejects(t, d.client.call('CreateContainer', { pod_sandbox_id: pod, config: { image: { image: 'x' } }, sandbox_config: cfg }), status.INVALID_ARGUMENT, /config\.metadata/);
    await rejects(
      t,
      d.client.call('CreateContainer', { pod_sandbox_id: pod, config: containerConfig('../evil', ['true']), sandbox_config: cfg }),
      status.INVALID_ARGUMENT,
      /config\.metadata\.name/,
    );
    await rejects(
      t,
      d.client.call('CreateContainer', { pod_sandbox_id: pod, config: containerConfig('evil-log', ['true'], { log_path: '../../escape.log' }), sandbox_config: cfg }),
      status.INVALID_ARGUMENT,
      /log_path/,
    );
    await rejects(
      t,
      d.client.call('CreateContainer', { pod_sandbox_id: pod, config: containerConfig('ok', ['true']), sandbox_config: cfg }),
      status.ALREADY_EXISTS,
      /config\.metadata/,
    );
    await rejects(
      t,
      d.client.call('CreateContainer', { pod_sandbox_id: pod, config: containerConfig('noimg', ['true'], { image: { image: 'no/such:image' } }), sandbox_config: cfg }),
      status.NOT_FOUND,
      /config\.image\.image/,
    );
    await rejects(
      t,
      d.client.call('CreateContainer', { pod_sandbox_id: 'f00d', config: containerConfig('orphan', ['true']), sandbox_config: cfg }),
      status.NOT_FOUND,
      /pod_sandbox_id/,
    );
    t.false(existsSync(join(d.logDir, 'escape.log')));
    // The CRI: run_as_group needs run_as_user or run_as_username.
    const asGroup = (sc: object) => containerConfig('group', ['id'], { linux: { security_context: sc } });
    await rejects(
      t,
      d.client.call('CreateContainer', { pod_sandbox_id: pod, config: asGroup({ run_as_group: { value: 1000 } }), sandbox_config: cfg }),
      status.INVALID_ARGUMENT,
      /config\.linux\.security_context\.run_as_group needs run_as_user or run_as_username/,
    );
    await rejects(
      t,
      d.client.call('RunPodSandbox', { config: podConfig('grp', { linux: { security_context: { run_as_group: { value: 5 } } } }) }),
      status.INVALID_ARGUMENT,
      /config\.linux\.security_context\.run_as_group needs run_as_user/,
    );
    for (const sc of [{ run_as_group: { value: 1000 }, run_as_user: { value: 1000 } }, { run_as_group: { value: 100 }, run_as_username: 'tester' }]) {
      const { container_id: g } = await d.client.call('CreateContainer', { pod_sandbox_id: pod, config: asGroup(sc), sandbox_config: cfg });
      const st = await d.client.call('ContainerStatus', { container_id: g });
      t.is(Number(st.status.user.linux.gid), sc.run_as_group.value);
      await d.client.call('RemoveContainer', { container_id: g });
    }

    // Stop/Remove of unknown ids are no-ops.
    await d.client.call('StopContainer', { container_id: 'f00d', timeout: 0 });
    await d.client.call('RemoveContainer', { container_id: 'f00d' });
    await d.client.call('StopPodSandbox', { pod_sandbox_id: 'f00d' });
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: 'f00d' });

    // A short id that matches more than one container is refused, never guessed (nor a silent no-op).
    const { container_id: other } = await d.client.call('CreateContainer', { pod_sandbox_id: pod, config: containerConfig('other', ['sleep', '3600']), sandbox_config: cfg });
    let common = 0;
    while (ok[common] === other[common]) common++;
    const shared = ok.slice(0, common);
    for (const rpc of ['StopContainer', 'RemoveContainer', 'ContainerStatus', 'StartContainer']) {
      if (shared.length) await rejects(t, d.client.call(rpc, { container_id: shared, timeout: 0 }), status.INVALID_ARGUMENT, /container_id ".*" matches more than one container/);
      else await rejects(t, d.client.call(rpc, { container_id: '', timeout: 0 }), status.INVALID_ARGUMENT, /container_id/);
    }
    await d.client.call('RemoveContainer', { container_id: other.slice(0, 12) });
    t.is((await d.client.call('ListContainers', {})).containers.length, 1);

    // What was stored before is intact and still works.
    const list = await d.client.call('ListContainers', {});
    t.deepEqual(list.containers.map((c: { id: string }) => c.id), [ok]);
    await d.client.call('StartContainer', { container_id: ok });
    t.is((await d.client.call('ContainerStatus', { container_id: ok })).status.state, 'CONTAINER_RUNNING');

    // A container for a removed pod.
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
    await rejects(
      t,
      d.client.call('CreateContainer', { pod_sandbox_id: pod, config: containerConfig('late', ['true']), sandbox_config: cfg }),
      status.NOT_FOUND,
      /pod_sandbox_id/,
    );
    // UpdateRuntimeConfig keeps kubelet's pod CIDR (shown by verbose Status) and refuses garbage.
    await d.client.call('UpdateRuntimeConfig', { runtime_config: { network_config: { pod_cidr: '10.244.0.0/24' } } });
    t.is((await d.client.call('Status', { verbose: true })).info.podCidr, '10.244.0.0/24');
    await rejects(t, d.client.call('UpdateRuntimeConfig', { runtime_config: { network_config: { pod_cidr: 'ten' } } }), status.INVALID_ARGUMENT, /pod_cidr/);
    // And Version still answers: the daemon kept serving.
    t.is((await d.client.call('Version')).runtime_name, 'cri-mesos');
  });

  test.serial('RemovePodSandbox leaves no process, cgroup, mount, FIFO or directory of the pod', async (t) => {
    const cfg = podConfig('clean', {}, join(d.logDir, 'clean'));
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: cfg });
    const ids: string[] = [];
    for (const name of ['a', 'b']) {
      const { container_id } = await d.client.call('CreateContainer', {
        pod_sandbox_id: pod,
        config: containerConfig(name, ['sh', '-c', 'sleep 3600 & wait']),
        sandbox_config: cfg,
      });
      await d.client.call('StartContainer', { container_id });
      ids.push(container_id);
    }
    // A created-but-never-started one, held on its exec FIFO.
    const { container_id: held } = await d.client.call('CreateContainer', { pod_sandbox_id: pod, config: containerConfig('held', ['true']), sandbox_config: cfg });
    ids.push(held);
    const pids: number[] = [];
    // The held one's init is forked behind CreateContainer's answer.
    for (const id of ids) {
      pids.push(
        await waitFor(`container ${id}'s init`, async () => (JSON.parse((await d.client.call('ContainerStatus', { container_id: id, verbose: true })).info.info) as { pid?: number }).pid),
      );
    }
    pids.push(JSON.parse((await d.client.call('PodSandboxStatus', { pod_sandbox_id: pod, verbose: true })).info.info).pid);
    t.true(pids.every((p) => p > 0 && existsSync(`/proc/${p}`)));
    const cgroupDirs = ['cpu', 'memory', 'pids', 'freezer', 'cpuset', 'hugetlb'].map((c) => d.cgroupDir(c, pod)).filter((x): x is string => !!x);
    t.true(cgroupDirs.length >= 2);
    t.true(cgroupDirs.every((dir) => existsSync(dir)));
    const mountsBefore = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(pod) || ids.some((i) => l.includes(i)));
    t.true(mountsBefore.length > 0, 'rootfs and shm mounts exist while the pod runs');

    await d.client.call('StopPodSandbox', { pod_sandbox_id: pod });
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod });

    // Gone, or exited and left to the host's init to reap (a container's process outlives its helper by a moment).
    const left = pids.filter((p) => existsSync(`/proc/${p}`) && !/^State:\s+Z/m.test(readFileSync(`/proc/${p}/status`, 'utf8')));
    t.deepEqual(left, [], 'no process left');
    for (const dir of cgroupDirs) t.false(existsSync(dir), `${dir} removed`);
    t.false(existsSync(join(d.runtimeDir, 'containers', pod)), 'runtime dir (with its FIFOs) removed');
    for (const id of ids) t.false(existsSync(join(d.workDir, 'provisioner', id)), 'rootfs dir removed');
    // The rootfs mounts and the renamed-away dirs go in the background, once the calls pause.
    const ours = (names: string[]) => names.filter((n) => n.includes(pod) || ids.some((i) => n.includes(i)));
    const mounts = () => ours(readFileSync('/proc/self/mountinfo', 'utf8').split('\n'));
    const trash = () => ours(pendingDeletes(d));
    await waitFor('the removed rootfs mounts and dirs to be deleted', () => mounts().length === 0 && trash().length === 0, 5_000).catch(() => undefined);
    t.deepEqual(mounts(), []);
    t.deepEqual(trash(), []);
    t.deepEqual(readdirSync(join(d.workDir, 'meta', 'containers')), []);
    t.deepEqual(readdirSync(join(d.workDir, 'meta', 'sandboxes')), []);
    // Idempotent.
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
  });

  test.serial('a RunPodSandbox whose helper fails its setup leaves no shm mount, runtime dir, cgroup or record', async (t) => {
    const cfg = podConfig('pod-fails', { linux: { sysctls: { 'net.no.such.key': '1' }, security_context: { namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } } } });
    const err = (await t.throwsAsync(d.client.call('RunPodSandbox', { config: cfg }))) as unknown as { details: string };
    t.regex(err.details, /sysctl net\.no\.such\.key/);
    t.deepEqual(readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(d.runtimeDir)), []);
    t.deepEqual(readdirSync(join(d.runtimeDir, 'containers')), []);
    t.deepEqual(readdirSync(join(d.workDir, 'meta', 'sandboxes')), []);
    const podCgroups = readdirSync(d.cgroupDir('freezer')!, { withFileTypes: true }).filter((e) => e.isDirectory() && !POOL_CGROUP.test(e.name));
    t.deepEqual(podCgroups.map((e) => e.name), [], 'no pod cgroup (the pod pool\'s are the daemon\'s)');
    // The name is free again: the same config with a good sysctl runs.
    const ok = await d.client.call('RunPodSandbox', { config: { ...cfg, linux: { ...cfg.linux, sysctls: {} } } });
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: ok.pod_sandbox_id });
  });

  test.serial('a CreateContainer that fails while preparing, or a launch whose helper fails its setup, leaves nothing behind', async (t) => {
    const cfg = podConfig('failing', {}, join(d.logDir, 'failing'));
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: cfg });
    const snapshot = () => ({
      mounts: readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(join(d.workDir, 'provisioner'))).length,
      cgroups: readdirSync(d.cgroupDir('freezer', pod)!, { withFileTypes: true }).filter((e) => e.isDirectory()).length,
      rundirs: existsSync(join(d.runtimeDir, 'containers', pod, 'containers')) ? readdirSync(join(d.runtimeDir, 'containers', pod, 'containers')).length : 0,
      provisioned: existsSync(join(d.workDir, 'provisioner')) ? readdirSync(join(d.workDir, 'provisioner')).length : 0,
    });
    const before = snapshot();
    // A removed container's rootfs is unmounted and deleted just after the call answered.
    const settled = () => waitFor("the failed container's rootfs deleted", () => isDeepStrictEqual(snapshot(), before), 5000).catch(() => undefined);
    // PREPARING: the host side of a bind mount cannot be created.
    await t.throwsAsync(
      d.client.call('CreateContainer', {
        pod_sandbox_id: pod,
        config: containerConfig('prep', ['true'], { mounts: [{ container_path: '/data', host_path: '/proc/self/cannot/create' }] }),
        sandbox_config: cfg,
      }),
    );
    await settled();
    t.deepEqual(snapshot(), before);
    // ISOLATING, behind CreateContainer's answer: the launch helper's mount plan fails inside the
    // container's mount namespace. StartContainer says so, and the container is EXITED with
    // StartError and exit code 128, as containerd records a task that could not start.
    const badMount = { mounts: [{ container_path: '/proc/not-here', host_path: d.logDir }] };
    const { container_id: iso } = await d.client.call('CreateContainer', { pod_sandbox_id: pod, config: containerConfig('iso', ['true'], badMount), sandbox_config: cfg });
    const err = (await t.throwsAsync(d.client.call('StartContainer', { container_id: iso }))) as unknown as { details: string };
    t.regex(err.details, /launch helper failed/);
    const st = (await d.client.call('ContainerStatus', { container_id: iso })).status;
    t.like(st, { state: 'CONTAINER_EXITED', exit_code: 128, reason: 'StartError' });
    t.regex(st.message, /launch helper failed/);
    await d.client.call('RemoveContainer', { container_id: iso });
    await settled();
    t.deepEqual(snapshot(), before);
    // Without a StartContainer the failure is recorded all the same.
    const { container_id: iso2 } = await d.client.call('CreateContainer', { pod_sandbox_id: pod, config: containerConfig('iso2', ['true'], badMount), sandbox_config: cfg });
    const exited = await waitFor('the failed launch recorded', async () => {
      const s = (await d.client.call('ContainerStatus', { container_id: iso2 })).status;
      return s.state === 'CONTAINER_EXITED' ? s : undefined;
    });
    t.like(exited, { exit_code: 128, reason: 'StartError' });
    // A StartContainer after that says why, once: not the helper's error three times over.
    const late = (await t.throwsAsync(d.client.call('StartContainer', { container_id: iso2 }))) as unknown as { details: string };
    t.regex(late.details, /CONTAINER_EXITED, not CONTAINER_CREATED: its launch failed \(StartError\): launch helper failed: /);
    t.is(late.details.split('/proc/not-here').length - 1, 1, late.details);
    await d.client.call('RemoveContainer', { container_id: iso2 });
    await settled();
    t.deepEqual(snapshot(), before);
    // The pod is unharmed and the names can be used again.
    const { container_id } = await d.client.call('CreateContainer', { pod_sandbox_id: pod, config: containerConfig('iso', ['true']), sandbox_config: cfg });
    await d.client.call('StartContainer', { container_id });
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
  });
}
