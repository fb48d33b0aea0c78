// The stats sampler: what the stats RPCs and ListPodSandboxMetrics answer from.
//
// Every window (stats_collect_period, default 1 s: containerd's stats collector and cAdvisor's
// housekeeping both use 1 s) it reads the usage of every running or created container and every
// ready pod (Containerizer.usage: the cgroup files, the pod's interfaces, the writable layer's
// last walk) and keeps the latest. The RPCs build their answers from these samples and read
// nothing themselves, so ListContainerStats costs no file reads however many containers there
// are; a container the sampler has not seen yet (created since its last pass), or a sample older
// than two windows (a pass that stalled), is read on the spot.
//
// usage_nano_cores is computed as containerd's CRI plugin does (internal/cri/server: the previous
// sample per container, updated by a background loop): Δ cumulative CPU ns / Δ seconds between
// two samples of the same container. Here the two samples are at least half a window apart
// (normally exactly one window: consecutive passes), so the value is the average CPU rate over
// the last window. It is absent until a container has two samples, and after its counter went
// back (a new cgroup), as containerd leaves it unset.
//
// A pass reads about a dozen cgroup files per object synchronously (cgroups/stats.ts) and yields
// to the event loop after every `batch` objects, so no turn of the loop is held for long.
import { setImmediate as yieldLoop } from 'node:timers/promises';
import type { ContainerId, ResourceStatistics } from '../containerizer/mesos/isolator.js';
import type { Logger } from '../log.js';
import { cpuUsageNanos, nanoCores, type CpuSample } from './stats.js';

export interface StatsTarget {
  /** the CRI id (pods and containers have distinct ids) */
  key: string;
  id: ContainerId;
}

export interface Sample {
  stats: ResourceStatistics;
  /** average CPU rate over the last window, in ns of CPU per s (1e9 = one core busy) */
  nanoCores?: number;
}

export interface StatsSamplerOptions {
  /** the window (ms) */
  windowMs: number;
  /** what to sample in a pass: running and created containers, ready pods */
  targets: () => StatsTarget[];
  usage: (id: ContainerId) => Promise<ResourceStatistics>;
  log: Logger;
  /** objects read per turn of the event loop (default 16) */
  batch?: number;
}

export interface SamplerEntry {
  sample?: ResourceStatistics;
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
   * sum over objects, without the turns it yielded) and how many objects it read.
   */
  lastPass = { ms: 0, busyMs: 0, objects: 0 };

  constructor(private readonly opts: StatsSamplerOptions) {}

  get windowMs(): number {
    return this.opts.windowMs;
  }

  /** Pass now, then once per window (start to start; a pass longer than the window is followed at once). */
  start(): void {
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
    tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.halted = true;
    if (this.timer) clearTimeout(this.timer);
    await this.current;
  }

  /** One pass over every target; entries of objects no longer targeted are dropped. */
  async pass(): Promise<void> {
    const t0 = performance.now();
    const targets = this.opts.targets();
    const live = new Set(targets.map((t) => t.key));
    for (const k of this.entries.keys()) if (!live.has(k)) this.entries.delete(k);
    const batch = this.opts.batch ?? 16;
    let busy = 0;
    for (let i = 0; i < targets.length; i++) {
      if (this.halted) break;
      const r0 = performance.now();
      try {
        await this.read(targets[i]!);
      } catch (err) {
        // Gone between the listing and the read (removed, exited): the next pass will not list it.
        this.opts.log.debug('stats: cannot read usage', { id: targets[i]!.key, error: String(err) });
      }
      busy += performance.now() - r0;
      if ((i + 1) % batch === 0) await yieldLoop();
    }
    this.lastPass = { ms: performance.now() - t0, busyMs: busy, objects: targets.length };
  }

  /** The latest sample of `t`; read now when there is none younger than two windows. */
  async get(t: StatsTarget): Promise<Sample> {
    const e = this.entries.get(t.key);
    if (e?.sample && Date.now() / 1000 - e.sample.timestamp < (2 * this.opts.windowMs) / 1000) return sampleOf(e);
    await this.read(t);
    const after = this.entries.get(t.key);
    // Invalidated while reading: read once more.
    if (!after?.sample) await this.read(t);
    return sampleOf(this.entries.get(t.key)!);
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
    this.entries.set(key, { notBefore: Date.now() / 1000 });
  }

  get size(): number {
    return this.entries.size;
  }

  private async read(t: StatsTarget): Promise<void> {
    const s = await this.opts.usage(t.id);
    let e = this.entries.get(t.key);
    if (!e) this.entries.set(t.key, (e = {}));
    if (e.notBefore !== undefined && s.timestamp < e.notBefore) return;
    record(e, s, this.opts.windowMs);
  }
}

function sampleOf(e: SamplerEntry): Sample {
  if (!e.sample) throw new Error('stats: no sample');
  return e.cores === undefined ? { stats: e.sample! } : { stats: e.sample!, nanoCores: e.cores };
}

/**
 * Keep `s` as the latest sample; a new rate once it is at least half a window after the base
 * sample (so a read on the spot right after a pass does not make a rate of a few ms).
 */
export function record(e: SamplerEntry, s: ResourceStatistics, windowMs: number): void {
  e.sample = s;
  const ns = cpuUsageNanos(s);
  if (ns === undefined) return;
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
