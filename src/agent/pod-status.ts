// The pod's API status from the runtime's view (the kubelet's generateAPIPodStatus, getPhase,
// convertToAPIContainerStatuses and pkg/kubelet/status/generate.go): phase, conditions, and a
// status per container with its state, last state, restart count, readiness.
import { closeSync, openSync, readSync, fstatSync } from 'node:fs';
import { podQOS } from './qos.js';
import { shouldContainerBeRestarted } from './pod-actions.js';
import type { RuntimeContainer, RuntimePodStatus } from './runtime-status.js';
import { rfc3339 } from './static-pod.js';
import type { Container, ContainerState, ContainerStatus, Pod, PodCondition, PodPhase, PodStatus } from './types.js';

/** Longest termination message read from its file (kubecontainer.MaxContainerTerminationMessageLength). */
export const MAX_TERMINATION_MESSAGE = 4096;
const MAX_TERMINATION_MESSAGE_LOG_LENGTH = 2048;
const MAX_TERMINATION_MESSAGE_LOG_LINES = 80;

export interface StatusInput {
  pod: Pod;
  runtime: RuntimePodStatus;
  runtimeName: string;
  hostIPs: string[];
  startTime: Date | undefined;
  /** why a container that should run does not (the kubelet's reasonCache) */
  reasons: ReadonlyMap<string, { reason: string; message: string }>;
  ready(container: Container, containerId: string): boolean;
  started(container: Container, containerId: string): boolean;
  /** the pod's sandbox needs to be (re)made */
  sandboxChanged: boolean;
  /** the previous conditions, for their transition times */
  previous: PodCondition[] | undefined;
  /** a pod-level error (a volume that cannot be set up) */
  podError?: { reason: string; message: string };
  now?: Date;
}

function time(ms: number): string | null {
  return ms > 0 ? rfc3339(new Date(ms)) : null;
}

function terminated(c: RuntimeContainer, runtimeName: string, spec: Container | undefined): ContainerState {
  let message = c.message;
  const extra = terminationMessage(c, spec);
  if (extra) message = message ? `${message}: ${extra}` : extra;
  return {
    terminated: {
      exitCode: c.exitCode,
      reason: c.reason || (c.exitCode === 0 ? 'Completed' : 'Error'),
      ...(message ? { message } : {}),
      startedAt: time(c.startedAt),
      finishedAt: time(c.finishedAt),
      containerID: `${runtimeName}://${c.id}`,
    },
  };
}

const messageCache = new Map<string, string>();

/** The container's termination message file, or (FallbackToLogsOnError, failed) the tail of its log. */
function terminationMessage(c: RuntimeContainer, spec: Container | undefined): string {
  const cached = messageCache.get(c.id);
  if (cached !== undefined) return cached;
  const path = spec?.terminationMessagePath ?? c.annotations['io.kubernetes.container.terminationMessagePath'];
  const policy = spec?.terminationMessagePolicy ?? c.annotations['io.kubernetes.container.terminationMessagePolicy'];
  let msg = '';
  const mount = path ? c.mounts.find((m) => m.container_path === path) : undefined;
  if (mount) msg = readTail(mount.host_path, MAX_TERMINATION_MESSAGE);
  if (!msg && policy === 'FallbackToLogsOnError' && c.exitCode !== 0 && c.logPath) msg = logTail(c.logPath);
  if (messageCache.size > 1000) messageCache.clear();
  messageCache.set(c.id, msg);
  return msg;
}

function readTail(path: string, max: number): string {
  try {
    const fd = openSync(path, 'r');
    try {
      const size = fstatSync(fd).size;
      const len = Math.min(size, max);
      const buf = Buffer.alloc(len);
      readSync(fd, buf, 0, len, size - len);
      return buf.toString('utf8');
    } finally {
      closeSync(fd);
    }
  } catch {
    return '';
  }
}

/** The last lines of a CRI log file, without their time/stream/tag prefix. */
function logTail(path: string): string {
  const text = readTail(path, 64 * 1024);
  const lines = text.split('\n').filter(Boolean).slice(-MAX_TERMINATION_MESSAGE_LOG_LINES);
  let out = '';
  for (const l of lines) {
    const m = /^\S+ (stdout|stderr) ([PF]) (.*)$/.exec(l);
    if (!m) continue;
    out += m[3] + (m[2] === 'F' ? '\n' : '');
  }
  return out.length > MAX_TERMINATION_MESSAGE_LOG_LENGTH ? out.slice(out.length - MAX_TERMINATION_MESSAGE_LOG_LENGTH) : out;
}

function containerStatuses(input: StatusInput, specs: Container[], init: boolean): ContainerStatus[] {
  const { pod, runtime, runtimeName } = input;
  const defaultWaiting = (pod.spec.initContainers ?? []).length > 0 ? 'PodInitializing' : 'ContainerCreating';
  return specs.map((spec) => {
    const all = runtime.containers.filter((c) => c.name === spec.name);
    const cur = all[0];
    const prev = all[1];
    const status: ContainerStatus = {
      name: spec.name,
      state: { waiting: { reason: defaultWaiting } },
      lastState: {},
      ready: false,
      restartCount: cur?.restartCount ?? 0,
      image: spec.image ?? '',
      imageID: cur?.imageRef ?? '',
      started: false,
    };
    if (cur) {
      status.containerID = `${runtimeName}://${cur.id}`;
      if (cur.state === 'CONTAINER_RUNNING') {
        status.state = { running: { startedAt: time(cur.startedAt) ?? rfc3339(new Date()) } };
        status.started = init ? false : input.started(spec, cur.id);
        status.ready = init ? false : input.ready(spec, cur.id);
      } else if (cur.state === 'CONTAINER_EXITED') {
        status.state = terminated(cur, runtimeName, spec);
        if (init) status.ready = cur.exitCode === 0;
      } else status.state = { waiting: {} };
      if (prev && prev.state === 'CONTAINER_EXITED') status.lastState = terminated(prev, runtimeName, spec);
    }
    // A container that will be started again shows why it waits, with its last end as last state.
    const why = input.reasons.get(spec.name);
    if (why && (!cur || shouldContainerBeRestarted(spec, pod, runtime))) {
      if (status.state.terminated) status.lastState = status.state;
      status.state = { waiting: { reason: why.reason, ...(why.message ? { message: why.message } : {}) } };
      status.ready = false;
      status.started = false;
    }
    return status;
  });
}

