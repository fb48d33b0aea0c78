// EnsureImageExists (pkg/kubelet/images/image_manager.go): the pull policy decides whether to
// pull (Always; IfNotPresent when the image is missing; Never fails when it is missing), and a
// failed pull backs off per pod and image (ImagePullBackOff) as container restarts do.
import type { PodSandboxConfig } from '../../api/generated/runtime/v1/PodSandboxConfig.js';
import type { Backoff } from './backoff.js';
import type { CriClient } from './cri-client.js';
import type { Container, Pod } from './types.js';

/** The kubelet's container start errors, as they show in a waiting container's reason. */
export class StartError extends Error {
  constructor(
    readonly reason: string,
    message: string,
    /** when the failed step may be tried again (ms since the epoch), for a back-off */
    readonly retryAt?: number,
  ) {
    super(message);
  }
}

/** "busybox" → "busybox:latest"; references with a tag or digest stay as they are. */
export function applyDefaultImageTag(image: string): string {
  if (image.includes('@')) return image;
  const lastSlash = image.lastIndexOf('/');
  return image.indexOf(':', lastSlash + 1) >= 0 ? image : `${image}:latest`;
}

/** The image's ref (its id) on the runtime, pulling it as the policy says. */
export async function ensureImageExists(cri: CriClient, backoff: Backoff, pod: Pod, container: Container, sandboxConfig: PodSandboxConfig, runtimeHandler: string): Promise<string> {
  const image = applyDefaultImageTag(container.image ?? '');
  const spec = { image, annotations: pod.metadata.annotations, runtime_handler: runtimeHandler };
  const status = await cri.imageStatus(spec);
  const ref = status.image?.id ?? '';
  const policy = container.imagePullPolicy ?? 'IfNotPresent';
  if (policy === 'Never' || (policy === 'IfNotPresent' && ref)) {
    if (ref) return ref;
    throw new StartError('ErrImageNeverPull', `Container image "${container.image}" is not present with pull policy of Never`);
  }
  const key = `${pod.metadata.uid}_${container.image}`;
  const now = Date.now();
  if (backoff.isInBackOffSinceUpdate(key, now)) {
    throw new StartError('ImagePullBackOff', `Back-off pulling image "${container.image}"`, backoff.retryAfterUpdate(key));
  }
  try {
    return await cri.pullImage(spec, sandboxConfig);
  } catch (err) {
    backoff.next(key, Date.now());
    const details = (err as { details?: string }).details ?? (err as Error).message;
    throw new StartError('ErrImagePull', `Failed to pull image "${container.image}": ${details}`, backoff.retryAfterUpdate(key));
  }
}
