// kill -9 of the daemon: running containers keep running and logging, and a
// container that exits while the daemon is down reports its real exit code
// and its whole log after the restart.
import test from 'ava';
import { readFileSync, statSync, existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { projectRoot } from '../../src/util/paths.js';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { podConfig, containerConfig, waitFor } from '../helpers/daemon.js';
import { useDaemon } from '../helpers/suite.js';

function gone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

const d = useDaemon('restart tests');
if (d) {

  test.serial('after kill -9 and a restart, running containers are RUNNING and exited ones show their exit code and full log', async (t) => {
    const logDir = join(d.logDir, 'restart');
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: podConfig('restart', {}, logDir) });
    const sandbox_config = podConfig('restart');
    // Writes a line every 100 ms forever.
    const { container_id: runner } = await d.client.call('CreateContainer', {
      pod_sandbox_id: pod,
      config: containerConfig('runner', ['sh', '-c', 'i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done']),
      sandbox_config,
    });
    // Exits with 42 after 1.5 s, i.e. while the daemon is down.
    const { container_id: quitter } = await d.client.call('CreateContainer', {
      pod_sandbox_id: pod,
      config: containerConfig('quitter', ['sh', '-c', 'for i in 1 2 3 4 5; do echo line $i; sleep 0.3; done; echo bye >&2; exit 42']),
      sandbox_config,
    });
    // Created but never started before the crash: must stay startable.
    const { container_id: later } = await d.client.call('CreateContainer', {
      pod_sandbox_id: pod,
      config: containerConfig('later', ['sh', '-c', 'echo started-after-restart; sleep 3600']),
      sandbox_config,
    });
    await d.client.call('StartContainer', { container_id: runner });
    await d.client.call('StartContainer', { container_id: quitter });
    const runnerStatus = (await d.client.call('ContainerStatus', { container_id: runner, verbose: true })).status;
    const runnerPid = JSON.parse((await d.client.call('ContainerStatus', { container_id: runner, verbose: true })).info.info).pid as number;
    t.true(runnerPid > 0);

    const quitterPid = JSON.parse((await d.client.call('ContainerStatus', { container_id: quitter, verbose: true })).info.info).pid as number;
    await d.kill9();
    // The quitter must exit while no daemon runs (a loaded machine may take longer than its 1.5 s).
    await waitFor('the quitter to exit while the daemon is down', () => gone(quitterPid), 20_000);
    await sleep(500);
    await d.launch();

    const pods = await d.client.call('ListPodSandbox', {});
    t.is(pods.items.find((p: { id: string }) => p.id === pod)?.state, 'SANDBOX_READY');
    const r = (await d.client.call('ContainerStatus', { container_id: runner, verbose: true }));
    t.is(r.status.state, 'CONTAINER_RUNNING');
    t.is(r.status.started_at, runnerStatus.started_at);
    t.is(JSON.parse(r.info.info).pid, runnerPid);
    const q = (await d.client.call('ContainerStatus', { container_id: quitter })).status;
    t.is(q.state, 'CONTAINER_EXITED');
    t.is(q.exit_code, 42);
    t.true(BigInt(q.finished_at) > BigInt(q.started_at));
    const qlog = readFileSync(q.log_path, 'utf8');
    for (const i of [1, 2, 3, 4, 5]) t.regex(qlog, new RegExp(`stdout F line ${i}\\n`));
    t.regex(qlog, /stderr F bye\n/);

    // The runner kept logging while the daemon was down: ticks are consecutive, none lost.
    const ticks = readFileSync(r.status.log_path, 'utf8')
      .trim()
      .split('\n')
      .map((l: string) => Number(/stdout F tick (\d+)$/.exec(l)?.[1]));
    t.true(ticks.length >= 25, `only ${ticks.length} ticks`);
    t.deepEqual(ticks, ticks.map((_v: number, i: number) => i));

    t.is((await d.client.call('ContainerStatus', { container_id: later })).status.state, 'CONTAINER_CREATED');
    await d.client.call('StartContainer', { container_id: later });
    const laterLog = (await d.client.call('ContainerStatus', { container_id: later })).status.log_path;
    await waitFor('output of the container started after the restart', () => readFileSync(laterLog, 'utf8').includes('started-after-restart'));

    // And the recovered runner can still be stopped by the new daemon.
    await d.client.call('StopContainer', { container_id: runner, timeout: 0 });
    const stopped = (await d.client.call('ContainerStatus', { container_id: runner })).status;
    t.is(stopped.state, 'CONTAINER_EXITED');
    t.is(stopped.exit_code, 137);
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
  });

  test.serial('SIGTERM stops serving but leaves containers running; the socket is 0660 and a live one refuses a second daemon', async (t) => {
    t.is(statSync(d.socket).mode & 0o777, 0o660);
    const second = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'daemon', '--socket', d.socket, '--work-dir', `${d.dir}/other-work`, '--runtime-dir', `${d.dir}/other-run`, '--cgroup-root', `${d.cgroupRoot}-2`, '--config', '/dev/null'], { cwd: projectRoot(), encoding: 'utf8', timeout: 30_000 });
    t.not(second.status, 0);
    t.regex(second.stderr, /another process is serving/);
    t.is((await d.client.call('Version')).runtime_name, 'cri-mesos');

    const cfg = podConfig('term');
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: cfg });
    const { container_id: ctr } = await d.client.call('CreateContainer', { pod_sandbox_id: pod, config: containerConfig('c', ['sleep', '3600']), sandbox_config: cfg });
    await d.client.call('StartContainer', { container_id: ctr });
    const pid = JSON.parse((await d.client.call('ContainerStatus', { container_id: ctr, verbose: true })).info.info).pid as number;
    await d.stop();
    t.false(existsSync(d.socket), 'socket removed on SIGTERM');
    t.true(existsSync(`/proc/${pid}`), 'container init survives the daemon');
    await d.launch();
    t.is((await d.client.call('ContainerStatus', { container_id: ctr })).status.state, 'CONTAINER_RUNNING');
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
    // No longer our child after the restart: PID 1 reaps it, so a zombie for a moment is fine.
    await waitFor('container init gone', () => gone(pid), 5000);
    t.true(gone(pid));
  });

  test.serial('a RunPodSandbox/CreateContainer retried while the first is in flight makes no second object', async (t) => {
    const cfg = podConfig('dup');
    const pods = await Promise.allSettled([1, 2, 3].map(() => d.client.call('RunPodSandbox', { config: cfg })));
    const ok = pods.filter((p) => p.status === 'fulfilled');
    t.is(ok.length, 1);
    for (const p of pods) if (p.status === 'rejected') t.regex(String((p.reason as Error).message), /reserved/);
    const pod = (ok[0] as PromiseFulfilledResult<{ pod_sandbox_id: string }>).value.pod_sandbox_id;
    const ctrs = await Promise.allSettled(
      [1, 2, 3].map(() => d.client.call('CreateContainer', { pod_sandbox_id: pod, config: containerConfig('same', ['sleep', '1']), sandbox_config: cfg })),
    );
    t.is(ctrs.filter((c) => c.status === 'fulfilled').length, 1);
    t.is((await d.client.call('ListPodSandbox', { filter: { label_selector: { app: 'dup' } } })).items.length, 1);
    t.is((await d.client.call('ListContainers', { filter: { pod_sandbox_id: pod } })).containers.length, 1);
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
  });
}
