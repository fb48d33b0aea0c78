// Port-forward through the stream server to an in-test TCP echo server on
// 127.0.0.1: SPDY stream pairs (many at once, and a 16 MB round trip), plain
// WebSocket channels, crictl's SPDY-over-WebSocket tunnel, and a port nothing
// listens on.
import test from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { StreamServer, type Runtime } from '../../src/stream/server.js';
import { collect, spdyPortForward, tunnelPortForward, wsPortForward, type ForwardedConnection } from '../helpers/stream-client.js';

let echo: net.Server;
let echoPort: number;
let deadPort: number;
let server: StreamServer;

const runtime: Runtime = {
  exec: () => Promise.reject(new Error('not in this test')),
  attach: () => Promise.reject(new Error('not in this test')),
  portForward: (_pod, port) =>
    new Promise<Duplex>((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('connect', () => resolve(s));
      s.once('error', reject);
    }),
};

test.before(async () => {
  echo = net.createServer((s) => s.pipe(s));
  echo.listen(0, '127.0.0.1');
  await once(echo, 'listening');
  echoPort = (echo.address() as net.AddressInfo).port;
  // a port that was free a moment ago: nothing listens there
  const tmp = net.createServer().listen(0, '127.0.0.1');
  await once(tmp, 'listening');
  deadPort = (tmp.address() as net.AddressInfo).port;
  await new Promise((r) => tmp.close(r));
  server = new StreamServer(runtime);
  await server.start();
});
test.after.always(async () => {
  await server?.stop();
  echo?.close();
});

const pfUrl = (ports: number[] = [echoPort]) => server.getPortForwardUrl({ pod_sandbox_id: 'pod-1', port: ports });
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function roundTrip(c: ForwardedConnection, payload: Buffer): Promise<Buffer> {
  const back = collect(c.data);
  c.data.end(payload);
  return back;
}

test('SPDY: 20 connections at once over one session each echo their own bytes', async (t) => {
  const pf = await spdyPortForward(pfUrl());
  const conns = await Promise.all(Array.from({ length: 20 }, () => pf.open(echoPort)));
  const payloads = conns.map(() => randomBytes(64 * 1024 + Math.floor(Math.random() * 1000)));
  const back = await Promise.all(conns.map((c, i) => roundTrip(c, payloads[i])));
  // each pair ends with an empty (clean) error stream
  t.deepEqual(await Promise.all(conns.map((c) => c.error)), Array(20).fill(''));
  back.forEach((b, i) => t.is(sha(b), sha(payloads[i]), `connection ${i}`));
  pf.close();
});

test('SPDY: 16 MB through one forwarded connection and back, intact', async (t) => {
  const pf = await spdyPortForward(pfUrl());
  const c = await pf.open(echoPort);
  const payload = randomBytes(16 << 20);
  const start = process.hrtime.bigint();
  const back = await roundTrip(c, payload);
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  t.is(back.length, payload.length);
  t.is(sha(back), sha(payload));
  t.log(`16 MiB echoed in ${ms.toFixed(0)} ms`);
  pf.close();
});

test('SPDY: a port nothing listens on gets a clear message on the error stream', async (t) => {
  const pf = await spdyPortForward(pfUrl([deadPort]));
  const c = await pf.open(deadPort);
  const msg = await c.error;
  t.regex(msg, new RegExp(`^error forwarding port ${deadPort} to pod pod-1: .*ECONNREFUSED`));
  t.is((await collect(c.data)).length, 0, 'the data stream just ends');
  pf.close();
});

test('SPDY: streams with a bad port or type are refused', async (t) => {
  const pf = await spdyPortForward(pfUrl());
  await t.throwsAsync(pf.session.openStream({ streamtype: 'data', port: '0', requestid: '9' }), { message: /reset by peer \(status 3\)/ });
  await t.throwsAsync(pf.session.openStream({ streamtype: 'bogus', port: '80', requestid: '9' }), { message: /reset/ });
  await t.throwsAsync(pf.session.openStream({ streamtype: 'data', port: 'http', requestid: '9' }), { message: /reset/ });
  // the session is still good for real work
  const c = await pf.open(echoPort);
  t.is((await roundTrip(c, Buffer.from('still here'))).toString(), 'still here');
  pf.close();
});

test('SPDY: a data stream whose error stream never comes is refused after the creation timeout', async (t) => {
  const quick = new StreamServer(runtime, { streamCreationTimeoutMs: 300 });
  await quick.start();
  try {
    const pf = await spdyPortForward(quick.getPortForwardUrl({ pod_sandbox_id: 'p', port: [echoPort] }));
    // Under load the reset can even overtake the reply (whose header block waits
    // for zlib on the thread pool): then opening the stream itself fails.
    const status = await pf.session.openStream({ streamtype: 'data', port: String(echoPort), requestid: 'lonely' }).then(
      async (data) => {
        if (!data.destroyed) await once(data, 'close');
        return data.resetStatus;
      },
      (e: Error) => Number(/reset by peer \(status (\d+)\)/.exec(e.message)?.[1]),
    );
    t.is(status, 3, 'RST_STREAM REFUSED_STREAM');
    pf.close();
  } finally {
    await quick.stop();
  }
});

test('WebSocket channels: each port announces itself on both channels, data echoes, errors are text', async (t) => {
  const { conns, ws } = await wsPortForward(pfUrl([echoPort, deadPort]), [echoPort, deadPort]);
  t.deepEqual(await conns[0].prefixes, [echoPort, echoPort]);
  t.deepEqual(await conns[1].prefixes, [deadPort, deadPort]);
  const payload = randomBytes(300_000);
  const back = collect(conns[0].data);
  conns[0].data.write(payload);
  // no half-close on this protocol: read back what was sent, then hang up
  await new Promise<void>((resolve) => {
    let n = 0;
    conns[0].data.on('data', (b: Buffer) => (n += b.length) >= payload.length && resolve());
  });
  t.regex(await Promise.race([conns[1].error, new Promise<string>((r) => setTimeout(() => r('(none yet)'), 2000))]), /ECONNREFUSED|none yet/);
  ws.close();
  t.is(sha(await back), sha(payload));
  t.regex(await conns[1].error, new RegExp(`error forwarding port ${deadPort} to pod pod-1`));
});

test('SPDY over WebSocket (crictl >= 1.30 tunnel): concurrent connections echo', async (t) => {
  const pf = await tunnelPortForward(pfUrl());
  const conns = await Promise.all(Array.from({ length: 5 }, () => pf.open(echoPort)));
  const payloads = conns.map(() => randomBytes(200_000));
  const back = await Promise.all(conns.map((c, i) => roundTrip(c, payloads[i])));
  back.forEach((b, i) => t.is(sha(b), sha(payloads[i])));
  t.deepEqual(await Promise.all(conns.map((c) => c.error)), Array(5).fill(''));
  pf.close();
});
