import type { StartContainerRequest__Output } from '../../../api/generated/runtime/v1/StartContainerRequest.js';
import type { StartContainerResponse } from '../../../api/generated/runtime/v1/StartContainerResponse.js';
import { containerId, nowNanos, type RuntimeContext } from '../context.js';
import { failedPrecondition, withContext } from '../../errors.js';
import { latest, mustContainer } from './common.js';

export async function startContainer(ctx: RuntimeContext, req: StartContainerRequest__Output): Promise<StartContainerResponse> {
  const c = mustContainer(ctx, req.container_id);
  if (c.state !== 'CONTAINER_CREATED') {
    // A launch that failed behind CreateContainer's answer: say why, as the Start that waited for it would.
    const why = c.reason === 'StartError' && c.startedAt === '0' ? `: its launch failed (StartError): ${c.message}` : '';
    throw failedPrecondition(`container ${c.id} is ${c.state}, not CONTAINER_CREATED${why}`);
  }
  // An exit recorded meanwhile sends its STOPPED event after our STARTED, not before.
  ctx.events.starting.add(c.id);
  let startedAt = '0';
  try {
    // The launch CreateContainer answered before (container-launch.ts): held, or failed.
    const launch = ctx.launches.get(c.id);
    if (launch) {
      launch.go();
      await launch.done;
    }
    // Taken before the start byte: a short command can exit before start() even returns.
    startedAt = nowNanos();
    await ctx.containerizer.start(containerId(c));
  } catch (err) {
    ctx.events.starting.delete(c.id);
    if (ctx.containers.get(c.id)?.state === 'CONTAINER_EXITED') ctx.events.emit('CONTAINER_STOPPED_EVENT', c.id, c.sandboxId);
    throw withContext(err, `cannot start container ${c.id}`);
  }
  ctx.events.starting.delete(c.id);
  // A created container's samples do not tell of its command (a docker one had no process yet).
  ctx.stats.invalidate(c.id);
  const cur = ctx.containers.get(c.id);
  if (cur?.state === 'CONTAINER_CREATED') ctx.containers.update(c.id, { state: 'CONTAINER_RUNNING', startedAt });
  else if (cur) ctx.containers.update(c.id, { startedAt, finishedAt: latest(cur.finishedAt, startedAt) });
  ctx.events.emit('CONTAINER_STARTED_EVENT', c.id, c.sandboxId);
  if (cur?.state === 'CONTAINER_EXITED') ctx.events.emit('CONTAINER_STOPPED_EVENT', c.id, c.sandboxId);
  ctx.log.info('container started', { container: c.id });
  return {};
}
