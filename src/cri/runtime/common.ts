// Translation shared by the runtime handlers: CRI messages ↔ records ↔ Mesos configs.
import { randomBytes } from 'node:crypto';
import { constants as osConstants } from 'node:os';
import { isAbsolute, join, normalize } from 'node:path';
import type { LinuxContainerResources__Output } from '../../../api/generated/runtime/v1/LinuxContainerResources.js';
import type { NamespaceOption__Output } from '../../../api/generated/runtime/v1/NamespaceOption.js';
import type { PodSandbox } from '../../../api/generated/runtime/v1/PodSandbox.js';
import type { Container } from '../../../api/generated/runtime/v1/Container.js';
import type { ContainerConfig__Output } from '../../../api/generated/runtime/v1/ContainerConfig.js';
import type { ContainerId, ResourceLimits } from '../../containerizer/mesos/isolator.js';
import type { Termination } from '../../containerizer/containerizer.js';
import type { ContainerRecord, SandboxRecord } from '../../store/metadata.js';
import { invalidArgument, notFound } from '../../errors.js';
import { containerizerOf, type RuntimeContext } from '../context.js';
import { nowNanos } from '../../util/time.js';
import { unappliedContainerFields } from './unapplied.js';

export function newId(): string {
  return randomBytes(32).toString('hex');
}

/** CRI resources → the limits the cgroups isolators apply; `field` names them in errors. */
export function toLimits(r: LinuxContainerResources__Output | null | undefined, field = 'linux.resources'): ResourceLimits {
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
  else if (pids !== undefined && pids.trim() !== 'max') throw invalidArgument(`${field}.unified["pids.max"] "${pids}" must be a number or "max"`);
  r.hugepage_limits.forEach((h, i) => {
    if (!/^[0-9]+[KMGT]B$/.test(h.page_size)) throw invalidArgument(`${field}.hugepage_limits[${i}].page_size "${h.page_size}" must look like 2MB or 1GB`);
    (out.hugepageLimits ??= {})[h.page_size] = num(h.limit);
  });
  for (const [key, value] of Object.entries(r.unified ?? {})) {
    if (key === 'pids.max') continue;
    const controller = /^([a-z_]+)\.[a-z0-9_.]+$/i.exec(key)?.[1];
    if (!controller) throw invalidArgument(`${field}.unified: "${key}" is not a cgroup file name`);
    if (!UNIFIED_CONTROLLERS.has(controller)) {
      throw invalidArgument(`${field}.unified["${key}"]: the ${controller} controller is not managed by cri-mesos (only ${[...UNIFIED_CONTROLLERS].join(', ')})`);
    }
    (out.unified ??= {})[key] = value;
  }
  return out;
}

/** Controllers whose cgroup2 keys an isolator applies (cgroups/{cpu,cpuset,memory,pids,hugetlb}). */
const UNIFIED_CONTROLLERS = new Set(['cpu', 'cpuset', 'memory', 'pids', 'hugetlb']);

export function namespaceModes(opts: NamespaceOption__Output | null | undefined) {
  return {
    network: opts?.network === 'NODE' ? ('NODE' as const) : ('POD' as const),
    pid: (opts?.pid ?? 'CONTAINER') as 'POD' | 'CONTAINER' | 'NODE' | 'TARGET',
    ipc: opts?.ipc === 'NODE' ? ('NODE' as const) : ('POD' as const),
  };
}

const MAX_ID = 0xfffffffe;

/** A CRI int64 uid or gid (a string on the wire) as an id the kernel takes. */
export function checkId(id: string | number, field: string): number {
  const n = Number(id);
  if (!Number.isInteger(n) || n < 0 || n > MAX_ID) throw invalidArgument(`${field}: ${String(id)} is not a user or group id`);
  return n;
}

/** A list of them; `field` names the list. */
export function checkIds(ids: (string | number)[], field: string): number[] {
  return ids.map((g, i) => checkId(g, `${field}[${i}]`));
}

