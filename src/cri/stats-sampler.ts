// The stats sampler: what the stats RPCs and ListPodSandboxMetrics answer from.
//
// Every window (stats_collect_period, default 1 s: containerd's stats collector and cAdvisor's
// housekeeping both use 1 s) it reads the CPU counters of every running container and every
// ready pod, as containerd's collector does, for usage_nano_cores (a created container only in
// its full turns: StatsTarget.idle). Every FULL_EVERY
// windows (5: a full sample is at most 5 s old, where cAdvisor's housekeeping keeps the
// kubelet's at most 10 s old) it reads each object's full usage instead (Containerizer.usage:
// the cgroup files, the pod's interfaces, the writable layer's last walk); the objects take
// turns, so each pass reads about 1/FULL_EVERY of them in full. The RPCs build their answers from
// the latest samples and read nothing themselves, so ListContainerStats costs no file reads
// however many containers there are; an object the sampler has not read yet (created since its
// last pass, or just started), or one whose samples are too old (a pass that stalled), is read
// on the spot.
//
// usage_nano_cores is computed as containerd's CRI plugin does (internal/cri/server: the previous
// sample per container, updated by a background loop): Δ cumulative CPU ns / Δ seconds between
// two samples of the same container. Here the two samples are at least half a window apart
// (normally exactly one window: consecutive passes), so the value is the average CPU rate over
// the last window. It is absent until a container has two samples, and after its counter went
// back (a new cgroup), as containerd leaves it unset.
//
// The cgroup files are read synchronously (cgroups/stats.ts) and a pass yields to the event loop
// once it has held it for SLICE_MS (or after `batch` objects), so that a call arriving meanwhile
// waits at most about that long: with 16 objects per turn, a full read being 0.3-0.5 ms here, a
// List at 1000 objects waited up to 8 ms behind the pass.
import { setImmediate as yieldLoop } from 'node:timers/promises';
import type { ContainerId, ResourceStatistics, UsageDetail } from '../containerizer/mesos/isolator.js';
import type { Logger } from '../log.js';
import { cpuUsageNanos, nanoCores, type CpuSample } from './stats.js';

export interface StatsTarget {
  /** the CRI id (pods and containers have distinct ids) */
  key: string;
  id: ContainerId;
  /**
   * A created container whose command has not started: only its helper waits in its cgroups,
   * so it is read in its full turns alone, not every window (a list of 1000 with 900 created
   * made the per-window pass read 1100 objects), and its samples count as fresh for as long as
   * a full sample does.
   */
  idle?: boolean;
}

export interface Sample {
  /** the last full sample: cgroup counters, the pod's interfaces, the writable layer */
  stats: ResourceStatistics;
  /** the last CPU counters (at most a window old; a full sample has them too) */
  cpu: ResourceStatistics;
  /** average CPU rate over the last window, in ns of CPU per s (1e9 = one core busy) */
  nanoCores?: number;
}

/** A full sample every this many windows (the other passes read the CPU counters only). */
export const FULL_EVERY = 5;
/** A pass yields to the event loop once it has held it this long (ms). */
export const SLICE_MS = 1;

export interface StatsSamplerOptions {
  /** the window (ms) */
  windowMs: number;
  /** what to sample in a pass: running and created containers, ready pods */
  targets: () => StatsTarget[];
  usage: (id: ContainerId, detail: UsageDetail) => Promise<ResourceStatistics>;
  log: Logger;
  /** objects read per turn of the event loop at most (default 16; a turn also ends after SLICE_MS) */
  batch?: number;
  /** ms since the epoch, as the samples' timestamps count (tests); default Date.now */
  clock?: () => number;
  /** how many cgroup control files this process has read so far (cgroups/stats.ts), for lastPass.fileReads */
  fileReads?: () => number;
}

export interface SamplerEntry {
  /** the last sample with CPU counters (a CPU-only one, or a full one) */
  cpu?: ResourceStatistics;
  /** the last full sample */
  full?: ResourceStatistics;
  /** which passes read it in full: (pass + phase) % FULL_EVERY === 0 */
  phase?: number;
  /** the CPU sample the next rate is computed from */
  base?: CpuSample;
  cores?: number;
  /** samples taken before this (seconds since the epoch) are stale: invalidate() */
  notBefore?: number;
}

export class StatsSampler {
  private readonly entries = new Map<string, SamplerEntry>();
  private timer?: NodeJS.Timeout;
  private current?: Promise<void>;
  private stopped = true;
  /** stop() was called: a pass under way ends early */
  private halted = false;
  /**
   * The last pass: how long it took (ms, wall), how long its reads held the event loop (ms: the
   * sum over objects, without the turns it yielded), how many objects it read, how many in full,
   * and how many control files were read meanwhile (with `fileReads`; other readers included).
   */
  lastPass: { ms: number; busyMs: number; objects: number; full: number; fileReads?: number } = { ms: 0, busyMs: 0, objects: 0, full: 0 };
  private passes = 0;
  private phases = 0;

  private readonly clock: () => number;

  constructor(private readonly opts: StatsSamplerOptions) {
    this.clock = opts.clock ?? Date.now;
  }

  get windowMs(): number {
    return this.opts.windowMs;
  }

