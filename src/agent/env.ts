// A container's environment and the $(VAR) expansion of its env, command and args, as the
// kubelet makes them (kubelet_pods.go makeEnvironmentVariables, third_party/forked/golang/expansion).
// Values that live in the API server (configMapKeyRef, secretKeyRef, envFrom) cannot be had by a
// standalone agent: they fail the container with CreateContainerConfigError, as a missing
// ConfigMap does under a kubelet.
import { cpus } from 'node:os';
import { Quantity, quantityOf } from './quantity.js';
import type { Container, Pod } from './types.js';

export class ContainerConfigError extends Error {}

/** What the environment's field references read at container creation. */
export interface PodRuntimeFacts {
  podIPs: string[];
  hostIPs: string[];
  memoryCapacity: number;
}

/** The container's env, in order, with $(VAR) expanded against the variables before each. */
export function containerEnv(pod: Pod, container: Container, facts: PodRuntimeFacts): { name: string; value: string }[] {
  if (container.envFrom?.length) {
    throw new ContainerConfigError(`container "${container.name}": envFrom needs a ConfigMap or Secret, which need an API server; the standalone agent has none`);
  }
  const vars = new Map<string, string>();
  const out: { name: string; value: string }[] = [];
  for (const e of container.env ?? []) {
    let value: string;
    if (e.valueFrom) value = valueFrom(pod, container, e.name, e.valueFrom, facts);
    else value = e.value ? expand(e.value, vars) : '';
    vars.set(e.name, value);
    const at = out.findIndex((o) => o.name === e.name);
    if (at >= 0) out[at] = { name: e.name, value };
    else out.push({ name: e.name, value });
  }
  return out;
}

function valueFrom(pod: Pod, container: Container, name: string, src: NonNullable<Container['env']>[number]['valueFrom'] & object, facts: PodRuntimeFacts): string {
  if (src.fieldRef) return podField(pod, src.fieldRef.fieldPath, facts);
  if (src.resourceFieldRef) {
    const target = src.resourceFieldRef.containerName ? pod.spec.containers.find((c) => c.name === src.resourceFieldRef!.containerName) : container;
    if (!target) throw new ContainerConfigError(`env ${name}: resourceFieldRef names no container "${src.resourceFieldRef.containerName}"`);
    return resourceValue(target, src.resourceFieldRef.resource, src.resourceFieldRef.divisor, facts);
  }
  const kind = src.configMapKeyRef ? 'configMapKeyRef' : src.secretKeyRef ? 'secretKeyRef' : 'fileKeyRef';
  throw new ContainerConfigError(`env ${name}: ${kind} needs an API server; the standalone agent has none`);
}

/** The values of the fieldRef paths the API allows in env. */
export function podField(pod: Pod, path: string, facts: PodRuntimeFacts): string {
  const m = /^metadata\.(labels|annotations)\['([^']+)'\]$/.exec(path);
  if (m) return pod.metadata[m[1] as 'labels' | 'annotations'][m[2]!] ?? '';
  switch (path) {
    case 'metadata.name':
      return pod.metadata.name;
    case 'metadata.namespace':
      return pod.metadata.namespace;
    case 'metadata.uid':
      return pod.metadata.uid;
    case 'spec.nodeName':
      return pod.spec.nodeName ?? '';
    case 'spec.serviceAccountName':
      return pod.spec.serviceAccountName ?? '';
    case 'status.hostIP':
      return facts.hostIPs[0] ?? '';
    case 'status.hostIPs':
      return facts.hostIPs.join(',');
    case 'status.podIP':
      return facts.podIPs[0] ?? '';
    case 'status.podIPs':
      return facts.podIPs.join(',');
  }
  throw new ContainerConfigError(`unsupported fieldRef "${path}"`);
}

/**
 * limits.* and requests.* of a container, divided by the divisor and rounded up; an unset limit
 * is the node's allocatable amount (here: its capacity), as the kubelet's.
 */
export function resourceValue(c: Container, resource: string, divisor: string | number | undefined, facts: PodRuntimeFacts): string {
  const [kind, name] = resource.split('.', 2) as ['limits' | 'requests', string];
  let q = quantityOf(c.resources?.[kind], name);
  if (!q && kind === 'limits') {
    if (name === 'cpu') q = Quantity.parse(cpus().length);
    else if (name === 'memory') q = Quantity.parse(facts.memoryCapacity);
  }
  q ??= Quantity.ZERO;
  const d = Quantity.parse(divisor ?? 1);
  if (name === 'cpu') return String(Math.ceil(q.milliValue() / Math.max(1, d.milliValue())));
  return String(Math.ceil(q.value() / Math.max(1, d.value())));
}

/**
 * Kubernetes' $(VAR) expansion: a defined VAR is replaced, an undefined one is left as written,
 * "$$" is a literal "$".
 */
export function expand(input: string, vars: ReadonlyMap<string, string>): string {
  let out = '';
  let checkpoint = 0;
  for (let cursor = 0; cursor < input.length; cursor++) {
    if (input[cursor] !== '$' || cursor + 1 >= input.length) continue;
    out += input.slice(checkpoint, cursor);
    const rest = input.slice(cursor + 1);
    let advance = 1;
    if (rest[0] === '$') out += '$';
    else if (rest[0] === '(') {
      const close = rest.indexOf(')');
      if (close > 0) {
        const name = rest.slice(1, close);
        out += vars.has(name) ? vars.get(name)! : `$(${name})`;
        advance = close + 1;
      } else out += '$(';
    } else out += '$' + rest[0];
    cursor += advance;
    checkpoint = cursor + 1;
  }
  return out + input.slice(checkpoint);
}

/** The command and args with $(VAR) from the container's env expanded (ExpandContainerCommandAndArgs). */
export function expandCommand(container: Container, env: { name: string; value: string }[]): { command: string[]; args: string[] } {
  const vars = new Map(env.map((e) => [e.name, e.value]));
  return { command: (container.command ?? []).map((s) => expand(s, vars)), args: (container.args ?? []).map((s) => expand(s, vars)) };
}
