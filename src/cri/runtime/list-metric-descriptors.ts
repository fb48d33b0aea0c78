import type { ListMetricDescriptorsRequest__Output } from '../../../api/generated/runtime/v1/ListMetricDescriptorsRequest.js';
import type { ListMetricDescriptorsResponse } from '../../../api/generated/runtime/v1/ListMetricDescriptorsResponse.js';
import type { RuntimeContext } from '../context.js';
import { metricDescriptors } from '../pod-metrics.js';

/** The cAdvisor-named metrics ListPodSandboxMetrics sends (pod-metrics.ts). */
export async function listMetricDescriptors(_ctx: RuntimeContext, _req: ListMetricDescriptorsRequest__Output): Promise<ListMetricDescriptorsResponse> {
  return { descriptors: metricDescriptors() };
}
