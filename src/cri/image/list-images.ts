import type { ListImagesRequest__Output } from '../../../api/generated/runtime/v1/ListImagesRequest.js';
import type { ListImagesResponse } from '../../../api/generated/runtime/v1/ListImagesResponse.js';
import type { ImageServiceContext } from './context.js';
import { imageMessage, resolveImage } from './common.js';

export async function listImages(ctx: ImageServiceContext, req: ListImagesRequest__Output): Promise<ListImagesResponse> {
  const ref = req.filter?.image?.image?.trim();
  if (ref) {
    const img = await resolveImage(ctx, ref);
    return { images: img ? [imageMessage(img)] : [] };
  }
  return { images: (await ctx.images.list()).map(imageMessage) };
}
