// What one sync must do to bring the runtime to the pod's spec: the kubelet's computePodActions
// (pkg/kubelet/kuberuntime/kuberuntime_manager.go) for pods without sidecars or ephemeral
// containers. Pure: the runtime's view and the probe results in, the actions out.
import { latestContainer, type RuntimeContainer, type RuntimePodStatus } from './runtime-status.js';
import type { Container, Pod } from './types.js';

export interface ContainerToKill {
  container: RuntimeContainer;
  spec: Container | undefined;
  message: string;
  reason: 'LivenessProbe' | 'StartupProbe' | 'Unknown' | '';
}

export interface PodActions {
  killPod: boolean;
  createSandbox: boolean;
  /** the sandbox to run containers in (when not creating one) */
  sandboxId: string;
  /** the attempt of the sandbox to create */
  attempt: number;
  nextInitContainer: Container | undefined;
  containersToStart: Container[];
  containersToKill: ContainerToKill[];
}

export type ProbeLookup = (type: 'liveness' | 'startup', containerId: string) => 'Success' | 'Failure' | 'Unknown' | undefined;

/** Never: no restart; OnFailure: restart on a non-zero exit; Always: restart. Unknown and created ones always restart. */
export function shouldContainerBeRestarted(container: Container, pod: Pod, status: RuntimePodStatus): boolean {
  const s = latestContainer(status, container.name);
  if (!s) return true;
  if (s.state === 'CONTAINER_RUNNING') return false;
  if (s.state === 'CONTAINER_UNKNOWN' || s.state === 'CONTAINER_CREATED') return true;
  if (pod.spec.restartPolicy === 'Never') return false;
  if (pod.spec.restartPolicy === 'OnFailure') return s.exitCode !== 0;
  return true;
}

export function shouldRestartOnFailure(pod: Pod): boolean {
  return pod.spec.restartPolicy !== 'Never';
}

function isInitContainerFailed(s: RuntimeContainer): boolean {
  if (s.state === 'CONTAINER_EXITED' && s.exitCode !== 0) return true;
  return s.state === 'CONTAINER_UNKNOWN';
}

function containerSucceeded(c: Container, status: RuntimePodStatus): boolean {
  const s = latestContainer(status, c.name);
  return !!s && s.state === 'CONTAINER_EXITED' && s.exitCode === 0;
}

/**
 * findNextInitContainerToRun: the failed init container (its last status) to retry, or the next
 * one to start, or done. Once any app container runs, initialization was done.
 */
export function nextInitContainer(pod: Pod, status: RuntimePodStatus): { failed?: RuntimeContainer; next?: Container; done: boolean } {
  const inits = pod.spec.initContainers ?? [];
  if (inits.length === 0) return { done: true };
  for (const c of pod.spec.containers) if (latestContainer(status, c.name)?.state === 'CONTAINER_RUNNING') return { done: true };
  for (let i = inits.length - 1; i >= 0; i--) {
    const s = latestContainer(status, inits[i]!.name);
    if (s && isInitContainerFailed(s)) return { failed: s, next: inits[i], done: false };
  }
  for (let i = inits.length - 1; i >= 0; i--) {
    const s = latestContainer(status, inits[i]!.name);
    if (!s) continue;
    if (s.state === 'CONTAINER_RUNNING') return { done: false };
    if (s.state === 'CONTAINER_EXITED') return i === inits.length - 1 ? { done: true } : { next: inits[i + 1], done: false };
  }
  return { next: inits[0], done: false };
}

/** The newest sandbox, and whether a new one is needed (podSandboxChanged, without network checks). */
function sandboxChanged(status: RuntimePodStatus): { changed: boolean; attempt: number; sandboxId: string } {
  const newest = status.sandboxes[0];
  if (!newest) return { changed: true, attempt: 0, sandboxId: '' };
  const ready = status.sandboxes.filter((s) => s.state === 'SANDBOX_READY').length;
  if (ready > 1 || newest.state !== 'SANDBOX_READY') return { changed: true, attempt: newest.attempt + 1, sandboxId: newest.id };
  return { changed: false, attempt: newest.attempt, sandboxId: newest.id };
}

export function computePodActions(pod: Pod, status: RuntimePodStatus, probes: ProbeLookup): PodActions {
  const sb = sandboxChanged(status);
  const actions: PodActions = {
    killPod: sb.changed,
    createSandbox: sb.changed,
    sandboxId: sb.sandboxId,
    attempt: sb.attempt,
    nextInitContainer: undefined,
    containersToStart: [],
    containersToKill: [],
  };
  if (actions.createSandbox) {
    // A pod that ran and must not restart is not given a new sandbox.
    if (!shouldRestartOnFailure(pod) && sb.attempt !== 0 && status.containers.length !== 0) {
      actions.createSandbox = false;
      return actions;
    }
    const toStart = pod.spec.containers.filter((c) => !(pod.spec.restartPolicy === 'OnFailure' && containerSucceeded(c, status)));
    if (toStart.length === 0 && nextInitContainer(pod, status).done) {
      actions.createSandbox = false;
      return actions;
    }
    // A new sandbox starts from the beginning: the first init container, else the containers.
    if ((pod.spec.initContainers ?? []).length > 0) actions.nextInitContainer = pod.spec.initContainers![0];
    else actions.containersToStart = toStart;
    return actions;
  }

  const init = nextInitContainer(pod, status);
  if (!init.done) {
    if (init.next) {
      if (init.failed && init.failed.state !== 'CONTAINER_UNKNOWN' && !shouldRestartOnFailure(pod)) actions.killPod = true;
      else {
        if (init.failed?.state === 'CONTAINER_UNKNOWN') actions.containersToKill.push({ container: init.failed, spec: init.next, message: 'Init container is in "Unknown" state, try killing it before restart', reason: 'Unknown' });
        actions.nextInitContainer = init.next;
      }
    }
    return actions;
  }

  let keep = 0;
  for (const c of pod.spec.containers) {
    const s = latestContainer(status, c.name);
    if (!s || s.state !== 'CONTAINER_RUNNING') {
      if (shouldContainerBeRestarted(c, pod, status)) {
        actions.containersToStart.push(c);
        if (s?.state === 'CONTAINER_UNKNOWN') actions.containersToKill.push({ container: s, spec: c, message: `Container is in "Unknown" state, try killing it before restart`, reason: 'Unknown' });
      }
      continue;
    }
    let message: string;
    let reason: ContainerToKill['reason'];
    if (probes('liveness', s.id) === 'Failure') {
      message = `Container ${c.name} failed liveness probe`;
      reason = 'LivenessProbe';
    } else if (probes('startup', s.id) === 'Failure') {
      message = `Container ${c.name} failed startup probe`;
      reason = 'StartupProbe';
    } else {
      keep++;
      continue;
    }
    if (shouldRestartOnFailure(pod)) {
      message += ', will be restarted';
      actions.containersToStart.push(c);
    }
    actions.containersToKill.push({ container: s, spec: c, message, reason });
  }
  if (keep === 0 && actions.containersToStart.length === 0) actions.killPod = true;
  return actions;
}
