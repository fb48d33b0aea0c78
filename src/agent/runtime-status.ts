// What the runtime says about one pod (the kubelet's kubecontainer.PodStatus, from GetPodStatus):
// its sandboxes and containers, found by the pod uid label, newest first.
import type { ContainerStatus__Output } from '../../api/generated/runtime/v1/ContainerStatus.js';
import type { CriClient } from './cri-client.js';
import { isNotFound } from './cri-client.js';
import { ANNOTATION_CONTAINER_HASH, LABEL_CONTAINER_NAME, LABEL_POD_UID, restartCountOf } from './labels.js';

export type RuntimeContainerState = 'CONTAINER_CREATED' | 'CONTAINER_RUNNING' | 'CONTAINER_EXITED' | 'CONTAINER_UNKNOWN';

export interface RuntimeContainer {
  id: string;
  name: string;
  podSandboxId: string;
  state: RuntimeContainerState;
  /** ms since the epoch (0 when not yet) */
  createdAt: number;
  startedAt: number;
  finishedAt: number;
  exitCode: number;
  reason: string;
  message: string;
  restartCount: number;
  hash: string;
  image: string;
  imageRef: string;
  logPath: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  mounts: { container_path: string; host_path: string }[];
}

export interface RuntimeSandbox {
  id: string;
  state: 'SANDBOX_READY' | 'SANDBOX_NOTREADY';
  attempt: number;
  createdAt: number;
  ips: string[];
  name: string;
  namespace: string;
  uid: string;
}

export interface RuntimePodStatus {
  sandboxes: RuntimeSandbox[];
  containers: RuntimeContainer[];
}

export function nsToMs(ns: string | number | undefined): number {
  if (ns === undefined || ns === '' || ns === '0' || ns === 0) return 0;
  return Number(BigInt(ns) / 1_000_000n);
}

export function toRuntimeContainer(s: ContainerStatus__Output, podSandboxId: string): RuntimeContainer {
  return {
    id: s.id,
    name: s.labels?.[LABEL_CONTAINER_NAME] ?? s.metadata?.name ?? '',
    podSandboxId,
    state: s.state as RuntimeContainerState,
    createdAt: nsToMs(s.created_at),
    startedAt: nsToMs(s.started_at),
    finishedAt: nsToMs(s.finished_at),
    exitCode: s.exit_code,
    reason: s.reason,
    message: s.message,
    restartCount: restartCountOf(s.annotations),
    hash: s.annotations?.[ANNOTATION_CONTAINER_HASH] ?? '',
    image: s.image?.user_specified_image || s.image?.image || '',
    imageRef: s.image_id || s.image_ref,
    logPath: s.log_path,
    labels: s.labels ?? {},
    annotations: s.annotations ?? {},
    mounts: (s.mounts ?? []).map((m) => ({ container_path: m.container_path, host_path: m.host_path })),
  };
}

/** GetPodStatus: the pod's sandboxes (with their IPs) and containers, each newest first. */
export async function getPodStatus(cri: CriClient, uid: string): Promise<RuntimePodStatus> {
  const sel = { label_selector: { [LABEL_POD_UID]: uid } };
  const [boxes, ctrs] = await Promise.all([cri.listPodSandbox(sel), cri.listContainers(sel)]);
  const sandboxes: RuntimeSandbox[] = [];
  for (const b of boxes) {
    let ips: string[] = [];
    if (b.state === 'SANDBOX_READY') {
      try {
        const st = (await cri.podSandboxStatus(b.id)).status;
        const net = st?.network;
        ips = [net?.ip, ...(net?.additional_ips ?? []).map((a) => a.ip)].filter((ip): ip is string => !!ip);
      } catch (err) {
        if (!isNotFound(err)) throw err;
        continue;
      }
    }
    sandboxes.push({
      id: b.id,
      state: b.state as RuntimeSandbox['state'],
      attempt: b.metadata?.attempt ?? 0,
      createdAt: nsToMs(b.created_at),
      ips,
      name: b.metadata?.name ?? '',
      namespace: b.metadata?.namespace ?? '',
      uid: b.metadata?.uid ?? uid,
    });
  }
  const containers: RuntimeContainer[] = [];
  for (const c of ctrs) {
    try {
      const st = (await cri.containerStatus(c.id)).status;
      if (st) containers.push(toRuntimeContainer(st, c.pod_sandbox_id));
    } catch (err) {
      // Removed between the list and the status: as if never listed.
      if (!isNotFound(err)) throw err;
    }
  }
  sandboxes.sort((a, b) => b.createdAt - a.createdAt);
  containers.sort((a, b) => b.createdAt - a.createdAt);
  return { sandboxes, containers };
}

/** The newest status of the container named `name` (FindContainerStatusByName). */
export function latestContainer(status: RuntimePodStatus, name: string): RuntimeContainer | undefined {
  return status.containers.find((c) => c.name === name);
}
