import type { ContainerStatusRequest__Output } from '../../../api/generated/runtime/v1/ContainerStatusRequest.js';
import type { ContainerStatusResponse } from '../../../api/generated/runtime/v1/ContainerStatusResponse.js';
import { containerId, type RuntimeContext } from '../context.js';
import { mustContainer } from './common.js';
import type { ContainerStatus } from '../../../api/generated/runtime/v1/ContainerStatus.js';
import type { ContainerRecord } from '../../store/metadata.js';
import { type Encoded, encodedOnce, responseCache } from '../encoded.js';

/** Each record's non-verbose answer, encoded once (src/cri/encoded.ts). */
const responses = responseCache<ContainerRecord>();

export async function containerStatus(ctx: RuntimeContext, req: ContainerStatusRequest__Output): Promise<ContainerStatusResponse | Encoded> {
  const c = mustContainer(ctx, req.container_id);
  if (!req.verbose) return encodedOnce(responses, c, 'ContainerStatus', () => ({ status: containerStatusOf(c), info: {} }));
  const info: Record<string, string> = {};
  info.info = JSON.stringify({
    pid: ctx.containerizer.processPid(containerId(c)) ?? 0,
    sandboxID: c.sandboxId,
    process: c.process,
    runtimeDir: c.mesos.runtimeDir,
  });
  return { status: containerStatusOf(c), info };
}

/** A container's ContainerStatus from its record (also for GetContainerEvents). */
export function containerStatusOf(c: ContainerRecord): ContainerStatus {
  const r = c.config.linux?.resources;
  return {
    id: c.id,
    metadata: c.config.metadata,
    state: c.state,
    created_at: c.createdAt,
    started_at: c.startedAt,
    finished_at: c.finishedAt,
    exit_code: c.exitCode,
    image: { image: c.imageRef, annotations: {}, user_specified_image: c.imageRef, runtime_handler: '' },
    image_ref: c.imageId,
    image_id: c.imageId,
    reason: c.reason,
    message: c.message,
    labels: c.config.labels,
    annotations: c.config.annotations,
    mounts: c.config.mounts,
    log_path: c.logPath,
    resources: r ? { linux: r } : null,
    user: { linux: { uid: c.process.uid, gid: c.process.gid, supplemental_groups: c.process.groups } },
  };
}
