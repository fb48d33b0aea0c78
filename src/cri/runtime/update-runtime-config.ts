import { isIP } from 'node:net';
import type { UpdateRuntimeConfigRequest__Output } from '../../../api/generated/runtime/v1/UpdateRuntimeConfigRequest.js';
import type { UpdateRuntimeConfigResponse } from '../../../api/generated/runtime/v1/UpdateRuntimeConfigResponse.js';
import type { RuntimeContext } from '../context.js';
import { invalidArgument } from '../../errors.js';

/**
 * kubelet sends the node's pod CIDR(s) at start ("10.244.1.0/24" or, dual-stack,
 * "10.244.1.0/24,fd00:10:244:1::/64"). They are kept (and shown by verbose Status); with
 * cni_conf_template set and no valid CNI config, a config is written from the template, as
 * containerd does on every call.
 */
export async function updateRuntimeConfig(ctx: RuntimeContext, req: UpdateRuntimeConfigRequest__Output): Promise<UpdateRuntimeConfigResponse> {
  const text = req.runtime_config?.network_config?.pod_cidr ?? '';
  if (!text) return {};
  const cidrs = parsePodCidrs(text);
  const cidr = cidrs.join(',');
  if (cidr !== ctx.podCidr) {
    ctx.podCidr = cidr;
    ctx.log.info('pod CIDR updated', { podCidr: cidr });
  }
  await ctx.network?.podCidr(cidrs);
  return {};
}

/** A comma-separated list of IPv4/IPv6 CIDRs (spaces around the commas allowed, as containerd). */
export function parsePodCidrs(text: string): string[] {
  return text.split(',').map((part) => {
    const c = part.trim();
    const slash = c.indexOf('/');
    const family = slash > 0 ? isIP(c.slice(0, slash)) : 0;
    const bits = c.slice(slash + 1);
    const max = family === 4 ? 32 : 128;
    if (!family || !/^\d{1,3}$/.test(bits) || Number(bits) > max) {
      throw invalidArgument(`runtime_config.network_config.pod_cidr "${text}": "${c}" is not an IPv4 or IPv6 CIDR (such as 10.244.1.0/24 or fd00:10:244::/64)`);
    }
    return c;
  });
}
