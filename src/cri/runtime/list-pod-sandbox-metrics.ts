import type { ListPodSandboxMetricsRequest__Output } from '../../../api/generated/runtime/v1/ListPodSandboxMetricsRequest.js';
import type { ListPodSandboxMetricsResponse } from '../../../api/generated/runtime/v1/ListPodSandboxMetricsResponse.js';
import type { PodSandboxMetrics } from '../../../api/generated/runtime/v1/PodSandboxMetrics.js';
import type { RuntimeContext } from '../context.js';
import { computeMetrics, statfsCache } from '../pod-metrics.js';
import { containerSample, podSample } from './stats-common.js';
import { containerName, type ContainerRecord } from '../../store/metadata.js';

/**
 * Every ready pod's metrics and its running (and created) containers', from the stats sampler's
 * samples, as containerd lists only ready pods. Label values are [id, name, image] (pod-metrics.ts).
 */
export async function listPodSandboxMetrics(ctx: RuntimeContext, _req: ListPodSandboxMetricsRequest__Output): Promise<ListPodSandboxMetricsResponse> {
  const statfs = statfsCache();
  const pods: PodSandboxMetrics[] = [];
  const byPod = new Map<string, ContainerRecord[]>();
  for (const c of ctx.containers.list()) byPod.set(c.sandboxId, [...(byPod.get(c.sandboxId) ?? []), c]);
  for (const s of ctx.sandboxes.list()) {
    const sample = await podSample(ctx, s);
    if (!sample) continue;
    const out: PodSandboxMetrics = { pod_sandbox_id: s.id, metrics: computeMetrics('pod', [s.id, 'POD', ''], { stats: sample.stats, cpu: sample.cpu }), container_metrics: [] };
    for (const c of byPod.get(s.id) ?? []) {
      const cs = await containerSample(ctx, c);
      if (!cs) continue;
      out.container_metrics!.push({
        container_id: c.id,
        metrics: computeMetrics('container', [c.id, containerName(c.config, s.config), c.imageRef], { stats: cs.stats, cpu: cs.cpu, resources: c.mesos.resources, statfs }),
      });
    }
    pods.push(out);
  }
  return { pod_metrics: pods };
}
