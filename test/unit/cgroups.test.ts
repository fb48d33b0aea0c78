// Pure cgroup logic: mountinfo parsing, path layout, formulas, parsers; and the cgroup2 back end of
// the isolators against a fake cgroup2 tree of plain files in a temp dir (no root needed).
import test from 'ava';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Cgroups,
  cgroupPathFor,
  cpuMaxValue,
  expandSlice,
  normalizeCgroupParent,
  flatKeyedNumber,
  parseFlatKeyed,
  parseLimit,
  formatCpuList,
  parseCpuList,
  parseMountInfo,
  parsePids,
  sharesToWeight,
} from '../../src/cgroups/index.js';
import { ResourceError, type ContainerConfig, type ContainerId } from '../../src/containerizer/mesos/isolator.js';
import { CpuIsolator } from '../../src/containerizer/mesos/isolators/cgroups/cpu.js';
import { CpusetIsolator } from '../../src/containerizer/mesos/isolators/cgroups/cpuset.js';
import { MemoryIsolator } from '../../src/containerizer/mesos/isolators/cgroups/memory.js';
import { PidsIsolator } from '../../src/containerizer/mesos/isolators/cgroups/pids.js';
import { HugetlbIsolator, pageSizeName } from '../../src/containerizer/mesos/isolators/cgroups/hugetlb.js';
import { silentLogger } from '../../src/log.js';

const HYBRID = `22 27 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:10 - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,clone_children
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,release_agent=/x,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
90 31 0:37 / /mnt/other\\040dir rw,relatime - cgroup cgroup rw,xattr,name=systemd
`;
const PURE_V2 = `26 21 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`;

test('parseMountInfo: v1 controllers incl. comounted and named, cgroup2 mount', (t) => {
  const p = parseMountInfo(HYBRID);
  t.deepEqual(
    p.v1.map((m) => [m.mountPoint, m.controllers]),
    [
      ['/sys/fs/cgroup/cpu,cpuacct', ['cpu', 'cpuacct']],
      ['/sys/fs/cgroup/cpuset', ['cpuset']],
      ['/sys/fs/cgroup/memory', ['memory']],
      ['/sys/fs/cgroup/freezer', ['freezer']],
      ['/sys/fs/cgroup/pids', ['pids']],
      ['/sys/fs/cgroup/systemd', ['name=systemd']],
    ],
  );
  t.is(p.v2?.mountPoint, '/sys/fs/cgroup/unified');
  const v2 = parseMountInfo(PURE_V2);
  t.deepEqual(v2.v1, []);
  t.is(v2.v2?.mountPoint, '/sys/fs/cgroup');
});

test('parseMountInfo unescapes mount points', (t) => {
  const p = parseMountInfo('1 2 0:1 / /a\\040b rw - cgroup cgroup rw,pids\n');
  t.is(p.v1[0]?.mountPoint, '/a b');
});

test('Cgroups lookups', (t) => {
  const cg = Cgroups.fromMountInfo(HYBRID, () => 'hugetlb\n');
  t.is(cg.v1('cpu'), '/sys/fs/cgroup/cpu,cpuacct');
  t.is(cg.v1('cpuacct'), '/sys/fs/cgroup/cpu,cpuacct');
  t.is(cg.v1('name=systemd'), '/sys/fs/cgroup/systemd');
  t.is(cg.v1('hugetlb'), undefined);
  t.is(cg.v2Root(), '/sys/fs/cgroup/unified');
  t.true(cg.hasV2Controller('hugetlb'));
  t.false(cg.hasV2Controller('memory'));
  t.is(cg.freezerDir('r/p'), '/sys/fs/cgroup/freezer/r/p');
  t.true(cg.allMountPoints().includes('/sys/fs/cgroup/unified'));
  const v2 = Cgroups.fromMountInfo(PURE_V2, () => 'cpuset cpu io memory pids');
  t.is(v2.v1('memory'), undefined);
  t.true(v2.hasV2Controller('memory'));
  t.is(v2.freezerDir('r/p'), '/sys/fs/cgroup/r/p');
});

