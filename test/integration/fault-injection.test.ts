// Kill -9 at every fault point (src/fault.ts), then do what a kubelet does: restart the
// runtime, retry the request that failed, go on. Every point must be reached, and each
// walk must end with the pod and container in the right states, the log line and the exit
// code kept, and, after RemovePodSandbox, nothing left: no process, cgroup, mount, FIFO,
// directory or record.
import test, { type ExecutionContext } from 'ava';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { FAULT_POINTS } from '../../src/fault.js';
import { containersDir, containerRecordsDir, provisionerDir, removedRuntimeDirs, sandboxRecordsDir } from '../../src/paths.js';
import { Cgroups } from '../../src/cgroups/index.js';
import { containerConfig, podConfig, waitFor, type TestDaemon } from '../helpers/daemon.js';
import { isDeepStrictEqual } from 'node:util';
import { useDaemon } from '../helpers/suite.js';
import { POOL_CGROUP, readyPooledPids } from '../helpers/leaks.js';

/**
 * Every point at its first hit, plus later hits of points the pod reaches first: record writes
 * 2 and 3 (the pod turning READY, the container's record), and the container's own checkpoint,
 * spawn and release.
 */
const WALK: string[] = [
  // The CNI points need a CNI network: test/integration/cni.test.ts walks them.
  ...FAULT_POINTS.filter((p) => !p.startsWith('cni-')),
  'record-write:before@2',
  'record-write:after@2',
  'record-write:before@3',
  'record-write:after@3',
  'checkpoint-write:after@2',
  'spawn:after@2',
  'release:after@2',
];

