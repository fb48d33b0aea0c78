import type { AttachRequest__Output } from '../../../api/generated/runtime/v1/AttachRequest.js';
import type { AttachResponse } from '../../../api/generated/runtime/v1/AttachResponse.js';
import { failedPrecondition } from '../../errors.js';
import type { RuntimeContext } from '../context.js';
import { mustContainer } from './common.js';
import { checkStreams } from '../../stream/server.js';

/** A URL on the stream server to the container's own stdio, kept by its launch helper. */
export async function attach(ctx: RuntimeContext, req: AttachRequest__Output): Promise<AttachResponse> {
  const c = mustContainer(ctx, req.container_id);
  checkStreams(req);
  if (c.state !== 'CONTAINER_RUNNING') throw failedPrecondition(`container ${c.id} is not running`);
  // As containerd: the container's own stdin and tty (config) decide what there is to attach
  // to; a request asking for stdin of a container without one just gets no input stream.
  return { url: ctx.streams.getAttachUrl({ ...req, container_id: c.id }) };
}
