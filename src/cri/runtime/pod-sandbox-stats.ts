import type { PodSandboxStatsRequest__Output } from '../../../api/generated/runtime/v1/PodSandboxStatsRequest.js';
import type { PodSandboxStatsResponse } from '../../../api/generated/runtime/v1/PodSandboxStatsResponse.js';
import type { RuntimeContext } from '../context.js';
import { mustSandbox } from './common.js';
import { podStats } from './stats-common.js';

export async function podSandboxStats(ctx: RuntimeContext, req: PodSandboxStatsRequest__Output): Promise<PodSandboxStatsResponse> {
  return { stats: await podStats(ctx, mustSandbox(ctx, req.pod_sandbox_id)) };
}
