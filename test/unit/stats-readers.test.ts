// The readers behind the stats: cgroup v1 and cgroup2 files (fixture trees of plain files in a
// temp dir, as the kernel lays them out), PSI, /proc/net/dev, /proc/<pid>/cgroup; the writable
// layer's du watcher; the cAdvisor-named pod metrics.
import test, { type ExecutionContext } from 'ava';
import { link, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  Cgroups,
  SLOW_FILE_TTL_MS,
  cgroupDirsFrom,
  forgetSlowFiles,
  parsePsi,
  readCgroupUsage,
  readCpuV1,
  readCpuV2,
  readMemoryV1,
  readMemoryV2,
  readPids,
  readPressure,
  readSlowFile,
} from '../../src/cgroups/index.js';
import { defaultInterface, parseNetDev } from '../../src/network/stats.js';
import { DiskUsageWatcher, walkDiskUsage } from '../../src/util/disk-usage.js';
import { BASE_LABEL_KEYS, computeMetrics, metricDescriptors } from '../../src/cri/pod-metrics.js';

async function tree(t: ExecutionContext, files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'stats-fixture-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  for (const [p, text] of Object.entries(files)) {
    await mkdir(join(dir, p, '..'), { recursive: true });
    await writeFile(join(dir, p), text);
  }
  return dir;
}

const PSI_CPU = 'some avg10=12.50 avg60=3.25 avg300=0.75 total=4500000\nfull avg10=1.00 avg60=0.50 avg300=0.25 total=1500000\n';

test('parsePsi: some and full lines; some only (cpu.pressure before Linux 5.13); garbage', (t) => {
  t.deepEqual(parsePsi(PSI_CPU), {
    some: { avg10: 12.5, avg60: 3.25, avg300: 0.75, total: 4_500_000 },
    full: { avg10: 1, avg60: 0.5, avg300: 0.25, total: 1_500_000 },
  });
  t.deepEqual(parsePsi('some avg10=0.00 avg60=0.00 avg300=0.00 total=7\n'), { some: { avg10: 0, avg60: 0, avg300: 0, total: 7 } });
  t.is(parsePsi(''), undefined);
  t.is(parsePsi('full avg10=0.00 avg60=0.00 avg300=0.00 total=7\n'), undefined);
  t.is(parsePsi('some avg10=x avg60=0 avg300=0 total=1\n'), undefined);
});

test('cgroup2: cpu.stat, memory files, pids, pressure', async (t) => {
  const dir = await tree(t, {
    'cpu.stat': 'usage_usec 3000000\nuser_usec 2500000\nsystem_usec 500000\nnr_periods 40\nnr_throttled 4\nthrottled_usec 250000\n',
    'cpu.pressure': PSI_CPU,
    'io.pressure': 'some avg10=0.00 avg60=0.00 avg300=0.00 total=11\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=9\n',
    'memory.pressure': 'some avg10=0.10 avg60=0.00 avg300=0.00 total=22\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=20\n',
    'memory.current': '52428800\n',
    'memory.max': '104857600\n',
    'memory.peak': '60000000\n',
    'memory.stat': 'anon 40000000\nfile 12000000\nkernel 400000\nfile_mapped 1000000\ninactive_file 10000000\nactive_file 2000000\npgfault 1200\npgmajfault 7\n',
    'memory.events': 'low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n',
    'memory.swap.current': '4096\n',
    'memory.swap.max': '1048576\n',
    'pids.current': '6\n',
    'leaf/cgroup.procs': '10\n11\n12\n',
  });
  t.deepEqual(readCpuV2(dir), {
    cpuUsageNanos: 3e9,
    cpusUserTimeSecs: 2.5,
    cpusSystemTimeSecs: 0.5,
    cpusNrPeriods: 40,
    cpusNrThrottled: 4,
    cpusThrottledTimeSecs: 0.25,
    cpuPressure: parsePsi(PSI_CPU),
    ioPressure: { some: { avg10: 0, avg60: 0, avg300: 0, total: 11 }, full: { avg10: 0, avg60: 0, avg300: 0, total: 9 } },
  });
  t.deepEqual(readMemoryV2(dir), {
    memTotalBytes: 52_428_800,
    memRssBytes: 40_000_000,
    memCacheBytes: 12_000_000,
    memInactiveFileBytes: 10_000_000,
    memMappedFileBytes: 1_000_000,
    memKernelBytes: 400_000,
    memPageFaults: 1200,
    memMajorPageFaults: 7,
    memLimitBytes: 104_857_600,
    memMaxUsageBytes: 60_000_000,
    memFailcnt: 3,
    memOomKills: 1,
    memSwapBytes: 4096,
    memSwapLimitBytes: 1_048_576,
    memoryPressure: { some: { avg10: 0.1, avg60: 0, avg300: 0, total: 22 }, full: { avg10: 0, avg60: 0, avg300: 0, total: 20 } },
  });
  t.deepEqual(readPids(dir, join(dir, 'leaf')), { threads: 6, processes: 3 });
  t.deepEqual(Object.keys(readPressure(dir)).sort(), ['cpuPressure', 'ioPressure', 'memoryPressure']);
  // One call for a cgroup outside the isolators (a docker container's): processes in the dir itself.
  const all = readCgroupUsage({ version: 2, dir, procsDir: join(dir, 'leaf') });
  t.is(all.cpuUsageNanos, 3e9);
  t.is(all.memTotalBytes, 52_428_800);
  t.is(all.processes, 3);
});

