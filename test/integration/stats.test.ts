// Stats the kubelet can use without cAdvisor (ContainerStats, PodSandboxStats, their List forms,
// ListMetricDescriptors, ListPodSandboxMetrics), against a daemon with CNI pod networking in a
// network namespace of its own (TestDaemon `cni`). What is checked is what the workload did: a busy
// loop's CPU rate, memory a container holds, bytes written to its rootfs, processes it started,
// bytes sent between two pods.
import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { Cgroups } from '../../src/cgroups/index.js';
import { provisionerDir } from '../../src/paths.js';
import { BUSYBOX, podConfig, waitFor } from '../helpers/daemon.js';
import { useDaemon } from '../helpers/suite.js';

/** The sampler's window (stats_collect_period's default). */
const WINDOW_MS = 1000;
const n = (v: { value: string } | null | undefined) => (v ? Number(v.value) : undefined);

const d = useDaemon('stats tests', { cni: true });
if (d) {
  const runPod = async (name: string, extra: Record<string, unknown> = {}) => {
    const config = podConfig(name, extra);
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config });
    return { pod: pod as string, config };
  };
  const removePod = (pod: string) => d.client.call('RemovePodSandbox', { pod_sandbox_id: pod }, 30_000).catch(() => undefined);
  const ctrStats = async (id: string) => (await d.client.call('ContainerStats', { container_id: id })).stats;
  const podStats = async (pod: string) => (await d.client.call('PodSandboxStats', { pod_sandbox_id: pod })).stats;
  const exec = async (ctr: string, cmd: string[], timeout = 20) => {
    const r = await d.client.call('ExecSync', { container_id: ctr, cmd, timeout }, (timeout + 10) * 1000);
    return { code: r.exit_code as number, out: Buffer.from(r.stdout).toString(), err: Buffer.from(r.stderr).toString() };
  };
  /** Wait until the sampler has a sample taken after `since` (ms since the epoch). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const sampledAfter = (what: string, since: number, get: () => Promise<any>): Promise<any> =>
    waitFor(what, async () => {
      const s = await get();
      return s && Number(BigInt(s.timestamp) / 1_000_000n) > since ? s : undefined;
    });
  const cgroupV1 = Cgroups.detect().v1('cpu') !== undefined;

  test.serial('usage_nano_cores: a busy loop uses about one core, sleep about none (after two sampler windows)', async (t) => {
    const { pod, config } = await runPod('cpu');
    t.teardown(() => removePod(pod));
    const busy = await d.runContainer(pod, config, 'busy', ['sh', '-c', 'while :; do :; done']);
    const idle = await d.runContainer(pod, config, 'idle', ['sleep', '1000']);
    const started = Date.now();
    // Two whole windows after both run: the rate is over a window in which the loop ran throughout.
    await sleep(2 * WINDOW_MS + 200);
    const s = await sampledAfter('a sample after two windows', started + 2 * WINDOW_MS, async () => (await ctrStats(busy.id)).cpu);
    t.truthy(n(s.usage_nano_cores), 'usage_nano_cores is set');
    // One core, on a 2-vCPU VM shared with other work: 0.5–1.3 of it. Other jobs on the VM can
    // take the loop's CPU for a while: a later window may show it (each rate is one window's).
    const seen: number[] = [];
    const busyCores = await waitFor(
      'a window in which the loop had about one core',
      async () => {
        const v = n((await ctrStats(busy.id)).cpu.usage_nano_cores)!;
        if (seen[seen.length - 1] !== v) seen.push(v);
        return v > 0.5e9 && v < 1.3e9 ? v : undefined;
      },
      15_000,
    ).catch(() => undefined);
    t.truthy(busyCores, `busy loop, one rate per window: ${seen.join(', ')} nano cores`);
    const idleCores = n((await ctrStats(idle.id)).cpu.usage_nano_cores);
    t.true(idleCores !== undefined && idleCores < 0.05e9, `sleep: ${idleCores} nano cores`);
    t.true(n(s.usage_core_nano_seconds)! > 1e9, 'cumulative CPU time of a loop that ran two seconds');
    // The pod's cgroup holds both: its rate is the loop's.
    const ps = (await podStats(pod)).linux;
    const podCores = n(ps.cpu.usage_nano_cores)!;
    t.true(podCores > 0.5e9 && podCores < 1.4e9, `pod: ${podCores} nano cores`);
    // ListContainerStats answers from the same samples.
    const list = (await d.client.call('ListContainerStats', { filter: { pod_sandbox_id: pod } })).stats;
    t.deepEqual(list.map((x: { attributes: { id: string } }) => x.attributes.id).sort(), [busy.id, idle.id].sort());
    const listed = list.find((x: { attributes: { id: string } }) => x.attributes.id === busy.id);
    t.true(n(listed.cpu.usage_nano_cores)! > 0.5e9);
    // PSI: per cgroup only on cgroup2; on v1 it is absent, never made up from the system-wide file.
    if (cgroupV1) {
      t.is(s.psi, null);
      t.is(listed.io, null);
    } else {
      t.truthy(s.psi?.Some, 'cgroup2: cpu pressure');
      t.truthy(listed.io?.psi?.Some, 'cgroup2: io pressure');
    }
  });

  test.serial('memory: working set grows by what a container holds in tmpfs; rss by what it holds in its heap', async (t) => {
    const { pod, config } = await runPod('mem');
    t.teardown(() => removePod(pod));
    const c = await d.runContainer(pod, config, 'holder', ['sleep', '1000'], { linux: { resources: { memory_limit_in_bytes: 256 << 20 } } });
    const before = await sampledAfter('a first sample', Date.now(), async () => (await ctrStats(c.id)).memory);
    const ws0 = n(before.working_set_bytes)!;
    t.is(n(before.available_bytes), (256 << 20) - ws0);
    // 50 MB in the pod's /dev/shm (tmpfs: charged to the writer's memory cgroup, never inactive_file).
    const r = await exec(c.id, ['sh', '-c', 'dd if=/dev/zero of=/dev/shm/fill bs=1048576 count=50 2>&1']);
    t.is(r.code, 0, r.out);
    const since = Date.now();
    const after = await sampledAfter('a sample after the write', since, async () => (await ctrStats(c.id)).memory);
    const ws1 = n(after.working_set_bytes)!;
    t.true(ws1 - ws0 >= 45 << 20, `working set ${ws0} → ${ws1}`);
    t.true(n(after.usage_bytes)! >= ws1);
    t.true(n(after.page_faults)! > n(before.page_faults)!);
    t.is(n(after.available_bytes), (256 << 20) - ws1);
    // A new limit shows at the next sample (limits are kept between reads, but not past a write).
    await d.client.call('UpdateContainerResources', { container_id: c.id, linux: { memory_limit_in_bytes: 512 << 20 } });
    const since2 = Date.now();
    const updated = await sampledAfter('a sample after the update', since2, async () => (await ctrStats(c.id)).memory);
    t.is(n(updated.available_bytes), (512 << 20) - n(updated.working_set_bytes)!);
    // A shell holding 50 MB in a variable: anonymous memory, so rss.
    // (A loop keeps the shell: busybox sh would exec a last plain command and drop the variable.)
    const heap = await d.runContainer(pod, config, 'heap', ['sh', '-c', 'x=$(head -c 52428800 /dev/zero | tr "\\0" a); while :; do sleep 1000; done']);
    const rss = await waitFor(
      'the heap to be held',
      async () => {
        const m = (await ctrStats(heap.id)).memory;
        return n(m?.rss_bytes)! >= 50 << 20 ? n(m.rss_bytes) : undefined;
      },
      30_000,
    );
    t.true(rss! >= 50 << 20);
    t.true(n((await ctrStats(c.id)).memory.rss_bytes)! < 20 << 20, 'the tmpfs pages are not rss');
  });

  test.serial('the sampler reads the CPU counters alone in a window without a full turn (Status verbose: its last pass)', async (t) => {
    const { pod, config } = await runPod('passes');
    t.teardown(() => removePod(pod));
    await d.runContainer(pod, config, 'idle', ['sleep', '1000']);
    type Pass = { objects: number; full: number; fileReads: number };
    const lastPass = async (): Promise<Pass> => JSON.parse((await d.client.call('Status', { verbose: true })).info.stats);
    // Objects take turns for their full sample (one in five windows each): some windows have none.
    let cpuOnly: Pass | undefined;
    let full: Pass | undefined;
    await waitFor(
      'a pass with no full sample, and one with',
      async () => {
        const p = await lastPass();
        if (p.objects >= 2 && p.full === 0) cpuOnly = p;
        if (p.objects >= 2 && p.full > 0) full = p;
        return cpuOnly && full ? true : (await sleep(WINDOW_MS / 4), undefined);
      },
      20_000,
    );
    // One counter file per object (cgroup2: cpu.stat and two pressure files); the slow files
    // (cpuacct.stat, cpu.stat of v1) at most once in 30 s. A full sample reads a dozen.
    t.true(cpuOnly!.fileReads <= 3 * cpuOnly!.objects, JSON.stringify(cpuOnly));
    t.true(full!.fileReads > cpuOnly!.fileReads, `a pass with full samples reads more: ${JSON.stringify(full)} against ${JSON.stringify(cpuOnly)}`);
  });

  test.serial('writable layer: bytes and inodes grow after a file is written in the rootfs', async (t) => {
    const { pod, config } = await runPod('layer');
    t.teardown(() => removePod(pod));
    const c = await d.runContainer(pod, config, 'writer', ['sleep', '1000']);
    const before = await waitFor('a first walk of the writable layer', async () => (await ctrStats(c.id)).writable_layer);
    t.is(before.fs_id.mountpoint, provisionerDir(d.workDir));
    const r = await exec(c.id, ['sh', '-c', 'mkdir /data && dd if=/dev/urandom of=/data/blob bs=1048576 count=8 2>&1 && sync']);
    t.is(r.code, 0, r.out);
    const after = await waitFor(
      'the walk to see the file',
      async () => {
        const w = (await ctrStats(c.id)).writable_layer;
        return n(w.used_bytes)! >= n(before.used_bytes)! + (8 << 20) ? w : undefined;
      },
      20_000,
    );
    t.true(n(after.inodes_used)! >= n(before.inodes_used)! + 2, `inodes ${before.inodes_used.value} → ${after.inodes_used.value}`); // /data and blob
    t.true(BigInt(after.timestamp) > BigInt(before.timestamp));
  });

  test.serial('process count: the processes a container started (no launch helper, no pause), summed for the pod', async (t) => {
    const { pod, config } = await runPod('procs');
    t.teardown(() => removePod(pod));
    // sh and three sleeps.
    const a = await d.runContainer(pod, config, 'four', ['sh', '-c', 'sleep 1000 & sleep 1000 & sleep 1000 & wait']);
    const b = await d.runContainer(pod, config, 'one', ['sleep', '1000']);
    const count = await waitFor('both containers counted', async () => {
      const p = (await podStats(pod)).linux.process;
      return n(p?.process_count) === 5 ? p : undefined;
    });
    t.is(n(count.process_count), 5);
    // Per container, from the pod metrics.
    const m = (await d.client.call('ListPodSandboxMetrics', {})).pod_metrics.find((x: { pod_sandbox_id: string }) => x.pod_sandbox_id === pod);
    const procs = (id: string) =>
      n(m.container_metrics.find((c: { container_id: string }) => c.container_id === id).metrics.find((x: { name: string }) => x.name === 'container_processes').value);
    t.is(procs(a.id), 4);
    t.is(procs(b.id), 1);
    // An exec's process counts as the container's (it runs in its cgroups), at the next window.
    void exec(b.id, ['sleep', '5'], 30);
    const withExec = await waitFor('the exec counted', async () => {
      const v = n((await podStats(pod)).linux.process?.process_count);
      return v !== undefined && v > 5 ? v : undefined;
    });
    t.is(withExec, 6);
  });

  test.serial('network: rx/tx per pod interface, read in the pod network namespace; none for a pod on the node network', async (t) => {
    const a = await runPod('net-a');
    const b = await runPod('net-b');
    t.teardown(async () => {
      await removePod(a.pod);
      await removePod(b.pod);
    });
    // Pod a serves 4 MB to whoever connects (busybox nc ends a connection at its stdin's EOF,
    // so the data flows from the listener, and the client keeps its stdin open).
    await d.runContainer(a.pod, a.config, 'server', ['sh', '-c', 'while true; do head -c 4194304 /dev/zero | nc -l -p 9000; done']);
    const cli = await d.runContainer(b.pod, b.config, 'client', ['sleep', '1000']);
    const ipA = (await d.client.call('PodSandboxStatus', { pod_sandbox_id: a.pod })).status.network.ip as string;
    const net = async (pod: string) => (await podStats(pod)).linux.network;
    const a0 = await sampledAfter('pod a sampled', Date.now(), () => net(a.pod));
    const b0 = await sampledAfter('pod b sampled', Date.now(), () => net(b.pod));
    t.is(a0.default_interface.name, 'eth0');
    t.deepEqual(
      a0.interfaces.map((i: { name: string }) => i.name),
      ['eth0'],
    ); // lo is left out, as containerd and cAdvisor do
    const got = await waitFor('4 MB from pod a to pod b', async () => {
      const r = await exec(cli.id, ['sh', '-c', `sleep 4 | nc -w 3 ${ipA} 9000 | wc -c`]);
      return r.out.trim() === '4194304' ? r.out.trim() : undefined;
    });
    t.is(got, '4194304');
    const since = Date.now();
    const a1 = await sampledAfter('pod a sampled again', since, () => net(a.pod));
    const b1 = await sampledAfter('pod b sampled again', since, () => net(b.pod));
    const delta = (x: { default_interface: Record<string, { value: string }> }, y: typeof x, f: string) => n(y.default_interface[f])! - n(x.default_interface[f])!;
    t.true(delta(a0, a1, 'tx_bytes') >= 4 << 20, `pod a eth0 tx +${delta(a0, a1, 'tx_bytes')}`);
    t.true(delta(b0, b1, 'rx_bytes') >= 4 << 20, `pod b eth0 rx +${delta(b0, b1, 'rx_bytes')}`);
    t.true(delta(a0, a1, 'rx_bytes') < 1 << 20, 'the sender got only acks');
    // The same counters as pod metrics, one series per interface.
    const m = (await d.client.call('ListPodSandboxMetrics', {})).pod_metrics.find((x: { pod_sandbox_id: string }) => x.pod_sandbox_id === a.pod);
    const tx = m.metrics.filter((x: { name: string }) => x.name === 'container_network_transmit_bytes_total');
    t.deepEqual(
      tx.map((x: { label_values: string[] }) => x.label_values),
      [[a.pod, 'POD', '', 'eth0']],
    );
    t.true(Number(tx[0].value.value) >= 4 << 20);
    // A pod on the node's network has no interfaces of its own to report.
    const host = await runPod('net-host', { hostname: '', linux: { security_context: { namespace_options: { network: 'NODE', pid: 'CONTAINER', ipc: 'POD' } } } });
    t.teardown(() => removePod(host.pod));
    await sampledAfter('host pod sampled', Date.now(), async () => (await podStats(host.pod)).linux.cpu);
    t.is((await podStats(host.pod)).linux.network, null);
  });

  test.serial('ListMetricDescriptors names the metrics; ListPodSandboxMetrics has values for a running pod, labelled id, name, image', async (t) => {
    const descs: { name: string; label_keys: string[] }[] = (await d.client.call('ListMetricDescriptors', {})).descriptors;
    const keys = new Map(descs.map((x) => [x.name, x.label_keys]));
    for (const name of [
      'container_cpu_usage_seconds_total',
      'container_memory_working_set_bytes',
      'container_memory_rss',
      'container_network_receive_bytes_total',
      'container_network_transmit_bytes_total',
      'container_fs_usage_bytes',
      'container_processes',
    ]) {
      t.true(keys.has(name), name);
    }
    const { pod, config } = await runPod('metrics');
    t.teardown(() => removePod(pod));
    const c = await d.runContainer(pod, config, 'app', ['sh', '-c', 'dd if=/dev/zero of=/file bs=1048576 count=2 2>/dev/null; while :; do :; done']);
    await sleep(2 * WINDOW_MS + 200);
    const all = (await d.client.call('ListPodSandboxMetrics', {})).pod_metrics as {
      pod_sandbox_id: string;
      metrics: { name: string; label_values: string[]; value: { value: string }; metric_type: string; timestamp: string }[];
      container_metrics: { container_id: string; metrics: { name: string; label_values: string[]; value: { value: string }; metric_type: string }[] }[];
    }[];
    const pm = all.find((x) => x.pod_sandbox_id === pod)!;
    t.truthy(pm);
    // Every value has exactly as many labels as its descriptor has keys (the kubelet refuses others).
    for (const m of [...pm.metrics, ...pm.container_metrics.flatMap((x) => x.metrics)]) t.is(m.label_values.length, keys.get(m.name)?.length ?? -1, m.name);
    const cm = pm.container_metrics.find((x) => x.container_id === c.id)!;
    const get = (name: string) => cm.metrics.find((x) => x.name === name)!;
    t.deepEqual(get('container_memory_working_set_bytes').label_values, [c.id, `app_metrics_default_${config.metadata.uid}_0`, BUSYBOX]);
    t.true(Number(get('container_memory_working_set_bytes').value.value) > 0);
    t.is(get('container_memory_working_set_bytes').metric_type, 'GAUGE');
    t.deepEqual(get('container_cpu_usage_seconds_total').label_values.slice(3), ['total']);
    t.is(get('container_cpu_usage_seconds_total').metric_type, 'COUNTER');
    // Whole seconds: a busy loop reaches 1 after about a second of CPU.
    const cpuSecs = await waitFor('a second of CPU', async () => {
      const again = (await d.client.call('ListPodSandboxMetrics', {})).pod_metrics.find((x: { pod_sandbox_id: string }) => x.pod_sandbox_id === pod);
      const v = again.container_metrics[0].metrics.find((x: { name: string }) => x.name === 'container_cpu_usage_seconds_total');
      return Number(v.value.value) >= 1 ? Number(v.value.value) : undefined;
    });
    t.true(cpuSecs >= 1);
    t.is(Number(get('container_processes').value.value), 1);
    const fs = await waitFor('the layer walked', async () => {
      const again = (await d.client.call('ListPodSandboxMetrics', {})).pod_metrics.find((x: { pod_sandbox_id: string }) => x.pod_sandbox_id === pod);
      const v = again.container_metrics[0].metrics.find((x: { name: string }) => x.name === 'container_fs_usage_bytes');
      return v && Number(v.value.value) >= 2 << 20 ? v : undefined;
    });
    t.true(Number(fs.value.value) >= 2 << 20);
    // The pod's own: its cgroup, labelled as CRI-O labels a pod.
    const podWs = pm.metrics.find((x) => x.name === 'container_memory_working_set_bytes')!;
    t.deepEqual(podWs.label_values, [pod, 'POD', '']);
    t.true(BigInt(podWs.timestamp) > 0n);
    t.is(pm.metrics.some((x) => x.name.startsWith('container_pressure_')), !cgroupV1);
  });

  test.serial('stats of a container that has exited: its attributes, no usage', async (t) => {
    const { pod, config } = await runPod('done');
    t.teardown(() => removePod(pod));
    const c = await d.runContainer(pod, config, 'quick', ['sleep', '1']);
    await d.waitExited(c.id);
    const s = await ctrStats(c.id);
    t.is(s.attributes.id, c.id);
    t.is(s.cpu, null);
    t.is(s.memory, null);
    const list = (await d.client.call('ListContainerStats', { filter: { id: c.id } })).stats;
    t.is(list.length, 1);
    t.is(list[0].cpu, null);
  });
}
