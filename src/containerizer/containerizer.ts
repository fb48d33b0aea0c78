// The Containerizer contract (src/slave/containerizer/containerizer.hpp), for CRI.
import type { ContainerConfig, ContainerId, ResourceLimits, ResourceStatistics, UsageDetail } from './mesos/isolator.js';
import type { ProcessSpec } from '../store/metadata.js';
import type { ImageRecord } from '../images/store.js';
import type { Socket } from 'node:net';
import type { DockerLaunch } from './docker/containerizer.js';
import type { Readable, Writable } from 'node:stream';

export type LaunchResult = 'SUCCESS' | 'ALREADY_LAUNCHED' | 'NOT_SUPPORTED';

export interface LaunchRequest {
  config: ContainerConfig;
  /** which containerizer should claim the launch ("" and "mesos" → Mesos). */
  runtimeHandler: string;
  /** nested (CRI) containers: the image to provision and the process to run */
  image?: ImageRecord;
  /** Computes the process once the rootfs exists (the user is resolved inside the image). */
  process?: (rootfs: string | undefined) => Promise<ProcessSpec>;
  /**
   * nested containers: called once everything a bad request can fail on is done (the rootfs, the
   * process and its plan), before the cgroups are made and the helper is forked; that waits for
   * it, or for a destroy. CreateContainer answers here and leaves the rest of the launch for
   * StartContainer (or a quiet moment before it).
   */
  prepared?: () => Promise<void>;
  /** absolute CRI log path; '' or undefined discards output */
  logPath?: string;
  /** top-level (pod) containers: the pause helper's seccomp filter (nested ones carry theirs in the process) */
  seccomp?: string;
  /**
   * top-level (pod) containers: the pause helper's user (CRI run_as_user, run_as_group,
   * supplemental_groups), taken once its setup is done, as containerd runs the pause container
   */
  podUser?: { uid: number; gid: number; groups: number[] };
  /** docker pods: what the Docker containerizer needs besides the config (image, process, security) */
  docker?: DockerLaunch;
}

export interface Termination {
  /** exit code as CRI reports it: the status, or 128+signal */
  exitCode: number;
  /** ns since epoch, decimal string */
  finishedAt: string;
  oomKilled: boolean;
  message: string;
}

export interface ExecResult {
  stdout: Buffer;
  stderr: Buffer;
  exitCode: number;
  timedOut: boolean;
}

/** Which stdio a streaming exec has (CRI ExecRequest); tty excludes stderr (the terminal carries both). */
export interface ExecIO {
  tty: boolean;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
}

/** A running streaming exec. */
export interface ExecHandle {
  /** end() is the end of the process's input: a pipe is closed, a terminal gets its VEOF (^D). */
  stdin?: Writable;
  /** A tty exec's terminal output. Ends shortly after the process exits. */
  stdout?: Readable;
  stderr?: Readable;
  /** The terminal's size (tty only; a no-op otherwise). */
  resize(cols: number, rows: number): void;
  /** The exit code (128+n for signal n) once the process exited and its output ended. */
  wait(): Promise<number>;
  /** SIGKILL to the process's whole process group; a no-op once it has exited. */
  kill(): void;
}

/** An attach to a container's own process (CRI Attach), through its launch helper. */
export interface AttachHandle {
  /** Present when the container has stdin open; end() ends it for a stdin_once container. */
  stdin?: Writable;
  stdout: Readable;
  /** Absent for a tty container (its terminal carries both). */
  stderr?: Readable;
  resize(cols: number, rows: number): void;
  /** Detach; the container runs on. */
  close(): void;
  /** The command's exit code if it ended while attached; null when the connection ended first. */
  exitCode: Promise<number | null>;
}

