import test from 'ava';
import * as protoLoader from '@grpc/proto-loader';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PROTO_OPTIONS } from '../../src/cri/service-definitions.js';
import { PROTO_DESCRIPTOR_FILE, PROTO_FILE, projectRoot } from '../../src/util/paths.js';

// The daemon loads the built JSON descriptor instead of parsing the .proto: both must give
// the same services, methods and message shapes, or the wire contract would change.
test('the built proto descriptor defines exactly what the .proto does', (t) => {
  const descriptor = join(projectRoot(), PROTO_DESCRIPTOR_FILE);
  t.true(statSync(descriptor).mtimeMs >= statSync(join(projectRoot(), PROTO_FILE)).mtimeMs, 'npm run build writes it after the .proto changes');
  const parsed = protoLoader.loadSync(join(projectRoot(), PROTO_FILE), PROTO_OPTIONS);
  const built = protoLoader.fromJSON(JSON.parse(readFileSync(descriptor, 'utf8')), PROTO_OPTIONS);
  t.deepEqual(Object.keys(built).sort(), Object.keys(parsed).sort());
  const shape = (def: protoLoader.PackageDefinition) =>
    Object.fromEntries(
      Object.entries(def).map(([name, v]) => {
        if ('format' in v) return [name, (v.type as { field?: { name: string; number: number; type: string; label: string }[] }).field?.map((f) => [f.name, f.number, f.type, f.label])];
        return [name, Object.fromEntries(Object.entries(v as protoLoader.ServiceDefinition).map(([m, d]) => [m, [d.path, d.requestStream, d.responseStream, (d.requestType.type as { name?: string }).name, (d.responseType.type as { name?: string }).name]]))];
      }),
    );
  const b = shape(built);
  t.deepEqual(b, shape(parsed));
  t.true(Object.keys((built['runtime.v1.RuntimeService'] ?? {}) as object).includes('RunPodSandbox'));
});
