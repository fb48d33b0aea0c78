// The labels and annotations the kubelet puts on the sandboxes and containers it creates
// (pkg/kubelet/kuberuntime/labels.go, k8s.io/kubelet/pkg/types/labels.go), and how it reads
// them back: they are how a restarted agent finds its pods and their restart counts.
import type { Container, Pod } from './types.js';

export const LABEL_POD_NAME = 'io.kubernetes.pod.name';
export const LABEL_POD_NAMESPACE = 'io.kubernetes.pod.namespace';
export const LABEL_POD_UID = 'io.kubernetes.pod.uid';
export const LABEL_CONTAINER_NAME = 'io.kubernetes.container.name';

export const ANNOTATION_POD_DELETION_GRACE_PERIOD = 'io.kubernetes.pod.deletionGracePeriod';
export const ANNOTATION_POD_TERMINATION_GRACE_PERIOD = 'io.kubernetes.pod.terminationGracePeriod';
export const ANNOTATION_CONTAINER_HASH = 'io.kubernetes.container.hash';
export const ANNOTATION_RESTART_COUNT = 'io.kubernetes.container.restartCount';
export const ANNOTATION_TERMINATION_MESSAGE_PATH = 'io.kubernetes.container.terminationMessagePath';
export const ANNOTATION_TERMINATION_MESSAGE_POLICY = 'io.kubernetes.container.terminationMessagePolicy';
export const ANNOTATION_PRESTOP_HANDLER = 'io.kubernetes.container.preStopHandler';
export const ANNOTATION_CONTAINER_PORTS = 'io.kubernetes.container.ports';

/** The pod's labels plus its name, namespace and uid (newPodLabels). */
export function podLabels(pod: Pod): Record<string, string> {
  return {
    ...pod.metadata.labels,
    [LABEL_POD_NAME]: pod.metadata.name,
    [LABEL_POD_NAMESPACE]: pod.metadata.namespace,
    [LABEL_POD_UID]: pod.metadata.uid,
  };
}

/** The pod's annotations, as they are (newPodAnnotations). */
export function podAnnotations(pod: Pod): Record<string, string> {
  return { ...pod.metadata.annotations };
}

/** Only the pod's identity and the container's name: the pod's own labels stay on the sandbox. */
export function containerLabels(container: Container, pod: Pod): Record<string, string> {
  return {
    [LABEL_POD_NAME]: pod.metadata.name,
    [LABEL_POD_NAMESPACE]: pod.metadata.namespace,
    [LABEL_POD_UID]: pod.metadata.uid,
    [LABEL_CONTAINER_NAME]: container.name,
  };
}

/** newContainerAnnotations: what a restarted kubelet needs to know of a container it did not start. */
export function containerAnnotations(container: Container, pod: Pod, restartCount: number): Record<string, string> {
  const a: Record<string, string> = {
    [ANNOTATION_CONTAINER_HASH]: containerHash(container).toString(16),
    [ANNOTATION_RESTART_COUNT]: String(restartCount),
    [ANNOTATION_TERMINATION_MESSAGE_PATH]: container.terminationMessagePath ?? '',
    [ANNOTATION_TERMINATION_MESSAGE_POLICY]: container.terminationMessagePolicy ?? '',
  };
  if (pod.metadata.deletionGracePeriodSeconds !== undefined) a[ANNOTATION_POD_DELETION_GRACE_PERIOD] = String(pod.metadata.deletionGracePeriodSeconds);
  if (pod.spec.terminationGracePeriodSeconds !== undefined) a[ANNOTATION_POD_TERMINATION_GRACE_PERIOD] = String(pod.spec.terminationGracePeriodSeconds);
  if (container.lifecycle?.preStop) a[ANNOTATION_PRESTOP_HANDLER] = JSON.stringify(container.lifecycle.preStop);
  if (container.ports?.length) a[ANNOTATION_CONTAINER_PORTS] = JSON.stringify(container.ports);
  return a;
}

/**
 * The container's hash (kubecontainer.HashContainer): 32-bit FNV-1a over the JSON of the fields
 * a change of which means a new container: its name and image (since in-place resize, the
 * kubelet hashes no more). Go's JSON of the same fields would differ in bytes, so the value is
 * this agent's own.
 */
export function containerHash(container: Container): number {
  return fnv1a32(JSON.stringify({ name: container.name, image: container.image }));
}

export function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(text, 'utf8')) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** A container's restart count from its annotation; 0 when it is absent or malformed. */
export function restartCountOf(annotations: Record<string, string> | undefined): number {
  const n = Number.parseInt(annotations?.[ANNOTATION_RESTART_COUNT] ?? '', 10);
  return Number.isFinite(n) && n >= 0 ? n : 0;
}
