import type { StatusRequest__Output } from '../../../api/generated/runtime/v1/StatusRequest.js';
import type { StatusResponse } from '../../../api/generated/runtime/v1/StatusResponse.js';
import type { RuntimeCondition } from '../../../api/generated/runtime/v1/RuntimeCondition.js';
import type { RuntimeContext } from '../context.js';
import { recursiveReadOnlySupported } from './mounts.js';
import { runtimeHandlers } from './run-pod-sandbox.js';
import { userNamespacesSupported } from './userns.js';

export async function status(ctx: RuntimeContext, req: StatusRequest__Output): Promise<StatusResponse> {
  const info: Record<string, string> = {};
  if (req.verbose) {
    info.config = JSON.stringify(ctx.config);
    info.podCidr = ctx.podCidr;
    const net = ctx.network?.state();
    if (net?.ready) info.cniconfig = JSON.stringify({ file: net.file, network: net.list });
    // The stats sampler's last pass: what it costs (stats-sampler.ts).
    info.stats = JSON.stringify({ windowMs: ctx.stats.windowMs, lastPassMs: Math.round(ctx.stats.lastPass.ms * 10) / 10, lastPassBusyMs: Math.round(ctx.stats.lastPass.busyMs * 10) / 10, objects: ctx.stats.lastPass.objects, full: ctx.stats.lastPass.full, fileReads: ctx.stats.lastPass.fileReads });
  }
  const handlers = runtimeHandlers(ctx.config.containerizers);
  // Pods in user namespaces (userns_options mode POD): the linux launcher on a kernel that can.
  const userns = ctx.config.launcher === 'linux' && userNamespacesSupported();
  const conditions: RuntimeCondition[] = [
    { type: 'RuntimeReady', status: true, reason: '', message: '' },
    networkCondition(ctx),
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
      // Docker pods: the Engine (API 1.41) has no recursive read-only bind mounts, and no user namespaces of ours.
      features: { recursive_read_only_mounts: name !== 'docker' && recursiveReadOnlySupported(), user_namespaces: name !== 'docker' && userns },
    })),
    // Strict keeps the image's /etc/group out of the groups (create-container.ts effectiveGroups).
    features: { supplemental_groups_policy: true },
    info,
  };
}

/** NetworkReady: a valid CNI network is configured (the conf dir is watched). */
function networkCondition(ctx: RuntimeContext): RuntimeCondition {
  const net = ctx.network?.state();
  if (!net) {
    return { type: 'NetworkReady', status: false, reason: 'NetworkPluginNotReady', message: 'the posix launcher has no network isolator: only NODE-network pods run' };
  }
  if (net.ready) return { type: 'NetworkReady', status: true, reason: '', message: '' };
  return { type: 'NetworkReady', status: false, reason: net.reason, message: net.message };
}
