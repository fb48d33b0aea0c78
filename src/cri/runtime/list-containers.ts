import type { ListContainersRequest__Output } from '../../../api/generated/runtime/v1/ListContainersRequest.js';
import type { ListContainersResponse } from '../../../api/generated/runtime/v1/ListContainersResponse.js';
import type { RuntimeContext } from '../context.js';
import { byCreatedAt, containerMessage, matchesLabels } from './common.js';

export async function listContainers(ctx: RuntimeContext, req: ListContainersRequest__Output): Promise<ListContainersResponse> {
  const f = req.filter;
  const items = ctx.containers
    .list()
    .filter((c) => !f?.id || c.id === f.id || c.id.startsWith(f.id))
    .filter((c) => !f?.pod_sandbox_id || c.sandboxId === f.pod_sandbox_id || c.sandboxId.startsWith(f.pod_sandbox_id))
    .filter((c) => !f?.state || c.state === f.state.state)
    .filter((c) => matchesLabels(c.config.labels, f?.label_selector))
    .sort(byCreatedAt);
  return { containers: items.map(containerMessage) };
}
