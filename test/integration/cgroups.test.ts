// Real cgroups (root only): the cgroups isolators and the freezer killer against this host's
// hierarchies, under a random root `cri-mesos-test-<hex>` that is removed from every hierarchy
// in teardown, also on failure. Only processes this file spawns are signalled.
import test, { type ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, rmdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  Cgroups,
  addProcess,
  freeze,
  killAll,
  listProcesses,
  readCgroupFile,
  thaw,
} from '../../src/cgroups/index.js';
import { createCgroup, removeCgroup } from '../../src/cgroups/fs.js';
import { openStatFileCount, readStatFile } from '../../src/cgroups/stats.js';
import type { ContainerConfig, ContainerId, ResourceLimits } from '../../src/containerizer/mesos/isolator.js';
import { CpuIsolator } from '../../src/containerizer/mesos/isolators/cgroups/cpu.js';
import { CpusetIsolator } from '../../src/containerizer/mesos/isolators/cgroups/cpuset.js';
import { MemoryIsolator } from '../../src/containerizer/mesos/isolators/cgroups/memory.js';
import { PidsIsolator } from '../../src/containerizer/mesos/isolators/cgroups/pids.js';
import type { CgroupsIsolatorBase } from '../../src/containerizer/mesos/isolators/cgroups/base.js';
import { silentLogger } from '../../src/log.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn('\n*** SKIPPING test/integration/cgroups.test.ts: needs root (real cgroups) ***\n');
const rootTest = isRoot ? test.serial : test.skip;

const ROOT = `cri-mesos-test-${randomBytes(4).toString('hex')}`;
const cg = isRoot ? Cgroups.detect() : Cgroups.fromMountInfo('', () => '');
const PAGE = 4096; // getconf PAGESIZE on x86-64; v1 limits are rounded down to it by the kernel
const spawned = new Set<ChildProcess>();

function start(cmd: string, args: string[]): ChildProcess {
  const c = spawn(cmd, args, { stdio: ['pipe', 'ignore', 'ignore'] });
  spawned.add(c);
  c.on('exit', () => spawned.delete(c));
  return c;
}

async function exitOf(c: ChildProcess): Promise<[number | null, NodeJS.Signals | null]> {
  if (c.exitCode !== null || c.signalCode !== null) return [c.exitCode, c.signalCode];
  return (await once(c, 'exit')) as [number | null, NodeJS.Signals | null];
}

test.after.always('remove the test cgroup root everywhere', async () => {
  if (!isRoot) return;
  for (const c of spawned) c.kill('SIGKILL');
  await cg.freezerKill(ROOT).catch(() => {});
  if (cg.v2Root()) await killAll(join(cg.v2Root()!, ROOT)).catch(() => {});
  await cg.removeEverywhere(ROOT);
});

function isolators() {
  const opts = { cgroups: cg, root: ROOT, log: silentLogger() };
  return { cpu: new CpuIsolator(opts), mem: new MemoryIsolator(opts), pids: new PidsIsolator(opts), cpuset: new CpusetIsolator(opts) };
}

function cfg(id: ContainerId, resources: ResourceLimits = {}): ContainerConfig {
  return { id, kind: id.parent ? 'container' : 'pod', resources, runtimeDir: '/nonexistent', namespaces: { network: 'POD', pid: 'POD', ipc: 'POD' } };
}

/** A pod + nested container prepared in every cgroups isolator; cleaned up in teardown. */
async function setup(t: ExecutionContext, ctrRes: ResourceLimits = {}) {
  const isos = isolators();
  const all: CgroupsIsolatorBase[] = [isos.cpu, isos.mem, isos.pids, isos.cpuset];
  const pod: ContainerId = { value: `pod-${randomBytes(3).toString('hex')}` };
  const ctr: ContainerId = { value: `ctr-${randomBytes(3).toString('hex')}`, parent: pod };
  t.teardown(async () => {
    for (const c of spawned) c.kill('SIGKILL');
    for (const iso of [...all].reverse()) {
      await iso.cleanup(ctr).catch(() => {});
      await iso.cleanup(pod).catch(() => {});
    }
  });
  for (const iso of all) t.is(await iso.prepare(cfg(pod)), undefined);
  for (const iso of all) await iso.prepare(cfg(ctr, ctrRes));
  const podRel = `${ROOT}/${pod.value}`;
  const ctrRel = `${podRel}/${ctr.value}`;
  const dir = (controller: string, rel = ctrRel) => cg.v1Path(controller, rel)!;
  return { ...isos, all, pod, ctr, podRel, ctrRel, dir };
}

