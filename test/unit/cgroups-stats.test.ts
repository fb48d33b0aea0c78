// ResourceStatistics → CRI stats conversion (src/cri/stats.ts) and the nano-cores math of the
// stats sampler (src/cri/stats-sampler.ts).
import test from 'ava';
import {
  cpuUsageNanos,
  nanoCores,
  secondsToNanos,
  toCpuUsage,
  toIoUsage,
  toMemoryUsage,
  toNetworkUsage,
  toProcessUsage,
  toPsiStats,
  toSwapUsage,
  toWritableLayer,
  workingSetBytes,
} from '../../src/cri/stats.js';
import { FULL_EVERY, SLICE_MS, StatsSampler, record, type SamplerEntry } from '../../src/cri/stats-sampler.js';
import type { ContainerId, ResourceStatistics, UsageDetail } from '../../src/containerizer/mesos/isolator.js';
import { silentLogger } from '../../src/log.js';

test('secondsToNanos keeps integer ns beyond 2^53', (t) => {
  t.is(secondsToNanos(1_700_000_000.123456), '1700000000123456000');
  t.is(secondsToNanos(0), '0');
});

test('cpuUsageNanos prefers cpuacct.usage, else user+system', (t) => {
  t.is(cpuUsageNanos({ cpuUsageNanos: 5, cpusUserTimeSecs: 1 }), 5);
  t.is(cpuUsageNanos({ cpusUserTimeSecs: 1.5, cpusSystemTimeSecs: 0.25 }), 1_750_000_000);
  t.is(cpuUsageNanos({}), undefined);
});

test('nanoCores = Δcpu_ns / Δt_s', (t) => {
  t.is(nanoCores(undefined, { timestamp: 10, usageNanos: 1 }), undefined);
  t.is(nanoCores({ timestamp: 10, usageNanos: 1e9 }, { timestamp: 12, usageNanos: 2e9 }), 5e8); // half a core
  t.is(nanoCores({ timestamp: 10, usageNanos: 0 }, { timestamp: 10.5, usageNanos: 1e9 }), 2e9); // two cores
  t.is(nanoCores({ timestamp: 10, usageNanos: 5 }, { timestamp: 10, usageNanos: 6 }), undefined);
  t.is(nanoCores({ timestamp: 10, usageNanos: 5 }, { timestamp: 11, usageNanos: 4 }), undefined); // counter reset
});

test('record: a rate per window, none from samples closer than half a window, restart after a counter reset', (t) => {
  const e: SamplerEntry = {};
  const s = (timestamp: number, cpuUsageNanos: number): ResourceStatistics => ({ timestamp, cpuUsageNanos });
  record(e, s(100, 0), 1000);
  t.is(e.cores, undefined); // one sample: no rate yet
  record(e, s(101, 1e9), 1000);
  t.is(e.cores, 1e9); // one core busy for the window
  record(e, s(101.2, 1.2e9), 1000); // 200 ms later: too close, the rate and its base stay
  t.is(e.cores, 1e9);
  t.is(e.cpu?.timestamp, 101.2);
  record(e, s(102, 1.25e9), 1000); // from the base at 101: 0.25 s of CPU in 1 s
  t.is(e.cores, 2.5e8);
  record(e, s(103, 0.1e9), 1000); // counter went back: a new cgroup, no rate until the next window
  t.is(e.cores, undefined);
  record(e, s(104, 0.1e9), 1000);
  t.is(e.cores, 0); // idle: zero, not absent
  record(e, { timestamp: 105 }, 1000); // no CPU counter: the sample is kept, the rate untouched
  t.is(e.cores, 0);
});

