// The agent's CRI client: runtime.v1 over gRPC on the runtime's unix socket, typed with the
// generated API types. Works against any CRI runtime; grpc-js reconnects by itself when the
// runtime restarts, and a call made while it is down fails with UNAVAILABLE.
import * as grpc from '@grpc/grpc-js';
import { criClientConstructors } from '../cri/service-definitions.js';
import type { RunPodSandboxRequest } from '../../api/generated/runtime/v1/RunPodSandboxRequest.js';
import type { PodSandboxFilter } from '../../api/generated/runtime/v1/PodSandboxFilter.js';
import type { PodSandbox__Output } from '../../api/generated/runtime/v1/PodSandbox.js';
import type { PodSandboxStatusResponse__Output } from '../../api/generated/runtime/v1/PodSandboxStatusResponse.js';
import type { CreateContainerRequest } from '../../api/generated/runtime/v1/CreateContainerRequest.js';
import type { ContainerFilter } from '../../api/generated/runtime/v1/ContainerFilter.js';
import type { Container__Output } from '../../api/generated/runtime/v1/Container.js';
import type { ContainerStatusResponse__Output } from '../../api/generated/runtime/v1/ContainerStatusResponse.js';
import type { ExecSyncResponse__Output } from '../../api/generated/runtime/v1/ExecSyncResponse.js';
import type { ImageSpec } from '../../api/generated/runtime/v1/ImageSpec.js';
import type { ImageStatusResponse__Output } from '../../api/generated/runtime/v1/ImageStatusResponse.js';
import type { PodSandboxConfig } from '../../api/generated/runtime/v1/PodSandboxConfig.js';
import type { VersionResponse__Output } from '../../api/generated/runtime/v1/VersionResponse.js';
import type { ContainerEventResponse__Output } from '../../api/generated/runtime/v1/ContainerEventResponse.js';

/** The kubelet's --runtime-request-timeout default. */
export const RUNTIME_REQUEST_TIMEOUT_MS = 2 * 60_000;

