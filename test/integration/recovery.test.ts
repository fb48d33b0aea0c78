// Recovery fails safe: what it cannot read it moves aside and leaves alone,
// and it reconciles the CRI records with the containerizer's own checkpoints
// by the rules documented in src/daemon.ts. Each case: set up, kill -9 the
// daemon, change what a crash or a bad disk would, restart, look.
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { containerDir, containerRecordsDir, quarantineDir, runtimeFile, sandboxRecordsDir } from '../../src/paths.js';
import { podConfig, containerConfig, waitFor } from '../helpers/daemon.js';
import { useDaemon } from '../helpers/suite.js';

const alive = (pid: number) => existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));

const d = useDaemon('recovery tests');
if (d) {
  const runPod = async (name: string) => {
    const sandbox = podConfig(name);
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: sandbox });
    return { pod: pod as string, sandbox };
  };
  const pidOf = async (id: string) => JSON.parse((await d.client.call('ContainerStatus', { container_id: id, verbose: true })).info.info).pid as number;
  const stateOf = async (id: string) => (await d.client.call('ContainerStatus', { container_id: id })).status;
  const restart = async (whileDown: () => void) => {
    await d.kill9();
    whileDown();
    await d.launch();
  };
  const cleanQuarantine = () => rmSync(quarantineDir(d.workDir), { recursive: true, force: true });

  test.serial('a cut-short pod record is quarantined: its running container is left alone, Status says so, other pods recover', async (t) => {
    const bad = await runPod('rec-bad');
    const good = await runPod('rec-good');
    const victim = await d.runContainer(bad.pod, bad.sandbox, 'victim', ['sh', '-c', 'echo data > /kept; sleep 3600']);
    const other = await d.runContainer(good.pod, good.sandbox, 'other', ['sleep', '3600']);
    await waitFor('the victim wrote its file', () => existsSync(join(d.workDir, 'provisioner', victim.id, 'upper', 'kept')));
    const record = join(sandboxRecordsDir(d.workDir), `${bad.pod}.json`);
    const original = readFileSync(record, 'utf8');
    await restart(() => writeFileSync(record, original.slice(0, 40)));

    // Left alone: its process runs, its writable layer and the pod's shm mount are there.
    t.true(alive(victim.pid), 'the container of the unreadable pod record still runs');
    t.is(readFileSync(join(d.workDir, 'provisioner', victim.id, 'upper', 'kept'), 'utf8'), 'data\n');
    t.true(readFileSync('/proc/self/mountinfo', 'utf8').includes(runtimeFile(containerDir(d.runtimeDir, { value: bad.pod }), 'shm')));
    // Moved aside, not deleted; reported.
    t.false(existsSync(record));
    t.true(readdirSync(quarantineDir(d.workDir)).some((f) => f.endsWith(`${bad.pod}.json`)));
    const cond = (await d.client.call('Status', {})).status.conditions.find((c: { type: string }) => c.type === 'CheckpointsReadable');
    t.is(cond?.status, false);
    t.regex(cond?.message ?? '', new RegExp(bad.pod));
    // The other pod is as it was.
    t.is((await stateOf(other.id)).state, 'CONTAINER_RUNNING');
    t.true(alive(other.pid));

    await d.client.call('RemovePodSandbox', { pod_sandbox_id: good.pod });
    // Its container's record went aside with it (a record without its pod). The operator puts
    // both back; the next restart recovers the pod whole.
    const q = quarantineDir(d.workDir);
    const ctrFile = readdirSync(q).find((f) => f.endsWith(`${victim.id}.json`));
    t.truthy(ctrFile, 'the container record is quarantined too');
    await restart(() => {
      renameSync(join(q, ctrFile!), join(containerRecordsDir(d.workDir), `${victim.id}.json`));
      writeFileSync(record, original);
      cleanQuarantine();
    });
    t.is((await stateOf(victim.id)).state, 'CONTAINER_RUNNING');
    t.true(alive(victim.pid));
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: bad.pod });
    t.false(alive(victim.pid));
    cleanQuarantine();
  });

  test.serial('an unreadable checkpoint dir stops the daemon from serving (UNAVAILABLE), and nothing is killed', async (t) => {
    const p = await runPod('rec-dir');
    const c = await d.runContainer(p.pod, p.sandbox, 'survivor', ['sleep', '3600']);
    const dir = containerRecordsDir(d.workDir);
    await restart(() => {
      renameSync(dir, `${dir}.real`);
      writeFileSync(dir, 'not a directory');
    });
    const err = await t.throwsAsync(d.client.call('ListContainers', {}));
    t.is((err as { code?: number }).code, 14, err?.message); // UNAVAILABLE
    t.regex(err!.message, /could not recover/);
    t.true(alive(c.pid), 'the container runs on');
    await restart(() => {
      rmSync(dir);
      renameSync(`${dir}.real`, dir);
    });
    t.is((await stateOf(c.id)).state, 'CONTAINER_RUNNING');
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: p.pod });
  });

  test.serial('an unreadable runtime checkpoint: quarantined, the container left alone and UNKNOWN', async (t) => {
    const p = await runPod('rec-runtime');
    const c = await d.runContainer(p.pod, p.sandbox, 'kept', ['sleep', '3600']);
    const config = runtimeFile(containerDir(d.runtimeDir, { value: c.id, parent: { value: p.pod } }), 'config');
    await restart(() => writeFileSync(config, '{"version":1,'));
    t.true(alive(c.pid));
    t.is((await stateOf(c.id)).state, 'CONTAINER_UNKNOWN');
    t.true(existsSync(join(d.workDir, 'provisioner', c.id, 'rootfs')), 'its rootfs dir is kept');
    t.true(readdirSync(quarantineDir(d.workDir)).some((f) => f.includes(c.id)));
    // Removing the pod by hand: the operator's call, after which the container is gone too.
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: p.pod });
    await waitFor('the pod gone', () => !alive(c.pid));
    t.false(alive(c.pid));
    t.false(existsSync(join(d.workDir, 'provisioner', c.id)), 'and its rootfs');
    cleanQuarantine();
  });

  test.serial('a container only the containerizer knows (a create that never answered) is destroyed and removed', async (t) => {
    const p = await runPod('rec-orphan');
    const c = await d.runContainer(p.pod, p.sandbox, 'unrecorded', ['sleep', '3600']);
    const rundir = containerDir(d.runtimeDir, { value: c.id, parent: { value: p.pod } });
    await restart(() => rmSync(join(containerRecordsDir(d.workDir), `${c.id}.json`)));
    await waitFor('its process killed', () => !alive(c.pid));
    t.false(existsSync(rundir), 'runtime dir removed');
    t.false(existsSync(join(d.workDir, 'provisioner', c.id)), 'rootfs removed');
    t.deepEqual((await d.client.call('ListContainers', {})).containers, []);
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: p.pod });
  });

  test.serial('a pod whose cgroup_parent lies under the daemon\'s cgroup root is kept at recovery; a cgroup named like a container nobody knows is killed', async (t) => {
    const sandbox = podConfig('rec-nested', { linux: { cgroup_parent: `/${d.cgroupRoot}/kubepods/podnested` } });
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: sandbox });
    const c = await d.runContainer(pod, sandbox, 'kept', ['sleep', '3600']);
    // And an orphan: a container-id-named cgroup with a process in it, which no checkpoint knows.
    const orphanId = 'e'.repeat(64);
    const orphanDir = d.cgroupDir('freezer', orphanId)!;
    mkdirSync(orphanDir, { recursive: true });
    const sleeper = spawn('sleep', ['3600'], { stdio: 'ignore', detached: true });
    writeFileSync(join(orphanDir, 'cgroup.procs'), String(sleeper.pid));
    await restart(() => undefined);
    t.true(alive(c.pid), 'the nested pod\'s container lives on');
    t.is((await stateOf(c.id)).state, 'CONTAINER_RUNNING');
    await waitFor('the orphan killed', () => !alive(sleeper.pid!));
    t.false(existsSync(orphanDir));
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
  });

  test.serial('a container whose runtime state is gone (as after a reboot) is EXITED, code 255, reason Unknown', async (t) => {
    const p = await runPod('rec-lost');
    const c = await d.runContainer(p.pod, p.sandbox, 'lost', ['sleep', '3600']);
    const rundir = containerDir(d.runtimeDir, { value: c.id, parent: { value: p.pod } });
    const helper = Number(readFileSync(runtimeFile(rundir, 'pid'), 'utf8'));
    await restart(() => {
      process.kill(helper, 'SIGKILL');
      rmSync(rundir, { recursive: true, force: true });
    });
    const st = await stateOf(c.id);
    t.is(st.state, 'CONTAINER_EXITED');
    t.is(st.exit_code, 255);
    t.is(st.reason, 'Unknown');
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: p.pod });
  });

  test.serial('a StartContainer cut short between its marker and its byte is finished by recovery', async (t) => {
    const p = await runPod('rec-start');
    const logDir = join(d.logDir, 'rec-start');
    mkdirSync(logDir, { recursive: true });
    const { container_id: id } = await d.client.call('CreateContainer', {
      pod_sandbox_id: p.pod,
      config: containerConfig('half-started', ['sh', '-c', 'echo ran; sleep 3600']),
      sandbox_config: p.sandbox,
    });
    const rundir = containerDir(d.runtimeDir, { value: id, parent: { value: p.pod } });
    // Its helper waits on the exec FIFO (the launch goes on behind CreateContainer's answer).
    await waitFor('the launch to be held', () => existsSync(runtimeFile(rundir, 'held')));
    // The marker is written, the byte never was: the crash came in between.
    await restart(() => writeFileSync(runtimeFile(rundir, 'started'), ''));
    const st = await stateOf(id);
    t.is(st.state, 'CONTAINER_RUNNING');
    await waitFor('the command ran', async () => {
      const pid = await pidOf(id);
      return pid > 0 && readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('sleep');
    });
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: p.pod });
  });
}