const rd = async (dir: string, file: string) => (await readCgroupFile(dir, file)).trim();

rootTest('prepare creates pod and nested container cgroups in each hierarchy, cpuset copied down', async (t) => {
  const s = await setup(t);
  t.is(s.cpu.cgroupPath(s.ctr), s.ctrRel);
  for (const c of ['cpu', 'cpuacct', 'cpuset', 'memory', 'pids']) {
    t.true(existsSync(s.dir(c, s.podRel)), `${c} pod`);
    t.true(existsSync(s.dir(c)), `${c} ctr`);
  }
  const top = cg.v1('cpuset')!;
  for (const f of ['cpuset.cpus', 'cpuset.mems']) {
    const want = await rd(top, f);
    t.not(want, '');
    for (const rel of [ROOT, s.podRel, s.ctrRel]) t.is(await rd(join(top, rel), f), want, `${f} at ${rel}`);
  }
});

rootTest('update writes the CRI values exactly (memory rounded down to a page by the kernel)', async (t) => {
  const s = await setup(t, { cpuShares: 512, cpuPeriod: 250000, cpuQuota: 125000, memoryLimitBytes: 50_000_000, pidsLimit: 42 });
  const cpu = s.dir('cpu');
  t.is(await rd(cpu, 'cpu.shares'), '512');
  t.is(await rd(cpu, 'cpu.cfs_period_us'), '250000');
  t.is(await rd(cpu, 'cpu.cfs_quota_us'), '125000');
  // 50000000 is not a multiple of 4096: the kernel stores floor(50000000/4096)*4096 = 49999872.
  t.is(await rd(s.dir('memory'), 'memory.limit_in_bytes'), String(Math.floor(50_000_000 / PAGE) * PAGE));
  t.is(await rd(s.dir('memory'), 'memory.limit_in_bytes'), '49999872');
  t.is(await rd(s.dir('pids'), 'pids.max'), '42');
  // No Mesos 32 MB floor: a tiny limit is written as is.
  await s.mem.update(s.ctr, { memoryLimitBytes: 4 * 1024 * 1024 });
  t.is(await rd(s.dir('memory'), 'memory.limit_in_bytes'), String(4 * 1024 * 1024));
  // Quota 0/missing → unlimited; pids 0 → max; shares 0 → left alone.
  await s.cpu.update(s.ctr, { cpuShares: 0, cpuQuota: 0 });
  t.is(await rd(cpu, 'cpu.cfs_quota_us'), '-1');
  t.is(await rd(cpu, 'cpu.shares'), '512');
  await s.pids.update(s.ctr, {});
  t.is(await rd(s.dir('pids'), 'pids.max'), 'max');
  await s.cpuset.update(s.ctr, { cpusetCpus: '0', cpusetMems: '0' });
  t.is(await rd(s.dir('cpuset'), 'cpuset.cpus'), '0');
});

rootTest('memory + swap: memsw raised before memory and lowered after it', async (t) => {
  const s = await setup(t);
  const m = s.dir('memory');
  if (!existsSync(join(m, 'memory.memsw.limit_in_bytes'))) return t.pass('no swap accounting on this kernel');
  const MiB = 1024 * 1024;
  await s.mem.update(s.ctr, { memoryLimitBytes: 64 * MiB, memorySwapLimitBytes: 128 * MiB });
  // Lower both below the current memory limit: memory must go first.
  await s.mem.update(s.ctr, { memoryLimitBytes: 32 * MiB, memorySwapLimitBytes: 48 * MiB });
  t.is(await rd(m, 'memory.limit_in_bytes'), String(32 * MiB));
  t.is(await rd(m, 'memory.memsw.limit_in_bytes'), String(48 * MiB));
  // Raise both above the current memsw limit: memsw must go first.
  await s.mem.update(s.ctr, { memoryLimitBytes: 100 * MiB, memorySwapLimitBytes: 200 * MiB });
  t.is(await rd(m, 'memory.limit_in_bytes'), String(100 * MiB));
  t.is(await rd(m, 'memory.memsw.limit_in_bytes'), String(200 * MiB));
  const u = await s.mem.usage(s.ctr);
  t.is(u.memLimitBytes, 100 * MiB);
});

