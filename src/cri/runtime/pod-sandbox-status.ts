import type { PodSandboxStatusRequest__Output } from '../../../api/generated/runtime/v1/PodSandboxStatusRequest.js';
import type { PodSandboxStatusResponse } from '../../../api/generated/runtime/v1/PodSandboxStatusResponse.js';
import { podId, type RuntimeContext } from '../context.js';
import { mustSandbox } from './common.js';
import { namespaceModes } from './common.js';

export async function podSandboxStatus(ctx: RuntimeContext, req: PodSandboxStatusRequest__Output): Promise<PodSandboxStatusResponse> {
  const s = mustSandbox(ctx, req.pod_sandbox_id);
  const modes = namespaceModes(s.config.linux?.security_context?.namespace_options);
  const pid = ctx.containerizer.pid(podId(s.id));
  const info: Record<string, string> = {};
  if (req.verbose) {
    info.info = JSON.stringify({ pid: pid ?? 0, runtimeDir: s.mesos.runtimeDir, cgroupParent: s.mesos.cgroupParent ?? '', config: s.config });
  }
  return {
    status: {
      id: s.id,
      metadata: s.config.metadata,
      state: s.state,
      created_at: s.createdAt,
      // No CNI yet: a POD-network pod has only loopback, a NODE pod uses the host's address.
      network: { ip: '', additional_ips: [] },
      linux: { namespaces: { options: { network: modes.network, pid: modes.pid === 'NODE' ? 'NODE' : 'POD', ipc: modes.ipc } } },
      labels: s.config.labels,
      annotations: s.config.annotations,
      runtime_handler: s.runtimeHandler,
    },
    info,
    containers_statuses: [],
    timestamp: 0,
  };
}
