import type { StatusRequest__Output } from '../../../api/generated/runtime/v1/StatusRequest.js';
import type { StatusResponse } from '../../../api/generated/runtime/v1/StatusResponse.js';
import type { RuntimeCondition } from '../../../api/generated/runtime/v1/RuntimeCondition.js';
import type { RuntimeContext } from '../context.js';
import { recursiveReadOnlySupported } from './mounts.js';

export async function status(ctx: RuntimeContext, req: StatusRequest__Output): Promise<StatusResponse> {
  const info: Record<string, string> = {};
  if (req.verbose) {
    info.config = JSON.stringify(ctx.config);
    info.podCidr = ctx.podCidr;
  }
  const handlers = ['', ...ctx.config.containerizers.filter((c) => c !== '')];
  const conditions: RuntimeCondition[] = [
    { type: 'RuntimeReady', status: true, reason: '', message: '' },
    {
      type: 'NetworkReady',
      status: false,
      reason: 'NetworkPluginNotReady',
      message: 'CNI is not implemented yet: POD-network pods get a private network namespace with loopback only',
    },
  ];
  const quarantined = ctx.quarantine.list();
  if (quarantined.length) {
    conditions.push({
      type: 'CheckpointsReadable',
      status: false,
      reason: 'CheckpointsQuarantined',
      message:
        `${quarantined.length} checkpoint(s) could not be read at recovery and were moved aside; their containers are left alone: ` +
        quarantined.map((q) => `${q.from} → ${q.to || '(left in place)'} (${q.error})`).join('; '),
    });
  }
  return {
    status: { conditions },
    runtime_handlers: [...new Set(handlers)].map((name) => ({
      name,
      features: { recursive_read_only_mounts: recursiveReadOnlySupported(), user_namespaces: false },
    })),
    features: { supplemental_groups_policy: false },
    info,
  };
}