rootTest('isolate puts a real process in every hierarchy; usage reads its cgroups', async (t) => {
  const s = await setup(t, { memoryLimitBytes: 256 * 1024 * 1024 });
  const child = start('sleep', ['1000']);
  for (const iso of s.all) await iso.isolate(s.ctr, child.pid!);
  for (const c of ['cpu', 'cpuacct', 'cpuset', 'memory', 'pids']) {
    t.deepEqual(await listProcesses(s.dir(c)), [child.pid!], c);
    // The pod cgroup holds none directly but all of them recursively.
    t.deepEqual(await listProcesses(s.dir(c, s.podRel), true), [child.pid!], `${c} pod recursive`);
  }
  const u = { ...(await s.cpu.usage(s.ctr)), ...(await s.mem.usage(s.ctr)), ...(await s.pids.usage(s.ctr)) };
  t.is(u.processes, 1);
  t.is(typeof u.cpuUsageNanos, 'number');
  t.is(typeof u.cpusUserTimeSecs, 'number');
  t.is(u.cpusNrPeriods, 0);
  t.is(u.memLimitBytes, 256 * 1024 * 1024);
  // Charges stay where they were made (move_charge_at_immigrate=0), so a moved `sleep` may show 0.
  t.is(typeof u.memTotalBytes, 'number');
  t.is(typeof u.memInactiveFileBytes, 'number');
  // The pod has no limit of its own: unlimited → no memLimitBytes.
  t.false('memLimitBytes' in (await s.mem.usage(s.pod)));
  // The pod cgroup: pids.current counts its subtree (the container's sleep), cgroup.procs only its
  // own members (none); the CRI's pod process count is the sum of its containers' (stats.ts).
  const pod = await s.pids.usage(s.pod);
  t.is(pod.threads, 1);
  t.is(pod.processes, 0);
  await t.throwsAsync(() => s.mem.usage({ value: 'nope' }));
  child.kill('SIGKILL');
  await exitOf(child);
});

rootTest('a process allocating past the limit is OOM-killed and status() reports it', async (t) => {
  const MiB = 1024 * 1024;
  const s = await setup(t, { memoryLimitBytes: 32 * MiB, memorySwapLimitBytes: 32 * MiB });
  t.deepEqual(await s.mem.status(s.ctr), {});
  // Held on stdin until it is in its cgroups; then it builds a 200 MB string in the shell.
  const child = start('sh', ['-c', 'read go; x=$(head -c 200000000 /dev/zero | tr "\\0" a); echo survived']);
  for (const iso of s.all) await iso.isolate(s.ctr, child.pid!);
  child.stdin!.write('go\n');
  const [code, signal] = await exitOf(child);
  t.is(signal, 'SIGKILL', `exit code ${code}`);
  t.deepEqual(await s.mem.status(s.ctr), { oomKilled: true });
  t.deepEqual(await s.mem.status(s.pod), {}, 'v1 counts the kill on the victim cgroup only');
  t.deepEqual(await s.cpu.status(s.ctr), {});
  const oom = await readFile(join(s.dir('memory'), 'memory.oom_control'), 'utf8');
  t.regex(oom, /oom_kill [1-9]/);
});