export type GroupsPolicy = 'Merge' | 'Strict';

/** CRI supplemental_groups_policy: Merge (the zero value) or Strict. */
export function groupsPolicy(policy: unknown, field: string): GroupsPolicy {
  if (policy === undefined || policy === null || policy === 'Merge' || policy === 0) return 'Merge';
  if (policy === 'Strict' || policy === 1) return 'Strict';
  throw invalidArgument(`${field}.supplemental_groups_policy: unknown policy ${String(policy)} (Merge or Strict)`);
}

/** Names become paths (log dirs, cgroup-free but kubelet-visible): keep them plain. */
export function checkName(what: string, name: string | undefined): string {
  if (!name) throw invalidArgument(`${what} is required`);
  if (name.includes('/') || name.includes('..') || name.includes('\0') || name.length > 253) {
    throw invalidArgument(`${what} "${name}" must not contain "/", ".." or NUL and must be at most 253 characters`);
  }
  return name;
}

/** A full id or a unique prefix; a prefix of several ids is refused, never guessed. */
function unique<T extends { id: string }>(store: { matching(id: string): T[] }, id: string, field: string, what: string): T | undefined {
  const found = store.matching(id);
  if (found.length > 1) {
    throw invalidArgument(`${field} "${id}" matches more than one ${what} (${found.map((r) => r.id.slice(0, 13)).join(', ')}, …): give more of the id`);
  }
  return found[0];
}

/** The pod sandbox `id` names, or undefined; ambiguous prefixes are INVALID_ARGUMENT. */
export function findSandbox(ctx: RuntimeContext, id: string, field = 'pod_sandbox_id'): SandboxRecord | undefined {
  return unique(ctx.sandboxes, id, field, 'pod sandbox');
}

/** The container `id` names, or undefined; ambiguous prefixes are INVALID_ARGUMENT. */
export function findContainer(ctx: RuntimeContext, id: string, field = 'container_id'): ContainerRecord | undefined {
  return unique(ctx.containers, id, field, 'container');
}

export function mustSandbox(ctx: RuntimeContext, id: string, field = 'pod_sandbox_id'): SandboxRecord {
  if (!id) throw invalidArgument(`${field} is required`);
  const s = findSandbox(ctx, id, field);
  if (!s) throw notFound(`pod sandbox "${id}" not found (${field})`);
  return s;
}

export function mustContainer(ctx: RuntimeContext, id: string, field = 'container_id'): ContainerRecord {
  if (!id) throw invalidArgument(`${field} is required`);
  const c = findContainer(ctx, id, field);
  if (!c) throw notFound(`container "${id}" not found (${field})`);
  return c;
}

export function matchesLabels(labels: Record<string, string>, selector: Record<string, string> | undefined): boolean {
  if (!selector) return true;
  for (const k in selector) if (labels[k] !== selector[k]) return false;
  return true;
}