test('StatsSampler: passes read every target, get() answers from the last pass, reads a new one on the spot, drops the gone', async (t) => {
  let cpu = 0;
  let now = 1000;
  const reads: string[] = [];
  const details: string[] = [];
  let targets = [
    { key: 'a', id: { value: 'a' } },
    { key: 'b', id: { value: 'b' } },
  ];
  const sampler = new StatsSampler({
    windowMs: 1000,
    targets: () => targets,
    usage: async (id: ContainerId, detail: UsageDetail) => {
      reads.push(id.value);
      details.push(detail);
      if (id.value === 'gone') throw new Error('unknown container');
      return detail === 'full' ? { timestamp: now, cpuUsageNanos: cpu, memTotalBytes: 100 + cpu / 1e8 } : { timestamp: now, cpuUsageNanos: cpu };
    },
    log: silentLogger(),
    batch: 1,
    clock: () => now * 1000, // the samples' (fake) time
  });
  await sampler.pass();
  t.deepEqual(reads, ['a', 'b']);
  t.deepEqual(details, ['full', 'full']); // never read in full yet
  now += 1;
  cpu += 5e8;
  await sampler.pass();
  t.deepEqual(details.slice(2), ['cpu', 'cpu']); // not their turn: CPU counters only
  reads.length = 0;
  {
    const a = await sampler.get(targets[0]!);
    t.deepEqual(reads, []);
    t.is(a.nanoCores, 5e8);
    t.is(a.cpu.cpuUsageNanos, 5e8); // the CPU counters of the last window
    t.is(a.stats.memTotalBytes, 100); // the full sample of the first pass
    // Not sampled yet: read now, no rate from a single sample.
    const c = await sampler.get({ key: 'c', id: { value: 'c' } });
    t.deepEqual(reads, ['c']);
    t.is(c.nanoCores, undefined);
    // Older than two windows: read again.
    now += 3;
    await sampler.get(targets[0]!);
    t.deepEqual(reads, ['c', 'a']);
    await t.throwsAsync(() => sampler.get({ key: 'gone', id: { value: 'gone' } }), { message: /unknown container/ });
    // invalidate (StartContainer): the sample is read again, however fresh it was.
    await sampler.get(targets[0]!);
    t.deepEqual(reads, ['c', 'a', 'gone']);
    sampler.invalidate('a');
    await sampler.get(targets[0]!);
    t.deepEqual(reads, ['c', 'a', 'gone', 'a']);
  }
  // A target no longer listed is dropped by the next pass; a failing read does not stop the pass.
  targets = [{ key: 'gone', id: { value: 'gone' } }, targets[1]!];
  await sampler.pass();
  t.is(sampler.size, 1);
  t.is(sampler.lastPass.objects, 2);
  sampler.forget('b');
  t.is(sampler.size, 0);
});

test('StatsSampler: each object is read in full once every FULL_EVERY passes, the objects taking turns', async (t) => {
  const full = new Map<string, number[]>();
  let pass = 0;
  const keys = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
  const sampler = new StatsSampler({
    windowMs: 1000,
    targets: () => keys.map((k) => ({ key: k, id: { value: k } })),
    usage: async (id: ContainerId, detail: UsageDetail) => {
      if (detail === 'full') full.set(id.value, [...(full.get(id.value) ?? []), pass]);
      return { timestamp: Date.now() / 1000, cpuUsageNanos: pass };
    },
    log: silentLogger(),
  });
  for (pass = 1; pass <= 1 + 2 * FULL_EVERY; pass++) await sampler.pass();
  for (const k of keys) {
    const p = full.get(k)!;
    t.is(p[0], 1, k); // the first pass reads everything in full
    t.is(p.length, 3, `${k}: ${p.join(',')}`); // then once per FULL_EVERY passes
    t.is(p[2]! - p[1]!, FULL_EVERY);
  }
  // Spread: no later pass reads more than ceil(7 / FULL_EVERY) in full.
  const perPass = new Map<number, number>();
  for (const p of full.values()) for (const x of p.slice(1)) perPass.set(x, (perPass.get(x) ?? 0) + 1);
  t.true(Math.max(...perPass.values()) <= Math.ceil(keys.length / FULL_EVERY), JSON.stringify([...perPass]));
  t.is(sampler.lastPass.objects, 7);
});

test('StatsSampler: an idle (created) container is read in its full turns only, and get() answers it from them', async (t) => {
  const reads: [string, UsageDetail, number][] = [];
  let pass = 0;
  let now = 1_000_000;
  const targets = [
    { key: 'run', id: { value: 'run' } },
    { key: 'created', id: { value: 'created' }, idle: true },
  ];
  const sampler = new StatsSampler({
    windowMs: 1000,
    targets: () => targets,
    usage: async (id: ContainerId, detail: UsageDetail) => {
      reads.push([id.value, detail, pass]);
      return { timestamp: now / 1000, cpuUsageNanos: pass };
    },
    log: silentLogger(),
    clock: () => now,
  });
  for (pass = 1; pass <= 1 + 2 * FULL_EVERY; pass++, now += 1000) await sampler.pass();
  const of = (k: string) => reads.filter(([id]) => id === k);
  t.is(of('run').length, 1 + 2 * FULL_EVERY, 'the running one every pass');
  t.deepEqual(
    of('created').map(([, d]) => d),
    ['full', 'full', 'full'],
    'the created one in its full turns alone',
  );
  // Its last full read is within the full bound, though older than two windows: no read on the spot.
  const before = reads.length;
  now += 3000;
  await sampler.get(targets[1]!);
  t.is(reads.length, before);
  // A running one whose CPU sample is older than two windows is read on the spot.
  await sampler.get(targets[0]!);
  t.is(reads.length, before + 1);
});