/** getPhase, for pods without sidecars. */
export function podPhase(pod: Pod, init: ContainerStatus[], ctrs: ContainerStatus[]): PodPhase {
  let pendingInit = 0;
  let failedInit = 0;
  for (const s of init) {
    if (s.state.running) pendingInit++;
    else if (s.state.terminated) {
      if (s.state.terminated.exitCode !== 0) failedInit++;
    } else if (s.state.waiting) {
      if (s.lastState.terminated) {
        if (s.lastState.terminated.exitCode !== 0) failedInit++;
      } else pendingInit++;
    } else pendingInit++;
  }
  let running = 0;
  let waiting = 0;
  let stopped = 0;
  let succeeded = 0;
  for (const s of ctrs) {
    if (s.state.running) running++;
    else if (s.state.terminated) {
      stopped++;
      if (s.state.terminated.exitCode === 0) succeeded++;
    } else if (s.state.waiting) {
      if (s.lastState.terminated) stopped++;
      else waiting++;
    }
  }
  if (failedInit > 0 && pod.spec.restartPolicy === 'Never') return 'Failed';
  if (pendingInit > 0) return 'Pending';
  if (waiting > 0) return 'Pending';
  if (running > 0) return 'Running';
  if (stopped > 0) {
    if (pod.spec.restartPolicy === 'Always') return 'Running';
    if (stopped === succeeded) return 'Succeeded';
    if (pod.spec.restartPolicy === 'Never') return 'Failed';
    return 'Running';
  }
  return 'Pending';
}

function goList(names: string[]): string {
  return `[${names.join(' ')}]`;
}

export function buildPodStatus(input: StatusInput): PodStatus {
  const { pod } = input;
  const now = input.now ?? new Date();
  const initStatuses = containerStatuses(input, pod.spec.initContainers ?? [], true);
  const ctrStatuses = containerStatuses(input, pod.spec.containers, false);
  const phase = podPhase(pod, initStatuses, ctrStatuses);

  const conds: Omit<PodCondition, 'lastTransitionTime' | 'lastProbeTime'>[] = [];
  conds.push({ type: 'PodReadyToStartContainers', status: input.sandboxChanged ? 'False' : 'True' });
  const incomplete = initStatuses.filter((s) => !(s.state.terminated && s.state.terminated.exitCode === 0)).map((s) => s.name);
  const initialized = incomplete.length === 0 || ctrStatuses.some((s) => s.state.running || s.lastState.terminated || s.state.terminated);
  conds.push(
    initialized
      ? { type: 'Initialized', status: 'True' }
      : { type: 'Initialized', status: 'False', reason: 'ContainersNotInitialized', message: `containers with incomplete status: ${goList(incomplete)}` },
  );
  let ready: Omit<PodCondition, 'lastTransitionTime' | 'lastProbeTime' | 'type'>;
  const unready = ctrStatuses.filter((s) => !s.ready).map((s) => s.name);
  if (phase === 'Succeeded') ready = { status: 'False', reason: 'PodCompleted' };
  else if (unready.length > 0) ready = { status: 'False', reason: 'ContainersNotReady', message: `containers with unready status: ${goList(unready)}` };
  else ready = { status: 'True' };
  conds.push({ type: 'Ready', ...ready });
  conds.push({ type: 'ContainersReady', ...ready });
  conds.push({ type: 'PodScheduled', status: 'True' });
  const conditions: PodCondition[] = conds.map((c) => {
    const prev = input.previous?.find((p) => p.type === c.type);
    const since = prev && prev.status === c.status ? prev.lastTransitionTime : rfc3339(now);
    return { type: c.type, status: c.status, lastProbeTime: null, lastTransitionTime: since, ...(c.reason ? { reason: c.reason } : {}), ...(c.message ? { message: c.message } : {}) };
  });

  const sandbox = input.runtime.sandboxes.find((s) => s.state === 'SANDBOX_READY');
  const podIPs = pod.spec.hostNetwork ? input.hostIPs : (sandbox?.ips ?? []);
  const status: PodStatus = {
    phase,
    conditions,
    hostIP: input.hostIPs[0] ?? '',
    hostIPs: input.hostIPs.map((ip) => ({ ip })),
    ...(podIPs.length ? { podIP: podIPs[0], podIPs: podIPs.map((ip) => ({ ip })) } : {}),
    ...(input.startTime ? { startTime: rfc3339(input.startTime) } : {}),
    ...((pod.spec.initContainers ?? []).length ? { initContainerStatuses: initStatuses } : {}),
    containerStatuses: ctrStatuses,
    qosClass: podQOS(pod),
  };
  if (input.podError) {
    status.reason = input.podError.reason;
    status.message = input.podError.message;
  }
  return status;
}