test('cgroup2: unlimited, no swap accounting, no PSI, kernel before "kernel" in memory.stat', async (t) => {
  const dir = await tree(t, {
    'cpu.stat': 'usage_usec 10\nuser_usec 5\nsystem_usec 5\n',
    'memory.current': '1000\n',
    'memory.max': 'max\n',
    'memory.stat': 'anon 600\nfile 400\ninactive_file 100\nkernel_stack 16384\nslab 8192\npgfault 1\npgmajfault 0\n',
    'memory.events': 'max 0\noom_kill 0\n',
  });
  const m = readMemoryV2(dir);
  t.false('memLimitBytes' in m);
  t.false('memSwapBytes' in m);
  t.false('memSwapLimitBytes' in m);
  t.false('memoryPressure' in m);
  t.is(m.memKernelBytes, 16384 + 8192);
  const c = readCpuV2(dir);
  t.false('cpuPressure' in c);
  t.false('cpusNrPeriods' in c);
  t.deepEqual(readPressure(dir), {});
  // A cgroup that is gone reads as nothing, not as an error.
  t.deepEqual(readMemoryV2(join(dir, 'gone')), {});
  t.deepEqual(readCpuV2(join(dir, 'gone')), {});
});

test('cgroup v1: cpuacct, cpu.stat, memory (hierarchical totals, memsw swap, oom_control), pids; no PSI', async (t) => {
  const dir = await tree(t, {
    'cpuacct/c/cpuacct.usage': '7500000000\n',
    'cpuacct/c/cpuacct.stat': 'user 600\nsystem 150\n',
    'cpu/c/cpu.stat': 'nr_periods 100\nnr_throttled 10\nthrottled_time 2000000000\n',
    'memory/c/memory.usage_in_bytes': '20971520\n',
    'memory/c/memory.limit_in_bytes': '67108864\n',
    'memory/c/memory.max_usage_in_bytes': '30000000\n',
    'memory/c/memory.failcnt': '2\n',
    'memory/c/memory.kmem.usage_in_bytes': '500000\n',
    'memory/c/memory.memsw.usage_in_bytes': '21000000\n',
    'memory/c/memory.memsw.limit_in_bytes': '134217728\n',
    'memory/c/memory.oom_control': 'oom_kill_disable 0\nunder_oom 0\noom_kill 2\n',
    // rss/cache are the cgroup's own; total_* include its children (a pod's containers).
    'memory/c/memory.stat': 'cache 1\nrss 2\ntotal_cache 8388608\ntotal_rss 12582912\ntotal_mapped_file 4096\ntotal_inactive_file 4194304\ntotal_pgfault 300\ntotal_pgmajfault 2\n',
    'pids/c/pids.current': '4\n',
    'pids/c/cgroup.procs': '1\n2\n3\n',
  });
  const cpu = readCpuV1(join(dir, 'cpuacct/c'), join(dir, 'cpu/c'));
  t.deepEqual(cpu, { cpuUsageNanos: 7.5e9, cpusUserTimeSecs: 6, cpusSystemTimeSecs: 1.5, cpusNrPeriods: 100, cpusNrThrottled: 10, cpusThrottledTimeSecs: 2 });
  t.deepEqual(readMemoryV1(join(dir, 'memory/c')), {
    memTotalBytes: 20_971_520,
    memRssBytes: 12_582_912,
    memCacheBytes: 8_388_608,
    memInactiveFileBytes: 4_194_304,
    memMappedFileBytes: 4096,
    memPageFaults: 300,
    memMajorPageFaults: 2,
    memLimitBytes: 67_108_864,
    memMaxUsageBytes: 30_000_000,
    memFailcnt: 2,
    memKernelBytes: 500_000,
    memOomKills: 2,
    memSwapBytes: 21_000_000 - 20_971_520,
    memSwapLimitBytes: 134_217_728 - 67_108_864,
  });
  t.deepEqual(readPids(join(dir, 'pids/c')), { threads: 4, processes: 3 });
  // The unlimited value of v1 (PAGE_COUNTER_MAX pages) is no limit; no memsw: no swap.
  const d2 = await tree(t, {
    'memory.usage_in_bytes': '10\n',
    'memory.limit_in_bytes': '9223372036854771712\n',
    'memory.stat': 'total_rss 5\n',
  });
  const m2 = readMemoryV1(d2);
  t.false('memLimitBytes' in m2);
  t.false('memSwapBytes' in m2);
  const all = readCgroupUsage({ version: 1, cpuacct: join(dir, 'cpuacct/c'), cpu: join(dir, 'cpu/c'), memory: join(dir, 'memory/c'), pids: join(dir, 'pids/c') });
  t.is(all.cpuUsageNanos, 7.5e9);
  t.is(all.memOomKills, 2);
  t.false('cpuPressure' in all || 'memoryPressure' in all || 'ioPressure' in all);
});

