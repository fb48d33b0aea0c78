import type { ExecSyncRequest__Output } from '../../../api/generated/runtime/v1/ExecSyncRequest.js';
import type { ExecSyncResponse } from '../../../api/generated/runtime/v1/ExecSyncResponse.js';
import { containerId, type RuntimeContext } from '../context.js';
import { deadlineExceeded, failedPrecondition, invalidArgument, withContext } from '../../errors.js';
import { mustContainer } from './common.js';

/** A DEBUG nested container: the container's namespaces, cgroups, env and user; killed at the timeout. */
export async function execSync(ctx: RuntimeContext, req: ExecSyncRequest__Output): Promise<ExecSyncResponse> {
  const c = mustContainer(ctx, req.container_id);
  if (req.cmd.length === 0 || !req.cmd[0]) throw invalidArgument('cmd is required');
  if (c.state !== 'CONTAINER_RUNNING') throw failedPrecondition(`container ${c.id} is not running`);
  const timeoutMs = Math.max(0, Number(req.timeout)) * 1000;
  let result;
  try {
    result = await ctx.containerizer.execSync(containerId(c), req.cmd, timeoutMs, c.process);
  } catch (err) {
    throw withContext(err, `exec in container ${c.id} failed`);
  }
  if (result.timedOut) throw deadlineExceeded(`command ${JSON.stringify(req.cmd)} timed out after ${req.timeout}s`);
  return { stdout: result.stdout, stderr: result.stderr, exit_code: result.exitCode };
}
