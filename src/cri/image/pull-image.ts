import type { PullImageRequest__Output } from '../../../api/generated/runtime/v1/PullImageRequest.js';
import type { PullImageResponse } from '../../../api/generated/runtime/v1/PullImageResponse.js';
import { parseReference } from '../../images/reference.js';
import { invalidArgument, unimplemented } from '../errors.js';
import type { ImageServiceContext } from './context.js';
import { resolveImage, specRef } from './common.js';

/** Local images only for now: a present image "pulls" to its id. */
export async function pullImage(ctx: ImageServiceContext, req: PullImageRequest__Output): Promise<PullImageResponse> {
  const ref = specRef(req.image);
  const img = await resolveImage(ctx, ref);
  if (img) return { image_ref: img.id };
  try {
    parseReference(ref);
  } catch (e) {
    throw invalidArgument((e as Error).message);
  }
  throw unimplemented(
    `image ${ref} is not present locally and pulling from registries is not implemented yet; import the image with \`cri-mesos images import PATH\``,
  );
}
