import { failedPrecondition } from '../../../errors.js';
import type { ContainerConfig, ContainerId, IsolatorStatus, ResourceLimits, ResourceStatistics } from '../isolator.js';

/** Defaults for isolators that only shape the launch (namespaces, filesystem). */
export abstract class LaunchOnlyIsolator {
  abstract readonly name: string;
  readonly supportsNesting: boolean = true;
  async recover(configs: ContainerConfig[]): Promise<void> {
    void configs;
  }
  async isolate(id: ContainerId, pid: number): Promise<void> {
    void id;
    void pid;
  }
  async update(id: ContainerId, resources: ResourceLimits): Promise<void> {
    void id;
    void resources;
  }
  async usage(id: ContainerId): Promise<Partial<ResourceStatistics>> {
    void id;
    return {};
  }
  async status(id: ContainerId): Promise<IsolatorStatus> {
    void id;
    return {};
  }
  async cleanup(id: ContainerId): Promise<void> {
    void id;
  }
}

export function parentNs(config: ContainerConfig, type: 'net' | 'uts' | 'ipc' | 'pid', pid = config.parentPid): { type: typeof type; path: string } {
  if (pid === undefined) throw failedPrecondition(`container ${config.id.value}: the pod's init pid is unknown`);
  return { type, path: namespacePath(pid, type) };
}

/**
 * The namespace file of a container whose launch helper is `pid`. For PID that
 * is pid_for_children: a container with a PID namespace of its own has its
 * command as PID 1 there, while the helper stays outside it.
 */
export function namespacePath(pid: number, type: string): string {
  return `/proc/${pid}/ns/${type === 'pid' ? 'pid_for_children' : type}`;
}
