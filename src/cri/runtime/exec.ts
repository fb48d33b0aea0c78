import type { ExecRequest__Output } from '../../../api/generated/runtime/v1/ExecRequest.js';
import type { ExecResponse } from '../../../api/generated/runtime/v1/ExecResponse.js';
import { failedPrecondition, invalidArgument } from '../../errors.js';
import type { RuntimeContext } from '../context.js';
import { mustContainer } from './common.js';

/** A URL on the stream server; the command runs when a client connects to it (streaming/runtime.ts). */
export async function exec(ctx: RuntimeContext, req: ExecRequest__Output): Promise<ExecResponse> {
  const c = mustContainer(ctx, req.container_id);
  if (req.cmd.length === 0 || !req.cmd[0]) throw invalidArgument('cmd is required');
  checkStreams(req);
  if (c.state !== 'CONTAINER_RUNNING') throw failedPrecondition(`container ${c.id} is not running`);
  return { url: ctx.streams.getExecUrl({ ...req, container_id: c.id }) };
}

/** At least one stream; a terminal carries stderr in stdout. */
export function checkStreams(req: { stdin: boolean; stdout: boolean; stderr: boolean; tty: boolean }): void {
  if (!req.stdin && !req.stdout && !req.stderr) throw invalidArgument('one of stdin, stdout and stderr must be true');
  if (req.tty && req.stderr) throw invalidArgument('tty and stderr cannot both be true (a terminal carries stderr in stdout)');
}