const pod: ContainerId = { value: 'pod1' };
const ctr: ContainerId = { value: 'ctr1', parent: pod };

test('cgroupPathFor: pod, nested container, cgroup_parent, slices', (t) => {
  t.is(cgroupPathFor({ id: pod }, 'cri-mesos'), 'cri-mesos/pod1');
  t.is(cgroupPathFor({ id: ctr }, 'cri-mesos'), 'cri-mesos/pod1/ctr1');
  t.is(cgroupPathFor({ id: { value: 'x', parent: ctr } }, 'cri-mesos'), 'cri-mesos/pod1/ctr1/x');
  t.is(cgroupPathFor({ id: pod, cgroupParent: '/kubepods/burstable/podabc/' }, 'cri-mesos'), 'kubepods/burstable/podabc/pod1');
  t.is(cgroupPathFor({ id: ctr, cgroupParent: '/kubepods' }, 'cri-mesos'), 'kubepods/pod1/ctr1');
  t.is(cgroupPathFor({ id: pod, cgroupParent: '' }, 'cri-mesos'), 'cri-mesos/pod1');
  t.is(
    cgroupPathFor({ id: pod, cgroupParent: 'kubepods-burstable-podabc.slice' }, 'r'),
    'kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podabc.slice/pod1',
  );
  t.throws(() => cgroupPathFor({ id: { value: '../x' } }, 'r'));
  t.throws(() => cgroupPathFor({ id: { value: '..' } }, 'r'));
  t.throws(() => cgroupPathFor({ id: pod, cgroupParent: '/a/../b' }, 'r'));
});

test('expandSlice / normalizeCgroupParent', (t) => {
  t.is(expandSlice('a.slice'), 'a.slice');
  t.is(expandSlice('a-b-c.slice'), 'a.slice/a-b.slice/a-b-c.slice');
  t.is(expandSlice('-.slice'), '');
  t.throws(() => expandSlice('a--b.slice'));
  t.is(normalizeCgroupParent('/'), '');
  t.is(normalizeCgroupParent('a//b'), 'a/b');
});

test('sharesToWeight = runc formula 1 + ((shares-2)*9999)/262142', (t) => {
  t.is(sharesToWeight(0), 0);
  t.is(sharesToWeight(2), 1);
  t.is(sharesToWeight(1024), 39);
  t.is(sharesToWeight(102), 4);
  t.is(sharesToWeight(262144), 10000);
  t.is(sharesToWeight(1), 1); // clamped to the kernel's minimum
  t.is(sharesToWeight(10_000_000), 10000);
});

test('cpuMaxValue', (t) => {
  t.is(cpuMaxValue(50000, 100000), '50000 100000');
  t.is(cpuMaxValue(0, 100000), 'max 100000');
  t.is(cpuMaxValue(undefined, undefined), 'max');
  t.is(cpuMaxValue(-1, 250000), 'max 250000');
});

test('parsers', (t) => {
  const m = parseFlatKeyed('user 12\nsystem 3\nbad line x\ntotal_rss 9223372036854771712\n');
  t.is(m.get('user'), 12n);
  t.is(m.get('total_rss'), 9223372036854771712n);
  t.false(m.has('bad'));
  t.is(parseLimit('9223372036854771712\n'), undefined);
  t.is(parseLimit('max\n'), undefined);
  t.is(parseLimit('-1'), undefined);
  t.is(parseLimit('49999872\n'), 49999872);
  t.deepEqual(parsePids('1\n22\n\n'), [1, 22]);
  t.deepEqual(parseCpuList('0-3,6\n'), [0, 1, 2, 3, 6]);
  t.deepEqual(parseCpuList('2,0-1,1'), [0, 1, 2]);
  t.deepEqual(parseCpuList(''), []);
  for (const bad of ['1-0', '0-', 'a', '0,,1', '0-8192', ' 0 - 1']) t.is(parseCpuList(bad), undefined, bad);
  t.is(formatCpuList([5, 0, 1, 2, 7, 8]), '0-2,5,7-8');
  t.is(formatCpuList([]), '');
});

