import type { StartContainerRequest__Output } from '../../../api/generated/runtime/v1/StartContainerRequest.js';
import type { StartContainerResponse } from '../../../api/generated/runtime/v1/StartContainerResponse.js';
import { containerId, nowNanos, type RuntimeContext } from '../context.js';
import { failedPrecondition } from '../errors.js';
import { mustContainer } from './common.js';

export async function startContainer(ctx: RuntimeContext, req: StartContainerRequest__Output): Promise<StartContainerResponse> {
  const c = mustContainer(ctx, req.container_id);
  if (c.state !== 'CONTAINER_CREATED') throw failedPrecondition(`container ${c.id} is ${c.state}, not CONTAINER_CREATED`);
  try {
    await ctx.containerizer.start(containerId(c));
  } catch (err) {
    throw failedPrecondition(`cannot start container ${c.id}: ${(err as Error).message}`);
  }
  // The container may already have exited and been recorded; only move CREATED forward.
  if (ctx.containers.get(c.id)?.state === 'CONTAINER_CREATED') ctx.containers.update(c.id, { state: 'CONTAINER_RUNNING', startedAt: nowNanos() });
  else ctx.containers.update(c.id, { startedAt: nowNanos() });
  ctx.log.info('container started', { container: c.id });
  return {};
}
