// The PodSandboxConfig and ContainerConfig the kubelet sends for a pod
// (kuberuntime_sandbox.go generatePodSandboxConfig, kuberuntime_container.go
// generateContainerConfig, makeMounts).
import { closeSync, chmodSync, openSync, readdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname } from 'node:path';
import type { ContainerConfig } from '../../api/generated/runtime/v1/ContainerConfig.js';
import type { Mount } from '../../api/generated/runtime/v1/Mount.js';
import type { PodSandboxConfig } from '../../api/generated/runtime/v1/PodSandboxConfig.js';
import type { PortMapping } from '../../api/generated/runtime/v1/PortMapping.js';
import { agentContainerLogDir, agentContainerLogPath, agentPodLogDir, agentSeccompDir, agentTerminationMessageFile } from '../paths.js';
import { mkdirp } from '../util/mkdirp.js';
import { podDNSConfig, podHostname } from './dns.js';
import { containerEnv, expandCommand, type PodRuntimeFacts } from './env.js';
import { hostsMount } from './hosts.js';
import { containerAnnotations, containerLabels, podAnnotations, podLabels } from './labels.js';
import type { NodeInfo } from './node-info.js';
import { containerResources, podCgroupParent, sandboxResources } from './resources.js';
import { containerSecurityContext, normalizeSysctlName, sandboxSecurityContext } from './security.js';
import type { Container, Pod } from './types.js';
import { containerMounts, type PodVolumePaths } from './volumes.js';

export interface ConfigOptions {
  /** the agent's root dir */
  root: string;
  /** the pod logs dir (/var/log/pods) */
  podLogsDir: string;
  /** the kubelet's --cgroup-root ("/") */
  cgroupRoot: string;
  /** the kubelet's --resolv-conf ("" = no resolver) */
  resolvConf: string;
  node: NodeInfo;
}

export function podLogDir(pod: Pod, podLogsDir: string): string {
  return agentPodLogDir(podLogsDir, pod.metadata.namespace, pod.metadata.name, pod.metadata.uid);
}

export function containerLogDir(pod: Pod, podLogsDir: string, container: string): string {
  return agentContainerLogDir(podLogsDir, pod.metadata.namespace, pod.metadata.name, pod.metadata.uid, container);
}

/** Each container port, once per name (MakePortMappings). */
export function portMappings(pod: Pod): PortMapping[] {
  const out: PortMapping[] = [];
  for (const c of pod.spec.containers) {
    const names = new Set<string>();
    for (const p of c.ports ?? []) {
      const family = p.hostIP ? (p.hostIP.includes(':') ? 'v6' : 'v4') : 'any';
      const name = p.name || `${family}-${p.protocol}-${p.hostIP ?? ''}:${p.containerPort}:${p.hostPort ?? 0}`;
      if (names.has(name)) continue;
      names.add(name);
      out.push({ protocol: p.protocol ?? 'TCP', container_port: p.containerPort, host_port: p.hostPort ?? 0, host_ip: p.hostIP ?? '' });
    }
  }
  return out;
}

export function sandboxConfig(pod: Pod, attempt: number, o: ConfigOptions): PodSandboxConfig {
  const sysctls: Record<string, string> = {};
  for (const s of pod.spec.securityContext?.sysctls ?? []) sysctls[normalizeSysctlName(s.name)] = s.value;
  const ports = portMappings(pod);
  return {
    metadata: { name: pod.metadata.name, namespace: pod.metadata.namespace, uid: pod.metadata.uid, attempt },
    ...(pod.spec.hostNetwork ? {} : { hostname: podHostname(pod) }),
    log_directory: podLogDir(pod, o.podLogsDir),
    dns_config: podDNSConfig(pod, o.resolvConf),
    ...(ports.length ? { port_mappings: ports } : {}),
    labels: podLabels(pod),
    annotations: podAnnotations(pod),
    linux: {
      cgroup_parent: podCgroupParent(pod, o.cgroupRoot),
      security_context: sandboxSecurityContext(pod),
      sysctls,
      resources: sandboxResources(pod, o.node),
      overhead: {},
    },
  };
}

/**
 * calcRestartCountByLogDir: with no container status to count from (the runtime lost them), one
 * more than the highest <n>.log in the container's log dir, so that no log is overwritten.
 */
export function restartCountFromLogDir(dir: string): number {
  let count = 0;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const n of names) {
    const m = /^(\d+)\.log(\..*)?$/.exec(n);
    if (m) count = Math.max(count, Number(m[1]) + 1);
  }
  return count;
}

export interface ContainerConfigInput {
  pod: Pod;
  container: Container;
  restartCount: number;
  imageRef: string;
  imageUser: { uid?: number; username?: string };
  volumes: PodVolumePaths;
  podIPs: string[];
  hostIPs: string[];
}

/** The container's config; throws ContainerConfigError (env from an API server) before anything is written. */
export function containerConfig(i: ContainerConfigInput, o: ConfigOptions): ContainerConfig {
  const { pod, container } = i;
  const facts: PodRuntimeFacts = { podIPs: i.podIPs, hostIPs: i.hostIPs, memoryCapacity: o.node.memoryCapacity };
  const env = containerEnv(pod, container, facts);
  const { command, args } = expandCommand(container, env);
  mkdirp(containerLogDir(pod, o.podLogsDir, container.name), 0o755);
  const mounts: Mount[] = containerMounts(container, i.volumes);
  const hosts = hostsMount(o.root, pod, pod.spec.hostNetwork ? '' : podHostname(pod), i.podIPs, mounts.map((m) => m.container_path!));
  if (hosts) mounts.push(hosts);
  const tm = terminationMessageMount(o.root, pod, container);
  if (tm) mounts.push(tm);
  return {
    metadata: { name: container.name, attempt: i.restartCount },
    image: { image: i.imageRef, user_specified_image: container.image ?? '' },
    command,
    args,
    working_dir: container.workingDir ?? '',
    labels: containerLabels(container, pod),
    annotations: containerAnnotations(container, pod, i.restartCount),
    devices: [],
    CDI_devices: [],
    mounts,
    log_path: agentContainerLogPath(container.name, i.restartCount),
    stdin: container.stdin ?? false,
    stdin_once: container.stdinOnce ?? false,
    tty: container.tty ?? false,
    linux: {
      resources: containerResources(pod, container, o.node),
      security_context: containerSecurityContext(pod, container, agentSeccompDir(o.root), i.imageUser),
    },
    // KeyValue.value is bytes in this proto (env values need not be UTF-8).
    envs: env.map((e) => ({ key: e.name, value: Buffer.from(e.value, 'utf8') })),
  };
}

/** A fresh, world-writable file for this container instance, mounted at its terminationMessagePath. */
function terminationMessageMount(root: string, pod: Pod, container: Container): Mount | undefined {
  if (!container.terminationMessagePath) return undefined;
  const file = agentTerminationMessageFile(root, pod.metadata.uid, container.name, randomBytes(4).toString('hex'));
  mkdirp(dirname(file), 0o750);
  closeSync(openSync(file, 'w', 0o666));
  chmodSync(file, 0o666);
  return { container_path: container.terminationMessagePath, host_path: file, readonly: false, selinux_relabel: false };
}
