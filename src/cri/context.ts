// Everything a CRI handler may use. Built once by the daemon.
import { containerDir, dockerContainerDir } from '../paths.js';
import type { DaemonConfig } from '../config.js';
import type { Logger } from '../log.js';
import type { ComposingContainerizer } from '../containerizer/composing.js';
import type { ImageStore } from '../images/store.js';
import type { ContainerRecord, MetadataStore, NameRegistry, SandboxRecord } from '../store/metadata.js';
import type { ImageServiceContext } from './image/context.js';
import type { ContainerId } from '../containerizer/mesos/isolator.js';
import type { StatsSampler } from './stats-sampler.js';
import type { Quarantine } from '../store/quarantine.js';
import type { StreamServer } from '../stream/server.js';
import type { NetworkConfigWatcher } from '../network/conf-dir.js';
import type { EventBus } from './events.js';

/** A launch behind CreateContainer's answer (container-launch.ts). */
export interface PendingLaunch {
  /** Resolves once the helper is held; rejects when the launch failed. */
  done: Promise<void>;
  /** StartContainer: the launch goes on now if it still waits. */
  go(): void;
}

export interface RuntimeContext extends ImageServiceContext {
  config: DaemonConfig;
  log: Logger;
  sandboxes: MetadataStore<SandboxRecord>;
  containers: MetadataStore<ContainerRecord>;
  names: NameRegistry;
  containerizer: ComposingContainerizer;
  images: ImageStore;
  /**
   * The launches CreateContainer answered before their helpers were held (container-launch.ts),
   * by container id, until they end: StartContainer lets them go on and waits for them.
   */
  launches: Map<string, PendingLaunch>;
  /** Resolves at a quiet moment between calls, after `maxMs` at the latest, or at once when `signal` aborts. */
  quietMoment(maxMs: number, signal?: AbortSignal): Promise<void>;
  /** Records a container's termination in its CRI record once it happens. */
  watchContainer(record: ContainerRecord): void;
  /** GetContainerEvents: every state transition below is emitted here. */
  events: EventBus;
  /** Marks a pod NOTREADY when its init dies. */
  watchSandbox(id: string): void;
  /** The node's pod CIDR(s) from UpdateRuntimeConfig ('' until kubelet sends it). */
  podCidr: string;
  /** The CNI network (NetworkReady); absent with the posix launcher, which has no network isolator. */
  network?: NetworkConfigWatcher;
  /** Checkpoints recovery could not read, moved aside (shown in Status). */
  quarantine: Quarantine;
  /** The stats sampler: the latest usage of every running container and ready pod (stats RPCs, pod metrics). */
  stats: StatsSampler;
  /** The Exec/Attach/PortForward server: parks a request, hands out its URL. */
  streams: Pick<StreamServer, 'getExecUrl' | 'getAttachUrl' | 'getPortForwardUrl'>;
}

export function podId(id: string): ContainerId {
  return { value: id };
}

export function containerId(record: Pick<ContainerRecord, 'id' | 'sandboxId'>): ContainerId {
  return { value: record.id, parent: { value: record.sandboxId } };
}

/** The runtime handler whose pods the Docker containerizer runs. */
export const DOCKER_HANDLER = 'docker';

/** The containerizer that runs pods of `handler` (RunPodSandbox admits no other handlers than theirs). */
export function containerizerOf(handler: string): 'mesos' | 'docker' {
  return handler === DOCKER_HANDLER ? 'docker' : 'mesos';
}

/** Docker pods keep their runtime dirs apart (paths.ts), so that neither containerizer recovers the other's. */
export function podRuntimeDir(config: DaemonConfig, pod: string, handler = ''): string {
  return (handler === DOCKER_HANDLER ? dockerContainerDir : containerDir)(config.runtimeDir, podId(pod));
}

export function containerRuntimeDir(config: DaemonConfig, pod: string, ctr: string, handler = ''): string {
  return (handler === DOCKER_HANDLER ? dockerContainerDir : containerDir)(config.runtimeDir, { value: ctr, parent: podId(pod) });
}

export { nowNanos } from '../util/time.js';
