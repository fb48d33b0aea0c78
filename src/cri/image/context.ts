import type { DaemonConfig } from '../../config.js';
import type { ImageStore } from '../../images/store.js';
import type { Puller } from '../../images/pull.js';
import type { CredentialCache } from '../../images/credential-cache.js';
import type { Logger } from '../../log.js';
import type { Metrics } from '../../metrics/metrics.js';

/** What the ImageService handlers need; RuntimeContext extends it. */
export interface ImageServiceContext {
  images: ImageStore;
  log: Logger;
  /**
   * Ids of the containers whose record uses the image (any state, until
   * removed). CreateContainers in flight hold `images.leases` instead.
   */
  imageUsers(imageId: string): string[];
  /** The registry client; when absent, PullImage makes one from `config.registries` (defaults without a config). */
  puller?: Puller;
  /** Credentials of successful PullImages, per repository, for the Docker Engine's own pulls. */
  credentials?: CredentialCache;
  /** The daemon configuration (RuntimeContext always has it). */
  config?: DaemonConfig;
  /** The Prometheus metrics; undefined when metrics_address is '' (every hook is then one property read). */
  metrics?: Metrics;
}
