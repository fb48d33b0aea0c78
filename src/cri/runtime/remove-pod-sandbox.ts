import type { RemovePodSandboxRequest__Output } from '../../../api/generated/runtime/v1/RemovePodSandboxRequest.js';
import type { RemovePodSandboxResponse } from '../../../api/generated/runtime/v1/RemovePodSandboxResponse.js';
import { podId, type RuntimeContext } from '../context.js';
import { invalidArgument } from '../../errors.js';
import { stopSandbox } from './stop-pod-sandbox.js';
import { removeContainerRecord } from './remove-container.js';
import { findSandbox } from './common.js';
import { podFields } from '../../log.js';

/** Idempotent. Stops the pod if it still runs, then deletes everything it left. */
export async function removePodSandbox(ctx: RuntimeContext, req: RemovePodSandboxRequest__Output): Promise<RemovePodSandboxResponse> {
  if (!req.pod_sandbox_id) throw invalidArgument('pod_sandbox_id is required');
  const sandbox = findSandbox(ctx, req.pod_sandbox_id);
  if (!sandbox) return {};
  await stopSandbox(ctx, sandbox.id);
  for (const c of ctx.containers.list().filter((x) => x.sandboxId === sandbox.id)) await removeContainerRecord(ctx, c);
  await ctx.containerizer.remove(podId(sandbox.id));
  const last = ctx.sandboxes.get(sandbox.id) ?? sandbox;
  ctx.sandboxes.delete(sandbox.id);
  ctx.events.emit('CONTAINER_DELETED_EVENT', sandbox.id, sandbox.id, last);
  ctx.names.releaseId(sandbox.id);
  ctx.stats.forget(sandbox.id);
  ctx.log.info('pod sandbox removed', { pod: sandbox.id, ...podFields(last.config.metadata) });
  return {};
}
