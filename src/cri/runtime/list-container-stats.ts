import type { ListContainerStatsRequest__Output } from '../../../api/generated/runtime/v1/ListContainerStatsRequest.js';
import type { ListContainerStatsResponse } from '../../../api/generated/runtime/v1/ListContainerStatsResponse.js';
import type { RuntimeContext } from '../context.js';
import { matchesLabels } from './common.js';
import { containerStats } from './stats-common.js';

export async function listContainerStats(ctx: RuntimeContext, req: ListContainerStatsRequest__Output): Promise<ListContainerStatsResponse> {
  const f = req.filter;
  const items = ctx.containers
    .list()
    .filter((c) => !f?.id || c.id.startsWith(f.id))
    .filter((c) => !f?.pod_sandbox_id || c.sandboxId.startsWith(f.pod_sandbox_id))
    .filter((c) => matchesLabels(c.config.labels, f?.label_selector));
  return { stats: await Promise.all(items.map((c) => containerStats(ctx, c))) };
}