rootTest('lowering the memory limit below what a process holds fails with the kernel EBUSY', async (t) => {
  const MiB = 1024 * 1024;
  // 512 MiB: the shell's buffer for 40 MB grows by doubling, and its peak must stay far below the
  // limit, or the OOM killer takes the child (it did once at 128 MiB) and usage drops again.
  const s = await setup(t, { memoryLimitBytes: 512 * MiB, memorySwapLimitBytes: 512 * MiB });
  const child = start('sh', ['-c', 'read go; x=$(head -c 40000000 /dev/zero | tr "\\0" a); read forever']);
  for (const iso of s.all) await iso.isolate(s.ctr, child.pid!);
  child.stdin!.write('go\n');
  const m = s.dir('memory');
  // The shell builds 40 MB in a variable: seconds on a loaded machine, so wait up to 30 s.
  for (const deadline = Date.now() + 30_000; Date.now() < deadline && Number(await rd(m, 'memory.usage_in_bytes')) < 30_000_000; ) await sleep(10);
  t.true(Number(await rd(m, 'memory.usage_in_bytes')) >= 30_000_000, 'child did not allocate');
  const err = await t.throwsAsync(() => s.mem.update(s.ctr, { memoryLimitBytes: 8 * MiB }));
  t.is((err as { code?: string }).code, 'EBUSY');
  t.is(await rd(m, 'memory.limit_in_bytes'), String(512 * MiB));
  child.kill('SIGKILL');
  await exitOf(child);
});

rootTest('freezerKill kills everything in a v1 freezer subtree, including a SIGTERM-ignoring process', async (t) => {
  const podRel = `${ROOT}/kill-${randomBytes(3).toString('hex')}`;
  t.teardown(() => cg.removeEverywhere(podRel).catch(() => {}));
  const podDir = await cg.createFreezer(podRel);
  const ctrDir = await cg.createV1('freezer', `${podRel}/ctr`);
  t.is(podDir, join(cg.v1('freezer')!, podRel));
  const stubborn = start('sh', ['-c', 'trap "" TERM; read go; while :; do sleep 1; done']);
  const nested = start('sleep', ['1000']);
  await addProcess(podDir, stubborn.pid!);
  await addProcess(ctrDir, nested.pid!);
  stubborn.stdin!.write('go\n');
  stubborn.kill('SIGTERM');
  await sleep(100);
  t.is(stubborn.exitCode, null);
  t.is(stubborn.signalCode, null, 'SIGTERM is ignored');
  // Freeze/thaw round trip on the subtree.
  t.true(await freeze(podDir));
  t.is(await rd(podDir, 'freezer.state'), 'FROZEN');
  t.is(await rd(ctrDir, 'freezer.state'), 'FROZEN');
  await thaw(podDir);
  t.is(await rd(podDir, 'freezer.state'), 'THAWED');

  await cg.freezerKill(podRel);
  t.deepEqual(await listProcesses(podDir, true), []);
  t.is((await exitOf(stubborn))[1], 'SIGKILL');
  t.is((await exitOf(nested))[1], 'SIGKILL');
  t.is(await rd(podDir, 'freezer.state'), 'THAWED');
  await cg.removeEverywhere(podRel);
  t.false(existsSync(podDir));
  // Missing cgroup: nothing to kill, nothing to remove.
  await cg.freezerKill(podRel);
  await cg.removeEverywhere(podRel);
});

rootTest('cgroup2: freeze via cgroup.freeze and killAll via cgroup.kill', async (t) => {
  const v2 = cg.v2Root();
  if (!v2) return t.pass('no cgroup2 mount');
  const rel = `${ROOT}/v2kill-${randomBytes(3).toString('hex')}`;
  t.teardown(() => cg.removeEverywhere(rel).catch(() => {}));
  const dir = await cg.createV2(rel);
  const sub = await cg.createV2(`${rel}/sub`);
  const a = start('sleep', ['1000']);
  const b = start('sleep', ['1000']);
  await addProcess(dir, a.pid!);
  await addProcess(sub, b.pid!);
  t.true(await freeze(dir));
  t.regex(await readCgroupFile(dir, 'cgroup.events'), /^frozen 1$/m);
  // thaw() returns once the kernel reports it thawed (cgroup2 says so after its tasks woke).
  t.true(await thaw(dir));
  t.regex(await readCgroupFile(dir, 'cgroup.events'), /^frozen 0$/m);
  await killAll(dir);
  t.deepEqual(await listProcesses(dir, true), []);
  t.is((await exitOf(a))[1], 'SIGKILL');
  t.is((await exitOf(b))[1], 'SIGKILL');
  await cg.removeEverywhere(rel);
  t.false(existsSync(dir));
});

