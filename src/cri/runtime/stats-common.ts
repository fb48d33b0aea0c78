// Shared by the four stats RPCs and ListPodSandboxMetrics: the stats sampler's samples
// (stats-sampler.ts) → CRI stats messages. Nothing here reads a file.
import type { ContainerStats } from '../../../api/generated/runtime/v1/ContainerStats.js';
import type { PodSandboxStats } from '../../../api/generated/runtime/v1/PodSandboxStats.js';
import type { ContainerRecord, SandboxRecord } from '../../store/metadata.js';
import { toCpuUsage, toIoUsage, toMemoryUsage, toNetworkUsage, toProcessUsage, toSwapUsage, toWritableLayer } from '../stats.js';
import type { Sample, StatsTarget } from '../stats-sampler.js';
import { containerId, podId, type RuntimeContext } from '../context.js';

/** Containers with processes and cgroups: running, and created (held before their command starts). */
export function sampled(c: ContainerRecord): boolean {
  return c.state === 'CONTAINER_RUNNING' || c.state === 'CONTAINER_CREATED';
}

/** What the sampler reads in a pass: the containers above and the ready pods. */
export function statsTargets(ctx: Pick<RuntimeContext, 'containers' | 'sandboxes'>): StatsTarget[] {
  const out: StatsTarget[] = ctx.sandboxes
    .list()
    .filter((s) => s.state === 'SANDBOX_READY')
    .map((s) => ({ key: s.id, id: podId(s.id) }));
  for (const c of ctx.containers.list()) if (sampled(c)) out.push({ key: c.id, id: containerId(c), idle: c.state === 'CONTAINER_CREATED' });
  return out;
}

/** The latest sample of a container, or undefined when it has none (not running, or its usage cannot be read). */
export async function containerSample(ctx: RuntimeContext, c: ContainerRecord): Promise<Sample | undefined> {
  if (!sampled(c)) return undefined;
  try {
    return await ctx.stats.get({ key: c.id, id: containerId(c), idle: c.state === 'CONTAINER_CREATED' });
  } catch (err) {
    ctx.log.debug('stats: no usage for a container', { container: c.id, error: String(err) });
    return undefined;
  }
}

export async function podSample(ctx: RuntimeContext, s: SandboxRecord): Promise<Sample | undefined> {
  if (s.state !== 'SANDBOX_READY') return undefined;
  try {
    return await ctx.stats.get({ key: s.id, id: podId(s.id) });
  } catch (err) {
    ctx.log.debug('stats: no usage for a pod', { pod: s.id, error: String(err) });
    return undefined;
  }
}

export function containerStatsOf(c: ContainerRecord, sample: Sample | undefined): ContainerStats {
  const attributes = { id: c.id, metadata: c.config.metadata, labels: c.config.labels, annotations: c.config.annotations };
  if (!sample) return { attributes };
  const s = sample.stats;
  const swap = toSwapUsage(s);
  // The CPU counters (and cgroup2's cpu and io pressure) of the last window; the rest from the last full sample.
  const io = toIoUsage(sample.cpu);
  const layer = toWritableLayer(s);
  return {
    attributes,
    cpu: toCpuUsage(sample.cpu, sample.nanoCores),
    memory: toMemoryUsage(s),
    ...(swap ? { swap } : {}),
    ...(io ? { io } : {}),
    ...(layer ? { writable_layer: layer } : {}),
  };
}

export async function containerStats(ctx: RuntimeContext, c: ContainerRecord): Promise<ContainerStats> {
  return containerStatsOf(c, await containerSample(ctx, c));
}

/**
 * The pod's cgroup counters (its cgroup holds its containers'), its interfaces, and as its
 * process count the sum of its containers' (their own processes: no pause or launch helper),
 * as containerd counts them.
 */
export async function podStats(ctx: RuntimeContext, s: SandboxRecord): Promise<PodSandboxStats> {
  const attributes = { id: s.id, metadata: s.config.metadata, labels: s.config.labels, annotations: s.config.annotations };
  const sample = await podSample(ctx, s);
  if (!sample) return { attributes };
  const ctrs = ctx.containers.list().filter((c) => c.sandboxId === s.id);
  const samples = await Promise.all(ctrs.map((c) => containerSample(ctx, c)));
  const u = sample.stats;
  const counts = samples.map((x) => x?.stats.processes).filter((n): n is number => n !== undefined);
  const process = toProcessUsage(u.timestamp, counts.length || ctrs.every((c) => !sampled(c)) ? counts.reduce((a, b) => a + b, 0) : undefined);
  const network = toNetworkUsage(u);
  const io = toIoUsage(sample.cpu);
  return {
    attributes,
    linux: {
      cpu: toCpuUsage(sample.cpu, sample.nanoCores),
      memory: toMemoryUsage(u),
      ...(network ? { network } : {}),
      ...(process ? { process } : {}),
      ...(io ? { io } : {}),
      containers: ctrs.map((c, i) => containerStatsOf(c, samples[i])),
    },
  };
}
