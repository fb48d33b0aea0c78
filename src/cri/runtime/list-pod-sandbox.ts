import type { ListPodSandboxRequest__Output } from '../../../api/generated/runtime/v1/ListPodSandboxRequest.js';
import type { ListPodSandboxResponse } from '../../../api/generated/runtime/v1/ListPodSandboxResponse.js';
import type { PodSandboxFilter__Output } from '../../../api/generated/runtime/v1/PodSandboxFilter.js';
import type { RuntimeContext } from '../context.js';
import type { MetadataStore, SandboxRecord } from '../../store/metadata.js';
import { Encoded, encodedList } from '../encoded.js';
import { byCreatedAt, matchesLabels, noLabels, sandboxMessage } from './common.js';

/** Each record's element of the list, encoded once (src/cri/encoded.ts). */
const elements = new WeakMap<SandboxRecord, Buffer>();
/** The unfiltered answer (the kubelet's PLEG asks for it every second), until the store changes. */
const whole = new WeakMap<MetadataStore<SandboxRecord>, { generation: number; answer: Encoded }>();

export async function listPodSandbox(ctx: RuntimeContext, req: ListPodSandboxRequest__Output): Promise<ListPodSandboxResponse | Encoded> {
  const f = req.filter;
  const all = !f || (!f.id && !f.state && noLabels(f.label_selector));
  const generation = ctx.sandboxes.generation;
  if (all) {
    const hit = whole.get(ctx.sandboxes);
    if (hit?.generation === generation) return hit.answer;
  }
  const items: SandboxRecord[] = [];
  for (const s of ctx.sandboxes.list()) if (all || matches(s, f!)) items.push(s);
  items.sort(byCreatedAt);
  const answer = encodedList(elements, 'ListPodSandbox', 'items', items, sandboxMessage);
  if (all && answer instanceof Encoded) whole.set(ctx.sandboxes, { generation, answer });
  return answer;
}

function matches(s: SandboxRecord, f: PodSandboxFilter__Output): boolean {
  return (!f.id || s.id === f.id || s.id.startsWith(f.id)) && (!f.state || s.state === f.state.state) && matchesLabels(s.config.labels, f.label_selector);
}
