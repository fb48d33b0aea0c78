import type { ImageStore } from '../../images/store.js';
import type { Logger } from '../../log.js';

/** What the ImageService handlers need; RuntimeContext extends it. */
export interface ImageServiceContext {
  images: ImageStore;
  log: Logger;
  /** Ids of the containers whose rootfs uses the image (any state, until removed). */
  imageUsers(imageId: string): string[];
}
