import type { RemoveImageRequest__Output } from '../../../api/generated/runtime/v1/RemoveImageRequest.js';
import type { RemoveImageResponse } from '../../../api/generated/runtime/v1/RemoveImageResponse.js';
import { failedPrecondition } from '../errors.js';
import type { ImageServiceContext } from './context.js';
import { resolveImage, specRef } from './common.js';

/**
 * Remove the image a tag, digest or id names, with all its names (as
 * containerd does: kubelet's GC removes by id). Unknown image → OK.
 */
export async function removeImage(ctx: ImageServiceContext, req: RemoveImageRequest__Output): Promise<RemoveImageResponse> {
  const ref = specRef(req.image);
  const img = await resolveImage(ctx, ref);
  if (!img) return {};
  const users = ctx.imageUsers(img.id);
  if (users.length > 0) {
    throw failedPrecondition(`image ${ref} (${img.id}) is in use by container(s) ${users.join(', ')}`);
  }
  const res = await ctx.images.removeImage(img.id);
  if (res) ctx.log.info('image removed', { image: img.id, tags: res.untagged.join(',') });
  return {};
}
