import type { UpdateContainerResourcesRequest__Output } from '../../../api/generated/runtime/v1/UpdateContainerResourcesRequest.js';
import type { UpdateContainerResourcesResponse } from '../../../api/generated/runtime/v1/UpdateContainerResourcesResponse.js';
import { containerId, type RuntimeContext } from '../context.js';
import { failedPrecondition, invalidArgument } from '../errors.js';
import { mustContainer, toLimits } from './common.js';
import { ResourceError } from '../../containerizer/mesos/isolator.js';

export async function updateContainerResources(ctx: RuntimeContext, req: UpdateContainerResourcesRequest__Output): Promise<UpdateContainerResourcesResponse> {
  const c = mustContainer(ctx, req.container_id);
  if (!req.linux) throw invalidArgument('linux resources are required');
  if (c.state !== 'CONTAINER_CREATED' && c.state !== 'CONTAINER_RUNNING') {
    throw failedPrecondition(`container ${c.id} is ${c.state}; only created or running containers can be updated`);
  }
  const limits = toLimits(req.linux, 'linux');
  try {
    await ctx.containerizer.update(containerId(c), limits);
  } catch (err) {
    // A value no isolator can apply is the request's fault (INVALID_ARGUMENT, passed through).
    if (err instanceof ResourceError) throw err;
    // The kernel may refuse (e.g. EBUSY lowering memory below usage): say so, keep the old record.
    throw failedPrecondition(`updating resources of container ${c.id}: ${(err as Error).message}`);
  }
  ctx.containers.update(c.id, { config: { ...c.config, linux: { ...c.config.linux!, resources: req.linux } } });
  return {};
}
