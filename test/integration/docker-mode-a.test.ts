// Docker executor mode A (--docker-mesos-image): each docker-executor runs in a docker container of
// an image built here from the host's node and the built bundle (hack/build-executor-image.ts),
// against a dockerd of this file's own. What a CRI client sees, and what the Engine has.
import test from 'ava';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { CriClient, TestDaemon, criLogLines, containerConfig, isRoot, podConfig, waitFor } from '../helpers/daemon.js';
import { DOCKER_BUSYBOX, TestDockerd } from '../helpers/dockerd.js';
import { buildExecutorImage } from '../../hack/build-executor-image.js';
import { BUNDLE_FILE, projectRoot } from '../../src/util/paths.js';
import { socketPath } from '../../src/docker/engine.js';


const criLines = criLogLines;

function dockerPod(name: string, logDir: string) {
  return podConfig(name, { linux: { security_context: { namespace_options: { network: 'NODE', pid: 'POD', ipc: 'POD' } } } }, logDir);
}

const usable = isRoot() && TestDockerd.available() && existsSync(join(projectRoot(), BUNDLE_FILE));
if (!usable) test.skip('mode-A tests need root, dockerd (hack/deps.sh --test) and the built bundle (npm run build)', () => {});

let dockerd: TestDockerd | undefined;
let d: TestDaemon;
let image: string;

interface Summary {
  Id: string;
  State: string;
  Labels: Record<string, string>;
  Mounts: { Source: string; Destination: string }[];
}

/** The executor containers the Engine has (docker ps -a, by our label). */
async function executors(): Promise<Summary[]> {
  const filters = JSON.stringify({ label: ['io.cri-mesos.kind=executor'] });
  return (await dockerd!.engine.call<Summary[]>('GET', `/containers/json?all=1&filters=${encodeURIComponent(filters)}`)).body;
}

