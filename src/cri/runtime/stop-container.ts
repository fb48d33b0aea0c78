import type { StopContainerRequest__Output } from '../../../api/generated/runtime/v1/StopContainerRequest.js';
import type { StopContainerResponse } from '../../../api/generated/runtime/v1/StopContainerResponse.js';
import { containerId, type RuntimeContext } from '../context.js';
import { invalidArgument } from '../../errors.js';
import { findContainer, recordTermination, signalNumber } from './common.js';

/** Signal, wait up to the timeout, then destroy (freeze, SIGKILL, thaw). Unknown ids are fine. */
export async function stopContainer(ctx: RuntimeContext, req: StopContainerRequest__Output): Promise<StopContainerResponse> {
  if (!req.container_id) throw invalidArgument('container_id is required');
  const c = findContainer(ctx, req.container_id);
  if (!c) return {};
  const id = containerId(c);
  const timeoutMs = Math.max(0, Number(req.timeout)) * 1000;
  if (c.state === 'CONTAINER_RUNNING' && timeoutMs > 0) {
    const signal = signalNumber(c.stopSignal || undefined);
    if (await ctx.containerizer.kill(id, signal)) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([ctx.containerizer.wait(id), new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
      clearTimeout(timer);
    }
  }
  const t = await ctx.containerizer.destroy(id);
  if (t) recordTermination(ctx, c.id, t);
  return {};
}
