import type { StatusRequest__Output } from '../../../api/generated/runtime/v1/StatusRequest.js';
import type { StatusResponse } from '../../../api/generated/runtime/v1/StatusResponse.js';
import type { RuntimeContext } from '../context.js';
import { recursiveReadOnlySupported } from './mounts.js';

export async function status(ctx: RuntimeContext, req: StatusRequest__Output): Promise<StatusResponse> {
  const info: Record<string, string> = {};
  if (req.verbose) {
    info.config = JSON.stringify(ctx.config);
    info.podCidr = ctx.podCidr;
  }
  const handlers = ['', ...ctx.config.containerizers.filter((c) => c !== '')];
  return {
    status: {
      conditions: [
        { type: 'RuntimeReady', status: true, reason: '', message: '' },
        {
          type: 'NetworkReady',
          status: false,
          reason: 'NetworkPluginNotReady',
          message: 'CNI is not implemented yet: POD-network pods get a private network namespace with loopback only',
        },
      ],
    },
    runtime_handlers: [...new Set(handlers)].map((name) => ({
      name,
      features: { recursive_read_only_mounts: recursiveReadOnlySupported(), user_namespaces: false },
    })),
    features: { supplemental_groups_policy: false },
    info,
  };
}