test('StatsSampler: a pass yields to the event loop once it has held it SLICE_MS, however large its batch', async (t) => {
  const READ_MS = 0.4;
  const targets = Array.from({ length: 30 }, (_, i) => ({ key: `k${i}`, id: { value: `k${i}` } }));
  // A turn counter: a chain of setImmediate callbacks, one per turn of the event loop.
  let turn = 0;
  let counting = true;
  const tick = () => {
    turn++;
    if (counting) setImmediate(tick);
  };
  setImmediate(tick);
  const readsPerTurn = new Map<number, number>();
  const sampler = new StatsSampler({
    windowMs: 1000,
    targets: () => targets,
    usage: async () => {
      // A synchronous read, as the cgroup files are read (cgroups/stats.ts).
      const until = performance.now() + READ_MS;
      while (performance.now() < until);
      readsPerTurn.set(turn, (readsPerTurn.get(turn) ?? 0) + 1);
      return { timestamp: Date.now() / 1000, cpuUsageNanos: 1 };
    },
    log: silentLogger(),
    batch: 100,
  });
  await sampler.pass();
  counting = false;
  const most = Math.max(...readsPerTurn.values());
  // A call that arrives during a pass waits for one turn: at most SLICE_MS and one read more.
  t.true(most * READ_MS < SLICE_MS + READ_MS + 0.01 && most * READ_MS <= 2, `${most} reads of ${READ_MS} ms in one turn`);
  t.is([...readsPerTurn.values()].reduce((a, b) => a + b, 0), 30);
});

test('StatsSampler.start runs a pass per window until stop', async (t) => {
  let passes = 0;
  const t0 = Date.now();
  const sampler = new StatsSampler({
    windowMs: 100,
    targets: () => [{ key: 'x', id: { value: 'x' } }],
    // A quarter of a core, whenever it is read (timers may be late on a busy machine).
    usage: async () => {
      passes++;
      const now = Date.now();
      return { timestamp: now / 1000, cpuUsageNanos: (now - t0) * 1e6 * 0.25 };
    },
    log: silentLogger(),
  });
  sampler.start();
  await new Promise((r) => setTimeout(r, 450));
  await sampler.stop();
  const n = passes;
  t.true(n >= 2 && n <= 6, `${n} passes in 450 ms with a 100 ms window`);
  // Answered from the last pass: no read.
  const nc = (await sampler.get({ key: 'x', id: { value: 'x' } })).nanoCores;
  t.is(passes, n);
  t.true(nc !== undefined && Math.abs(nc - 2.5e8) < 2e7, String(nc));
  await new Promise((r) => setTimeout(r, 250));
  t.is(passes, n); // stopped
});

test('StatsSampler.start(firstPassInMs) makes its first pass then, and a stop before it means none', async (t) => {
  const passesAt: number[] = [];
  const make = () =>
    new StatsSampler({
      windowMs: 1000,
      targets: () => [{ key: 'x', id: { value: 'x' } }],
      usage: async () => {
        passesAt.push(Date.now());
        return { timestamp: Date.now() / 1000, cpuUsageNanos: 1 };
      },
      log: silentLogger(),
    });
  const t0 = Date.now();
  const sampler = make();
  sampler.start(200);
  await new Promise((r) => setTimeout(r, 100));
  t.is(passesAt.length, 0, 'no pass before the delay');
  await new Promise((r) => setTimeout(r, 250));
  await sampler.stop();
  t.is(passesAt.length, 1);
  t.true(passesAt[0]! - t0 >= 195, `first pass after ${passesAt[0]! - t0} ms`);
  const early = make();
  early.start(100);
  await early.stop();
  await new Promise((r) => setTimeout(r, 200));
  t.is(passesAt.length, 1, 'stopped before its first pass: none');
});

