// Shared by the four stats RPCs: isolator usage() → CRI stats messages.
import type { ContainerStats } from '../../../api/generated/runtime/v1/ContainerStats.js';
import type { PodSandboxStats } from '../../../api/generated/runtime/v1/PodSandboxStats.js';
import { diskUsage } from '../../images/fsutil.js';
import type { ContainerRecord, SandboxRecord } from '../../store/metadata.js';
import { toCriUsage } from '../stats.js';
import { containerId, podId, type RuntimeContext } from '../context.js';

export async function containerStats(ctx: RuntimeContext, c: ContainerRecord): Promise<ContainerStats> {
  const attributes = { id: c.id, metadata: c.config.metadata, labels: c.config.labels, annotations: c.config.annotations };
  if (c.state !== 'CONTAINER_RUNNING' && c.state !== 'CONTAINER_CREATED') return { attributes };
  const s = await ctx.containerizer.usage(containerId(c));
  const u = toCriUsage(c.id, s, ctx.cpuSamples);
  const ts = u.cpu.timestamp;
  const upper = c.mesos.rootfs ? await diskUsage(c.mesos.rootfs.replace(/rootfs$/, 'upper')) : undefined;
  return {
    attributes,
    cpu: u.cpu,
    memory: u.memory,
    ...(u.swap ? { swap: u.swap } : {}),
    ...(upper
      ? { writable_layer: { timestamp: ts, fs_id: { mountpoint: c.mesos.rootfs! }, used_bytes: { value: upper.bytes }, inodes_used: { value: upper.inodes } } }
      : {}),
  };
}

export async function podStats(ctx: RuntimeContext, s: SandboxRecord): Promise<PodSandboxStats> {
  const attributes = { id: s.id, metadata: s.config.metadata, labels: s.config.labels, annotations: s.config.annotations };
  if (s.state !== 'SANDBOX_READY') return { attributes };
  const usage = await ctx.containerizer.usage(podId(s.id));
  const u = toCriUsage(s.id, usage, ctx.cpuSamples);
  const containers = await Promise.all(ctx.containers.list().filter((c) => c.sandboxId === s.id).map((c) => containerStats(ctx, c)));
  return {
    attributes,
    linux: {
      cpu: u.cpu,
      memory: u.memory,
      ...(u.process ? { process: u.process } : {}),
      containers,
    },
  };
}
