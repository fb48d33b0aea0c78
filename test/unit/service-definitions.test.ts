import test from 'ava';
import * as protoLoader from '@grpc/proto-loader';
import { join } from 'node:path';
import { PROTO_OPTIONS, criServiceDefinitions } from '../../src/cri/service-definitions.js';
import { PROTO_FILE, projectRoot } from '../../src/util/paths.js';

// The daemon builds its method definitions from protobufjs itself, not through proto-loader:
// a client must not be able to tell. Same methods, paths and streaming, and the same bytes and
// objects both ways for messages with int64s, enums, maps, oneof-free nesting and defaults.
const ours = criServiceDefinitions();
const theirs = protoLoader.loadSync(join(projectRoot(), PROTO_FILE), PROTO_OPTIONS);

for (const [key, service] of [
  ['runtime', 'runtime.v1.RuntimeService'],
  ['image', 'runtime.v1.ImageService'],
] as const) {
  test(`${service}: the same methods, paths, streaming and names as proto-loader's`, (t) => {
    const ref = theirs[service] as protoLoader.ServiceDefinition;
    const shape = (d: Record<string, { path: string; requestStream: boolean; responseStream: boolean; originalName?: string }>) =>
      Object.fromEntries(Object.entries(d).map(([m, x]) => [m, [x.path, x.requestStream, x.responseStream, x.originalName]]));
    t.deepEqual(shape(ours[key]), shape(ref));
    t.true(Object.keys(ours[key]).length > 5);
  });
}

const samples: [string, string, object][] = [
  ['runtime.v1.RuntimeService', 'RunPodSandbox', {
    config: {
      metadata: { name: 'p', uid: 'u', namespace: 'n', attempt: 3 },
      labels: { a: 'b' },
      linux: { security_context: { namespace_options: { network: 'NODE', pid: 'POD' }, run_as_user: { value: '0' } } },
      port_mappings: [{ protocol: 'UDP', container_port: 53, host_port: 1053 }],
    },
    runtime_handler: '',
  }],
  ['runtime.v1.RuntimeService', 'ContainerStatus', { container_id: 'c', verbose: true }],
  ['runtime.v1.RuntimeService', 'UpdateContainerResources', { container_id: 'c', linux: { memory_limit_in_bytes: '9007199254740993', cpu_quota: '-1' } }],
  ['runtime.v1.ImageService', 'PullImage', { image: { image: 'busybox', annotations: { x: 'y' } }, auth: { username: 'u' } }],
];

for (const [service, method, request] of samples) {
  test(`${method}: the same request and response bytes and decoded objects as proto-loader's`, (t) => {
    const ref = (theirs[service] as protoLoader.ServiceDefinition)[method]!;
    const mine = ours[service.endsWith('ImageService') ? 'image' : 'runtime'][method]!;
    const bytes = ref.requestSerialize(request);
    t.deepEqual(mine.requestSerialize(request), bytes);
    t.deepEqual(mine.requestDeserialize(bytes), ref.requestDeserialize(bytes));
    t.true(Buffer.isBuffer(mine.requestSerialize(request)));
    // a response decoded from empty bytes: every default filled in, as proto-loader's
    t.deepEqual(mine.responseDeserialize(Buffer.alloc(0)), ref.responseDeserialize(Buffer.alloc(0)));
  });
}

test('a status response with int64 times, enums and a map decodes as with proto-loader', (t) => {
  const ref = (theirs['runtime.v1.RuntimeService'] as protoLoader.ServiceDefinition).ContainerStatus!;
  const response = {
    status: { id: 'c', state: 'CONTAINER_EXITED', created_at: '1796079142916000001', exit_code: 143, labels: { k: 'v' }, mounts: [{ container_path: '/x', propagation: 'PROPAGATION_PRIVATE' }] },
    info: { pid: '42' },
  };
  const bytes = ref.responseSerialize(response);
  const mine = criServiceDefinitions().runtime.ContainerStatus!;
  t.deepEqual(mine.responseSerialize(response), bytes);
  const decoded = mine.responseDeserialize(bytes) as { status: { created_at: string; state: string } };
  t.deepEqual(decoded, ref.responseDeserialize(bytes));
  t.is(decoded.status.created_at, '1796079142916000001');
  t.is(decoded.status.state, 'CONTAINER_EXITED');
  t.throws(() => mine.responseSerialize([] as unknown as object), { message: /got array/ });
});
