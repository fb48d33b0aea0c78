// The CRI gRPC server: one handler per RPC behind an instrumented wrapper that
// holds requests until recovery is done, logs mutating calls and every failed
// request, times every call for the metrics, and maps errors onto gRPC status codes.
import type { Activity } from '../util/activity.js';
import * as grpc from '@grpc/grpc-js';
import { criServiceDefinitions } from './service-definitions.js';
import { statusOf, unavailable } from '../errors.js';
import type { RuntimeContext } from './context.js';
import type { ContainerEventResponse } from '../../api/generated/runtime/v1/ContainerEventResponse.js';
import type { ImageServiceContext } from './image/context.js';
import { version } from './runtime/version.js';
import { status } from './runtime/status.js';
import { runtimeConfig } from './runtime/runtime-config.js';
import { updateRuntimeConfig } from './runtime/update-runtime-config.js';
import { runPodSandbox } from './runtime/run-pod-sandbox.js';
import { stopPodSandbox } from './runtime/stop-pod-sandbox.js';
import { removePodSandbox } from './runtime/remove-pod-sandbox.js';
import { podSandboxStatus } from './runtime/pod-sandbox-status.js';
import { listPodSandbox } from './runtime/list-pod-sandbox.js';
import { createContainer } from './runtime/create-container.js';
import { startContainer } from './runtime/start-container.js';
import { stopContainer } from './runtime/stop-container.js';
import { removeContainer } from './runtime/remove-container.js';
import { listContainers } from './runtime/list-containers.js';
import { containerStatus } from './runtime/container-status.js';
import { updateContainerResources } from './runtime/update-container-resources.js';
import { reopenContainerLog } from './runtime/reopen-container-log.js';
import { exec } from './runtime/exec.js';
import { attach } from './runtime/attach.js';
import { portForward } from './runtime/port-forward.js';
import { execSync } from './runtime/exec-sync.js';
import { containerStats } from './runtime/container-stats.js';
import { listContainerStats } from './runtime/list-container-stats.js';
import { podSandboxStats } from './runtime/pod-sandbox-stats.js';
import { listPodSandboxStats } from './runtime/list-pod-sandbox-stats.js';
import { listMetricDescriptors } from './runtime/list-metric-descriptors.js';
import { listPodSandboxMetrics } from './runtime/list-pod-sandbox-metrics.js';
import { listImages } from './image/list-images.js';
import { imageStatus } from './image/image-status.js';
import { pullImage } from './image/pull-image.js';
import { removeImage } from './image/remove-image.js';
import { imageFsInfo } from './image/image-fs-info.js';
import { encodeSoon, passEncoded } from './encoded.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyHandler = (ctx: any, req: any) => Promise<unknown>;

const RUNTIME: Record<string, AnyHandler> = {
  Version: version,
  Status: status,
  RuntimeConfig: runtimeConfig,
  UpdateRuntimeConfig: updateRuntimeConfig,
  RunPodSandbox: runPodSandbox,
  StopPodSandbox: stopPodSandbox,
  RemovePodSandbox: removePodSandbox,
  PodSandboxStatus: podSandboxStatus,
  ListPodSandbox: listPodSandbox,
  CreateContainer: createContainer,
  StartContainer: startContainer,
  StopContainer: stopContainer,
  RemoveContainer: removeContainer,
  ListContainers: listContainers,
  ContainerStatus: containerStatus,
  UpdateContainerResources: updateContainerResources,
  ReopenContainerLog: reopenContainerLog,
  ExecSync: execSync,
  Exec: exec,
  Attach: attach,
  PortForward: portForward,
  ContainerStats: containerStats,
  ListContainerStats: listContainerStats,
  PodSandboxStats: podSandboxStats,
  ListPodSandboxStats: listPodSandboxStats,
  ListMetricDescriptors: listMetricDescriptors,
  ListPodSandboxMetrics: listPodSandboxMetrics,
};

const IMAGE: Record<string, AnyHandler> = {
  ListImages: listImages,
  ImageStatus: imageStatus,
  PullImage: pullImage,
  RemoveImage: removeImage,
  ImageFsInfo: imageFsInfo,
};

/** Read-only calls that kubelet makes constantly: debug level, not info. */
const QUIET = /^(List|Version|Status|RuntimeConfig|ImageFsInfo|ImageStatus|ContainerStatus|PodSandboxStatus|ContainerStats|PodSandboxStats)/;