test('slow files (limits, metrics-only counters) are kept for SLOW_FILE_TTL_MS, and forgotten when a limit is written', async (t) => {
  const dir = await tree(t, { 'memory.limit_in_bytes': '1000\n', 'memory.usage_in_bytes': '10\n' });
  t.is(readMemoryV1(dir).memLimitBytes, 1000);
  await writeFile(join(dir, 'memory.limit_in_bytes'), '2000\n');
  await writeFile(join(dir, 'memory.usage_in_bytes'), '20\n');
  const m = readMemoryV1(dir);
  t.is(m.memTotalBytes, 20); // read every time
  t.is(m.memLimitBytes, 1000); // kept
  t.is(readSlowFile(dir, 'memory.limit_in_bytes', Date.now() + SLOW_FILE_TTL_MS), '2000\n'); // expired
  await writeFile(join(dir, 'memory.limit_in_bytes'), '3000\n');
  forgetSlowFiles(dir);
  t.is(readMemoryV1(dir).memLimitBytes, 3000);
});

test('cgroupDirsFrom: v1 controllers by hierarchy, cgroup2 when no v1 controller', (t) => {
  const hybrid = Cgroups.fromMountInfo(
    [
      '32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct',
      '35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory',
      '39 31 0:36 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids',
      '41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw',
      '',
    ].join('\n'),
    () => '',
  );
  const procCgroup = '12:pids:/docker/abc\n4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n0::/system.slice/docker.service\n';
  t.deepEqual(cgroupDirsFrom(procCgroup, hybrid), {
    version: 1,
    cpu: '/sys/fs/cgroup/cpu,cpuacct/docker/abc',
    cpuacct: '/sys/fs/cgroup/cpu,cpuacct/docker/abc',
    memory: '/sys/fs/cgroup/memory/docker/abc',
    pids: '/sys/fs/cgroup/pids/docker/abc',
  });
  const v2 = Cgroups.fromMountInfo('26 21 0:23 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n', () => 'cpu memory pids');
  t.deepEqual(cgroupDirsFrom('0::/system.slice/docker-abc.scope\n', v2), { version: 2, dir: '/sys/fs/cgroup/system.slice/docker-abc.scope' });
  t.is(cgroupDirsFrom('', v2), undefined);
});

