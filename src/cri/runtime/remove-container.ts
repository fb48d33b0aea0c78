import type { RemoveContainerRequest__Output } from '../../../api/generated/runtime/v1/RemoveContainerRequest.js';
import type { RemoveContainerResponse } from '../../../api/generated/runtime/v1/RemoveContainerResponse.js';
import type { ContainerRecord } from '../../store/metadata.js';
import { containerId, type RuntimeContext } from '../context.js';
import { invalidArgument } from '../../errors.js';
import { findContainer, recordTermination } from './common.js';

/** Idempotent: destroys a live container first; an unknown id is fine. */
export async function removeContainer(ctx: RuntimeContext, req: RemoveContainerRequest__Output): Promise<RemoveContainerResponse> {
  if (!req.container_id) throw invalidArgument('container_id is required');
  const c = findContainer(ctx, req.container_id);
  if (c) await removeContainerRecord(ctx, c);
  return {};
}

export async function removeContainerRecord(ctx: RuntimeContext, c: ContainerRecord): Promise<void> {
  const id = containerId(c);
  const t = await ctx.containerizer.destroy(id);
  if (t) recordTermination(ctx, c.id, t);
  await ctx.containerizer.remove(id);
  ctx.containers.delete(c.id);
  ctx.events.emit('CONTAINER_DELETED_EVENT', c.id, c.sandboxId);
  ctx.names.releaseId(c.id);
  ctx.stats.forget(c.id);
  ctx.log.info('container removed', { container: c.id, pod: c.sandboxId });
}
