import type { ListContainersRequest__Output } from '../../../api/generated/runtime/v1/ListContainersRequest.js';
import type { ListContainersResponse } from '../../../api/generated/runtime/v1/ListContainersResponse.js';
import type { ContainerFilter__Output } from '../../../api/generated/runtime/v1/ContainerFilter.js';
import type { RuntimeContext } from '../context.js';
import type { ContainerRecord, MetadataStore } from '../../store/metadata.js';
import { Encoded, encodedList } from '../encoded.js';
import { byCreatedAt, containerMessage, matchesLabels, noLabels } from './common.js';

/** Each record's element of the list, encoded once (src/cri/encoded.ts). */
const elements = new WeakMap<ContainerRecord, Buffer>();
/** The unfiltered answer (the kubelet's PLEG asks for it every second), until the store changes. */
const whole = new WeakMap<MetadataStore<ContainerRecord>, { generation: number; answer: Encoded }>();

export async function listContainers(ctx: RuntimeContext, req: ListContainersRequest__Output): Promise<ListContainersResponse | Encoded> {
  const f = req.filter;
  const all = !f || (!f.id && !f.pod_sandbox_id && !f.state && noLabels(f.label_selector));
  const generation = ctx.containers.generation;
  if (all) {
    const hit = whole.get(ctx.containers);
    if (hit?.generation === generation) return hit.answer;
  }
  const items: ContainerRecord[] = [];
  for (const c of ctx.containers.list()) if (all || matches(c, f!)) items.push(c);
  items.sort(byCreatedAt);
  const answer = encodedList(elements, 'ListContainers', 'containers', items, containerMessage);
  if (all && answer instanceof Encoded) whole.set(ctx.containers, { generation, answer });
  return answer;
}

function matches(c: ContainerRecord, f: ContainerFilter__Output): boolean {
  return (
    (!f.id || c.id === f.id || c.id.startsWith(f.id)) &&
    (!f.pod_sandbox_id || c.sandboxId === f.pod_sandbox_id || c.sandboxId.startsWith(f.pod_sandbox_id)) &&
    (!f.state || c.state === f.state.state) &&
    matchesLabels(c.config.labels, f.label_selector)
  );
}
