// ResourceStatistics → CRI stats conversion (src/cri/stats.ts).
import test from 'ava';
import {
  CpuSampleCache,
  cpuUsageNanos,
  nanoCores,
  secondsToNanos,
  toCpuUsage,
  toCriUsage,
  toMemoryUsage,
  toProcessUsage,
  toSwapUsage,
  workingSetBytes,
} from '../../src/cri/stats.js';

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

test('toCpuUsage', (t) => {
  const first = toCpuUsage({ timestamp: 100, cpuUsageNanos: 3e9 });
  t.deepEqual(first, { timestamp: '100000000000', usage_core_nano_seconds: { value: '3000000000' } });
  const second = toCpuUsage({ timestamp: 104, cpuUsageNanos: 5e9 }, { timestamp: 100, usageNanos: 3e9 });
  t.deepEqual(second.usage_nano_cores, { value: '500000000' });
  t.deepEqual(toCpuUsage({ timestamp: 1 }), { timestamp: '1000000000' });
});

test('CpuSampleCache derives nano cores from consecutive samples per key', (t) => {
  const c = new CpuSampleCache();
  t.is(c.cpuUsage('a', { timestamp: 1, cpuUsageNanos: 0 }).usage_nano_cores, undefined);
  t.is(c.cpuUsage('b', { timestamp: 1, cpuUsageNanos: 100 }).usage_nano_cores, undefined);
  t.deepEqual(c.cpuUsage('a', { timestamp: 3, cpuUsageNanos: 1e9 }).usage_nano_cores, { value: '500000000' });
  t.deepEqual(c.cpuUsage('a', { timestamp: 4, cpuUsageNanos: 3e9 }).usage_nano_cores, { value: '2000000000' });
  t.is(c.size, 2);
  c.forget('a');
  t.is(c.cpuUsage('a', { timestamp: 5, cpuUsageNanos: 4e9 }).usage_nano_cores, undefined);
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

test('swap / process usage and the combined helper', (t) => {
  t.is(toSwapUsage({ timestamp: 1 }), undefined);
  t.deepEqual(toSwapUsage({ timestamp: 1, memSwapBytes: 42 }), { timestamp: '1000000000', swap_usage_bytes: { value: '42' } });
  t.deepEqual(toProcessUsage({ timestamp: 1, processes: 3 }), { timestamp: '1000000000', process_count: { value: '3' } });
  const u = toCriUsage('k', { timestamp: 1, cpuUsageNanos: 1, memTotalBytes: 2, processes: 1 }, new CpuSampleCache());
  t.truthy(u.cpu && u.memory && u.process);
  t.is(u.swap, undefined);
});
