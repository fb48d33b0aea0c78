import type { UpdateRuntimeConfigRequest__Output } from '../../../api/generated/runtime/v1/UpdateRuntimeConfigRequest.js';
import type { UpdateRuntimeConfigResponse } from '../../../api/generated/runtime/v1/UpdateRuntimeConfigResponse.js';
import type { RuntimeContext } from '../context.js';
import { invalidArgument } from '../../errors.js';

/**
 * kubelet sends the node's pod CIDR at start. It is kept (and shown by verbose Status); with
 * cni_conf_template set and no CNI config in the conf dir, a config is written from the template.
 */
export async function updateRuntimeConfig(ctx: RuntimeContext, req: UpdateRuntimeConfigRequest__Output): Promise<UpdateRuntimeConfigResponse> {
  const cidr = req.runtime_config?.network_config?.pod_cidr ?? '';
  if (cidr && !/^[0-9a-fA-F:.]+\/\d{1,3}(,[0-9a-fA-F:.]+\/\d{1,3})*$/.test(cidr)) {
    throw invalidArgument(`runtime_config.network_config.pod_cidr "${cidr}" is not a CIDR list`);
  }
  if (cidr && cidr !== ctx.podCidr) {
    ctx.podCidr = cidr;
    ctx.log.info('pod CIDR updated', { podCidr: cidr });
    await ctx.network?.podCidr(cidr);
  }
  return {};
}
