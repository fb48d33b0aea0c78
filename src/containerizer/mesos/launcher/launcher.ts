// The Mesos Launcher contract (src/slave/containerizer/mesos/launcher.hpp).
import type { SpawnOptions, SpawnedChild } from '../../../native/index.js';
import type { ContainerConfig } from '../isolator.js';
import type { Steps } from '../../../util/steps.js';

/** What recovery knows of a container (a quarantined one: its id and runtime dir only). */
export type KnownContainer = Pick<ContainerConfig, 'id' | 'runtimeDir' | 'kind'> & Partial<Pick<ContainerConfig, 'cgroupParent'>>;

export interface Launcher {
  readonly name: string;
  /**
   * Clone launches straight into their cgroup2 dir (CLONE_INTO_CGROUP). Worth it where the
   * launcher tracks containers in cgroup2 and so no cgroup.procs write follows. On hybrid hosts
   * the v1 writes follow anyway, and the clone itself then costs an RCU grace period (ms).
   */
  readonly cloneIntoCgroup: boolean;
  /**
   * Rebuild what the launcher tracks from the containerizer's checkpoints (`pidOf` reads a
   * container's recorded helper pid); kill and remove what no checkpoint knows. Returns the
   * orphans it found (cgroup paths).
   */
  recover(configs: KnownContainer[], pidOf: (config: KnownContainer) => number | undefined): Promise<string[]>;
  /**
   * Clone the child held on a pipe, let `isolate` place it (cgroups), then
   * release it. If isolate throws, the held child is killed. `steps` times the parts.
   */
  fork(config: ContainerConfig, spec: SpawnOptions, isolate: (heldPid: number) => Promise<void>, steps?: Steps): Promise<SpawnedChild>;
  /** Put a process into the container's launcher cgroup (DEBUG containers share it). */
  place(config: ContainerConfig, pid: number): Promise<void>;
  /** Kill every process of the container (and of its nested containers). */
  destroy(config: ContainerConfig): Promise<void>;
}
