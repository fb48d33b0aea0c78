// kill -9 of the daemon: running containers keep running and logging, and a
// container that exits while the daemon is down reports its real exit code
// and its whole log after the restart.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { TestDaemon, isRoot, podConfig, containerConfig, waitFor } from '../helpers/daemon.js';

if (!isRoot()) {
  test('restart tests need root', (t) => {
    t.log('SKIPPED: not root');
    t.pass();
  });
} else {
  let d: TestDaemon;
  test.before(async () => {
    d = await TestDaemon.start();
  });
  test.afterEach.always((t) => {
    if (!t.passed) t.log(d?.logs().split('\n').slice(-40).join('\n'));
  });
  test.after.always(async () => {
    await d?.teardown();
  });

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

    await d.kill9();
    await sleep(2500);
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
}
