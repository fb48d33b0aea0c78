// ListMetricDescriptors / ListPodSandboxMetrics: the stats sampler's samples as cAdvisor-named
// metrics, which the kubelet's PodAndContainerStatsFromCRI feature serves on /metrics/cadvisor in
// place of cAdvisor's.
//
// As CRI-O's (internal/lib/stats):
// - every metric has the label keys id, name and image (+ its own: cpu, interface, failure_type
//   and scope); the kubelet adds namespace, pod and container itself, so they are not here;
// - a container's values are [container id, its name (name_pod_namespace_uid_attempt), the image
//   it was created from]; a pod's own metrics are [pod id, "POD", ""];
// - values are whole numbers (CRI's UInt64Value): a *_seconds_total counter is whole seconds,
//   rounded down, where cAdvisor gives a float;
// - the pod carries its network metrics (one series per interface but lo) and its cgroup's CPU,
//   memory and pressure (the pod cgroup holds its containers', as cAdvisor's pod-level series);
//   each container its CPU, memory, processes, writable layer, pressure and spec.
// Pressure metrics exist only where the kernel has per-cgroup PSI (cgroup2). Nothing here reads
// a cgroup file; the filesystem metrics statfs the writable layers' filesystem once per call.
import { statfsSync } from 'node:fs';
import type { Metric } from '../../api/generated/runtime/v1/Metric.js';
import type { MetricDescriptor } from '../../api/generated/runtime/v1/MetricDescriptor.js';
import type { ResourceLimits, ResourceStatistics } from '../containerizer/mesos/isolator.js';
import type { Psi } from '../cgroups/index.js';
import { cpuUsageNanos, secondsToNanos, workingSetBytes } from './stats.js';

export const BASE_LABEL_KEYS = ['id', 'name', 'image'] as const;

type Scope = 'pod' | 'container';

/** What one object's metrics are computed from. */
export interface MetricInput {
  /** the last full sample */
  stats: ResourceStatistics;
  /** the last CPU counters (fresher; also cgroup2's cpu and io pressure); default stats */
  cpu?: ResourceStatistics;
  /** the container's resources as applied (spec metrics) */
  resources?: ResourceLimits;
  /** statfs of a directory, cached for the call (filesystem metrics) */
  statfs?: (dir: string) => { bytes: number; inodes: number; inodesFree: number } | undefined;
}

interface MetricDef {
  name: string;
  help: string;
  type: 'COUNTER' | 'GAUGE';
  /** label keys after the base ones */
  labels?: string[];
  scopes: Scope[];
  /** its values come from the CPU counters (MetricInput.cpu), and so does its timestamp */
  cpu?: true;
  /** [value, extra label values] per series; none when the value is unknown */
  values(m: MetricInput): Array<[number, string[]]>;
}

const one = (v: number | undefined): Array<[number, string[]]> => (v === undefined || !Number.isFinite(v) ? [] : [[v, []]]);
const secs = (v: number | undefined) => (v === undefined ? undefined : Math.floor(v));
const psiSecs = (p: Psi | undefined, line: 'some' | 'full') => {
  const d = line === 'some' ? p?.some : p?.full;
  return d === undefined ? undefined : Math.floor(d.total / 1e6);
};
const BOTH: Scope[] = ['pod', 'container'];
const CTR: Scope[] = ['container'];

const cpu: MetricDef[] = [
  {
    name: 'container_cpu_usage_seconds_total',
    help: 'Cumulative cpu time consumed in seconds.',
    type: 'COUNTER',
    labels: ['cpu'],
    scopes: BOTH,
    cpu: true,
    values: ({ stats }) => {
      const ns = cpuUsageNanos(stats);
      return ns === undefined ? [] : [[Math.floor(ns / 1e9), ['total']]];
    },
  },
  { name: 'container_cpu_user_seconds_total', help: 'Cumulative user cpu time consumed in seconds.', type: 'COUNTER', scopes: BOTH, cpu: true, values: ({ stats }) => one(secs(stats.cpusUserTimeSecs)) },
  { name: 'container_cpu_system_seconds_total', help: 'Cumulative system cpu time consumed in seconds.', type: 'COUNTER', scopes: BOTH, cpu: true, values: ({ stats }) => one(secs(stats.cpusSystemTimeSecs)) },
  { name: 'container_cpu_cfs_periods_total', help: 'Number of elapsed enforcement period intervals.', type: 'COUNTER', scopes: BOTH, cpu: true, values: ({ stats }) => one(stats.cpusNrPeriods) },
  { name: 'container_cpu_cfs_throttled_periods_total', help: 'Number of throttled period intervals.', type: 'COUNTER', scopes: BOTH, cpu: true, values: ({ stats }) => one(stats.cpusNrThrottled) },
  {
    name: 'container_cpu_cfs_throttled_seconds_total',
    help: 'Total time duration the container has been throttled.',
    type: 'COUNTER',
    scopes: BOTH,
    cpu: true,
    values: ({ stats }) => one(secs(stats.cpusThrottledTimeSecs)),
  },
];