const d = useDaemon('fault-injection tests', { from: 'dist' });
if (d) {
  /** Calls `rpc`; if the daemon died on the way, restarts it (no fault) and retries once, as a kubelet does. */
  const call = async (rpc: string, req: object): Promise<{ value?: any; error?: { code: number; details: string }; crashed: boolean }> => {
    try {
      return { value: await d.client.call(rpc, req, 20_000), crashed: false };
    } catch (err) {
      const e = err as { code: number; details: string };
      // A dropped connection: the daemon died (its exit is seen a moment later).
      const dropped = e.code === status.UNAVAILABLE || e.code === status.CANCELLED || e.code === status.INTERNAL;
      if (!dropped) return { error: e, crashed: false };
      await waitFor(`the daemon to die (${rpc}: ${e.details})`, () => d.exited(), 5000);
    }
    d.setEnv(undefined);
    await d.launch();
    try {
      return { value: await d.client.call(rpc, req, 20_000), crashed: true };
    } catch (err) {
      return { error: err as { code: number; details: string }, crashed: true };
    }
  };

  /** RunPodSandbox with retries: a retried name that is taken means the first attempt's pod is there. */
  const runPod = async (name: string) => {
    const config = podConfig(name, {}, join(d.logDir, name));
    const r = await call('RunPodSandbox', { config });
    if (r.value) return { pod: r.value.pod_sandbox_id as string, config };
    if (r.error?.code !== status.ALREADY_EXISTS) throw new Error(`RunPodSandbox: ${r.error?.details}`);
    // As the kubelet: remove the half-made pod it finds by name and run it again.
    const old = (await d.client.call('ListPodSandbox', {})).items.find((p: { metadata: { name: string } }) => p.metadata.name === name);
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: old.id });
    return { pod: (await d.client.call('RunPodSandbox', { config })).pod_sandbox_id as string, config };
  };

  const createContainer = async (pod: string, sandbox: object, name: string) => {
    const config = containerConfig(name, ['sh', '-c', 'echo hello; trap "exit 3" TERM; while true; do sleep 0.1; done']);
    const req = { pod_sandbox_id: pod, config, sandbox_config: sandbox };
    const r = await call('CreateContainer', req);
    if (r.value) return r.value.container_id as string;
    if (r.error?.code !== status.ALREADY_EXISTS) throw new Error(`CreateContainer: ${r.error?.details}`);
    const old = (await d.client.call('ListContainers', {})).containers.find((c: { metadata: { name: string } }) => c.metadata.name === name);
    await d.client.call('RemoveContainer', { container_id: old.id });
    return (await d.client.call('CreateContainer', req)).container_id as string;
  };

  const leftovers = () => {
    const cg = Cgroups.detect();
    // Not the pod pool's cgroups: the running daemon's own (its pool test checks they go with it).
    const cgroups = cg
      .allMountPoints()
      .filter((mp) => existsSync(join(mp, d.cgroupRoot)) && readdirSync(join(mp, d.cgroupRoot), { withFileTypes: true }).some((e) => e.isDirectory() && !POOL_CGROUP.test(e.name)));
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .filter((l) => l.includes(d.workDir) || l.includes(d.runtimeDir));
    const list = (dir: string) => (existsSync(dir) ? readdirSync(dir) : []);
    return {
      cgroups,
      mounts,
      runtimeDirs: [...list(containersDir(d.runtimeDir)), ...list(removedRuntimeDirs(d.runtimeDir))],
      rootfs: list(provisionerDir(d.workDir)),
      records: [...list(sandboxRecordsDir(d.workDir)), ...list(containerRecordsDir(d.workDir))],
    };
  };

  const walk = async (t: ExecutionContext, point: string) => {
    const before = d.logs().length;
    d.setEnv({ CRI_MESOS_FAULT: point });
    await d.kill9();
    await d.launch();
    const name = `f-${point.replace(/[^a-z0-9]/g, '-')}`;
    // The pool's points: a pod of the same namespaces first, so that the walk's pod is given a
    // pooled pause helper (the pool is empty after the restart).
    const warm = point.startsWith('pool-') ? await runPod(`${name}-warm`) : undefined;
    if (warm) await waitFor(`${point}: the pod pool to fill`, () => readyPooledPids(d).length >= 1, 10_000);
    const { pod, config: sandbox } = await runPod(name);
    const ctr = await createContainer(pod, sandbox, 'c');
    const start = await call('StartContainer', { container_id: ctr });
    // A retried start of a container the crash left started is refused clearly; it runs either way.
    if (start.error) t.regex(start.error.details, /RUNNING|not CREATED/, `${point}: StartContainer: ${start.error.details}`);
    const logPath = join(d.logDir, name, 'c', '0.log');
    await waitFor(`${point}: the container's log line`, () => existsSync(logPath) && readFileSync(logPath, 'utf8').includes('stdout F hello'));
    t.is((await d.client.call('ContainerStatus', { container_id: ctr })).status.state, 'CONTAINER_RUNNING', point);
    const stop = await call('StopContainer', { container_id: ctr, timeout: 10 });
    t.falsy(stop.error, `${point}: StopContainer: ${stop.error?.details}`);
    const st = (await d.client.call('ContainerStatus', { container_id: ctr })).status;
    t.is(st.state, 'CONTAINER_EXITED', point);
    // SIGTERM's handler exits 3; a stop cut short by a crash before its signal is a SIGKILL (137).
    t.true([3, 137].includes(st.exit_code), `${point}: exit code ${st.exit_code}`);
    t.regex(readFileSync(logPath, 'utf8'), /stdout F hello\n/, point);
    for (const [rpc, req] of [
      ['RemoveContainer', { container_id: ctr }],
      ['StopPodSandbox', { pod_sandbox_id: pod }],
      ['RemovePodSandbox', { pod_sandbox_id: pod }],
      ...(warm ? ([['RemovePodSandbox', { pod_sandbox_id: warm.pod }]] as const) : []),
    ] as const) {
      const r = await call(rpc, req);
      t.falsy(r.error, `${point}: ${rpc}: ${r.error?.details}`);
    }
    const empty = { cgroups: [], mounts: [], runtimeDirs: [], rootfs: [], records: [] };
    // A removed container's rootfs is unmounted and deleted once the calls pause after RemoveContainer answered.
    await waitFor(`${point}: nothing left`, () => isDeepStrictEqual(leftovers(), empty), 5000).catch(() => undefined);
    t.deepEqual(leftovers(), empty, point);
    t.true(d.logs().slice(before).includes(`fault injection: SIGKILL at ${point.split('@')[0]}`), `${point} was never reached by the walk`);
  };

  for (const point of WALK) test.serial(`kill -9 at ${point}, restart, retry: right states, logs and exit codes kept, nothing left`, (t) => walk(t, point));
}