/** A label selector that selects everything. */
export function noLabels(selector: Record<string, string> | undefined): boolean {
  for (const _ in selector) return false;
  return true;
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
export function recordTermination(ctx: RuntimeContext, id: string, t: Termination, opts: { deferWrite?: boolean } = {}): void {
  const rec = ctx.containers.get(id);
  if (!rec || rec.state === 'CONTAINER_EXITED') return;
  const reason = t.oomKilled ? 'OOMKilled' : t.exitCode === 0 ? 'Completed' : 'Error';
  // deferWrite (recovery): the containerizer keeps this termination until RemoveContainer, so a
  // crash before the record reaches the disk only means the next recovery records it again.
  (opts.deferWrite ? ctx.containers.updateDeferred.bind(ctx.containers) : ctx.containers.update.bind(ctx.containers))(id, {
    state: 'CONTAINER_EXITED',
    exitCode: t.exitCode,
    // The helper's clock and ours can differ by a few µs; a container never finishes before it started.
    finishedAt: rec.startedAt === '0' ? t.finishedAt : latest(t.finishedAt, rec.startedAt),
    reason,
    message: t.message,
    // A container that never started keeps started_at 0, as containerd reports it.
  });
  if (t.oomKilled) ctx.metrics?.oomKilled(containerizerOf(ctx.sandboxes.get(rec.sandboxId)?.runtimeHandler ?? ''));
  // Inside StartContainer, the STOPPED follows the STARTED (start-container.ts sends both).
  if (!ctx.events.starting.has(id)) ctx.events.emit('CONTAINER_STOPPED_EVENT', id, rec.sandboxId);
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

/** A stop signal by name ("SIGTERM", "TERM", "SIGRTMIN+3") or number; unknown names mean SIGTERM, as in containerd. */
export function signalNumber(name: string | undefined): number {
  if (!name) return 15;
  const full = name.startsWith('SIG') ? name : `SIG${name}`;
  const rt = /^SIGRTMIN\+(\d+)$/.exec(full);
  const n = rt ? 34 + Number(rt[1]) : ((osConstants.signals as Record<string, number>)[full] ?? Number(name));
  return Number.isInteger(n) && n > 0 && n < 65 ? n : 15;
}

/** Mesos: whoever launched must destroy a failed launch. Cleanup errors are logged, the launch error stands. */
export async function destroyFailedLaunch(ctx: RuntimeContext, id: ContainerId): Promise<void> {
  try {
    await ctx.containerizer.destroy(id);
    await ctx.containerizer.remove(id);
  } catch (err) {
    ctx.log.error('cleaning up a failed launch', { container: id.value, pod: id.parent?.value ?? id.value, error: String(err) });
  }
}

/** The container's CRI log file: log_path under the pod's log_directory ('' = no log). */
export function resolveLogPath(sandbox: SandboxRecord, config: ContainerConfig__Output): string {
  const dir = sandbox.config.log_directory;
  const rel = config.log_path;
  if (!rel) return '';
  if (isAbsolute(rel) || normalize(rel).split('/').includes('..')) {
    throw invalidArgument(`log_path "${rel}" must be relative to the pod's log_directory and must not contain ".."`);
  }
  if (!dir) return '';
  if (!isAbsolute(dir)) throw invalidArgument(`pod log_directory "${dir}" must be absolute`);
  return join(dir, rel);
}

/** A CreateContainer's new record: CONTAINER_CREATED now, never started. */
export function createdRecord(
  r: Pick<ContainerRecord, 'id' | 'sandboxId' | 'config' | 'imageId' | 'imageRef' | 'logPath' | 'process' | 'stopSignal' | 'mesos'>,
): ContainerRecord {
  return { ...r, createdAt: nowNanos(), startedAt: '0', finishedAt: '0', state: 'CONTAINER_CREATED', exitCode: 0, reason: '', message: '' };
}

/** CRI stop_signal (1.33+) as a signal name without SIGNAL_; `fallback` (the image's) when unset. */
export function criStopSignal(config: Pick<ContainerConfig__Output, 'stop_signal'>, fallback = ''): string {
  return config.stop_signal && config.stop_signal !== 'SIGNAL_RUNTIME_DEFAULT' ? config.stop_signal.slice('SIGNAL_'.length) : fallback;
}

/**
 * The end of a CreateContainer whose record is stored: the CREATED event and the fields accepted
 * but not applied logged. Its exit is watched once its launch has ended (container-launch.ts).
 */
export function containerCreated(ctx: RuntimeContext, record: ContainerRecord): { container_id: string } {
  ctx.events.emit('CONTAINER_CREATED_EVENT', record.id, record.sandboxId);
  const unapplied = unappliedContainerFields(record.config);
  if (unapplied.length) ctx.log.warn('container fields accepted but not applied', { container: record.id, fields: unapplied });
  return { container_id: record.id };
}
