import { existsSync } from 'node:fs';
import type { ReopenContainerLogRequest__Output } from '../../../api/generated/runtime/v1/ReopenContainerLogRequest.js';
import type { ReopenContainerLogResponse } from '../../../api/generated/runtime/v1/ReopenContainerLogResponse.js';
import { containerId, type RuntimeContext } from '../context.js';
import { failedPrecondition, internal } from '../../errors.js';
import { mustContainer } from './common.js';

/** Like containerd: only a running container reopens; the helper recreates the file at the same path. */
export async function reopenContainerLog(ctx: RuntimeContext, req: ReopenContainerLogRequest__Output): Promise<ReopenContainerLogResponse> {
  const c = mustContainer(ctx, req.container_id);
  if (c.state !== 'CONTAINER_RUNNING') throw failedPrecondition(`container ${c.id} is not running`);
  if (!c.logPath) return {};
  await ctx.containerizer.control(containerId(c), 'reopen');
  for (let i = 0; i < 200 && !existsSync(c.logPath); i++) await new Promise((r) => setTimeout(r, 10));
  if (!existsSync(c.logPath)) throw internal(`container ${c.id} did not reopen its log at ${c.logPath}`);
  return {};
}