rootTest('cleanup removes the cgroups from every hierarchy; unknown ids are fine', async (t) => {
  const s = await setup(t, { memoryLimitBytes: 64 * 1024 * 1024 });
  const child = start('sleep', ['1000']);
  for (const iso of s.all) await iso.isolate(s.ctr, child.pid!);
  child.kill('SIGKILL');
  await exitOf(child);
  for (const iso of [...s.all].reverse()) await iso.cleanup(s.ctr);
  for (const iso of [...s.all].reverse()) await iso.cleanup(s.pod);
  for (const iso of s.all) await iso.cleanup({ value: 'never-prepared' });
  for (const mp of cg.allMountPoints()) {
    t.false(existsSync(join(mp, s.podRel)), `${mp}/${s.podRel} left behind`);
  }
  t.is(s.mem.cgroupPath(s.pod), undefined);
});

rootTest('recover rebuilds paths so later calls work on existing cgroups', async (t) => {
  const s = await setup(t, { pidsLimit: 5 });
  const fresh = isolators();
  await fresh.pids.recover([cfg(s.pod), cfg(s.ctr)]);
  await fresh.pids.update(s.ctr, { pidsLimit: 9 });
  t.is(await rd(s.dir('pids'), 'pids.max'), '9');
});

rootTest('stat files: the CPU counters kept open and re-read from offset 0 (fresh values), pid lists and the rest not kept, closed by removeCgroup, a removed cgroup reads as absent', async (t) => {
  const v1 = cg.v1('cpuacct');
  const mp = v1 ?? cg.v2Root();
  if (!mp) return t.fail('no cpuacct hierarchy and no cgroup2');
  const file = v1 ? 'cpuacct.usage' : 'cpu.stat';
  const usage = (text: string | undefined) => Number(v1 ? text : /^usage_usec (\d+)$/m.exec(text ?? '')?.[1]);
  const dir = await createCgroup(mp, `${ROOT}/statfds`);
  const before = openStatFileCount();
  t.is(usage(readStatFile(dir, file, true)), 0);
  t.is(openStatFileCount(), before + 1);
  // A busy process moved in: its CPU shows on later reads through the same kept fd.
  const busy = start('sh', ['-c', 'while :; do :; done']);
  await addProcess(dir, busy.pid!);
  t.is(readStatFile(dir, 'cgroup.procs', true)?.trim(), String(busy.pid));
  t.is(openStatFileCount(), before + 1, 'cgroup.procs is opened per read, not kept');
  t.truthy(readStatFile(dir, v1 ? 'cpuacct.stat' : 'cgroup.events'));
  t.is(openStatFileCount(), before + 1, 'a file read without keep is not kept');
  await sleep(200);
  const a = usage(readStatFile(dir, file, true));
  await sleep(200);
  const b = usage(readStatFile(dir, file, true));
  t.true(a > 0 && b > a, `usage grows between reads (${a} then ${b})`);
  t.is(openStatFileCount(), before + 1, 'the same fd each time');
  busy.kill('SIGKILL');
  await exitOf(busy);
  for (let i = 0; i < 100 && readStatFile(dir, 'cgroup.procs', true)?.trim(); i++) await sleep(10);
  await removeCgroup(dir);
  t.is(openStatFileCount(), before, 'removeCgroup closed the kept files');
  t.false(existsSync(dir));
  t.is(readStatFile(dir, file, true), undefined);
  t.is(openStatFileCount(), before);
  // Removed by someone else (the Engine, a hand) while kept: the read finds it gone, the fd is dropped.
  const other = await createCgroup(mp, `${ROOT}/statfds2`);
  t.truthy(readStatFile(other, file, true));
  t.is(openStatFileCount(), before + 1);
  rmdirSync(other);
  t.is(readStatFile(other, file, true), undefined);
  t.is(openStatFileCount(), before);
});
