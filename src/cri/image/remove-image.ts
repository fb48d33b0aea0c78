import type { RemoveImageRequest__Output } from '../../../api/generated/runtime/v1/RemoveImageRequest.js';
import type { RemoveImageResponse } from '../../../api/generated/runtime/v1/RemoveImageResponse.js';
import { ImageInUseError } from '../../images/store.js';
import { failedPrecondition } from '../../errors.js';
import type { ImageServiceContext } from './context.js';
import { resolveImage, specRef } from './common.js';

/**
 * Remove the image a tag, digest or id names, with all its names (as
 * containerd does: kubelet's GC removes by id). Unknown image → OK. An image
 * a container record or a CreateContainer in flight (a lease) uses stays:
 * the store checks both under its lock, so no create can slip in between.
 */
export async function removeImage(ctx: ImageServiceContext, req: RemoveImageRequest__Output): Promise<RemoveImageResponse> {
  const ref = specRef(req.image);
  const img = await resolveImage(ctx, ref);
  if (!img) return {};
  let res;
  try {
    res = await ctx.images.removeImage(img.id, () => ctx.imageUsers(img.id));
  } catch (e) {
    if (e instanceof ImageInUseError) throw failedPrecondition(`image ${ref} (${img.id}) is in use by container(s) ${e.users.join(', ')}`);
    throw e;
  }
  if (res) ctx.log.info('image removed', { image: img.id, tags: res.untagged.join(',') });
  return {};
}
