// Responses encoded once per change (src/cri/encoded.ts): the bytes are the service's own
// serializer's, a List is its elements' bytes in order, and a new record means new bytes.
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { criServiceDefinitions } from '../../src/cri/service-definitions.js';
import { Encoded, encodedList, encodedOnce, passEncoded, responseCache } from '../../src/cri/encoded.js';

const runtime = criServiceDefinitions().runtime;
// the serializers as they come, before passEncoded wraps them
const serialize = Object.fromEntries(Object.entries(runtime).map(([k, m]) => [k, m.responseSerialize])) as Record<string, (v: unknown) => Buffer>;
const deserialize = (method: string, b: Buffer) => runtime[method]!.responseDeserialize(b) as Record<string, unknown>;

interface Rec {
  id: string;
  state: string;
  labels: Record<string, string>;
}

const pod = (r: Rec) => ({
  id: r.id,
  metadata: { name: r.id, uid: `u-${r.id}`, namespace: 'ns', attempt: 1 },
  state: r.state,
  created_at: '1732000000123456789',
  labels: r.labels,
  annotations: { a: 'b' },
  runtime_handler: '',
});

test('without a server, handlers get their response objects back', (t) => {
  // a method name no passEncoded has seen
  const obj = { status: { id: 'x' } };
  t.is(encodedOnce(responseCache<Rec>(), { id: 'x', state: 'S', labels: {} }, 'NoSuchMethod', () => obj), obj);
  const r = encodedList(new WeakMap<Rec, Buffer>(), 'NoSuchMethod', 'items', [{ id: 'a', state: 'S', labels: {} }], (x) => x.id);
  t.deepEqual(r, { items: ['a'] });
});

test('passEncoded: the serializer sends Encoded bytes as they are and encodes anything else as before', (t) => {
  passEncoded(runtime);
  passEncoded(runtime); // twice is once
  const v = { version: '0.1.0', runtime_name: 'cri-mesos', runtime_version: '1', runtime_api_version: 'v1' };
  t.deepEqual(runtime.Version!.responseSerialize(v), serialize.Version!(v));
  const raw = Buffer.from([1, 2, 3]);
  t.is(runtime.Version!.responseSerialize(new Encoded(raw) as never), raw);
});

test('encodedOnce: one encoding per record and variant, byte for byte the serializer\'s', (t) => {
  passEncoded(runtime);
  const cache = responseCache<Rec>();
  const rec: Rec = { id: 'p1', state: 'SANDBOX_READY', labels: { app: 'web' } };
  let builds = 0;
  const build = (r: Rec, ips: string[]) => () => {
    builds++;
    return { status: { ...pod(r), network: { ip: ips[0] ?? '', additional_ips: ips.slice(1).map((ip) => ({ ip })) } }, info: {}, containers_statuses: [], timestamp: 0 };
  };
  const a = encodedOnce(cache, rec, 'PodSandboxStatus', build(rec, []));
  const b = encodedOnce(cache, rec, 'PodSandboxStatus', build(rec, []));
  t.true(a instanceof Encoded);
  t.is(a, b);
  t.is(builds, 1);
  t.deepEqual((a as Encoded).bytes, serialize.PodSandboxStatus!(build(rec, [])()));
  // another variant (the pod's addresses) is another answer
  const c = encodedOnce(cache, rec, 'PodSandboxStatus', build(rec, ['10.0.0.2', 'fd00::2']), '10.0.0.2 fd00::2');
  t.not(c, a);
  t.like(deserialize('PodSandboxStatus', (c as Encoded).bytes), { status: { network: { ip: '10.0.0.2', additional_ips: [{ ip: 'fd00::2' }] } } });
  // a changed record is a new object (MetadataStore.update): its answer shows the change
  const next = { ...rec, state: 'SANDBOX_NOTREADY' };
  const d = encodedOnce(cache, next, 'PodSandboxStatus', build(next, []));
  t.like(deserialize('PodSandboxStatus', (d as Encoded).bytes), { status: { id: 'p1', state: 'SANDBOX_NOTREADY' } });
});

