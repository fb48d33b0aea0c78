// Translation shared by the runtime handlers: CRI messages ↔ records ↔ Mesos configs.
import { randomBytes } from 'node:crypto';
import type { LinuxContainerResources__Output } from '../../../api/generated/runtime/v1/LinuxContainerResources.js';
import type { NamespaceOption__Output } from '../../../api/generated/runtime/v1/NamespaceOption.js';
import type { PodSandbox } from '../../../api/generated/runtime/v1/PodSandbox.js';
import type { Container } from '../../../api/generated/runtime/v1/Container.js';
import type { ContainerId, ResourceLimits } from '../../containerizer/mesos/isolator.js';
import type { Termination } from '../../containerizer/containerizer.js';
import type { ContainerRecord, SandboxRecord } from '../../store/metadata.js';
import { invalidArgument, notFound } from '../errors.js';
import type { RuntimeContext } from '../context.js';

export function newId(): string {
  return randomBytes(32).toString('hex');
}

export function toLimits(r: LinuxContainerResources__Output | null | undefined): ResourceLimits {
  if (!r) return {};
  const num = (v: string | number | undefined) => (v === undefined || v === '' ? 0 : Number(v));
  const out: ResourceLimits = {};
  if (num(r.cpu_shares) > 0) out.cpuShares = num(r.cpu_shares);
  if (num(r.cpu_period) > 0) out.cpuPeriod = num(r.cpu_period);
  if (num(r.cpu_quota) !== 0) out.cpuQuota = num(r.cpu_quota);
  if (num(r.memory_limit_in_bytes) > 0) out.memoryLimitBytes = num(r.memory_limit_in_bytes);
  if (num(r.memory_swap_limit_in_bytes) > 0) out.memorySwapLimitBytes = num(r.memory_swap_limit_in_bytes);
  if (num(r.oom_score_adj) !== 0) out.oomScoreAdj = num(r.oom_score_adj);
  if (r.cpuset_cpus) out.cpusetCpus = r.cpuset_cpus;
  if (r.cpuset_mems) out.cpusetMems = r.cpuset_mems;
  const pids = r.unified?.['pids.max'];
  if (pids && /^\d+$/.test(pids)) out.pidsLimit = Number(pids);
  return out;
}

export function namespaceModes(opts: NamespaceOption__Output | null | undefined) {
  return {
    network: opts?.network === 'NODE' ? ('NODE' as const) : ('POD' as const),
    pid: (opts?.pid ?? 'CONTAINER') as 'POD' | 'CONTAINER' | 'NODE' | 'TARGET',
    ipc: opts?.ipc === 'NODE' ? ('NODE' as const) : ('POD' as const),
  };
}

/** Names become paths (log dirs, cgroup-free but kubelet-visible): keep them plain. */
export function checkName(what: string, name: string | undefined): string {
  if (!name) throw invalidArgument(`${what} is required`);
  if (name.includes('/') || name.includes('..') || name.includes('\0') || name.length > 253) {
    throw invalidArgument(`${what} "${name}" must not contain "/", ".." or NUL and must be at most 253 characters`);
  }
  return name;
}

export function mustSandbox(ctx: RuntimeContext, id: string, field = 'pod_sandbox_id'): SandboxRecord {
  if (!id) throw invalidArgument(`${field} is required`);
  const s = ctx.sandboxes.resolve(id);
  if (!s) throw notFound(`pod sandbox "${id}" not found (${field})`);
  return s;
}

export function mustContainer(ctx: RuntimeContext, id: string, field = 'container_id'): ContainerRecord {
  if (!id) throw invalidArgument(`${field} is required`);
  const c = ctx.containers.resolve(id);
  if (!c) throw notFound(`container "${id}" not found (${field})`);
  return c;
}

export function matchesLabels(labels: Record<string, string>, selector: Record<string, string> | undefined): boolean {
  if (!selector) return true;
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

export function sandboxMessage(s: SandboxRecord): PodSandbox {
  return {
    id: s.id,
    metadata: s.config.metadata,
    state: s.state,
    created_at: s.createdAt,
    labels: s.config.labels,
    annotations: s.config.annotations,
    runtime_handler: s.runtimeHandler,
  };
}

export function containerMessage(c: ContainerRecord): Container {
  return {
    id: c.id,
    pod_sandbox_id: c.sandboxId,
    metadata: c.config.metadata,
    image: { image: c.imageRef, annotations: {}, user_specified_image: c.imageRef, runtime_handler: '' },
    image_ref: c.imageId,
    image_id: c.imageId,
    state: c.state,
    created_at: c.createdAt,
    labels: c.config.labels,
    annotations: c.config.annotations,
  };
}

/** Apply a termination to a CRI record once; later calls change nothing. */
export function recordTermination(ctx: RuntimeContext, id: string, t: Termination): void {
  const rec = ctx.containers.get(id);
  if (!rec || rec.state === 'CONTAINER_EXITED') return;
  const reason = t.oomKilled ? 'OOMKilled' : t.exitCode === 0 ? 'Completed' : 'Error';
  ctx.containers.update(id, {
    state: 'CONTAINER_EXITED',
    exitCode: t.exitCode,
    // The helper's clock and ours can differ by a few µs; a container never finishes before it started.
    finishedAt: rec.startedAt === '0' ? t.finishedAt : latest(t.finishedAt, rec.startedAt),
    reason,
    message: t.message,
    // A container that never started keeps started_at 0, as containerd reports it.
  });
  ctx.log.info('container exited', { container: id, exitCode: t.exitCode, reason });
}

/** Oldest first by created_at. Both are decimal ns of equal width, so comparing strings is enough (no BigInt per comparison). */
export function byCreatedAt(a: { createdAt: string }, b: { createdAt: string }): number {
  return a.createdAt.length - b.createdAt.length || (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0);
}

/** The later of two ns timestamps (decimal strings). */
export function latest(a: string, b: string): string {
  return BigInt(a) >= BigInt(b) ? a : b;
}

export const SIGNALS: Record<string, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGUSR2: 12,
  SIGTERM: 15,
  SIGWINCH: 28,
  SIGPWR: 30,
};

export function signalNumber(name: string | undefined): number {
  if (!name) return 15;
  const n = SIGNALS[name.startsWith('SIG') ? name : `SIG${name}`] ?? Number(name);
  return Number.isInteger(n) && n > 0 && n < 65 ? n : 15;
}

/** Mesos: whoever launched must destroy a failed launch. Cleanup errors are logged, the launch error stands. */
export async function destroyFailedLaunch(ctx: RuntimeContext, id: ContainerId): Promise<void> {
  try {
    await ctx.containerizer.destroy(id);
    await ctx.containerizer.remove(id);
  } catch (err) {
    ctx.log.error('cleaning up a failed launch', { container: id.value, error: String(err) });
  }
}
