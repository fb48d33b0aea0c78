import type { Image } from '../../../api/generated/runtime/v1/Image.js';
import type { ImageSpec__Output } from '../../../api/generated/runtime/v1/ImageSpec.js';
import type { ImageRecord } from '../../images/store.js';
import { invalidArgument } from '../../errors.js';
import type { ImageServiceContext } from './context.js';

/** The CRI view of an image record. uid/username follow containerd: from the config's User (user part only). */
export function imageMessage(rec: ImageRecord): Image {
  const user = rec.config.User ?? '';
  const userPart = user.split(':')[0] ?? '';
  const numeric = /^[0-9]+$/.test(userPart);
  return {
    id: rec.id,
    repo_tags: rec.repoTags,
    repo_digests: rec.repoDigests,
    size: String(rec.size),
    uid: numeric ? { value: userPart } : null,
    username: numeric ? '' : userPart,
    spec: { image: rec.id, annotations: {} },
    pinned: false,
  };
}

/** The reference in an ImageSpec; required. */
export function specRef(spec: ImageSpec__Output | null | undefined): string {
  const ref = spec?.image?.trim() ?? '';
  if (!ref) throw invalidArgument('image spec with a non-empty image reference is required');
  return ref;
}

/** Resolve a reference; a malformed or ambiguous one is the caller's error. */
export async function resolveImage(ctx: ImageServiceContext, ref: string): Promise<ImageRecord | undefined> {
  try {
    return await ctx.images.resolve(ref);
  } catch (e) {
    throw invalidArgument((e as Error).message);
  }
}