/** Every error reaches the client with the status its layer gave it (errors.ts). */
export function toServiceError(err: unknown): Partial<grpc.ServiceError> {
  const message = err instanceof Error ? err.message : String(err);
  return { code: statusOf(err), details: message, message };
}

function buildImplementation(
  service: grpc.ServiceDefinition,
  handlers: Record<string, AnyHandler>,
  ctx: RuntimeContext | ImageServiceContext,
  ready: Promise<void>,
  serviceName: string,
  activity?: Activity,
): grpc.UntypedServiceImplementation {
  const impl: grpc.UntypedServiceImplementation = {};
  let seq = 0;
  for (const [name, method] of Object.entries(service)) {
    const handler = handlers[name];
    if (method.responseStream && name === 'GetContainerEvents' && 'events' in ctx) {
      impl[name] = (call: grpc.ServerWritableStream<unknown, ContainerEventResponse>) => {
        // After recovery, like every request: then the events recovery produced are complete.
        ready.then(
          () => ctx.events.subscribe(call),
          (err: unknown) => call.emit('error', toServiceError(err)),
        );
      };
      continue;
    }
    if (method.responseStream) {
      impl[name] = (call: grpc.ServerWritableStream<unknown, unknown>) => {
        call.emit('error', { code: grpc.status.UNIMPLEMENTED, details: `${serviceName}/${name} is not implemented by cri-mesos yet` });
      };
      continue;
    }
    impl[name] = (call: grpc.ServerUnaryCall<unknown, unknown>, outer: grpc.sendUnaryData<unknown>) => {
      activity?.begin();
      const callback: grpc.sendUnaryData<unknown> = (err, res) => {
        activity?.end();
        outer(err, res);
      };
      const id = ++seq;
      const started = process.hrtime.bigint();
      const quiet = QUIET.test(name);
      if (!handler) {
        ctx.metrics?.rpc(name, 0, grpc.status.UNIMPLEMENTED);
        ctx.log.warn('request failed', { rpc: name, code: 'UNIMPLEMENTED' });
        callback({ code: grpc.status.UNIMPLEMENTED, details: `${serviceName}/${name} is not implemented by cri-mesos yet` });
        return;
      }
      ready
        .then(() => {
          ctx.log.log(quiet ? 'debug' : 'info', 'request', { rpc: name, id });
          return handler(ctx, call.request);
        })
        .then(
          (res) => {
            const ms = Number(process.hrtime.bigint() - started) / 1e6;
            ctx.metrics?.rpc(name, ms / 1000, grpc.status.OK);
            ctx.log.log(quiet ? 'debug' : 'info', 'response', { rpc: name, id, ms: Math.round(ms * 100) / 100 });
            callback(null, res);
          },
          (err: unknown) => {
            const e = toServiceError(err);
            ctx.metrics?.rpc(name, Number(process.hrtime.bigint() - started) / 1e9, e.code ?? grpc.status.UNKNOWN);
            ctx.log.warn('request failed', { rpc: name, id, code: grpc.status[e.code ?? 2], error: e.details });
            callback(e);
          },
        );
    };
  }
  return impl;
}

/** `activity`: told of every unary call, so that background work can wait for a quiet moment. */
export function createCriServer(ctx: RuntimeContext, recovered: Promise<void>, activity?: Activity): grpc.Server {
  // Requests wait for recovery; if it failed, nothing was touched and every request says so.
  const ready = recovered.catch((err: unknown) => {
    throw unavailable(`cri-mesos could not recover its state, so it serves nothing: ${err instanceof Error ? err.message : String(err)}`);
  });
  ready.catch(() => undefined);
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 16 * 1024 * 1024, 'grpc.max_send_message_length': 16 * 1024 * 1024 });
  const defs = criServiceDefinitions();
  // Status and List handlers may answer with bytes encoded once per change (encoded.ts),
  // and a changed record's status is encoded as soon as the change's RPC has answered.
  passEncoded(defs.runtime);
  ctx.sandboxes.onPut((s) => encodeSoon(`pod ${s.id}`, () => podSandboxStatus(ctx, { pod_sandbox_id: s.id, verbose: false })));
  ctx.containers.onPut((c) => encodeSoon(`container ${c.id}`, () => containerStatus(ctx, { container_id: c.id, verbose: false })));
  server.addService(defs.runtime, buildImplementation(defs.runtime, RUNTIME, ctx, ready, 'runtime.v1.RuntimeService', activity));
  server.addService(defs.image, buildImplementation(defs.image, IMAGE, ctx, ready, 'runtime.v1.ImageService', activity));
  return server;
}
