import type { ListPodSandboxStatsRequest__Output } from '../../../api/generated/runtime/v1/ListPodSandboxStatsRequest.js';
import type { ListPodSandboxStatsResponse } from '../../../api/generated/runtime/v1/ListPodSandboxStatsResponse.js';
import type { RuntimeContext } from '../context.js';
import { matchesLabels } from './common.js';
import { podStats } from './stats-common.js';

export async function listPodSandboxStats(ctx: RuntimeContext, req: ListPodSandboxStatsRequest__Output): Promise<ListPodSandboxStatsResponse> {
  const f = req.filter;
  const items = ctx.sandboxes
    .list()
    .filter((s) => !f?.id || s.id.startsWith(f.id))
    .filter((s) => matchesLabels(s.config.labels, f?.label_selector));
  return { stats: await Promise.all(items.map((s) => podStats(ctx, s))) };
}
