import type { ContainerStatsRequest__Output } from '../../../api/generated/runtime/v1/ContainerStatsRequest.js';
import type { ContainerStatsResponse } from '../../../api/generated/runtime/v1/ContainerStatsResponse.js';
import type { RuntimeContext } from '../context.js';
import { mustContainer } from './common.js';
import { containerStats as statsOf } from './stats-common.js';

export async function containerStats(ctx: RuntimeContext, req: ContainerStatsRequest__Output): Promise<ContainerStatsResponse> {
  return { stats: await statsOf(ctx, mustContainer(ctx, req.container_id)) };
}
