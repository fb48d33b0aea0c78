import type { UpdateContainerResourcesRequest__Output } from '../../../api/generated/runtime/v1/UpdateContainerResourcesRequest.js';
import type { UpdateContainerResourcesResponse } from '../../../api/generated/runtime/v1/UpdateContainerResourcesResponse.js';
import { containerId, type RuntimeContext } from '../context.js';
import { failedPrecondition, invalidArgument, withContext } from '../../errors.js';
import { mustContainer, toLimits } from './common.js';

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
    // A value no isolator can apply is INVALID_ARGUMENT (ResourceError); the kernel refusing
    // one (EBUSY lowering memory below usage) keeps its errno's code. The old record stays.
    throw withContext(err, `updating resources of container ${c.id}`);
  }
  ctx.containers.update(c.id, { config: { ...c.config, linux: { ...c.config.linux!, resources: req.linux } } });
  return {};
}