type Callback = (err: grpc.ServiceError | null, res: unknown) => void;
type ServiceClient = grpc.Client & Record<string, (req: unknown, meta: grpc.Metadata, opts: grpc.CallOptions, cb?: Callback) => unknown>;
type ServiceCtor = new (addr: string, creds: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => ServiceClient;

function loadServices(): { RuntimeService: ServiceCtor; ImageService: ServiceCtor } {
  return criClientConstructors() as unknown as { RuntimeService: ServiceCtor; ImageService: ServiceCtor };
}

/** "unix:///run/x.sock" or a plain path → the grpc-js address. */
export function endpointAddress(endpoint: string): string {
  if (endpoint.startsWith('unix://')) return endpoint;
  if (endpoint.startsWith('/')) return `unix://${endpoint}`;
  throw new Error(`--runtime-endpoint must be unix://<path> (got ${JSON.stringify(endpoint)})`);
}

export function grpcCode(err: unknown): number | undefined {
  return (err as { code?: number } | undefined)?.code;
}

export function isNotFound(err: unknown): boolean {
  return grpcCode(err) === grpc.status.NOT_FOUND;
}

export class CriClient {
  private readonly runtime: ServiceClient;
  private readonly image: ServiceClient;

  constructor(endpoint: string) {
    const { RuntimeService, ImageService } = loadServices();
    const addr = endpointAddress(endpoint);
    // Reconnect quickly after a runtime restart (the default backoff grows to 2 minutes).
    const options: grpc.ChannelOptions = { 'grpc.max_receive_message_length': 16 * 1024 * 1024, 'grpc.initial_reconnect_backoff_ms': 250, 'grpc.max_reconnect_backoff_ms': 2000 };
    this.runtime = new RuntimeService(addr, grpc.credentials.createInsecure(), options);
    this.image = new ImageService(addr, grpc.credentials.createInsecure(), options);
  }

  private call<T>(client: ServiceClient, method: string, req: object, timeoutMs = RUNTIME_REQUEST_TIMEOUT_MS): Promise<T> {
    return new Promise((resolve, reject) => {
      client[method]!.call(client, req, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => (err ? reject(err) : resolve(res as T)));
    });
  }

  version(): Promise<VersionResponse__Output> {
    return this.call(this.runtime, 'Version', { version: '0.1.0' }, 10_000);
  }

  async runPodSandbox(req: RunPodSandboxRequest): Promise<string> {
    return (await this.call<{ pod_sandbox_id: string }>(this.runtime, 'RunPodSandbox', req, 4 * 60_000)).pod_sandbox_id;
  }

  async stopPodSandbox(id: string): Promise<void> {
    await this.call(this.runtime, 'StopPodSandbox', { pod_sandbox_id: id });
  }

  async removePodSandbox(id: string): Promise<void> {
    await this.call(this.runtime, 'RemovePodSandbox', { pod_sandbox_id: id });
  }

  podSandboxStatus(id: string): Promise<PodSandboxStatusResponse__Output> {
    return this.call(this.runtime, 'PodSandboxStatus', { pod_sandbox_id: id, verbose: false });
  }

  async listPodSandbox(filter: PodSandboxFilter = {}): Promise<PodSandbox__Output[]> {
    return (await this.call<{ items: PodSandbox__Output[] }>(this.runtime, 'ListPodSandbox', { filter })).items ?? [];
  }

  async createContainer(req: CreateContainerRequest): Promise<string> {
    return (await this.call<{ container_id: string }>(this.runtime, 'CreateContainer', req)).container_id;
  }

  async startContainer(id: string): Promise<void> {
    await this.call(this.runtime, 'StartContainer', { container_id: id });
  }

  /** timeout in seconds, as the CRI's; the call itself gets that much more time. */
  async stopContainer(id: string, timeout: number): Promise<void> {
    await this.call(this.runtime, 'StopContainer', { container_id: id, timeout }, RUNTIME_REQUEST_TIMEOUT_MS + timeout * 1000);
  }

  async removeContainer(id: string): Promise<void> {
    await this.call(this.runtime, 'RemoveContainer', { container_id: id });
  }

  async listContainers(filter: ContainerFilter = {}): Promise<Container__Output[]> {
    return (await this.call<{ containers: Container__Output[] }>(this.runtime, 'ListContainers', { filter })).containers ?? [];
  }

  containerStatus(id: string): Promise<ContainerStatusResponse__Output> {
    return this.call(this.runtime, 'ContainerStatus', { container_id: id, verbose: false });
  }

  /** timeout in seconds (0 = none), as the CRI's. */
  execSync(id: string, cmd: string[], timeout: number): Promise<ExecSyncResponse__Output> {
    return this.call(this.runtime, 'ExecSync', { container_id: id, cmd, timeout }, timeout > 0 ? timeout * 1000 + 5_000 : 24 * 3600_000);
  }

  async reopenContainerLog(id: string): Promise<void> {
    await this.call(this.runtime, 'ReopenContainerLog', { container_id: id });
  }

  imageStatus(image: ImageSpec): Promise<ImageStatusResponse__Output> {
    return this.call(this.image, 'ImageStatus', { image, verbose: false });
  }

  async pullImage(image: ImageSpec, sandboxConfig: PodSandboxConfig): Promise<string> {
    return (await this.call<{ image_ref: string }>(this.image, 'PullImage', { image, sandbox_config: sandboxConfig }, 30 * 60_000)).image_ref;
  }

  /** GetContainerEvents: `onEvent` for each event; the promise ends when the stream does (with its error). */
  containerEvents(onEvent: (e: ContainerEventResponse__Output) => void, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const call = this.runtime.GetContainerEvents!.call(this.runtime, {}, new grpc.Metadata(), {}) as grpc.ClientReadableStream<ContainerEventResponse__Output>;
      const abort = () => call.cancel();
      signal.addEventListener('abort', abort, { once: true });
      call.on('data', onEvent);
      call.on('error', (err) => {
        signal.removeEventListener('abort', abort);
        reject(err);
      });
      call.on('end', () => {
        signal.removeEventListener('abort', abort);
        resolve();
      });
    });
  }

  close(): void {
    this.runtime.close();
    this.image.close();
  }
}
