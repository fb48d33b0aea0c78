// CPU shares, CFS quota and period, memory limit, OOM score, huge pages and swap of a container,
// and the pod's cgroup parent, computed as the kubelet computes them (pkg/kubelet/cm/helpers_linux.go,
// pkg/kubelet/kuberuntime/kuberuntime_container_linux.go, kuberuntime_sandbox_linux.go,
// pkg/kubelet/cm/pod_container_manager_linux.go, cgroupfs driver).
import type { LinuxContainerResources } from '../../api/generated/runtime/v1/LinuxContainerResources.js';
import type { HugepageLimit } from '../../api/generated/runtime/v1/HugepageLimit.js';
import { Quantity, quantityOf } from './quantity.js';
import { containerOOMScoreAdjust, podQOS } from './qos.js';
import { hugePageUnitSize, type NodeInfo } from './node-info.js';
import type { Container, Pod, ResourceList } from './types.js';

export const MIN_SHARES = 2;
export const MAX_SHARES = 262144;
export const SHARES_PER_CPU = 1024;
export const MILLI_CPU_TO_CPU = 1000;
/** 100 ms, the kubelet's --cpu-cfs-quota-period default, in microseconds. */
export const QUOTA_PERIOD = 100000;
/** 1 ms: the kernel's smallest quota. */
export const MIN_QUOTA_PERIOD = 1000;

/** cpu.shares from milli-CPUs: 1024 per CPU, within [2, 262144]; 0 → 2 (the kernel's floor). */
export function milliCPUToShares(milliCPU: number): number {
  if (milliCPU === 0) return MIN_SHARES;
  const shares = Math.trunc((milliCPU * SHARES_PER_CPU) / MILLI_CPU_TO_CPU);
  if (shares < MIN_SHARES) return MIN_SHARES;
  if (shares > MAX_SHARES) return MAX_SHARES;
  return shares;
}

/** CFS quota (µs per period) from milli-CPUs; 0 = no limit; at least 1 ms. */
export function milliCPUToQuota(milliCPU: number, period: number = QUOTA_PERIOD): number {
  if (milliCPU === 0) return 0;
  const quota = Math.trunc((milliCPU * period) / MILLI_CPU_TO_CPU);
  return quota < MIN_QUOTA_PERIOD ? MIN_QUOTA_PERIOD : quota;
}

/**
 * calculateLinuxResources: shares from the CPU request (from the limit when only a limit is set),
 * quota from the CPU limit with the 100 ms period (CFS quota enforced: the kubelet's default), the
 * memory limit as it is; on cgroup2, a memory OOM kills the whole container (memory.oom.group).
 */
export function calculateLinuxResources(
  cpuRequest: Quantity | undefined,
  cpuLimit: Quantity | undefined,
  memoryLimit: Quantity | undefined,
  node: Pick<NodeInfo, 'cgroup2Unified'>,
): LinuxContainerResources {
  const r: LinuxContainerResources = {};
  r.cpu_shares = cpuRequest === undefined && cpuLimit !== undefined ? milliCPUToShares(cpuLimit.milliValue()) : milliCPUToShares(cpuRequest?.milliValue() ?? 0);
  const mem = memoryLimit?.value() ?? 0;
  if (mem !== 0) r.memory_limit_in_bytes = mem;
  r.cpu_quota = milliCPUToQuota(cpuLimit?.milliValue() ?? 0, QUOTA_PERIOD);
  r.cpu_period = QUOTA_PERIOD;
  if (node.cgroup2Unified) r.unified = { 'memory.oom.group': '1' };
  return r;
}

/** generateLinuxContainerResources with the kubelet's default feature gates (no MemoryQoS, swap off). */
export function containerResources(pod: Pod, container: Container, node: NodeInfo): LinuxContainerResources {
  const res = container.resources;
  const cpuRequest = res?.requests && 'cpu' in res.requests ? quantityOf(res.requests, 'cpu') : undefined;
  const r = calculateLinuxResources(cpuRequest, quantityOf(res?.limits, 'cpu') ?? Quantity.ZERO, quantityOf(res?.limits, 'memory'), node);
  r.oom_score_adj = containerOOMScoreAdjust(pod, container, node.memoryCapacity);
  r.hugepage_limits = hugepageLimits(res?.limits, node.hugePageSizes);
  // NoSwap: memory+swap limited to the memory limit (v1), or no swap at all (v2).
  if (node.swapController) {
    if (!node.cgroup2Unified) r.memory_swap_limit_in_bytes = r.memory_limit_in_bytes ?? 0;
    else r.unified = { ...r.unified, 'memory.swap.max': '0' };
  }
  return r;
}

/** Every huge page size of the host, limited to 0 unless the container's limits name it. */
export function hugepageLimits(limits: ResourceList | undefined, sizes: string[]): HugepageLimit[] {
  const wanted = new Map<string, number>();
  for (const [name, q] of Object.entries(limits ?? {})) {
    if (!name.startsWith('hugepages-')) continue;
    try {
      wanted.set(hugePageUnitSize(Quantity.parse(name.slice('hugepages-'.length)).value()), Quantity.parse(q).value());
    } catch {
      // not a size: the kubelet logs and skips it
    }
  }
  return sizes.map((page_size) => ({ page_size, limit: wanted.get(page_size) ?? 0 }));
}

/**
 * The pod's requests or limits (component-helpers PodRequests/PodLimits, no overhead): the sum
 * over its containers, raised to any init container's own value, resource by resource.
 */
export function podResourceList(pod: Pod, kind: 'requests' | 'limits'): Map<string, Quantity> {
  const out = new Map<string, Quantity>();
  for (const c of pod.spec.containers) {
    for (const [name, v] of Object.entries(c.resources?.[kind] ?? {})) out.set(name, (out.get(name) ?? Quantity.ZERO).add(Quantity.parse(v)));
  }
  for (const c of pod.spec.initContainers ?? []) {
    for (const [name, v] of Object.entries(c.resources?.[kind] ?? {})) {
      const q = Quantity.parse(v);
      const cur = out.get(name);
      if (!cur || q.cmp(cur) > 0) out.set(name, q);
    }
  }
  return out;
}

/** The sandbox's resources (calculateSandboxResources): the pod's requests and limits as one container's. */
export function sandboxResources(pod: Pod, node: NodeInfo): LinuxContainerResources {
  const req = podResourceList(pod, 'requests');
  const lim = podResourceList(pod, 'limits');
  return calculateLinuxResources(req.get('cpu'), lim.get('cpu') ?? Quantity.ZERO, lim.get('memory') ?? Quantity.ZERO, node);
}

/** The QoS cgroup a pod's cgroup sits in: kubepods for Guaranteed, kubepods/<class> for the others. */
export function qosCgroupName(pod: Pod): string[] {
  const qos = podQOS(pod);
  return qos === 'Guaranteed' ? ['kubepods'] : ['kubepods', qos.toLowerCase()];
}

/**
 * The pod's cgroup as the cgroupfs driver names it: "/<cgroup root>/kubepods[/<qos>]/pod<uid>"
 * (the kubelet's --cgroup-root, "/" by default).
 */
export function podCgroupParent(pod: Pod, cgroupRoot = '/'): string {
  const root = cgroupRoot.split('/').filter(Boolean);
  return '/' + [...root, ...qosCgroupName(pod), `pod${pod.metadata.uid}`].join('/');
}
