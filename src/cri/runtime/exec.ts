import type { ExecRequest__Output } from '../../../api/generated/runtime/v1/ExecRequest.js';
import type { ExecResponse } from '../../../api/generated/runtime/v1/ExecResponse.js';
import { failedPrecondition, invalidArgument } from '../../errors.js';
import type { RuntimeContext } from '../context.js';
import { mustContainer } from './common.js';
import { checkStreams } from '../../stream/server.js';

/** A URL on the stream server; the command runs when a client connects to it (streaming/runtime.ts). */
export async function exec(ctx: RuntimeContext, req: ExecRequest__Output): Promise<ExecResponse> {
  const c = mustContainer(ctx, req.container_id);
  if (req.cmd.length === 0 || !req.cmd[0]) throw invalidArgument('cmd is required');
  checkStreams(req);
  if (c.state !== 'CONTAINER_RUNNING') throw failedPrecondition(`container ${c.id} is not running`);
  return { url: ctx.streams.getExecUrl({ ...req, container_id: c.id }) };
}
