// The Mesos isolator contract (include/mesos/slave/isolator.hpp), in TypeScript.
// prepare runs in order, isolate in parallel, cleanup in reverse order.
import { Code, StatusError } from '../../errors.js';
import type { NamespaceJoin, NamespaceType } from '../../native/index.js';
import type { ContainerDevice } from './devices.js';
import type { PlanOp } from './launcher/plan.js';
import type { CgroupUsage } from '../../cgroups/index.js';

/** Mesos ContainerID: a chain up to the root (the pod). */
export interface ContainerId {
  value: string;
  parent?: ContainerId;
}

export function rootOf(id: ContainerId): ContainerId {
  let cur = id;
  while (cur.parent) cur = cur.parent;
  return cur;
}

export function idString(id: ContainerId): string {
  return id.parent ? `${idString(id.parent)}.${id.value}` : id.value;
}

/** Resource limits as CRI sends them, in the units the kernel takes (bytes, µs, shares). */
export interface ResourceLimits {
  cpuShares?: number;
  cpuQuota?: number;
  cpuPeriod?: number;
  memoryLimitBytes?: number;
  memorySwapLimitBytes?: number;
  pidsLimit?: number;
  cpusetCpus?: string;
  cpusetMems?: string;
  oomScoreAdj?: number;
  /** CRI hugepage_limits: page size as the kernel names it ("2MB", "1GB") → limit in bytes. */
  hugepageLimits?: Record<string, number>;
  /**
   * CRI unified: cgroup2 file → value (pids.max is pidsLimit). Written as they are on cgroup2; on
   * v1 each isolator maps the keys of its controller where an equivalent exists.
   */
  unified?: Record<string, string>;
}

/** A resource value that cannot be applied here; `field` names it as the CRI request does. */
export class ResourceError extends StatusError {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(Code.INVALID_ARGUMENT, `${field}: ${message}`);
    this.name = 'ResourceError';
  }
}

/** What the containerizer launches (Mesos ContainerConfig, CRI-shaped where CRI decides). */
export interface ContainerConfig {
  id: ContainerId;
  /** 'pod' = top-level container whose init is the helper in pause mode. */
  kind: 'pod' | 'container';
  /** CRI runtime handler the pod was started with ('' = default). */
  runtimeHandler?: string;
  /** Cgroup path prefix for the pod (CRI cgroup_parent); containers inherit their pod's. */
  cgroupParent?: string;
  resources: ResourceLimits;
  /** Runtime dir of this container (<run>/containers/<pod>[/containers/<ctr>]). */
  runtimeDir: string;
  /** Namespace modes from CRI NamespaceOption. */
  namespaces: {
    network: 'POD' | 'NODE';
    pid: 'POD' | 'CONTAINER' | 'NODE' | 'TARGET';
    ipc: 'POD' | 'NODE';
    /** pid of the target container's init for pid TARGET. */
    targetPid?: number;
  };
  /** pid of the pod's init (for nested containers: namespaces to join). */
  parentPid?: number;
  hostname?: string;
  /** Rootfs (already provisioned and mounted on the host), nested containers only. */
  rootfs?: string;
  mounts?: CriMount[];
  /** The pod's /dev/shm (a tmpfs on the host, owned by the namespaces/ipc isolator). */
  shmPath?: string;
  /** All capabilities, every host device, device cgroup "a *:* rwm", /sys read-write, nothing masked. */
  privileged?: boolean;
  /** Device nodes made in the container besides the defaults (the CRI devices; the host's for privileged). */
  devices?: ContainerDevice[];
  readonlyRootfs?: boolean;
  maskedPaths?: string[];
  readonlyPaths?: string[];
  sysctls?: Record<string, string>;
  /** Directory with the pod's hostname, hosts and resolv.conf (bind-mounted into containers). */
  sandboxFilesDir?: string;
  /** Pod DNS settings (CRI DNSConfig); the host's resolv.conf when absent. */
  dns?: { servers: string[]; searches: string[]; options: string[] };
  /** The image's VOLUME paths: created in the rootfs (containerd's default image_volumes = "mkdir"). */
  imageVolumes?: string[];
  /** oom_score_adj written by the helper before exec. */
  oomScoreAdj?: number;
  /** CRI tty, stdin, stdin_once (nested containers): the command's stdio, served by the helper's attach socket. */
  tty?: boolean;
  stdin?: boolean;
  stdinOnce?: boolean;
  /** Pods: what the network/cni isolator passes to the plugins (CNI_ARGS and runtimeConfig). */
  network?: PodNetwork;
  /**
   * The pod's user namespace (CRI userns_options mode POD, Kubernetes' hostUsers: false): its
   * mappings, the same on the pod and on each of its containers. Absent: the host's.
   */
  userNamespace?: UserNamespaceConfig;
}

/** One range of a uid_map or gid_map: container ids [containerId, containerId+length) are host ids from hostId. */
export interface IdMap {
  containerId: number;
  hostId: number;
  length: number;
}

export interface UserNamespaceConfig {
  uids: IdMap[];
  gids: IdMap[];
}

/** The host id that `id` of the user namespace is (undefined: not mapped). */
export function hostIdOf(maps: IdMap[], id: number): number | undefined {
  const m = maps.find((r) => id >= r.containerId && id - r.containerId < r.length);
  return m ? m.hostId + (id - m.containerId) : undefined;
}

/** The text of /proc/<pid>/uid_map (or gid_map): one "container host length" line per range. */
export function idMapText(maps: IdMap[]): string {
  return maps.map((m) => `${m.containerId} ${m.hostId} ${m.length}\n`).join('');
}

