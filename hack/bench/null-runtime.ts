// The floor of a CRI runtime served by grpc-js: a server that keeps its pods and containers in
// two Maps and does nothing else (no process, no cgroup, no file, no log line). Measured with
// the bench as its A side (`--endpoint`), against containerd as B, it says what no work at all
// costs at the bench's client in the same interleaved run: the share of each p50 that the
// client, the transport and the gRPC stack take, whatever the runtime behind them does.
// It serves the calls of the pod and container workloads only; anything else is UNIMPLEMENTED.
//
//   node dist/hack/bench/null-runtime.js --socket <path>      (npm run build first)
//   npm run bench -- --endpoint <path> --vs reference --workloads pod,container --no-docker
//
// The same service definitions and protobufjs codec as the daemon (src/cri/service-definitions.ts),
// the same server options; no HTTP/2 front (grpc-js owns the socket, as with --cri-front=false).
import * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { criServiceDefinitions } from '../../src/cri/service-definitions.js';

const at = process.argv.indexOf('--socket');
const socket = at >= 0 ? process.argv[at + 1] : undefined;
if (!socket) {
  process.stderr.write('usage: null-runtime --socket <path>\n');
  process.exit(2);
}

type Req = Record<string, any>;
interface Obj {
  id: string;
  metadata: object;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  created: string;
  state: string;
  podId?: string;
  image?: object;
}
const pods = new Map<string, Obj>();
const ctrs = new Map<string, Obj>();
const newId = () => randomBytes(32).toString('hex');
const nanos = () => String(BigInt(Date.now()) * 1_000_000n);
const notFound = (what: string): grpc.ServiceError =>
  Object.assign(new Error(what), { code: grpc.status.NOT_FOUND, details: what, metadata: new grpc.Metadata() });

const runtime: Record<string, (r: Req) => object> = {
  Version: () => ({ version: '0.1.0', runtime_name: 'null-runtime', runtime_version: '0', runtime_api_version: 'v1' }),
  Status: () => ({ status: { conditions: [{ type: 'RuntimeReady', status: true }, { type: 'NetworkReady', status: true }] } }),
  RunPodSandbox: (r) => {
    const c = r.config ?? {};
    const p: Obj = { id: newId(), metadata: c.metadata, labels: c.labels ?? {}, annotations: c.annotations ?? {}, created: nanos(), state: 'SANDBOX_READY' };
    pods.set(p.id, p);
    return { pod_sandbox_id: p.id };
  },
  PodSandboxStatus: (r) => {
    const p = pods.get(r.pod_sandbox_id);
    if (!p) throw notFound(`pod sandbox ${r.pod_sandbox_id} not found`);
    return { status: { id: p.id, metadata: p.metadata, state: p.state, created_at: p.created, labels: p.labels, annotations: p.annotations } };
  },
  StopPodSandbox: (r) => {
    const p = pods.get(r.pod_sandbox_id);
    if (p) p.state = 'SANDBOX_NOTREADY';
    for (const c of ctrs.values()) if (c.podId === r.pod_sandbox_id) c.state = 'CONTAINER_EXITED';
    return {};
  },
  RemovePodSandbox: (r) => {
    pods.delete(r.pod_sandbox_id);
    for (const [id, c] of ctrs) if (c.podId === r.pod_sandbox_id) ctrs.delete(id);
    return {};
  },
  ListPodSandbox: () => ({
    items: [...pods.values()].map((p) => ({ id: p.id, metadata: p.metadata, state: p.state, created_at: p.created, labels: p.labels, annotations: p.annotations })),
  }),
  CreateContainer: (r) => {
    if (!pods.has(r.pod_sandbox_id)) throw notFound(`pod sandbox ${r.pod_sandbox_id} not found`);
    const c = r.config ?? {};
    const o: Obj = { id: newId(), podId: r.pod_sandbox_id, metadata: c.metadata, labels: c.labels ?? {}, annotations: c.annotations ?? {}, created: nanos(), state: 'CONTAINER_CREATED', image: c.image };
    ctrs.set(o.id, o);
    return { container_id: o.id };
  },
  StartContainer: (r) => {
    const c = ctrs.get(r.container_id);
    if (!c) throw notFound(`container ${r.container_id} not found`);
    c.state = 'CONTAINER_RUNNING';
    return {};
  },
  ContainerStatus: (r) => {
    const c = ctrs.get(r.container_id);
    if (!c) throw notFound(`container ${r.container_id} not found`);
    return { status: { id: c.id, metadata: c.metadata, state: c.state, created_at: c.created, image: c.image, labels: c.labels, annotations: c.annotations } };
  },
  StopContainer: (r) => {
    const c = ctrs.get(r.container_id);
    if (c) c.state = 'CONTAINER_EXITED';
    return {};
  },
  RemoveContainer: (r) => {
    ctrs.delete(r.container_id);
    return {};
  },
  ListContainers: () => ({
    containers: [...ctrs.values()].map((c) => ({ id: c.id, pod_sandbox_id: c.podId, metadata: c.metadata, state: c.state, created_at: c.created, image: c.image, labels: c.labels, annotations: c.annotations })),
  }),
};

function implementation(service: grpc.ServiceDefinition, handlers: Record<string, (r: Req) => object>, name: string): grpc.UntypedServiceImplementation {
  const impl: grpc.UntypedServiceImplementation = {};
  for (const [method, def] of Object.entries(service)) {
    const handler = handlers[method];
    impl[method] = def.responseStream
      ? (call: grpc.ServerWritableStream<unknown, unknown>) => call.emit('error', { code: grpc.status.UNIMPLEMENTED, details: `${name}/${method}` })
      : (call: grpc.ServerUnaryCall<Req, unknown>, done: grpc.sendUnaryData<unknown>) => {
          if (!handler) return done({ code: grpc.status.UNIMPLEMENTED, details: `the null runtime does not serve ${name}/${method}` });
          try {
            done(null, handler(call.request));
          } catch (err) {
            done(err as grpc.ServiceError);
          }
        };
  }
  return impl;
}

const defs = criServiceDefinitions();
const server = new grpc.Server({ 'grpc.max_receive_message_length': 16 * 1024 * 1024, 'grpc.max_send_message_length': 16 * 1024 * 1024 });
server.addService(defs.runtime, implementation(defs.runtime, runtime, 'runtime.v1.RuntimeService'));
server.addService(defs.image, implementation(defs.image, {}, 'runtime.v1.ImageService'));
rmSync(socket, { force: true });
server.bindAsync(`unix://${socket}`, grpc.ServerCredentials.createInsecure(), (err) => {
  if (err) {
    process.stderr.write(`null-runtime: ${err.message}\n`);
    process.exit(1);
  }
  process.stdout.write(`null-runtime: serving on ${socket}\n`);
});
const stop = () => server.tryShutdown(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