test('the cpu, cpuset and memory checks refuse what the kernel would, on either back end, by field', async (t) => {
  const { cg: v2 } = await fakeV2(t, 'cpuset cpu memory');
  const v1 = Cgroups.fromMountInfo(HYBRID, () => '');
  for (const cgroups of [v2, v1]) {
    const opts = { cgroups, root: 'r', log: silentLogger() };
    const cpu = new CpuIsolator(opts);
    const cpuset = new CpusetIsolator(opts);
    const mem = new MemoryIsolator(opts);
    await t.throwsAsync(cpu.check({ cpuQuota: 999 }), { instanceOf: ResourceError, message: /^cpu_quota: 999 µs is below/ });
    await t.throwsAsync(cpu.check({ cpuPeriod: 999 }), { instanceOf: ResourceError, message: /^cpu_period: 999 µs is outside/ });
    await t.throwsAsync(cpu.check({ cpuPeriod: 1_000_001 }), { instanceOf: ResourceError, message: /^cpu_period/ });
    await t.notThrowsAsync(cpu.check({ cpuQuota: 1000, cpuPeriod: 100_000, cpuShares: 2 }));
    await t.notThrowsAsync(cpu.check({ cpuQuota: -1 }));
    await t.throwsAsync(cpuset.check({ cpusetCpus: '3-1' }), { instanceOf: ResourceError, message: /^cpuset_cpus: "3-1" is not a list/ });
    await t.throwsAsync(cpuset.check({ cpusetCpus: '0,7999-8000' }), { instanceOf: ResourceError, message: /^cpuset_cpus: "0,7999-8000" names CPUs this host does not have online \(7999-8000;/ });
    await t.notThrowsAsync(cpuset.check({ cpusetCpus: '0', cpusetMems: '0' }));
    await t.throwsAsync(mem.check({ memoryLimitBytes: 2048, memorySwapLimitBytes: 1024 }), { instanceOf: ResourceError, message: /^memory_swap_limit_in_bytes: 1024 is below/ });
    await t.notThrowsAsync(mem.check({ memoryLimitBytes: 2048, memorySwapLimitBytes: 2048 }));
    await t.notThrowsAsync(mem.check({ memoryLimitBytes: 2048, memorySwapLimitBytes: -1 }));
  }
});

// ---- cgroup2 back end against a fake tree ----

async function fakeV2(t: import('ava').ExecutionContext, controllers: string) {
  const dir = await mkdtemp(join(tmpdir(), 'cgv2-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const cg = Cgroups.fromMountInfo(`1 2 0:1 / ${dir} rw - cgroup2 cgroup2 rw\n`, () => controllers);
  return { dir, cg };
}

function cfg(id: ContainerId, resources: ContainerConfig['resources']): ContainerConfig {
  return { id, kind: id.parent ? 'container' : 'pod', resources, runtimeDir: '/nonexistent', namespaces: { network: 'POD', pid: 'POD', ipc: 'POD' } };
}

const read = (p: string) => readFile(p, 'utf8');

test('v2 back end: prepare enables controllers, writes runc-style values, returns leaf dir', async (t) => {
  const { dir, cg } = await fakeV2(t, 'cpuset cpu memory pids');
  const opts = { cgroups: cg, root: 'r', log: silentLogger() };
  const cpu = new CpuIsolator(opts);
  const mem = new MemoryIsolator(opts);
  const pids = new PidsIsolator(opts);
  const cpuset = new CpusetIsolator(opts);
  t.is(cpu.backend, 'v2');
  // memory.swap.max exists only with swap accounting: pre-create it so the swap write is exercised.
  await mkdir(join(dir, 'r/pod1/ctr1'), { recursive: true });
  await writeFile(join(dir, 'r/pod1/ctr1/memory.swap.max'), 'max\n');
  const res = { cpuShares: 1024, cpuQuota: 50000, cpuPeriod: 100000, memoryLimitBytes: 50_000_000, memorySwapLimitBytes: 80_000_000, pidsLimit: 7, cpusetCpus: '0', cpusetMems: '0' };
  const li = await cpu.prepare(cfg(pod, {}));
  t.deepEqual(li, { cgroupV2Dir: join(dir, 'r/pod1/leaf') });
  for (const iso of [cpu, mem, pids, cpuset]) await iso.prepare(cfg(ctr, res));
  const c = join(dir, 'r/pod1/ctr1');
  t.is(await read(join(dir, 'cgroup.subtree_control')), '+cpuset'); // last writer; a real kernel accumulates
  t.is(await read(join(dir, 'r/pod1/cgroup.subtree_control')), '+cpuset');
  t.is(await read(join(c, 'cpu.weight')), '39');
  t.is(await read(join(c, 'cpu.max')), '50000 100000');
  t.is(await read(join(c, 'memory.max')), '50000000');
  t.is(await read(join(c, 'memory.swap.max')), '30000000');
  t.is(await read(join(c, 'pids.max')), '7');
  t.is(await read(join(c, 'cpuset.cpus')), '0');
  await cpu.update(ctr, { cpuShares: 0, cpuQuota: 0 });
  t.is(await read(join(c, 'cpu.max')), 'max');
  await pids.update(ctr, {});
  t.is(await read(join(c, 'pids.max')), 'max');
  await mem.update(ctr, { memoryLimitBytes: -1, memorySwapLimitBytes: -1 });
  t.is(await read(join(c, 'memory.max')), 'max');
  t.is(await read(join(c, 'memory.swap.max')), 'max');
  await t.throwsAsync(() => cpu.update({ value: 'nope' }, {}), { message: /unknown container/ });
});

test('v2 back end: usage and OOM status parsed from the v2 files', async (t) => {
  const { dir, cg } = await fakeV2(t, 'cpu memory pids');
  const opts = { cgroups: cg, root: 'r', log: silentLogger() };
  const cpu = new CpuIsolator(opts);
  const mem = new MemoryIsolator(opts);
  const pids = new PidsIsolator(opts);
  for (const iso of [cpu, mem, pids]) await iso.prepare(cfg(pod, {}));
  const p = join(dir, 'r/pod1');
  await writeFile(join(p, 'cpu.stat'), 'usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\nnr_periods 10\nnr_throttled 2\nthrottled_usec 30000\n');
  await writeFile(join(p, 'memory.current'), '1000000\n');
  await writeFile(join(p, 'memory.stat'), 'anon 600000\nfile 400000\ninactive_file 300000\npgfault 77\npgmajfault 3\n');
  await writeFile(join(p, 'memory.max'), 'max\n');
  await writeFile(join(p, 'memory.events'), 'low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n');
  await writeFile(join(p, 'pids.current'), '5\n');
  await writeFile(join(p, 'leaf/cgroup.procs'), '101\n102\n');
  await writeFile(join(p, 'cpu.pressure'), 'some avg10=1.50 avg60=0.50 avg300=0.10 total=2000000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=10\n');
  const u = { ...(await cpu.usage(pod)), ...(await mem.usage(pod)), ...(await pids.usage(pod)) };
  t.is(u.cpuUsageNanos, 2_500_000_000);
  t.is(u.cpusUserTimeSecs, 2);
  t.is(u.cpusSystemTimeSecs, 0.5);
  t.is(u.cpusNrThrottled, 2);
  t.is(u.cpusThrottledTimeSecs, 0.03);
  t.is(u.memTotalBytes, 1_000_000);
  t.is(u.memRssBytes, 600_000);
  t.is(u.memInactiveFileBytes, 300_000);
  t.is(u.memPageFaults, 77);
  t.is(u.memMajorPageFaults, 3);
  t.false('memLimitBytes' in u);
  t.is(u.threads, 5); // pids.current counts tasks
  t.is(u.processes, 2); // cgroup.procs of the leaf, where the processes are
  t.deepEqual(u.cpuPressure, { some: { avg10: 1.5, avg60: 0.5, avg300: 0.1, total: 2_000_000 }, full: { avg10: 0, avg60: 0, avg300: 0, total: 10 } });
  t.false('ioPressure' in u); // no io.pressure file here
  t.deepEqual(await mem.status(pod), { oomKilled: true });
  await writeFile(join(p, 'memory.events'), 'oom 0\noom_kill 0\n');
  t.deepEqual(await mem.status(pod), {});
  t.deepEqual(await mem.status({ value: 'unknown' }), {});
});

test('no controller anywhere → isolator is a no-op', async (t) => {
  const cg = Cgroups.fromMountInfo('', () => '');
  const mem = new MemoryIsolator({ cgroups: cg, root: 'r', log: silentLogger() });
  t.is(mem.backend, 'none');
  t.is(await mem.prepare(cfg(pod, { memoryLimitBytes: 1 })), undefined);
  await mem.isolate(pod, 1);
  await mem.update(pod, { memoryLimitBytes: 1 });
  t.deepEqual(await mem.usage(pod), {});
  await mem.cleanup(pod);
  await mem.cleanup({ value: 'never-seen' });
  t.deepEqual(await mem.status(pod), {});
});

test('huge page sizes are named as the kernel and the kubelet name them', (t) => {
  t.is(pageSizeName('hugepages-2048kB'), '2MB');
  t.is(pageSizeName('hugepages-1048576kB'), '1GB');
  t.is(pageSizeName('hugepages-64kB'), '64KB');
  t.is(pageSizeName('hugepages-32768kB'), '32MB');
  t.is(pageSizeName('nr_hugepages'), undefined);
});

test('recover rebuilds the id → path map', async (t) => {
  const cg = Cgroups.fromMountInfo(HYBRID, () => '');
  const mem = new MemoryIsolator({ cgroups: cg, root: 'r', log: silentLogger() });
  await mem.recover([cfg(pod, {}), { ...cfg(ctr, {}), cgroupParent: '/kp' }]);
  t.is(mem.cgroupPath(pod), 'r/pod1');
  t.is(mem.cgroupPath(ctr), 'kp/pod1/ctr1');
});

test('v2 back end: unified keys are written as they are, hugepage limits as hugetlb.<size>.max (+ rsvd)', async (t) => {
  const { dir, cg } = await fakeV2(t, 'memory hugetlb');
  const opts = { cgroups: cg, root: 'r', log: silentLogger() };
  const mem = new MemoryIsolator(opts);
  const huge = new HugetlbIsolator(opts, ['2MB', '1GB']);
  t.is(huge.backend, 'v2');
  await mkdir(join(dir, 'r/pod1/ctr1'), { recursive: true });
  await writeFile(join(dir, 'r/pod1/ctr1/hugetlb.2MB.rsvd.max'), 'max\n');
  const res = { memoryLimitBytes: 1 << 26, unified: { 'memory.high': '50000000', 'memory.oom.group': '1', 'hugetlb.1GB.max': '0' }, hugepageLimits: { '2MB': 0, '1GB': 1 << 30 } };
  for (const iso of [mem, huge]) await iso.check(res);
  for (const iso of [mem, huge]) await iso.prepare(cfg(ctr, res));
  const c = join(dir, 'r/pod1/ctr1');
  t.is(await read(join(c, 'memory.max')), String(1 << 26));
  t.is(await read(join(c, 'memory.high')), '50000000');
  t.is(await read(join(c, 'memory.oom.group')), '1');
  t.is(await read(join(c, 'hugetlb.2MB.max')), '0');
  t.is(await read(join(c, 'hugetlb.2MB.rsvd.max')), '0');
  // An explicit unified key wins over the CRI field it overlaps.
  t.is(await read(join(c, 'hugetlb.1GB.max')), '0');
  // A page size the host does not have, or a key of a controller it lacks, is refused before anything is written.
  await t.throwsAsync(huge.check({ hugepageLimits: { '16GB': 0 } }), { instanceOf: ResourceError, message: /hugepage_limits\[page_size=16GB\]: this host has no 16GB huge pages/ });
  const { cg: noHuge } = await fakeV2(t, 'memory');
  await t.throwsAsync(new HugetlbIsolator({ ...opts, cgroups: noHuge }, ['2MB']).check({ unified: { 'hugetlb.2MB.max': '0' } }), {
    instanceOf: ResourceError,
    message: /unified\["hugetlb\.2MB\.max"\]: the hugetlb cgroup controller is not available/,
  });
});

test('v1 back end: unified keys map where v1 has an equivalent, defaults are accepted, the rest refused by name', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'cgv1-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  for (const c of ['memory', 'cpu', 'hugetlb']) await mkdir(join(dir, c));
  await writeFile(join(dir, 'memory', 'memory.memsw.limit_in_bytes'), '9223372036854771712\n');
  const cg = Cgroups.fromMountInfo(
    ['memory', 'cpu', 'hugetlb'].map((c, i) => `${i + 1} 1 0:${i} / ${join(dir, c)} rw - cgroup cgroup rw,${c}`).join('\n') + '\n',
    () => '',
  );
  const opts = { cgroups: cg, root: 'r', log: silentLogger() };
  const mem = new MemoryIsolator(opts);
  const cpu = new CpuIsolator(opts);
  const huge = new HugetlbIsolator(opts, ['2MB']);
  t.is(mem.backend, 'v1');
  t.is(huge.backend, 'v1');
  const res = {
    memoryLimitBytes: 100_000_000,
    unified: { 'memory.swap.max': '0', 'memory.oom.group': '0', 'memory.min': '0', 'memory.high': 'max', 'cpu.weight': '100', 'hugetlb.2MB.max': 'max' },
    hugepageLimits: { '2MB': 0 },
  };
  for (const iso of [mem, cpu, huge]) await iso.check(res);
  for (const iso of [mem, cpu, huge]) await iso.prepare(cfg(ctr, res));
  await writeFile(join(dir, 'memory/r/pod1/ctr1/memory.limit_in_bytes'), '100000000\n');
  await mem.update(ctr, res);
  t.is(await read(join(dir, 'memory/r/pod1/ctr1/memory.memsw.limit_in_bytes')), '100000000', 'swap 0: memsw = the memory limit');
  t.is(await read(join(dir, 'cpu/r/pod1/ctr1/cpu.shares')), '2597', 'cpu.weight 100 = shares 2597 (runc formula backwards)');
  // The CRI limit is written first, then the explicit unified key ("max" = -1).
  t.is(await read(join(dir, 'hugetlb/r/pod1/ctr1/hugetlb.2MB.limit_in_bytes')), '-1');
  for (const [key, value] of [
    ['memory.oom.group', '1'],
    ['memory.min', '1048576'],
    ['memory.high', '50000000'],
    ['cpu.idle', '1'],
  ]) {
    const iso = key.startsWith('cpu') ? cpu : mem;
    await t.throwsAsync(iso.check({ unified: { [key]: value } }), { instanceOf: ResourceError, message: new RegExp(`unified\\["${key.replace(/\./g, '\\.')}"\\]: "${value}" cannot be applied`) }, key);
  }
});

test('flatKeyedNumber picks one line of a flat-keyed file, as parseFlatKeyed reads it', (t) => {
  const text = 'rss 1\nrss_huge 2\ntotal_rss 9223372036854771712\ntotal_rss_huge 4\n user 5\nneg -7\nbad 1x\nlast\t42';
  for (const key of ['rss', 'rss_huge', 'total_rss', 'total_rss_huge', 'neg', 'last', 'bad', 'user', 'absent', 'rs', 'x']) {
    const m = parseFlatKeyed(text).get(key);
    t.is(flatKeyedNumber(text, key), m === undefined ? undefined : Number(m), key);
  }
  t.is(flatKeyedNumber('oom_kill_disable 0\nunder_oom 0\noom_kill 3\n', 'oom_kill'), 3);
  t.is(flatKeyedNumber('a 1\r\n', 'a'), 1);
  t.is(flatKeyedNumber('', 'a'), undefined);
  t.is(flatKeyedNumber('a', 'a'), undefined);
  t.is(flatKeyedNumber('a -', 'a'), undefined);
});
