import type { ImageStatusRequest__Output } from '../../../api/generated/runtime/v1/ImageStatusRequest.js';
import type { ImageStatusResponse } from '../../../api/generated/runtime/v1/ImageStatusResponse.js';
import type { ImageServiceContext } from './context.js';
import { imageMessage, resolveImage, specRef } from './common.js';

/** Unknown image → image null and no error (kubelet then pulls). */
export async function imageStatus(ctx: ImageServiceContext, req: ImageStatusRequest__Output): Promise<ImageStatusResponse> {
  const img = await resolveImage(ctx, specRef(req.image));
  if (!img) return { image: null, info: {} };
  const info: Record<string, string> = {};
  if (req.verbose) {
    // containerd's shape: one "info" key holding JSON with the full OCI image config as imageSpec.
    const imageSpec = JSON.parse((await ctx.images.readBlob(img.id)).toString('utf8')) as unknown;
    info.info = JSON.stringify({
      chainID: img.layers.at(-1)?.chainId ?? '',
      manifestDigest: img.manifestDigest,
      manifestMediaType: img.manifestMediaType,
      layers: img.layers,
      importedAt: img.importedAt,
      imageSpec,
    });
  }
  return { image: imageMessage(img), info };
}