test('parseNetDev: every interface with its counters; eth0 is the default, else the first', (t) => {
  const text = [
    'Inter-|   Receive                                                |  Transmit',
    ' face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed',
    '    lo:    1234      12    0    0    0     0          0         0     1234      12    0    0    0     0       0          0',
    '  eth0: 9876543   4321    1    2    0     0          0         0   123456    789    3    4    0     0       0          0',
    '',
  ].join('\n');
  const ifs = parseNetDev(text);
  t.deepEqual(
    ifs.map((i) => i.name),
    ['lo', 'eth0'],
  );
  t.deepEqual(ifs[1], { name: 'eth0', rxBytes: 9876543, rxPackets: 4321, rxErrors: 1, rxDropped: 2, txBytes: 123456, txPackets: 789, txErrors: 3, txDropped: 4 });
  t.is(defaultInterface(ifs)?.name, 'eth0');
  t.is(defaultInterface([ifs[0]!])?.name, 'lo');
  t.is(defaultInterface([]), undefined);
});

test('walkDiskUsage: bytes and inodes, hard links once, a missing root is undefined', async (t) => {
  const dir = await tree(t, { 'a/f1': 'x'.repeat(10_000), 'a/b/f2': 'y' });
  await link(join(dir, 'a/f1'), join(dir, 'a/f1-link'));
  const u = (await walkDiskUsage(join(dir, 'a')))!;
  t.is(u.inodes, 4); // a, a/b, f1 (= f1-link), f2
  t.true(u.bytes >= 12_288, String(u.bytes)); // at least f1's blocks, once
  t.is(await walkDiskUsage(join(dir, 'nope')), undefined);
});

test('DiskUsageWatcher: new dirs first, re-walked after minAge, at most its duty of the time, results dropped when unwatched', async (t) => {
  const walks: string[] = [];
  const w = new DiskUsageWatcher({
    minAgeMs: 150,
    duty: 0.5,
    walk: async (dir) => {
      walks.push(dir);
      await sleep(20);
      return dir === '/missing' ? undefined : { bytes: dir.length, inodes: 1 };
    },
  });
  w.watch('a', '/a');
  const started = performance.now();
  w.start();
  await sleep(5);
  w.watch('b', '/bb'); // while "a" is walked
  w.watch('m', '/missing');
  const until = async (what: string, ok: () => boolean) => {
    for (let i = 0; i < 200 && !ok(); i++) await sleep(10);
    t.true(ok(), what);
  };
  await until('three walks', () => walks.length >= 3);
  t.deepEqual(walks.slice(0, 3), ['/a', '/bb', '/missing']);
  t.deepEqual({ bytes: w.get('b')?.bytes, inodes: w.get('b')?.inodes }, { bytes: 3, inodes: 1 });
  t.is(w.get('m'), undefined);
  await until('/a walked again after minAge', () => walks.filter((x) => x === '/a').length >= 2);
  // duty 0.5: walking 20 ms, then idle ≥ 20 ms: busy at most about half the time (and one walk).
  t.true(w.busyMs <= 0.5 * (performance.now() - started) + 40, `${w.busyMs}`);
  w.unwatch('a');
  t.is(w.get('a'), undefined);
  await w.stop();
  const n = walks.length;
  await sleep(100);
  t.is(walks.length, n);
});