const memory: MetricDef[] = [
  { name: 'container_memory_usage_bytes', help: 'Current memory usage in bytes, including all memory regardless of when it was accessed', type: 'GAUGE', scopes: BOTH, values: ({ stats }) => one(stats.memTotalBytes) },
  { name: 'container_memory_working_set_bytes', help: 'Current working set in bytes.', type: 'GAUGE', scopes: BOTH, values: ({ stats }) => one(workingSetBytes(stats)) },
  { name: 'container_memory_rss', help: 'Size of RSS in bytes.', type: 'GAUGE', scopes: BOTH, values: ({ stats }) => one(stats.memRssBytes) },
  { name: 'container_memory_cache', help: 'Number of bytes of page cache memory.', type: 'GAUGE', scopes: BOTH, values: ({ stats }) => one(stats.memCacheBytes) },
  { name: 'container_memory_mapped_file', help: 'Size of memory mapped files in bytes.', type: 'GAUGE', scopes: BOTH, values: ({ stats }) => one(stats.memMappedFileBytes) },
  { name: 'container_memory_kernel_usage', help: 'Size of kernel memory allocated in bytes.', type: 'GAUGE', scopes: BOTH, values: ({ stats }) => one(stats.memKernelBytes) },
  { name: 'container_memory_swap', help: 'Container swap usage in bytes.', type: 'GAUGE', scopes: BOTH, values: ({ stats }) => one(stats.memSwapBytes) },
  { name: 'container_memory_max_usage_bytes', help: 'Maximum memory usage recorded in bytes', type: 'GAUGE', scopes: BOTH, values: ({ stats }) => one(stats.memMaxUsageBytes) },
  { name: 'container_memory_failcnt', help: 'Number of memory usage hits limits', type: 'COUNTER', scopes: BOTH, values: ({ stats }) => one(stats.memFailcnt) },
  {
    name: 'container_memory_failures_total',
    help: 'Cumulative count of memory allocation failures.',
    type: 'COUNTER',
    labels: ['failure_type', 'scope'],
    scopes: BOTH,
    values: ({ stats }) => {
      const out: Array<[number, string[]]> = [];
      for (const [type, v] of [
        ['pgfault', stats.memPageFaults],
        ['pgmajfault', stats.memMajorPageFaults],
      ] as const) {
        // The cgroup's counters are hierarchical: the same for both scopes, as CRI-O reports them.
        if (v !== undefined) out.push([v, [type, 'container']], [v, [type, 'hierarchy']]);
      }
      return out;
    },
  },
  { name: 'container_oom_events_total', help: 'Count of out of memory events observed for the container', type: 'COUNTER', scopes: BOTH, values: ({ stats }) => one(stats.memOomKills) },
];

const processes: MetricDef[] = [
  { name: 'container_processes', help: 'Number of processes running inside the container.', type: 'GAUGE', scopes: CTR, values: ({ stats }) => one(stats.processes) },
  { name: 'container_threads', help: 'Number of threads running inside the container', type: 'GAUGE', scopes: CTR, values: ({ stats }) => one(stats.threads) },
];

const fsOf = (m: MetricInput) => (m.stats.diskFilesystem !== undefined ? m.statfs?.(m.stats.diskFilesystem) : undefined);
const filesystem: MetricDef[] = [
  { name: 'container_fs_usage_bytes', help: 'Number of bytes that are consumed by the container on this filesystem.', type: 'GAUGE', scopes: CTR, values: ({ stats }) => one(stats.diskUsedBytes) },
  { name: 'container_fs_limit_bytes', help: 'Number of bytes that can be consumed by the container on this filesystem.', type: 'GAUGE', scopes: CTR, values: (m) => one(fsOf(m)?.bytes) },
  { name: 'container_fs_inodes_total', help: 'Number of Inodes', type: 'GAUGE', scopes: CTR, values: (m) => one(fsOf(m)?.inodes) },
  { name: 'container_fs_inodes_free', help: 'Number of available Inodes', type: 'GAUGE', scopes: CTR, values: (m) => one(fsOf(m)?.inodesFree) },
];

const pressure: MetricDef[] = (['cpu', 'memory', 'io'] as const).flatMap((r): MetricDef[] => {
  const psi = (s: ResourceStatistics) => (r === 'cpu' ? s.cpuPressure : r === 'memory' ? s.memoryPressure : s.ioPressure);
  return [
    { name: `container_pressure_${r}_waiting_seconds_total`, help: `Total time duration tasks in the container have waited due to ${r} congestion.`, type: 'COUNTER', scopes: BOTH, ...(r === 'memory' ? {} : { cpu: true as const }), values: ({ stats }) => one(psiSecs(psi(stats), 'some')) },
    { name: `container_pressure_${r}_stalled_seconds_total`, help: `Total time duration no tasks in the container could make progress due to ${r} congestion.`, type: 'COUNTER', scopes: BOTH, ...(r === 'memory' ? {} : { cpu: true as const }), values: ({ stats }) => one(psiSecs(psi(stats), 'full')) },
  ];
});

