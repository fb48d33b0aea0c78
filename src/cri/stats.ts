// Mesos ResourceStatistics → CRI stats messages, with cadvisor's formulas:
// working set = usage − inactive_file (≥ 0); available = limit − working set; nano cores from two samples.
import type { CpuUsage } from '../../api/generated/runtime/v1/CpuUsage.js';
import type { MemoryUsage } from '../../api/generated/runtime/v1/MemoryUsage.js';
import type { ProcessUsage } from '../../api/generated/runtime/v1/ProcessUsage.js';
import type { SwapUsage } from '../../api/generated/runtime/v1/SwapUsage.js';
import type { ResourceStatistics } from '../containerizer/mesos/isolator.js';

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

/** Δcpu_ns / Δt_s between two samples; undefined when not computable (first sample, clock or counter went back). */
export function nanoCores(prev: CpuSample | undefined, cur: CpuSample): number | undefined {
  if (!prev) return undefined;
  const dt = cur.timestamp - prev.timestamp;
  const du = cur.usageNanos - prev.usageNanos;
  if (!(dt > 0) || du < 0) return undefined;
  return Math.round(du / dt);
}

export function toCpuUsage(s: ResourceStatistics, prev?: CpuSample): CpuUsage {
  const out: CpuUsage = { timestamp: secondsToNanos(s.timestamp) };
  const ns = cpuUsageNanos(s);
  if (ns !== undefined) {
    out.usage_core_nano_seconds = u64(ns);
    const nc = nanoCores(prev, { timestamp: s.timestamp, usageNanos: ns });
    if (nc !== undefined) out.usage_nano_cores = u64(nc);
  }
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
  return out;
}

export function toSwapUsage(s: ResourceStatistics): SwapUsage | undefined {
  if (s.memSwapBytes === undefined) return undefined;
  return { timestamp: secondsToNanos(s.timestamp), swap_usage_bytes: u64(s.memSwapBytes) };
}

export function toProcessUsage(s: ResourceStatistics): ProcessUsage | undefined {
  if (s.processes === undefined) return undefined;
  return { timestamp: secondsToNanos(s.timestamp), process_count: u64(s.processes) };
}

/**
 * Previous CPU sample per container, for usage_nano_cores. One instance per daemon; forget() on
 * RemoveContainer / RemovePodSandbox.
 */
export class CpuSampleCache {
  private readonly samples = new Map<string, CpuSample>();

  /** Convert and remember this sample for the next call with the same key. */
  cpuUsage(key: string, s: ResourceStatistics): CpuUsage {
    const out = toCpuUsage(s, this.samples.get(key));
    const ns = cpuUsageNanos(s);
    if (ns !== undefined) this.samples.set(key, { timestamp: s.timestamp, usageNanos: ns });
    return out;
  }

  forget(key: string): void {
    this.samples.delete(key);
  }

  get size(): number {
    return this.samples.size;
  }
}

/** The cpu/memory/swap/process parts of ContainerStats / LinuxPodSandboxStats for one sample. */
export interface CriUsage {
  cpu: CpuUsage;
  memory: MemoryUsage;
  swap?: SwapUsage;
  process?: ProcessUsage;
}

export function toCriUsage(key: string, s: ResourceStatistics, cache: CpuSampleCache): CriUsage {
  const out: CriUsage = { cpu: cache.cpuUsage(key, s), memory: toMemoryUsage(s) };
  const swap = toSwapUsage(s);
  if (swap) out.swap = swap;
  const proc = toProcessUsage(s);
  if (proc) out.process = proc;
  return out;
}