if (usable) {
  d = new TestDaemon({ prefix: 'cm-docker-a' });
  test.serial.before(async () => {
    dockerd = await TestDockerd.start('cm-dockerd-a');
    image = await buildExecutorImage(dockerd.host);
    await d.init({ flags: ['--containerizers', 'mesos,docker', '--docker-host', dockerd.host, '--docker-mesos-image', image] });
  });
  test.afterEach.always((t) => {
    if (!t.passed) t.log(d.logs().split('\n').slice(-40).join('\n'));
  });
  test.after.always(async () => {
    // A test that failed while the daemon was down: up again, so teardown removes the pods over the CRI.
    if (d.exited()) await d.launch().catch(() => undefined);
    await d.teardown();
    await dockerd?.stopAndCheck();
  });

  const run = async (pod: string, sandbox: object, name: string, command: string[]) => {
    const { container_id: id } = await d.client.call('CreateContainer', {
      pod_sandbox_id: pod,
      config: containerConfig(name, command, { image: { image: DOCKER_BUSYBOX } }),
      sandbox_config: sandbox,
    });
    await d.client.call('StartContainer', { container_id: id });
    return id as string;
  };

  test.serial('mode A: the executor runs in a container of the image, logs in the CRI format, records the exit code, and goes with RemoveContainer', async (t) => {
    const logDir = join(d.logDir, 'mode-a');
    const cfg = dockerPod('mode-a', logDir);
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: cfg, runtime_handler: 'docker' });
    const script = 'echo to-stdout; echo to-stderr >&2; head -c 20000 /dev/zero | tr "\\0" x; echo; while [ ! -e /go ]; do sleep 0.05; done; printf unfinished; exit 3';
    const id = await run(pod, cfg, 'printer', ['sh', '-c', script]);
    const runtimeDir = join(d.runtimeDir, 'docker', 'containers', pod, 'containers', id);
    // While it runs: one executor container of the image, labelled with the container it
    // supervises, with the Engine's socket, the runtime dir and the log dir at the same paths.
    const ex = await executors();
    t.is(ex.length, 1);
    const mine = ex[0]!;
    t.is(mine.State, 'running');
    const info = await dockerd!.engine.inspectContainer(mine.Id);
    t.is(info!.Config.Image, image);
    const target = await dockerd!.engine.list([`io.cri-mesos.id=${pod}.${id}`, 'io.cri-mesos.kind=container']);
    t.is(mine.Labels['io.cri-mesos.executor-for'], target[0]!.Id);
    const mounts = Object.fromEntries(mine.Mounts.map((m) => [m.Destination, m.Source]));
    const logPath = (await d.client.call('ContainerStatus', { container_id: id })).status.log_path as string;
    t.true(logPath.startsWith(logDir + '/'));
    for (const p of [socketPath(dockerd!.host), runtimeDir, dirname(logPath)]) t.is(mounts[p], p, p);
    // No forked executor: the pid in executor.pid is the container's own, not a host process of ours.
    const pid = Number(readFileSync(join(runtimeDir, 'executor.pid'), 'utf8'));
    t.false(existsSync(`/proc/${pid}/cmdline`) && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('docker-executor'));
    // ReopenContainerLog reaches it through the control FIFO in the mounted runtime dir.
    await d.client.call('ReopenContainerLog', { container_id: id });
    await d.client.call('ExecSync', { container_id: id, cmd: ['/bin/busybox', 'touch', '/go'], timeout: 10 });
    const st = await d.waitExited(id);
    t.is(st.exit_code, 3);
    t.is(st.reason, 'Error');
    const lines = criLines(st.log_path);
    t.deepEqual(
      lines.filter((l) => l.stream === 'stdout').map((l) => [l.tag, l.text.length]),
      [['F', 'to-stdout'.length], ['P', 16384], ['F', 20000 - 16384], ['P', 'unfinished'.length]],
    );
    t.deepEqual(lines.filter((l) => l.stream === 'stderr').map((l) => l.text), ['to-stderr']);
    t.true(existsSync(join(runtimeDir, 'exit.json')));
    await d.client.call('RemoveContainer', { container_id: id });
    t.deepEqual(await executors(), []);
    t.false((await dockerd!.containers()).some((n) => n.includes(id)));
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
  });

  test.serial('mode A: executors outlive kill -9 of the daemon; a dead one is replaced at recovery; an exit while the daemon is down is recorded', async (t) => {
    const cfg = dockerPod('mode-a-recover', join(d.logDir, 'mode-a-recover'));
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: cfg, runtime_handler: 'docker' });
    const ticker = await run(pod, cfg, 'ticker', ['sh', '-c', 'trap "exit 9" TERM; i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.1; done']);
    const leaver = await run(pod, cfg, 'leaver', ['sh', '-c', 'echo before; while [ ! -e /go ]; do sleep 0.05; done; echo after; exit 7']);
    const tpath = (await d.client.call('ContainerStatus', { container_id: ticker })).status.log_path;
    const lpath = (await d.client.call('ContainerStatus', { container_id: leaver })).status.log_path;
    await waitFor('ticks', () => existsSync(tpath) && readFileSync(tpath, 'utf8').includes('tick 2'));
    await waitFor('before', () => existsSync(lpath) && readFileSync(lpath, 'utf8').includes('before'));
    const byFor = async () => {
      const ctrs = await dockerd!.engine.list(['io.cri-mesos.kind=container']);
      const ofId = (ctr: string) => ctrs.find((c) => c.Labels['io.cri-mesos.id']?.endsWith(ctr))!.Id;
      const ex = await executors();
      return { ticker: ex.find((x) => x.Labels['io.cri-mesos.executor-for'] === ofId(ticker)), leaver: ex.find((x) => x.Labels['io.cri-mesos.executor-for'] === ofId(leaver)) };
    };
    const before = await byFor();
    t.truthy(before.ticker && before.leaver);
    await d.kill9();
    // The ticker's executor dies while the daemon is down; the leaver's keeps running and sees its exit.
    await dockerd!.engine.kill(before.ticker!.Id, 9);
    await dockerd!.engine.wait(before.ticker!.Id);
    const ticks = criLines(tpath).length;
    await dockerd!.engine.call('POST', `/containers/${(await dockerd!.engine.list([`io.cri-mesos.id=${pod}.${leaver}`, 'io.cri-mesos.kind=container']))[0]!.Id}/exec`, {
      body: { Cmd: ['/bin/busybox', 'touch', '/go'] },
    }).then(async (r) => dockerd!.engine.call('POST', `/exec/${(r.body as { Id: string }).Id}/start`, { body: { Detach: true, Tty: false } }));
    await waitFor('the leaver and then its executor to exit', async () => (await dockerd!.engine.inspectContainer(before.leaver!.Id))?.State.Running === false);
    await d.launch();
    const st = await d.waitExited(leaver);
    t.is(st.exit_code, 7);
    t.deepEqual(criLines(st.log_path).map((l) => l.text), ['before', 'after']);
    // A new executor container for the ticker: the log goes on.
    const after = await byFor();
    t.truthy(after.ticker);
    t.not(after.ticker!.Id, before.ticker!.Id);
    t.is(after.ticker!.State, 'running');
    await waitFor('new ticks', () => criLines(tpath).length > ticks + 3);
    await d.client.call('StopContainer', { container_id: ticker, timeout: 5 });
    t.is((await d.client.call('ContainerStatus', { container_id: ticker })).status.exit_code, 9);
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
    t.deepEqual(await executors(), []);
  });

  test.serial('mode A all the way: the daemon itself in a container of the image serves docker pods, and its executors run in containers of it', async (t) => {
    // Everything the daemon keeps (work dir, runtime dir, socket, pod logs) under one dir, bound
    // at the same path: the Engine's bind mounts for the executor and the pods name host paths.
    const root = mkdtempSync(join(tmpdir(), 'cm-daemon-in-ctr-'));
    const sock = join(root, 'cri.sock');
    const sockDir = dirname(socketPath(dockerd!.host));
    let daemonCtr: string | undefined;
    const client = new CriClient(sock);
    try {
      daemonCtr = await dockerd!.engine.create(`cm-daemon-in-ctr-${process.pid}`, {
        Image: image,
        Entrypoint: [process.execPath, join(projectRoot(), BUNDLE_FILE)],
        Cmd: ['daemon', '--containerizers', 'docker', '--launcher', 'posix', '--docker-host', dockerd!.host, '--docker-mesos-image', image,
          '--socket', sock, '--work-dir', join(root, 'work'), '--runtime-dir', join(root, 'run'), '--cgroup-root', `cm-in-ctr-${process.pid}`],
        HostConfig: { Binds: [`${root}:${root}`, `${sockDir}:${sockDir}`], NetworkMode: 'host' },
      });
      await dockerd!.engine.start(daemonCtr);
      await waitFor('the daemon in its container to serve', async () => (await client.call('Version', {}, 2000).catch(() => undefined)) !== undefined, 30_000);
      // It is not a process of ours: its pid is the container's.
      const info = await dockerd!.engine.inspectContainer(daemonCtr);
      t.true(info!.State.Running);
      const logDir = join(root, 'logs');
      const cfg = dockerPod('in-ctr', logDir);
      const { pod_sandbox_id: pod } = await client.call('RunPodSandbox', { config: cfg, runtime_handler: 'docker' });
      const { container_id: id } = await client.call('CreateContainer', {
        pod_sandbox_id: pod,
        config: containerConfig('hello', ['sh', '-c', 'echo from-a-daemon-in-a-container; exit 4'], { image: { image: DOCKER_BUSYBOX } }),
        sandbox_config: cfg,
      });
      await client.call('StartContainer', { container_id: id });
      t.is((await executors()).filter((x) => x.Labels['io.cri-mesos.executor-for']).length >= 1, true);
      const st = await waitFor('the exit', async () => {
        const s = (await client.call('ContainerStatus', { container_id: id })).status;
        return s.state === 'CONTAINER_EXITED' ? s : undefined;
      });
      t.is(st.exit_code, 4);
      t.deepEqual(criLines(st.log_path).map((l) => l.text), ['from-a-daemon-in-a-container']);
      t.true(st.log_path.startsWith(logDir + '/'));
      await client.call('RemovePodSandbox', { pod_sandbox_id: pod });
      t.deepEqual(await executors(), []);
      t.deepEqual((await dockerd!.engine.list(['io.cri-mesos.kind=container'])).length, 0);
    } catch (err) {
      if (daemonCtr) t.log(String((await dockerd!.engine.call('GET', `/containers/${daemonCtr}/logs?stdout=1&stderr=1&tail=40`).catch(() => ({ body: '' }))).body));
      throw err;
    } finally {
      client.close();
      if (daemonCtr) {
        if (!t.passed) t.log((await dockerd!.engine.call('GET', `/containers/${daemonCtr}/logs?stdout=1&stderr=1&tail=40`).catch(() => ({ body: '' }))).body);
        await dockerd!.engine.kill(daemonCtr, 15).catch(() => undefined);
        await dockerd!.engine.wait(daemonCtr).catch(() => undefined);
        await dockerd!.engine.remove(daemonCtr).catch(() => undefined);
      }
      // What the daemon left (pods it could not remove) is removed with the Engine's containers by stopAndCheck.
      rmSync(root, { recursive: true, force: true });
    }
  });
}