test('memory: working set = usage − inactive_file (floored), available = limit − working set', (t) => {
  t.is(workingSetBytes({ memTotalBytes: 1000, memInactiveFileBytes: 300 }), 700);
  t.is(workingSetBytes({ memTotalBytes: 100, memInactiveFileBytes: 300 }), 0);
  t.is(workingSetBytes({ memTotalBytes: 100 }), 100);
  const m = toMemoryUsage({
    timestamp: 2,
    memTotalBytes: 1000,
    memInactiveFileBytes: 300,
    memRssBytes: 600,
    memLimitBytes: 4096,
    memPageFaults: 10,
    memMajorPageFaults: 1,
  });
  t.deepEqual(m, {
    timestamp: '2000000000',
    working_set_bytes: { value: '700' },
    available_bytes: { value: '3396' },
    usage_bytes: { value: '1000' },
    rss_bytes: { value: '600' },
    page_faults: { value: '10' },
    major_page_faults: { value: '1' },
  });
  // No limit → no available_bytes; over the limit → 0.
  t.false('available_bytes' in toMemoryUsage({ timestamp: 1, memTotalBytes: 5 }));
  t.deepEqual(toMemoryUsage({ timestamp: 1, memTotalBytes: 5000, memLimitBytes: 4096 }).available_bytes, { value: '0' });
});

test('cpu: nano cores only when the sampler has a rate; PSI passed on with µs totals', (t) => {
  t.deepEqual(toCpuUsage({ timestamp: 100, cpuUsageNanos: 3e9 }), { timestamp: '100000000000', usage_core_nano_seconds: { value: '3000000000' } });
  t.deepEqual(toCpuUsage({ timestamp: 100, cpuUsageNanos: 3e9 }, 0).usage_nano_cores, { value: '0' });
  const psi = { some: { avg10: 1.5, avg60: 1, avg300: 0.5, total: 1234 } };
  const c = toCpuUsage({ timestamp: 1, cpuUsageNanos: 1, cpuPressure: psi }, 5e8);
  t.deepEqual(c.usage_nano_cores, { value: '500000000' });
  t.deepEqual(c.psi, { Some: { Total: '1234', Avg10: 1.5, Avg60: 1, Avg300: 0.5 }, Full: { Total: '0', Avg10: 0, Avg60: 0, Avg300: 0 } });
  t.is(toPsiStats(undefined), undefined);
  t.is(toIoUsage({ timestamp: 1 }), undefined); // cgroup v1: no pressure, no IoUsage
  t.deepEqual(toIoUsage({ timestamp: 1, ioPressure: { ...psi, full: psi.some } })?.psi?.Full?.Total, '1234');
  t.deepEqual(toMemoryUsage({ timestamp: 1, memTotalBytes: 1, memoryPressure: psi }).psi?.Some?.Avg10, 1.5);
});

test('swap, processes, writable layer and network', (t) => {
  t.is(toSwapUsage({ timestamp: 1 }), undefined);
  t.deepEqual(toSwapUsage({ timestamp: 1, memSwapBytes: 42 }), { timestamp: '1000000000', swap_usage_bytes: { value: '42' } });
  t.deepEqual(toSwapUsage({ timestamp: 1, memSwapBytes: 42, memSwapLimitBytes: 100 })?.swap_available_bytes, { value: '58' });
  t.deepEqual(toProcessUsage(1, 3), { timestamp: '1000000000', process_count: { value: '3' } });
  t.is(toProcessUsage(1, undefined), undefined);
  t.is(toWritableLayer({ timestamp: 5 }), undefined); // not walked yet
  t.deepEqual(toWritableLayer({ timestamp: 5, diskUsedBytes: 8192, diskUsedInodes: 3, diskSampledAt: 4, diskFilesystem: '/var/lib/cri-mesos/provisioner' }), {
    timestamp: '4000000000',
    fs_id: { mountpoint: '/var/lib/cri-mesos/provisioner' },
    used_bytes: { value: '8192' },
    inodes_used: { value: '3' },
  });
  t.is(toNetworkUsage({ timestamp: 1 }), undefined); // the node's network: nothing of its own
  const iface = (name: string, rx: number) => ({ name, rxBytes: rx, rxPackets: 1, rxErrors: 2, rxDropped: 0, txBytes: rx * 2, txPackets: 1, txErrors: 3, txDropped: 0 });
  const n = toNetworkUsage({ timestamp: 1, network: [iface('net1', 5), iface('eth0', 7)] })!;
  t.is(n.default_interface?.name, 'eth0');
  t.deepEqual(n.default_interface, { name: 'eth0', rx_bytes: { value: '7' }, rx_errors: { value: '2' }, tx_bytes: { value: '14' }, tx_errors: { value: '3' } });
  t.deepEqual(n.interfaces?.map((i) => i.name), ['net1', 'eth0']);
  t.is(toNetworkUsage({ timestamp: 1, network: [iface('net1', 5)] })!.default_interface?.name, 'net1');
});
