// CreateContainer answers once the rootfs, process and record are made; the cgroups, the launch
// helper's fork and its setup go on behind the answer (src/cri/runtime/container-launch.ts). The
// daemon's test-only hook CRI_MESOS_TEST_HOLD_CREATE holds a launch right there (DIR/N.launch-hold),
// so each case acts in that window without timing guesses: StartContainer waits for the launch,
// RemoveContainer ends it, and a kill -9 in it loses nothing (recovery launches it again).
import test from 'ava';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cgroups } from '../../src/cgroups/index.js';
import { containerDir, provisionerDir, runtimeFile } from '../../src/paths.js';
import { pendingDeletes } from '../helpers/leaks.js';
import { containerConfig, podConfig, waitFor } from '../helpers/daemon.js';
import { useDaemon } from '../helpers/suite.js';

const holdDir = mkdtempSync(join(tmpdir(), 'cm-launch-hold-'));
test.after.always(() => rmSync(holdDir, { recursive: true, force: true }));

const d = useDaemon('background launch tests', { env: { CRI_MESOS_TEST_HOLD_CREATE: holdDir } });
if (d) {
  /** A pod with a log directory, removed when the test ends. */
  const runPod = async (t: { teardown(fn: () => unknown): void }, name: string) => {
    const sandbox = podConfig(name, {}, join(d.logDir, name));
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: sandbox });
    t.teardown(() => d.client.call('RemovePodSandbox', { pod_sandbox_id: pod }).catch(() => undefined));
    return { pod: pod as string, sandbox };
  };

  /** CreateContainer of `name`, answered while its launch is held before the fork. */
  const createHeld = async (t: { teardown(fn: () => unknown): void }, p: { pod: string; sandbox: object }, name: string, command: string[], extra: Record<string, unknown> = {}) => {
    const hold = join(holdDir, `${name}.launch-hold`);
    writeFileSync(hold, '');
    t.teardown(() => rmSync(hold, { force: true }));
    const config = containerConfig(name, command, extra);
    const { container_id: id } = await d.client.call('CreateContainer', { pod_sandbox_id: p.pod, config, sandbox_config: p.sandbox });
    await waitFor(`the launch of ${name} to be held`, () => existsSync(join(holdDir, `${name}.launch-held`)));
    const rundir = containerDir(d.runtimeDir, { value: id as string, parent: { value: p.pod } });
    return { id: id as string, hold, rundir };
  };

  const stateOf = async (id: string) => (await d.client.call('ContainerStatus', { container_id: id })).status;

  test.serial('CreateContainer answers before the helper is forked; StartContainer waits for the launch, then the command runs', async (t) => {
    const p = await runPod(t, 'bg-start');
    const c = await createHeld(t, p, 'waits', ['sh', '-c', 'echo ran; sleep 3600']);
    t.is((await stateOf(c.id)).state, 'CONTAINER_CREATED');
    t.true(existsSync(runtimeFile(c.rundir, 'config')), 'the checkpoint is written');
    t.false(existsSync(runtimeFile(c.rundir, 'pid')), 'no helper yet');
    t.false(existsSync(runtimeFile(c.rundir, 'held')));
    let settled = false;
    const starting = d.client.call('StartContainer', { container_id: c.id }).finally(() => (settled = true));
    await new Promise((r) => setTimeout(r, 300));
    t.false(settled, 'StartContainer waits while the launch is held');
    rmSync(c.hold);
    await starting;
    t.true(existsSync(runtimeFile(c.rundir, 'held')), 'the helper answered before the start byte');
    const st = await stateOf(c.id);
    t.is(st.state, 'CONTAINER_RUNNING');
    const log = join(d.logDir, 'bg-start', 'waits', '0.log');
    await waitFor('the command to log', () => existsSync(log) && readFileSync(log, 'utf8').includes('stdout F ran'));
  });

  test.serial('without a StartContainer the launch goes on at a quiet moment: the helper is held, and the start runs the command', async (t) => {
    const p = await runPod(t, 'bg-quiet');
    const config = containerConfig('quiet', ['sh', '-c', 'echo ran; sleep 3600']);
    const { container_id: id } = await d.client.call('CreateContainer', { pod_sandbox_id: p.pod, config, sandbox_config: p.sandbox });
    // No call from here on: the daemon is quiet, and the helper is held without a StartContainer.
    await d.waitLaunched(p.pod, id, 5000);
    t.true(existsSync(d.cgroupDir('freezer', p.pod, id)!), 'its cgroups are made');
    t.is((await stateOf(id)).state, 'CONTAINER_CREATED');
    await d.client.call('StartContainer', { container_id: id });
    const log = join(d.logDir, 'bg-quiet', 'quiet', '0.log');
    await waitFor('the command to log', () => existsSync(log) && readFileSync(log, 'utf8').includes('stdout F ran'));
  });

  test.serial('the cgroups are made behind the answer, with the limits of an UpdateContainerResources that came first', async (t) => {
    const MiB = 1024 * 1024;
    const p = await runPod(t, 'bg-cgroups');
    const c = await createHeld(t, p, 'limited', ['sleep', '3600'], { linux: { resources: { memory_limit_in_bytes: 64 * MiB } } });
    const dir = () => d.cgroupDir('memory', p.pod, c.id)!;
    t.false(existsSync(dir()), 'no cgroup while the launch is held');
    // No cgroup, no usage: attributes only, as containerd answers for a container without a task.
    const early = (await d.client.call('ContainerStats', { container_id: c.id })).stats;
    t.is(early.attributes.id, c.id);
    t.is(early.memory, null);
    await d.client.call('UpdateContainerResources', { container_id: c.id, linux: { memory_limit_in_bytes: 96 * MiB } });
    rmSync(c.hold);
    await d.client.call('StartContainer', { container_id: c.id });
    const limit = join(dir(), Cgroups.detect().v1('memory') !== undefined ? 'memory.limit_in_bytes' : 'memory.max');
    t.is(readFileSync(limit, 'utf8').trim(), String(96 * MiB));
    const late = (await d.client.call('ContainerStats', { container_id: c.id })).stats;
    t.truthy(late.memory?.working_set_bytes, 'usage once the cgroup exists');
    // An update after the launch writes the cgroup at once.
    await d.client.call('UpdateContainerResources', { container_id: c.id, linux: { memory_limit_in_bytes: 80 * MiB } });
    t.is(readFileSync(limit, 'utf8').trim(), String(80 * MiB));
  });

  test.serial('CreateContainer refuses by name the limits the kernel would refuse, before anything is made', async (t) => {
    const p = await runPod(t, 'bg-limits');
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ cpuset_cpus: '0-8191' }, /cpuset_cpus: "0-8191" names CPUs this host does not have online/],
      [{ cpuset_cpus: '1-0' }, /cpuset_cpus: "1-0" is not a list/],
      [{ cpu_quota: 500 }, /cpu_quota: 500 µs is below the kernel's minimum of 1000/],
      [{ cpu_period: 100 }, /cpu_period: 100 µs is outside/],
      [{ memory_limit_in_bytes: 64 << 20, memory_swap_limit_in_bytes: 32 << 20 }, /memory_swap_limit_in_bytes: 33554432 is below memory_limit_in_bytes/],
    ];
    for (const [resources, message] of bad) {
      const err = (await t.throwsAsync(
        d.client.call('CreateContainer', { pod_sandbox_id: p.pod, config: containerConfig('bad-limits', ['true'], { linux: { resources } }), sandbox_config: p.sandbox }),
      )) as unknown as { code: number; details: string };
      t.is(err.code, 3, err.details);
      t.regex(err.details, message);
    }
    t.deepEqual((await d.client.call('ListContainers', { filter: { pod_sandbox_id: p.pod } })).containers, []);
    t.deepEqual(readdirSync(d.cgroupDir('memory', p.pod)!, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name), []);
  });

  test.serial('RemoveContainer while the launch is held: the launch ends there and leaves nothing', async (t) => {
    const p = await runPod(t, 'bg-remove');
    const c = await createHeld(t, p, 'removed', ['sleep', '3600']);
    const removing = d.client.call('RemoveContainer', { container_id: c.id });
    rmSync(c.hold);
    await removing;
    t.deepEqual((await d.client.call('ListContainers', { filter: { pod_sandbox_id: p.pod } })).containers, []);
    t.false(existsSync(c.rundir), 'runtime dir removed');
    await waitFor('its rootfs deleted', () => !existsSync(join(provisionerDir(d.workDir), c.id)) && !pendingDeletes(d).some((n) => n.includes(c.id)), 5000);
    // The name is free again.
    const { container_id: again } = await d.client.call('CreateContainer', { pod_sandbox_id: p.pod, config: containerConfig('removed', ['true']), sandbox_config: p.sandbox });
    await d.client.call('StartContainer', { container_id: again });
    t.is((await d.waitExited(again)).exit_code, 0);
  });

  test.serial('StopContainer or RemoveContainer at once after each CreateContainer, 20 times: each answers, and no process, cgroup or dir is left', async (t) => {
    const p = await runPod(t, 'bg-churn');
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const config = containerConfig(`churn${i}`, ['sleep', '3600']);
      const { container_id: id } = await d.client.call('CreateContainer', { pod_sandbox_id: p.pod, config, sandbox_config: p.sandbox });
      ids.push(id);
      // The destroy meets the launch wherever it is: before the fork, in it, or at the helper's answer.
      if (i % 2) {
        await d.client.call('StopContainer', { container_id: id, timeout: 0 }, 10_000);
        t.is((await stateOf(id)).state, 'CONTAINER_EXITED');
      }
      await d.client.call('RemoveContainer', { container_id: id }, 10_000);
    }
    t.deepEqual((await d.client.call('ListContainers', { filter: { pod_sandbox_id: p.pod } })).containers, []);
    const podCgroup = d.cgroupDir('freezer', p.pod)!;
    const left = () => ({
      cgroups: readdirSync(podCgroup, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name),
      rundirs: ids.filter((id) => existsSync(containerDir(d.runtimeDir, { value: id, parent: { value: p.pod } }))),
      rootfs: ids.filter((id) => existsSync(join(provisionerDir(d.workDir), id))),
      pending: pendingDeletes(d).filter((n) => ids.some((id) => n.includes(id))),
    });
    const none = { cgroups: [], rundirs: [], rootfs: [], pending: [] };
    await waitFor('the removed containers\' dirs deleted', () => isDeepStrictEqual(left(), none), 5000).catch(() => undefined);
    t.deepEqual(left(), none);
  });

  test.serial('kill -9 after CreateContainer answered, before its helper was held: recovery launches it again, and it starts, runs and logs once', async (t) => {
    const p = await runPod(t, 'bg-crash');
    const MiB = 1024 * 1024;
    const c = await createHeld(t, p, 'relaunched', ['sh', '-c', 'echo ran; sleep 3600'], { linux: { resources: { memory_limit_in_bytes: 64 * MiB } } });
    // Updated while the launch is held: the launch made again must have the new limit.
    await d.client.call('UpdateContainerResources', { container_id: c.id, linux: { memory_limit_in_bytes: 96 * MiB } });
    const before = d.logs().length;
    await d.kill9();
    rmSync(c.hold);
    rmSync(join(holdDir, 'relaunched.launch-held'));
    await d.launch();
    t.is((await stateOf(c.id)).state, 'CONTAINER_CREATED', 'not lost, not exited');
    await d.client.call('StartContainer', { container_id: c.id });
    t.is((await stateOf(c.id)).state, 'CONTAINER_RUNNING');
    const log = join(d.logDir, 'bg-crash', 'relaunched', '0.log');
    await waitFor('the command to log', () => existsSync(log) && readFileSync(log, 'utf8').includes('stdout F ran'));
    t.is(readFileSync(log, 'utf8').match(/stdout F ran/g)?.length, 1);
    t.regex(d.logs().slice(before), /launching again a container whose launch the restart cut short/);
    const memory = d.cgroupDir('memory', p.pod, c.id)!;
    const limit = readFileSync(join(memory, existsSync(join(memory, 'memory.limit_in_bytes')) ? 'memory.limit_in_bytes' : 'memory.max'), 'utf8').trim();
    t.is(limit, String(96 * MiB));
    // A second restart finds it held and started: it runs on.
    const pid = JSON.parse((await d.client.call('ContainerStatus', { container_id: c.id, verbose: true })).info.info).pid as number;
    await d.kill9();
    await d.launch();
    t.is((await stateOf(c.id)).state, 'CONTAINER_RUNNING');
    t.true(existsSync(`/proc/${pid}`));
  });
}