const limit = (v: number | undefined) => (v !== undefined && v > 0 ? Math.trunc(v) : undefined);
const spec: MetricDef[] = [
  // 0 when unlimited, as cAdvisor.
  { name: 'container_spec_memory_limit_bytes', help: 'Memory limit for the container.', type: 'GAUGE', scopes: CTR, values: ({ stats }) => one(stats.memLimitBytes ?? 0) },
  { name: 'container_spec_memory_swap_limit_bytes', help: 'Memory swap limit for the container.', type: 'GAUGE', scopes: CTR, values: ({ stats }) => one(stats.memSwapLimitBytes ?? 0) },
  { name: 'container_spec_cpu_shares', help: 'CPU share of the container.', type: 'GAUGE', scopes: CTR, values: ({ resources }) => one(limit(resources?.cpuShares)) },
  { name: 'container_spec_cpu_quota', help: 'CPU quota of the container.', type: 'GAUGE', scopes: CTR, values: ({ resources }) => one(limit(resources?.cpuQuota)) },
  { name: 'container_spec_cpu_period', help: 'CPU period of the container.', type: 'GAUGE', scopes: CTR, values: ({ resources }) => one(limit(resources?.cpuPeriod)) },
];

const network: MetricDef[] = (
  [
    ['receive_bytes', 'rxBytes', 'Cumulative count of bytes received'],
    ['receive_packets', 'rxPackets', 'Cumulative count of packets received'],
    ['receive_packets_dropped', 'rxDropped', 'Cumulative count of packets dropped while receiving'],
    ['receive_errors', 'rxErrors', 'Cumulative count of errors encountered while receiving'],
    ['transmit_bytes', 'txBytes', 'Cumulative count of bytes transmitted'],
    ['transmit_packets', 'txPackets', 'Cumulative count of packets transmitted'],
    ['transmit_packets_dropped', 'txDropped', 'Cumulative count of packets dropped while transmitting'],
    ['transmit_errors', 'txErrors', 'Cumulative count of errors encountered while transmitting'],
  ] as const
).map(([n, field, help]) => ({
  name: `container_network_${n}_total`,
  help,
  type: 'COUNTER' as const,
  labels: ['interface'],
  scopes: ['pod'] as Scope[],
  values: ({ stats }: MetricInput) => (stats.network ?? []).map((i): [number, string[]] => [i[field], [i.name]]),
}));

const misc: MetricDef[] = [
  { name: 'container_last_seen', help: 'Last time a container was seen by the exporter', type: 'GAUGE', scopes: BOTH, values: ({ stats }) => one(Math.floor(stats.timestamp)) },
];

const METRICS: MetricDef[] = [...cpu, ...memory, ...processes, ...filesystem, ...pressure, ...spec, ...network, ...misc];

/** ListMetricDescriptors: every metric ListPodSandboxMetrics may send, with its label keys. */
export function metricDescriptors(): MetricDescriptor[] {
  return METRICS.map((m) => ({ name: m.name, help: m.help, label_keys: [...BASE_LABEL_KEYS, ...(m.labels ?? [])] }));
}

/** The metrics of one pod (scope 'pod') or container, labelled with `base` ([id, name, image]). */
export function computeMetrics(scope: Scope, base: [string, string, string], input: MetricInput): Metric[] {
  const timestamp = secondsToNanos(input.stats.timestamp);
  const cpu = input.cpu ?? input.stats;
  const cpuInput = { ...input, stats: cpu };
  const cpuTimestamp = secondsToNanos(cpu.timestamp);
  const out: Metric[] = [];
  for (const m of METRICS) {
    if (!m.scopes.includes(scope)) continue;
    for (const [value, extra] of m.values(m.cpu ? cpuInput : input)) {
      out.push({ name: m.name, timestamp: m.cpu ? cpuTimestamp : timestamp, metric_type: m.type, label_values: [...base, ...extra], value: { value: String(Math.max(0, Math.floor(value))) } });
    }
  }
  return out;
}

/** statfs per directory, once per call of ListPodSandboxMetrics. */
export function statfsCache(): NonNullable<MetricInput['statfs']> {
  const seen = new Map<string, ReturnType<NonNullable<MetricInput['statfs']>>>();
  return (dir) => {
    if (!seen.has(dir)) {
      try {
        const s = statfsSync(dir);
        seen.set(dir, { bytes: s.blocks * s.bsize, inodes: s.files, inodesFree: s.ffree });
      } catch {
        seen.set(dir, undefined);
      }
    }
    return seen.get(dir);
  };
}
