import type { ListPodSandboxRequest__Output } from '../../../api/generated/runtime/v1/ListPodSandboxRequest.js';
import type { ListPodSandboxResponse } from '../../../api/generated/runtime/v1/ListPodSandboxResponse.js';
import type { RuntimeContext } from '../context.js';
import type { SandboxRecord } from '../../store/metadata.js';
import { type Encoded, encodedList } from '../encoded.js';
import { byCreatedAt, matchesLabels, sandboxMessage } from './common.js';

/** Each record's element of the list, encoded once (src/cri/encoded.ts). */
const elements = new WeakMap<SandboxRecord, Buffer>();

export async function listPodSandbox(ctx: RuntimeContext, req: ListPodSandboxRequest__Output): Promise<ListPodSandboxResponse | Encoded> {
  const f = req.filter;
  const items = ctx.sandboxes
    .list()
    .filter((s) => !f?.id || s.id === f.id || s.id.startsWith(f.id))
    .filter((s) => !f?.state || s.state === f.state.state)
    .filter((s) => matchesLabels(s.config.labels, f?.label_selector))
    .sort(byCreatedAt);
  return encodedList(elements, 'ListPodSandbox', 'items', items, sandboxMessage);
}
