import type { AuthConfig__Output } from '../../../api/generated/runtime/v1/AuthConfig.js';
import type { PullImageRequest__Output } from '../../../api/generated/runtime/v1/PullImageRequest.js';
import type { PullImageResponse } from '../../../api/generated/runtime/v1/PullImageResponse.js';
import { defaultRegistriesConfig } from '../../config.js';
import { Puller } from '../../images/pull.js';
import { parseReference } from '../../images/reference.js';
import { RegistryError, type Credentials } from '../../images/registry.js';
import { type ImageStore } from '../../images/store.js';
import { Code, invalidArgument, statusOf, StatusError, withContext } from '../../errors.js';
import type { ImageServiceContext } from './context.js';
import { resolveImage, specRef } from './common.js';

const pullers = new WeakMap<ImageStore, Puller>();

/** The context's puller, or one per store made from the config (so the in-flight maps are shared). */
export function pullerFor(ctx: ImageServiceContext): Puller {
  if (ctx.puller) return ctx.puller;
  let p = pullers.get(ctx.images);
  if (!p) {
    const metrics = ctx.metrics;
    p = new Puller(ctx.images, ctx.config?.registries ?? defaultRegistriesConfig(), ctx.log, metrics && ((n) => metrics.pullBytes(n)));
    pullers.set(ctx.images, p);
  }
  return p;
}

/**
 * Pull from the registry and return the image id (config digest). A digest
 * reference already in the store is not fetched again. When the registry is
 * unreachable (network error, not an answer such as 401 or 404) and the
 * store has the image (e.g. imported), that image is used, with a warning.
 */
export async function pullImage(ctx: ImageServiceContext, req: PullImageRequest__Output): Promise<PullImageResponse> {
  const ref = specRef(req.image);
  let parsed;
  try {
    parsed = parseReference(ref);
  } catch (e) {
    // Not a reference; maybe an image id (prefix) of a local image.
    const img = await resolveImage(ctx, ref);
    if (img) return { image_ref: img.id };
    throw invalidArgument((e as Error).message);
  }
  if (parsed.digest) {
    const img = await resolveImage(ctx, ref);
    if (img) return { image_ref: img.id };
  }
  const started = process.hrtime.bigint();
  try {
    const creds = credentials(req.auth);
    const rec = await pullerFor(ctx).pull(ref, { creds });
    ctx.credentials?.remember(ref, creds);
    ctx.metrics?.pullDone(Number(process.hrtime.bigint() - started) / 1e9);
    return { image_ref: rec.id };
  } catch (e) {
    ctx.metrics?.pullFailed(statusOf(e));
    if (e instanceof RegistryError && e.kind === 'unavailable') {
      const img = await resolveImage(ctx, ref);
      if (img) {
        ctx.log.warn('registry unreachable, using the local image', { image: ref, id: img.id, error: e.message });
        return { image_ref: img.id };
      }
    }
    const err = pullError(ref, e);
    if (err.status === Code.UNAVAILABLE) err.message += '; to use an image without a registry, import it with `cri-mesos images import PATH`';
    throw err;
  }
}

export function credentials(a: AuthConfig__Output | null | undefined): Credentials | undefined {
  if (!a) return undefined;
  const c: Credentials = {
    username: a.username || undefined,
    password: a.password || undefined,
    auth: a.auth || undefined,
    serverAddress: a.server_address || undefined,
    identityToken: a.identity_token || undefined,
    registryToken: a.registry_token || undefined,
  };
  return Object.values(c).some((v) => v !== undefined) ? c : undefined;
}

/** A pull failure as the client sees it: the lower layer's status, the reference named. */
export function pullError(ref: string, e: unknown): StatusError {
  return withContext(e, `pulling ${ref}`);
}
