import type { PortForwardRequest__Output } from '../../../api/generated/runtime/v1/PortForwardRequest.js';
import type { PortForwardResponse } from '../../../api/generated/runtime/v1/PortForwardResponse.js';
import { failedPrecondition, invalidArgument } from '../../errors.js';
import type { RuntimeContext } from '../context.js';
import { mustSandbox } from './common.js';

/** A URL on the stream server; each forwarded connection dials localhost:<port> in the pod's netns. */
export async function portForward(ctx: RuntimeContext, req: PortForwardRequest__Output): Promise<PortForwardResponse> {
  const s = mustSandbox(ctx, req.pod_sandbox_id);
  for (const p of req.port) if (!Number.isInteger(p) || p < 1 || p > 65535) throw invalidArgument(`port: ${p} is not a TCP port`);
  if (s.state !== 'SANDBOX_READY') throw failedPrecondition(`pod sandbox ${s.id} is not ready`);
  return { url: ctx.streams.getPortForwardUrl({ ...req, pod_sandbox_id: s.id }) };
}
