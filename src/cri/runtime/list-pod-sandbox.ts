import type { ListPodSandboxRequest__Output } from '../../../api/generated/runtime/v1/ListPodSandboxRequest.js';
import type { ListPodSandboxResponse } from '../../../api/generated/runtime/v1/ListPodSandboxResponse.js';
import type { RuntimeContext } from '../context.js';
import { byCreatedAt, matchesLabels, sandboxMessage } from './common.js';

export async function listPodSandbox(ctx: RuntimeContext, req: ListPodSandboxRequest__Output): Promise<ListPodSandboxResponse> {
  const f = req.filter;
  const items = ctx.sandboxes
    .list()
    .filter((s) => !f?.id || s.id === f.id || s.id.startsWith(f.id))
    .filter((s) => !f?.state || s.state === f.state.state)
    .filter((s) => matchesLabels(s.config.labels, f?.label_selector))
    .sort(byCreatedAt);
  return { items: items.map(sandboxMessage) };
}
