import type { PodSandboxStatusRequest__Output } from '../../../api/generated/runtime/v1/PodSandboxStatusRequest.js';
import type { PodSandboxStatusResponse } from '../../../api/generated/runtime/v1/PodSandboxStatusResponse.js';
import { podId, type RuntimeContext } from '../context.js';
import { mustSandbox } from './common.js';
import type { PodSandboxStatus } from '../../../api/generated/runtime/v1/PodSandboxStatus.js';
import type { SandboxRecord } from '../../store/metadata.js';
import { namespaceModes } from './common.js';

export async function podSandboxStatus(ctx: RuntimeContext, req: PodSandboxStatusRequest__Output): Promise<PodSandboxStatusResponse> {
  const s = mustSandbox(ctx, req.pod_sandbox_id);
  const { status, info } = await sandboxStatusOf(ctx, s, req.verbose);
  return { status, info, containers_statuses: [], timestamp: 0 };
}

/** A pod's PodSandboxStatus from its record (also for GetContainerEvents). */
export async function sandboxStatusOf(ctx: RuntimeContext, s: SandboxRecord, verbose = false): Promise<{ status: PodSandboxStatus; info: Record<string, string> }> {
  const modes = namespaceModes(s.config.linux?.security_context?.namespace_options);
  const pid = ctx.containerizer.pid(podId(s.id));
  // The containerizer may not know the pod (its runtime state is gone after a reboot): no addresses then.
  const net = modes.network === 'NODE' ? undefined : await ctx.containerizer.status(podId(s.id)).catch(() => undefined);
  const [ip = '', ...more] = net?.ips ?? [];
  const info: Record<string, string> = {};
  if (verbose) {
    info.info = JSON.stringify({
      pid: pid ?? 0,
      runtimeDir: s.mesos.runtimeDir,
      cgroupParent: s.mesos.cgroupParent ?? '',
      config: s.config,
      ...(net?.networkProblem ? { networkProblem: net.networkProblem } : {}),
    });
  }
  const status: PodSandboxStatus = {
    id: s.id,
    metadata: s.config.metadata,
    state: s.state,
    created_at: s.createdAt,
    // From the CNI ADD result; a NODE pod uses the host's addresses, which the kubelet knows.
    network: { ip, additional_ips: more.map((x: string) => ({ ip: x })) },
    linux: { namespaces: { options: { network: modes.network, pid: modes.pid === 'NODE' ? 'NODE' : 'POD', ipc: modes.ipc } } },
    labels: s.config.labels,
    annotations: s.config.annotations,
    runtime_handler: s.runtimeHandler,
  };
  return { status, info };
}