test('metrics: descriptors carry id, name, image (+ own keys); every metric has as many label values as its descriptor has keys', (t) => {
  const descs = new Map(metricDescriptors().map((d) => [d.name!, d.label_keys!]));
  for (const name of [
    'container_cpu_usage_seconds_total',
    'container_memory_working_set_bytes',
    'container_memory_rss',
    'container_network_receive_bytes_total',
    'container_network_transmit_bytes_total',
    'container_fs_usage_bytes',
    'container_processes',
    'container_pressure_cpu_waiting_seconds_total',
    'container_oom_events_total',
  ]) {
    t.true(descs.has(name), name);
    t.deepEqual(descs.get(name)!.slice(0, 3), [...BASE_LABEL_KEYS]);
  }
  t.deepEqual(descs.get('container_network_receive_bytes_total'), ['id', 'name', 'image', 'interface']);
  t.deepEqual(descs.get('container_cpu_usage_seconds_total'), ['id', 'name', 'image', 'cpu']);
  const stats = {
    timestamp: 1000.5,
    cpuUsageNanos: 2.9e9,
    memTotalBytes: 1000,
    memInactiveFileBytes: 400,
    processes: 3,
    threads: 5,
    diskUsedBytes: 8192,
    diskFilesystem: '/',
    cpuPressure: { some: { avg10: 0, avg60: 0, avg300: 0, total: 3_500_000 }, full: { avg10: 0, avg60: 0, avg300: 0, total: 0 } },
    network: [{ name: 'eth0', rxBytes: 10, rxPackets: 1, rxErrors: 0, rxDropped: 0, txBytes: 20, txPackets: 2, txErrors: 0, txDropped: 0 }],
  };
  const statfs = () => ({ bytes: 1e9, inodes: 1000, inodesFree: 900 });
  const ctr = computeMetrics('container', ['c1', 'app_pod_ns_uid_0', 'busybox:latest'], { stats, resources: { cpuQuota: 50000, cpuPeriod: 100000 }, statfs });
  const pod = computeMetrics('pod', ['p1', 'POD', ''], { stats });
  for (const m of [...ctr, ...pod]) t.is(m.label_values!.length, descs.get(m.name!)!.length, m.name);
  const val = (ms: typeof ctr, name: string) => ms.filter((m) => m.name === name).map((m) => [m.value!.value, m.label_values!.slice(3)]);
  t.deepEqual(val(ctr, 'container_cpu_usage_seconds_total'), [['2', ['total']]]); // whole seconds, rounded down
  t.deepEqual(val(ctr, 'container_memory_working_set_bytes'), [['600', []]]);
  t.deepEqual(val(ctr, 'container_processes'), [['3', []]]);
  t.deepEqual(val(ctr, 'container_fs_usage_bytes'), [['8192', []]]);
  t.deepEqual(val(ctr, 'container_fs_inodes_free'), [['900', []]]);
  t.deepEqual(val(ctr, 'container_spec_cpu_quota'), [['50000', []]]);
  t.deepEqual(val(ctr, 'container_pressure_cpu_waiting_seconds_total'), [['3', []]]);
  t.deepEqual(val(ctr, 'container_pressure_memory_waiting_seconds_total'), []); // no memory PSI: no series
  t.deepEqual(val(ctr, 'container_network_receive_bytes_total'), []); // network is the pod's
  t.deepEqual(val(pod, 'container_network_receive_bytes_total'), [['10', ['eth0']]]);
  t.deepEqual(val(pod, 'container_processes'), []);
  t.is(ctr[0]!.label_values![0], 'c1');
  t.is(ctr[0]!.timestamp, '1000500000000');
  t.is(ctr.find((m) => m.name === 'container_cpu_usage_seconds_total')!.metric_type, 'COUNTER');
  t.is(ctr.find((m) => m.name === 'container_memory_rss'), undefined); // no rss in the sample: no series
});
