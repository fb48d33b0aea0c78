import type { ImageFsInfoRequest__Output } from '../../../api/generated/runtime/v1/ImageFsInfoRequest.js';
import type { ImageFsInfoResponse } from '../../../api/generated/runtime/v1/ImageFsInfoResponse.js';
import type { ImageServiceContext } from './context.js';

/**
 * Bytes and inodes the store really uses (allocated blocks, hard links once).
 * The mountpoint is the store root, as containerd reports its snapshotter
 * root; cadvisor resolves the device from it.
 */
export async function imageFsInfo(ctx: ImageServiceContext, _req: ImageFsInfoRequest__Output): Promise<ImageFsInfoResponse> {
  const usage = await ctx.images.fsUsage();
  const timestamp = (BigInt(Date.now()) * 1_000_000n).toString();
  return {
    image_filesystems: [
      {
        timestamp,
        fs_id: { mountpoint: ctx.images.root },
        used_bytes: { value: String(usage.bytes) },
        inodes_used: { value: String(usage.inodes) },
      },
    ],
    container_filesystems: [],
  };
}
