import type { PodSandboxStatusRequest__Output } from '../../../api/generated/runtime/v1/PodSandboxStatusRequest.js';
import type { PodSandboxStatusResponse } from '../../../api/generated/runtime/v1/PodSandboxStatusResponse.js';
import { podId, type RuntimeContext } from '../context.js';
import { mustSandbox } from './common.js';
import type { PodSandboxStatus } from '../../../api/generated/runtime/v1/PodSandboxStatus.js';
import type { SandboxRecord } from '../../store/metadata.js';
import { namespaceModes } from './common.js';
import { type Encoded, encodedOnce, responseCache } from '../encoded.js';

/** Each record's non-verbose answer, encoded once for each set of addresses (src/cri/encoded.ts). */
const responses = responseCache<SandboxRecord>();

export async function podSandboxStatus(ctx: RuntimeContext, req: PodSandboxStatusRequest__Output): Promise<PodSandboxStatusResponse | Encoded> {
  const s = mustSandbox(ctx, req.pod_sandbox_id);
  if (!req.verbose) {
    const net = await networkOf(ctx, s);
    const ips = net?.ips ?? [];
    return encodedOnce(responses, s, 'PodSandboxStatus', () => ({ status: statusOf(s, ips), info: {}, containers_statuses: [], timestamp: 0 }), ips.join(' '));
  }
  const { status, info } = await sandboxStatusOf(ctx, s, req.verbose);
  return { status, info, containers_statuses: [], timestamp: 0 };
}

/** The containerizer may not know the pod (its runtime state is gone after a reboot): no addresses then. */
async function networkOf(ctx: RuntimeContext, s: SandboxRecord) {
  const modes = namespaceModes(s.config.linux?.security_context?.namespace_options);
  return modes.network === 'NODE' ? undefined : await ctx.containerizer.status(podId(s.id)).catch(() => undefined);
}

/** A pod's PodSandboxStatus from its record (also for GetContainerEvents). */
export async function sandboxStatusOf(ctx: RuntimeContext, s: SandboxRecord, verbose = false): Promise<{ status: PodSandboxStatus; info: Record<string, string> }> {
  const pid = ctx.containerizer.pid(podId(s.id));
  const net = await networkOf(ctx, s);
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
  return { status: statusOf(s, net?.ips ?? []), info };
}

function statusOf(s: SandboxRecord, ips: string[]): PodSandboxStatus {
  const modes = namespaceModes(s.config.linux?.security_context?.namespace_options);
  const [ip = '', ...more] = ips;
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
  return status;
}