  /**
   * Pass in `firstPassInMs` (default now), then once per window (start to start; a pass longer
   * than the window is followed at once).
   */
  start(firstPassInMs = 0): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.halted = false;
    const tick = () => {
      const t0 = Date.now();
      this.current = this.pass().finally(() => {
        if (this.stopped) return;
        this.timer = setTimeout(tick, Math.max(0, this.opts.windowMs - (Date.now() - t0)));
        this.timer.unref();
      });
    };
    if (firstPassInMs > 0) {
      this.timer = setTimeout(tick, firstPassInMs);
      this.timer.unref();
    } else tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.halted = true;
    if (this.timer) clearTimeout(this.timer);
    await this.current;
  }

  /** One pass over every target (CPU counters, or all in its turn); entries of objects no longer targeted are dropped. */
  async pass(): Promise<void> {
    const t0 = performance.now();
    const pass = ++this.passes;
    const reads0 = this.opts.fileReads?.();
    const targets = this.opts.targets();
    const live = new Set(targets.map((t) => t.key));
    for (const k of this.entries.keys()) if (!live.has(k)) this.entries.delete(k);
    const batch = this.opts.batch ?? 16;
    let busy = 0;
    let full = 0;
    const now = this.clock() / 1000;
    let slice = performance.now();
    let inSlice = 0;
    for (let i = 0; i < targets.length; i++) {
      if (this.halted) break;
      const t = targets[i]!;
      const e = this.entries.get(t.key);
      // Its turn, or never read in full, or its full sample is late (a pass was missed).
      const wantFull =
        !e?.full || (pass + (e.phase ?? 0)) % FULL_EVERY === 0 || now - e.full.timestamp >= (1.5 * FULL_EVERY * this.opts.windowMs) / 1000;
      if (t.idle && !wantFull) continue;
      if (wantFull) full++;
      const r0 = performance.now();
      try {
        await this.read(t, wantFull ? 'full' : 'cpu');
      } catch (err) {
        // Gone between the listing and the read (removed, exited): the next pass will not list it.
        this.opts.log.debug('stats: cannot read usage', { id: t.key, error: String(err) });
      }
      const r1 = performance.now();
      busy += r1 - r0;
      if (++inSlice >= batch || r1 - slice >= SLICE_MS) {
        await yieldLoop();
        slice = performance.now();
        inSlice = 0;
      }
    }
    this.lastPass = { ms: performance.now() - t0, busyMs: busy, objects: targets.length, full };
    if (reads0 !== undefined) this.lastPass.fileReads = this.opts.fileReads!() - reads0;
  }

  /** The latest samples of `t`; read now when they are too old (CPU: two windows; full: two turns). */
  async get(t: StatsTarget): Promise<Sample> {
    const e = this.entries.get(t.key);
    if (e && this.fresh(e, t.idle ?? false)) return sampleOf(e);
    await this.read(t, 'full');
    const after = this.entries.get(t.key);
    // Invalidated while reading: read once more.
    if (!after?.full) await this.read(t, 'full');
    return sampleOf(this.entries.get(t.key)!);
  }

  private fresh(e: SamplerEntry, idle: boolean): boolean {
    const now = this.clock() / 1000;
    const w = this.opts.windowMs / 1000;
    const cpuAge = idle ? 2 * FULL_EVERY * w : 2 * w;
    return !!e.cpu && !!e.full && now - e.cpu.timestamp < cpuAge && now - e.full.timestamp < 2 * FULL_EVERY * w;
  }

  /** Drop what is kept for `key` (RemoveContainer, RemovePodSandbox). */
  forget(key: string): void {
    this.entries.delete(key);
  }

  /**
   * What was read of `key` until now no longer holds (StartContainer: a created docker container
   * had no process to read): the next get() reads it again, and a read under way is dropped.
   */
  invalidate(key: string): void {
    this.entries.set(key, { notBefore: this.clock() / 1000, phase: this.phases++ % FULL_EVERY });
  }

  get size(): number {
    return this.entries.size;
  }

  private async read(t: StatsTarget, detail: UsageDetail): Promise<void> {
    const s = await this.opts.usage(t.id, detail);
    let e = this.entries.get(t.key);
    // New objects take the turns one after the other, so the full reads spread over the passes.
    if (!e) this.entries.set(t.key, (e = { phase: this.phases++ % FULL_EVERY }));
    if (e.notBefore !== undefined && s.timestamp < e.notBefore) return;
    if (detail === 'full') e.full = s;
    record(e, s, this.opts.windowMs);
  }
}

function sampleOf(e: SamplerEntry): Sample {
  if (!e.full || !e.cpu) throw new Error('stats: no sample');
  return e.cores === undefined ? { stats: e.full, cpu: e.cpu } : { stats: e.full, cpu: e.cpu, nanoCores: e.cores };
}

/**
 * Keep `s` as the latest CPU sample (when it has CPU counters); a new rate once it is at least
 * half a window after the base sample (so a read on the spot right after a pass does not make a
 * rate of a few ms).
 */
export function record(e: SamplerEntry, s: ResourceStatistics, windowMs: number): void {
  const ns = cpuUsageNanos(s);
  if (ns === undefined) {
    // No CPU counter (no cpu cgroup, or a docker container not running): nothing newer than it.
    e.cpu = s;
    return;
  }
  e.cpu = s;
  const cur: CpuSample = { timestamp: s.timestamp, usageNanos: ns };
  if (!e.base || ns < e.base.usageNanos || cur.timestamp < e.base.timestamp) {
    e.base = cur;
    delete e.cores;
    return;
  }
  if (cur.timestamp - e.base.timestamp < windowMs / 2000) return;
  const nc = nanoCores(e.base, cur);
  if (nc === undefined) delete e.cores;
  else e.cores = nc;
  e.base = cur;
}