test('encodedList: the same bytes as encoding the whole list, in the order given, also empty', (t) => {
  passEncoded(runtime);
  const cache = new WeakMap<Rec, Buffer>();
  const recs: Rec[] = Array.from({ length: 50 }, (_, i) => ({ id: `p${i}`, state: i % 3 ? 'SANDBOX_READY' : 'SANDBOX_NOTREADY', labels: { i: String(i), 'long-label': 'x'.repeat(i * 7) } }));
  const whole = (rs: Rec[]) => serialize.ListPodSandbox!({ items: rs.map(pod) });
  const enc = encodedList(cache, 'ListPodSandbox', 'items', recs, pod) as Encoded;
  t.deepEqual(enc.bytes, whole(recs));
  // a subset and another order reuse the elements and still match
  const some = recs.filter((_, i) => i % 4 === 1).reverse();
  t.deepEqual((encodedList(cache, 'ListPodSandbox', 'items', some, pod) as Encoded).bytes, whole(some));
  t.deepEqual((encodedList(cache, 'ListPodSandbox', 'items', [], pod) as Encoded).bytes, whole([]));
  // one record replaced: its element is encoded anew, the others are reused
  const changed = recs.map((r, i) => (i === 7 ? { ...r, state: 'SANDBOX_NOTREADY', labels: { changed: 'yes' } } : r));
  const again = encodedList(cache, 'ListPodSandbox', 'items', changed, pod) as Encoded;
  t.deepEqual(again.bytes, whole(changed));
  const items = deserialize('ListPodSandbox', again.bytes).items as { id: string; labels: Record<string, string> }[];
  t.deepEqual(items[7]!.labels, { changed: 'yes' });
  t.is(items.length, 50);
});

test('a status served from Encoded bytes decodes at the client as the object would', async (t) => {
  // a real server and client on a unix socket: what the client sees, with the wrapped serializer
  const defs = criServiceDefinitions();
  passEncoded(defs.runtime);
  const server = new grpc.Server();
  const status = { id: 'c1', metadata: { name: 'c', attempt: 2 }, state: 'CONTAINER_EXITED', created_at: '1', started_at: '2', finished_at: '3', exit_code: 3, reason: 'Error', labels: { x: 'y' } };
  let asBytes = true;
  server.addService(defs.runtime, {
    ContainerStatus: (_call: unknown, cb: grpc.sendUnaryData<unknown>) =>
      cb(null, asBytes ? new Encoded(serialize.ContainerStatus!({ status, info: {} })) : { status, info: {} }),
  });
  const { mkdtemp, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = await mkdtemp(join(tmpdir(), 'encoded-'));
  t.teardown(async () => {
    server.forceShutdown();
    await rm(dir, { recursive: true, force: true });
  });
  const sock = join(dir, 's.sock');
  await new Promise<void>((ok, ko) => server.bindAsync(`unix://${sock}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? ko(e) : ok())));
  const Client = grpc.makeGenericClientConstructor(defs.runtime, 'RuntimeService');
  const client = new Client(`unix://${sock}`, grpc.credentials.createInsecure()) as unknown as Record<string, (req: object, cb: (e: Error | null, r: unknown) => void) => void> & grpc.Client;
  t.teardown(() => client.close());
  const call = () => new Promise<unknown>((ok, ko) => client.ContainerStatus!({ container_id: 'c1' }, (e, r) => (e ? ko(e) : ok(r))));
  const viaBytes = await call();
  asBytes = false;
  const viaObject = await call();
  t.deepEqual(viaBytes, viaObject);
  t.like(viaBytes as object, { status: { id: 'c1', state: 'CONTAINER_EXITED', exit_code: 3, reason: 'Error', labels: { x: 'y' } } });
});
