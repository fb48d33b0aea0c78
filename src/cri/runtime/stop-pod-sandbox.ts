import type { StopPodSandboxRequest__Output } from '../../../api/generated/runtime/v1/StopPodSandboxRequest.js';
import type { StopPodSandboxResponse } from '../../../api/generated/runtime/v1/StopPodSandboxResponse.js';
import { containerId, podId, type RuntimeContext } from '../context.js';
import { invalidArgument } from '../../errors.js';
import { findSandbox, recordTermination } from './common.js';

/** Idempotent: an unknown or already stopped pod is fine. */
export async function stopPodSandbox(ctx: RuntimeContext, req: StopPodSandboxRequest__Output): Promise<StopPodSandboxResponse> {
  if (!req.pod_sandbox_id) throw invalidArgument('pod_sandbox_id is required');
  const sandbox = findSandbox(ctx, req.pod_sandbox_id);
  if (!sandbox) return {};
  await stopSandbox(ctx, sandbox.id);
  return {};
}

export async function stopSandbox(ctx: RuntimeContext, id: string): Promise<void> {
  // Destroying the root destroys every nested container first (Mesos); keep their exit statuses.
  await ctx.containerizer.destroy(podId(id));
  for (const c of ctx.containers.list().filter((x) => x.sandboxId === id)) {
    const t = await ctx.containerizer.wait(containerId(c));
    if (t) recordTermination(ctx, c.id, t);
  }
  if (ctx.sandboxes.get(id)?.state !== 'SANDBOX_NOTREADY') {
    ctx.sandboxes.update(id, { state: 'SANDBOX_NOTREADY' });
    ctx.events.emit('CONTAINER_STOPPED_EVENT', id, id);
    ctx.log.info('pod sandbox stopped', { pod: id });
  }
}