/** What a containerizer found in its own checkpoints after a restart. */
export interface RecoveryReport {
  containers: {
    id: ContainerId;
    config: ContainerConfig;
    /** Mesos state: RUNNING, FETCHING (created, not started), TERMINATED or DESTROYING (died while we were down). */
    state: string;
    /** Whether it lives could not be told: left alone. */
    unverified: boolean;
    /** A nested container whose launch a crash cut short (never held, never started): destroyed, to be launched again. */
    interrupted?: boolean;
  }[];
  /** Containers whose checkpoint is quarantined: left alone, not to be touched by anyone. */
  protected: ContainerId[];
  /** Cgroups of containers no checkpoint knows, killed and removed. */
  orphans: string[];
  /** Resolves when the containers that died while the daemon was down are cleaned up. */
  cleanup: Promise<void>;
}

/** Mesos ContainerStatus, trimmed: what PodSandboxStatus shows of the network. */
export interface ContainerStatus {
  /** IPv4 first; the first is PodSandboxStatus.network.ip, the rest additional_ips. */
  ips: string[];
  /** Set when the network isolator found the pod's network broken (a failed CNI CHECK at recovery). */
  networkProblem?: string;
}

/** What a containerizer tells of itself for the metrics, from its memory only (read at every scrape). */
export interface Census {
  /** its containers by kind and its own state names (Mesos: STARTING … TERMINATED) */
  states: { kind: 'pod' | 'container'; state: string; count: number }[];
  /** its helper processes alive (Mesos: launch helpers), by the kind of container they serve; absent when it cannot tell cheaply */
  helpers?: { kind: 'pod' | 'container'; count: number }[];
}

export interface Containerizer {
  /** Reattach to what survived a daemon restart, from the containerizer's own checkpoints. */
  recover(): Promise<RecoveryReport>;
  launch(req: LaunchRequest): Promise<LaunchResult>;
  /** The last launch step for a created container: release it from its exec FIFO (CRI StartContainer). */
  start(id: ContainerId): Promise<void>;
  kill(id: ContainerId, signal: number): Promise<boolean>;
  /** Resolves once the container has terminated; undefined for unknown ids. */
  wait(id: ContainerId): Promise<Termination | undefined>;
  destroy(id: ContainerId): Promise<Termination | undefined>;
  update(id: ContainerId, resources: ResourceLimits): Promise<void>;
  /** Addresses and network state (unknown ids: NOT_FOUND). */
  status(id: ContainerId): Promise<ContainerStatus>;
  /** Mesos' usage(); with detail 'cpu' only the CPU counters (and cgroup2's cpu and io pressure). */
  usage(id: ContainerId, detail?: UsageDetail): Promise<ResourceStatistics>;
  /** Run a command in the container's namespaces and cgroups (a DEBUG nested container). */
  execSync(id: ContainerId, argv: string[], timeoutMs: number, process: ProcessSpec): Promise<ExecResult>;
  /** Run a command in the container's namespaces and cgroups with streamed stdio (CRI Exec). */
  exec(id: ContainerId, argv: string[], process: ProcessSpec, io: ExecIO): Promise<ExecHandle>;
  /** Connect to the container's own stdio (CRI Attach). */
  attach(id: ContainerId): Promise<AttachHandle>;
  /** A TCP connection to localhost:port in the pod's network namespace (CRI PortForward). */
  portForward(podId: ContainerId, port: number): Promise<Socket>;
  /** Send a control line to the container's launch helper (e.g. reopen its log). */
  control(id: ContainerId, line: string): Promise<void>;
  /** Delete what a terminated container left: runtime dir, rootfs. */
  remove(id: ContainerId): Promise<void>;
  containers(): ContainerId[];
  /** pid of the container's init (launch helper), if it runs. */
  pid(id: ContainerId): number | undefined;
  /** pid of the container's own process (its command; a pod's pause helper), as the host sees it. */
  processPid(id: ContainerId): number | undefined;
  isRunning(id: ContainerId): boolean;
  /** Its containers by state, and its helpers alive (the metrics); optional. */
  census?(): Census;
}
