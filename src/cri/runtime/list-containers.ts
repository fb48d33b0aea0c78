import type { ListContainersRequest__Output } from '../../../api/generated/runtime/v1/ListContainersRequest.js';
import type { ListContainersResponse } from '../../../api/generated/runtime/v1/ListContainersResponse.js';
import type { RuntimeContext } from '../context.js';
import type { ContainerRecord } from '../../store/metadata.js';
import { type Encoded, encodedList } from '../encoded.js';
import { byCreatedAt, containerMessage, matchesLabels } from './common.js';

/** Each record's element of the list, encoded once (src/cri/encoded.ts). */
const elements = new WeakMap<ContainerRecord, Buffer>();

export async function listContainers(ctx: RuntimeContext, req: ListContainersRequest__Output): Promise<ListContainersResponse | Encoded> {
  const f = req.filter;
  const items = ctx.containers
    .list()
    .filter((c) => !f?.id || c.id === f.id || c.id.startsWith(f.id))
    .filter((c) => !f?.pod_sandbox_id || c.sandboxId === f.pod_sandbox_id || c.sandboxId.startsWith(f.pod_sandbox_id))
    .filter((c) => !f?.state || c.state === f.state.state)
    .filter((c) => matchesLabels(c.config.labels, f?.label_selector))
    .sort(byCreatedAt);
  return encodedList(elements, 'ListContainers', 'containers', items, containerMessage);
}