/** CRI-shaped network facts of a pod, as containerd hands them to CNI. */
export interface PodNetwork {
  podName: string;
  podNamespace: string;
  podUid: string;
  /** CRI port_mappings with a host port (the portMappings capability). */
  portMappings: { hostPort: number; containerPort: number; protocol: 'tcp' | 'udp' | 'sctp'; hostIP: string }[];
  /** kubernetes.io/{ingress,egress}-bandwidth, in bits per second (the bandwidth capability). */
  bandwidth?: { ingressRate?: number; egressRate?: number };
}

export interface CriMount {
  /** Where it came from, for errors ("mounts[2]"); absent for the runtime's own (the pod's /etc/hosts, ...). */
  field?: string;
  containerPath: string;
  hostPath: string;
  readonly: boolean;
  /** CRI recursive_read_only: every mount under it read-only too (needs readonly and PRIVATE). */
  recursiveReadOnly?: boolean;
  propagation: 'PROPAGATION_PRIVATE' | 'PROPAGATION_HOST_TO_CONTAINER' | 'PROPAGATION_BIDIRECTIONAL';
}

/** What isolators contribute to the launch (Mesos ContainerLaunchInfo). */
export interface LaunchInfo {
  cloneNamespaces: NamespaceType[];
  enterNamespaces: NamespaceJoin[];
  /** Ops for the launch helper's setup phase, in isolator order. */
  setup: PlanOp[];
  /** cgroup v2 directory for CLONE_INTO_CGROUP, if the launcher should use one. */
  cgroupV2Dir?: string;
  /**
   * fds handed to the launch helper (detached mount trees), which it has as FIRST_PASSED_FD,
   * FIRST_PASSED_FD + 1, ... in this order (only one isolator may pass fds: the numbers are its
   * own). The containerizer closes its copies once the helper is spawned, or the launch failed.
   */
  passFds?: number[];
}

export function emptyLaunchInfo(): LaunchInfo {
  return { cloneNamespaces: [], enterNamespaces: [], setup: [] };
}

/** One network interface's counters (/proc/<pid>/net/dev of a process in the pod's namespace). */
export interface NetworkInterfaceStatistics {
  name: string;
  rxBytes: number;
  rxPackets: number;
  rxErrors: number;
  rxDropped: number;
  txBytes: number;
  txPackets: number;
  txErrors: number;
  txDropped: number;
}

/**
 * Mesos ResourceStatistics, trimmed to what CRI stats need: the cgroup counters (cgroups/*
 * isolators), the writable layer (disk/du, as Mesos' disk_used_bytes) and, for a pod with a
 * network namespace of its own, its interfaces (as Mesos' net_* statistics).
 */
export interface ResourceStatistics extends CgroupUsage {
  timestamp: number; // seconds since epoch
  /** bytes and inodes of the container's writable layer, as of diskSampledAt (seconds since epoch) */
  diskUsedBytes?: number;
  diskUsedInodes?: number;
  diskSampledAt?: number;
  /** a directory on the filesystem that holds the writable layer (CRI fs_id.mountpoint) */
  diskFilesystem?: string;
  /** the pod's interfaces but lo; absent for a pod on the node's network */
  network?: NetworkInterfaceStatistics[];
}

/**
 * How much usage() reads: everything, or only the CPU counters (the stats sampler reads those
 * every window for usage_nano_cores, the rest less often).
 */
export type UsageDetail = 'full' | 'cpu';

export interface IsolatorStatus {
  oomKilled?: boolean;
  /** The container's addresses (network isolators; IPv4 first). */
  ips?: string[];
  /** What a network isolator found wrong with the container's network (a failed CHECK). */
  networkProblem?: string;
}

export interface Isolator {
  readonly name: string;
  /** Runs for nested (CRI) containers too. */
  readonly supportsNesting: boolean;
  /** Rebuild state for containers that are still known after a restart. */
  recover(configs: ContainerConfig[]): Promise<void>;
  /** Refuse (ResourceError) resources this isolator cannot apply, before anything is created or written. */
  check?(resources: ResourceLimits): Promise<void>;
  /** Host-side setup before the fork; returns what the child must do. */
  prepare(config: ContainerConfig): Promise<Partial<LaunchInfo> | undefined>;
  /**
   * prepare() makes only what the fork needs (cgroups): no plan op, namespace or fd, and nothing
   * a request can fail on past check(). A launch that answers its caller before the fork
   * (CreateContainer) runs it behind the answer, as runc makes its cgroups at StartContainer.
   */
  readonly prepareBehindAnswer?: boolean;
  /** The child is held: put it where it belongs (cgroups). */
  isolate(id: ContainerId, pid: number): Promise<void>;
  update(id: ContainerId, resources: ResourceLimits): Promise<void>;
  usage(id: ContainerId): Promise<Partial<ResourceStatistics>>;
  status(id: ContainerId): Promise<IsolatorStatus>;
  /**
   * Network isolators only: addresses and problems, from memory. PodSandboxStatus asks for this
   * on every call, so it must not read cgroup files as status() does.
   */
  networkStatus?(id: ContainerId): Promise<Pick<IsolatorStatus, 'ips' | 'networkProblem'>>;
  /** After every process is gone. Unknown ids are fine. */
  cleanup(id: ContainerId): Promise<void>;
  /** The container is being removed (its runtime dir goes next): drop what was kept for it after cleanup. */
  remove?(config: ContainerConfig): Promise<void>;
}
