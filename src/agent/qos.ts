// The pod's QoS class (pkg/apis/core/v1/helper/qos ComputePodQOS) and a container's OOM score
// adjustment (pkg/kubelet/qos/policy.go), computed as the kubelet does.
import { Quantity, quantityOf } from './quantity.js';
import type { Container, Pod, QOSClass } from './types.js';

const QOS_RESOURCES = ['cpu', 'memory'];
export const GUARANTEED_OOM_SCORE_ADJ = -997;
export const BESTEFFORT_OOM_SCORE_ADJ = 1000;
export const SYSTEM_NODE_CRITICAL = 'system-node-critical';

/**
 * Guaranteed when every container (init ones too) has cpu and memory limits and every request
 * equals its limit; BestEffort when nothing asks for cpu or memory; Burstable otherwise.
 */
export function podQOS(pod: Pod): QOSClass {
  const requests = new Map<string, Quantity>();
  const limits = new Map<string, Quantity>();
  let guaranteed = true;
  for (const c of [...pod.spec.containers, ...(pod.spec.initContainers ?? [])]) {
    for (const name of QOS_RESOURCES) {
      const req = quantityOf(c.resources?.requests, name);
      if (req && req.sign() > 0) requests.set(name, (requests.get(name) ?? Quantity.ZERO).add(req));
    }
    const found = new Set<string>();
    for (const name of QOS_RESOURCES) {
      const lim = quantityOf(c.resources?.limits, name);
      if (lim && lim.sign() > 0) {
        found.add(name);
        limits.set(name, (limits.get(name) ?? Quantity.ZERO).add(lim));
      }
    }
    if (!QOS_RESOURCES.every((r) => found.has(r))) guaranteed = false;
  }
  if (requests.size === 0 && limits.size === 0) return 'BestEffort';
  if (guaranteed) {
    for (const [name, req] of requests) {
      const lim = limits.get(name);
      if (!lim || lim.cmp(req) !== 0) {
        guaranteed = false;
        break;
      }
    }
  }
  return guaranteed && requests.size === limits.size ? 'Guaranteed' : 'Burstable';
}

/** Static pods are critical pods; with this priority class they are node-critical. */
export function isNodeCriticalPod(pod: Pod): boolean {
  return pod.spec.priorityClassName === SYSTEM_NODE_CRITICAL;
}

/**
 * -997 for node-critical and Guaranteed pods, 1000 for BestEffort; a Burstable container gets
 * 1000 - 1000 * memory request / node memory, kept within [3, 999].
 */
export function containerOOMScoreAdjust(pod: Pod, container: Container, memoryCapacity: number): number {
  if (isNodeCriticalPod(pod)) return GUARANTEED_OOM_SCORE_ADJ;
  const qos = podQOS(pod);
  if (qos === 'Guaranteed') return GUARANTEED_OOM_SCORE_ADJ;
  if (qos === 'BestEffort') return BESTEFFORT_OOM_SCORE_ADJ;
  const memoryRequest = BigInt(quantityOf(container.resources?.requests, 'memory')?.value() ?? 0);
  // Go's integer division truncates towards zero, as BigInt's does.
  const adj = Number(1000n - (1000n * memoryRequest) / BigInt(Math.max(1, memoryCapacity)));
  if (adj < 1000 + GUARANTEED_OOM_SCORE_ADJ) return 1000 + GUARANTEED_OOM_SCORE_ADJ;
  if (adj === BESTEFFORT_OOM_SCORE_ADJ) return adj - 1;
  return adj;
}
