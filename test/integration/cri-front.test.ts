// The daemon's CRI socket is served through the HTTP/2 front: a client that
// sends the socket path as :authority (grpc-go before 1.57: kubelet and
// crictl up to 1.28) is answered, as is grpc-js's own client; with
// --cri-front=false the old refusal is back.
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { criServiceDefinitions } from '../../src/cri/service-definitions.js';
import { TestDaemon } from '../helpers/daemon.js';
import { useDaemon } from '../helpers/suite.js';
import { h2call, h2connect } from '../helpers/h2.js';

const d = useDaemon('CRI front tests', { importImages: false });
const runtime = criServiceDefinitions().runtime;
const VERSION = runtime.Version!;

/** Version through Node's http2 client, which sends :authority as given. */
async function versionWithAuthority(socket: string, authority: string) {
  const session = h2connect(socket);
  try {
    const r = await h2call(session, authority, VERSION.path as `/${string}`, VERSION.requestSerialize({ version: 'v1' }));
    return { ...r, answer: r.bytes?.[0] && (VERSION.responseDeserialize(r.bytes[0]) as { runtime_name: string; runtime_api_version: string }) };
  } finally {
    session.close();
  }
}

/** Version through grpc-js's client, optionally sending the socket path as :authority (what old grpc-go does). */
function versionGrpcJs(socket: string, authority?: string): Promise<{ runtime_name: string }> {
  const Client = grpc.makeGenericClientConstructor(runtime, 'RuntimeService');
  const c = new Client(`unix://${socket}`, grpc.credentials.createInsecure(), authority ? { 'grpc.default_authority': authority } : {}) as unknown as grpc.Client &
    Record<string, (req: object, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: { runtime_name: string }) => void) => void>;
  return new Promise((res, rej) =>
    c.Version!({ version: 'v1' }, { deadline: Date.now() + 10_000 }, (e, r) => {
      c.close();
      if (e) rej(e);
      else res(r!);
    }),
  );
}

if (d) {
  test('Version answers a client sending the socket path as :authority, and grpc-js clients', async (t) => {
    const old = await versionWithAuthority(d.socket, d.socket);
    t.is(old.grpcStatus, '0');
    t.deepEqual(old.answer && { name: old.answer.runtime_name, api: old.answer.runtime_api_version }, { name: 'cri-mesos', api: 'v1' });
    t.is((await versionGrpcJs(d.socket, d.socket)).runtime_name, 'cri-mesos', 'grpc-js told to send the socket path');
    t.is((await versionGrpcJs(d.socket)).runtime_name, 'cri-mesos', "grpc-js's normal client");
    t.is((await d.client.call('Status', {})).status.conditions.length > 0, true);
  });

  test('--cri-front=false: grpc-js alone serves normal clients and resets the socket-path authority', async (t) => {
    const plain = await TestDaemon.start({ importImages: false, flags: ['--cri-front', 'false'] });
    try {
      t.is((await versionGrpcJs(plain.socket)).runtime_name, 'cri-mesos');
      const old = await versionWithAuthority(plain.socket, plain.socket);
      t.is(old.rstCode, 1, 'RST_STREAM PROTOCOL_ERROR, as crictl 1.26 used to get');
      t.regex(plain.logs(), /serving CRI.*front=false/);
    } finally {
      await plain.teardown();
    }
  });
}
