// Mesos ResourceStatistics → CRI stats messages, with cadvisor's formulas:
// working set = usage − inactive_file (≥ 0); available = limit − working set (only when limited);
// usage_nano_cores = Δ cpu ns / Δ s between two samples of the stats sampler (stats-sampler.ts).
import type { CpuUsage } from '../../api/generated/runtime/v1/CpuUsage.js';
import type { IoUsage } from '../../api/generated/runtime/v1/IoUsage.js';
import type { MemoryUsage } from '../../api/generated/runtime/v1/MemoryUsage.js';
import type { NetworkUsage } from '../../api/generated/runtime/v1/NetworkUsage.js';
import type { NetworkInterfaceUsage } from '../../api/generated/runtime/v1/NetworkInterfaceUsage.js';
import type { ProcessUsage } from '../../api/generated/runtime/v1/ProcessUsage.js';
import type { PsiStats } from '../../api/generated/runtime/v1/PsiStats.js';
import type { SwapUsage } from '../../api/generated/runtime/v1/SwapUsage.js';
import type { FilesystemUsage } from '../../api/generated/runtime/v1/FilesystemUsage.js';
import type { NetworkInterfaceStatistics, ResourceStatistics } from '../containerizer/mesos/isolator.js';
import type { Psi } from '../cgroups/index.js';
import { defaultInterface } from '../network/stats.js';

/** Seconds (float) since the epoch → integer nanoseconds as a decimal string (beyond 2^53, so no Number). */
export function secondsToNanos(seconds: number): string {
  return (BigInt(Math.round(seconds * 1e6)) * 1000n).toString();
}

function u64(v: number | undefined): { value: string } | undefined {
  if (v === undefined || !Number.isFinite(v)) return undefined;
  return { value: String(Math.max(0, Math.round(v))) };
}

/** Cumulative CPU time in ns: cpuacct.usage / cpu.stat usage when known, else user + system. */
export function cpuUsageNanos(s: Partial<ResourceStatistics>): number | undefined {
  if (s.cpuUsageNanos !== undefined) return s.cpuUsageNanos;
  if (s.cpusUserTimeSecs === undefined && s.cpusSystemTimeSecs === undefined) return undefined;
  return Math.round(((s.cpusUserTimeSecs ?? 0) + (s.cpusSystemTimeSecs ?? 0)) * 1e9);
}

export interface CpuSample {
  /** seconds since the epoch */
  timestamp: number;
  usageNanos: number;
}

/**
 * Δcpu_ns / Δt_s between two samples, as containerd computes it; undefined when it cannot be
 * (no earlier sample, no time between them, the counter went back: a new cgroup).
 */
export function nanoCores(prev: CpuSample | undefined, cur: CpuSample): number | undefined {
  if (!prev) return undefined;
  const dt = cur.timestamp - prev.timestamp;
  const du = cur.usageNanos - prev.usageNanos;
  if (!(dt > 0) || du < 0) return undefined;
  return Math.round(du / dt);
}

/** The kernel's PSI (total in µs, passed on as containerd and cAdvisor do) → CRI PsiStats. */
export function toPsiStats(p: Psi | undefined): PsiStats | undefined {
  if (!p) return undefined;
  const data = (d: Psi['some']) => ({ Total: String(Math.round(d.total)), Avg10: d.avg10, Avg60: d.avg60, Avg300: d.avg300 });
  // A cpu.pressure of a kernel before 5.13 has no "full" line: full is then zero, as cAdvisor reports it.
  return { Some: data(p.some), Full: data(p.full ?? { avg10: 0, avg60: 0, avg300: 0, total: 0 }) };
}

export function toCpuUsage(s: ResourceStatistics, cores?: number): CpuUsage {
  const out: CpuUsage = { timestamp: secondsToNanos(s.timestamp) };
  const ns = cpuUsageNanos(s);
  if (ns !== undefined) out.usage_core_nano_seconds = u64(ns);
  if (cores !== undefined) out.usage_nano_cores = u64(cores);
  const psi = toPsiStats(s.cpuPressure);
  if (psi) out.psi = psi;
  return out;
}

export function workingSetBytes(s: Partial<ResourceStatistics>): number | undefined {
  if (s.memTotalBytes === undefined) return undefined;
  return Math.max(0, s.memTotalBytes - (s.memInactiveFileBytes ?? 0));
}

export function toMemoryUsage(s: ResourceStatistics): MemoryUsage {
  const out: MemoryUsage = { timestamp: secondsToNanos(s.timestamp) };
  const ws = workingSetBytes(s);
  if (ws !== undefined) out.working_set_bytes = u64(ws);
  if (ws !== undefined && s.memLimitBytes !== undefined) out.available_bytes = u64(Math.max(0, s.memLimitBytes - ws));
  if (s.memTotalBytes !== undefined) out.usage_bytes = u64(s.memTotalBytes);
  if (s.memRssBytes !== undefined) out.rss_bytes = u64(s.memRssBytes);
  if (s.memPageFaults !== undefined) out.page_faults = u64(s.memPageFaults);
  if (s.memMajorPageFaults !== undefined) out.major_page_faults = u64(s.memMajorPageFaults);
  const psi = toPsiStats(s.memoryPressure);
  if (psi) out.psi = psi;
  return out;
}

/** Swap in use, and what is left of the swap limit (only when one is set). */
export function toSwapUsage(s: ResourceStatistics): SwapUsage | undefined {
  if (s.memSwapBytes === undefined) return undefined;
  const out: SwapUsage = { timestamp: secondsToNanos(s.timestamp), swap_usage_bytes: u64(s.memSwapBytes) };
  if (s.memSwapLimitBytes !== undefined) out.swap_available_bytes = u64(Math.max(0, s.memSwapLimitBytes - s.memSwapBytes));
  return out;
}

/** IoUsage carries only pressure: absent without it (cgroup v1). */
export function toIoUsage(s: ResourceStatistics): IoUsage | undefined {
  const psi = toPsiStats(s.ioPressure);
  return psi ? { timestamp: secondsToNanos(s.timestamp), psi } : undefined;
}

export function toProcessUsage(timestamp: number, processes: number | undefined): ProcessUsage | undefined {
  if (processes === undefined) return undefined;
  return { timestamp: secondsToNanos(timestamp), process_count: u64(processes) };
}

/** The writable layer, as of its last walk (its own timestamp), once one has finished. */
export function toWritableLayer(s: ResourceStatistics): FilesystemUsage | undefined {
  if (s.diskUsedBytes === undefined || s.diskFilesystem === undefined) return undefined;
  return {
    timestamp: secondsToNanos(s.diskSampledAt ?? s.timestamp),
    fs_id: { mountpoint: s.diskFilesystem },
    used_bytes: u64(s.diskUsedBytes),
    inodes_used: u64(s.diskUsedInodes),
  };
}

function toInterface(i: NetworkInterfaceStatistics): NetworkInterfaceUsage {
  return { name: i.name, rx_bytes: u64(i.rxBytes), rx_errors: u64(i.rxErrors), tx_bytes: u64(i.txBytes), tx_errors: u64(i.txErrors) };
}

/** default_interface eth0 (else the first), interfaces all but lo (as containerd); absent on the node's network. */
export function toNetworkUsage(s: ResourceStatistics): NetworkUsage | undefined {
  if (!s.network) return undefined;
  const d = defaultInterface(s.network);
  return {
    timestamp: secondsToNanos(s.timestamp),
    ...(d ? { default_interface: toInterface(d) } : {}),
    interfaces: s.network.map(toInterface),
  };
}
