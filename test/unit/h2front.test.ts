// The CRI socket's HTTP/2 front (src/cri/h2front), in-process without root: a
// grpc-js server with a small test service listens both directly and through
// the front. "Differential": a request with a socket-path :authority through
// the front gets the same answer as the same request with a valid authority
// straight to grpc-js (which resets the socket-path one).
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { CriFront } from '../../src/cri/h2front/front.js';
import { Inbound } from '../../src/cri/h2front/inbound.js';
import { Outbound } from '../../src/cri/h2front/outbound.js';
import { ConnectionError, readFrameHeader } from '../../src/cri/h2front/frames.js';
import { HpackDecoder } from '../../src/cri/h2front/hpack.js';
import { authorityOk, escapeAuthority } from '../../src/cri/h2front/authority.js';
import { silentLogger } from '../../src/log.js';
import {
  frame,
  grpcFrame,
  grpcRequestFields,
  h2call,
  h2connect,
  hpack,
  PREFACE,
  RawH2,
  SERVICE,
  startTestServer,
  type CallResult,
  type TestServer,
} from '../helpers/h2.js';

const dir = mkdtempSync(join(tmpdir(), 'cm-h2front-'));
let ts: TestServer;
/** what an old grpc-go client sends: the socket path */
let bad: string;

test.before(async () => {
  ts = await startTestServer(dir);
  bad = ts.fronted;
});
test.after.always(async () => {
  await ts?.close();
  rmSync(dir, { recursive: true, force: true });
});

const strip = (r: CallResult & { raw?: unknown }) => ({ messages: r.messages, grpcStatus: r.grpcStatus, rstCode: r.rstCode });
const HEADERS = 1;
const CONTINUATION = 9;
const END_STREAM = 1;
const END_HEADERS = 4;
const PADDED = 8;
const PRIORITY = 0x20;

// ---- the pieces, without a server ---------------------------------------------------

test('authority: nghttp2 refuses "/" and a few more; the escape keeps every accepted byte', (t) => {
  t.true(authorityOk(Buffer.from('localhost:1234')));
  t.true(authorityOk(Buffer.from("%2Frun%2Fx.sock!$&'()*+,;=@[]_~")));
  t.true(authorityOk(Buffer.alloc(0)));
  for (const c of ['/', ' ', '"', '#', '<', '>', '?', '\\', '^', '`', '{', '|', '}', '\x7f', '\x80']) t.false(authorityOk(Buffer.from(c, 'latin1')), c);
  t.is(escapeAuthority(Buffer.from('/run/cri-mesos/cri-mesos.sock')).toString(), '%2Frun%2Fcri-mesos%2Fcri-mesos.sock');
  t.is(escapeAuthority(Buffer.from('a b%c', 'latin1')).toString(), 'a%20b%c');
});

/** Feeds chunks to an Inbound; what it forwards, as the Buffers it forwarded. */
function inbound(chunks: Buffer[], setup?: (i: Inbound) => void): { out: Buffer[]; error?: ConnectionError; inbound: Inbound } {
  const out: Buffer[] = [];
  const i = new Inbound((b) => out.push(b));
  setup?.(i);
  try {
    for (const c of chunks) i.write(c);
  } catch (e) {
    return { out, error: e as ConnectionError, inbound: i };
  }
  return { out, inbound: i };
}

test('inbound: frames that need no rewrite go on as the very Buffers that came in, header blocks byte for byte', (t) => {
  const settings = Buffer.concat([PREFACE, frame(4, 0, 0), frame(8, 0, 0, Buffer.from([0, 1, 0, 0]))]);
  const block = Buffer.concat([grpcRequestFields('Echo', 'localhost'), hpack.literal('x-a', 'b', 'incr')]);
  const headers = frame(HEADERS, END_HEADERS | PADDED, 1, Buffer.concat([Buffer.from([3]), block, Buffer.alloc(3)]));
  const data = frame(0, END_STREAM, 1, grpcFrame(Buffer.from('hi')));
  const r = inbound([settings, Buffer.concat([headers, data])]);
  t.is(r.error, undefined);
  t.is(r.out[0], settings, 'a chunk of pass-through frames is forwarded as the same Buffer');
  t.deepEqual(Buffer.concat(r.out), Buffer.concat([settings, headers, data]), 'padding and all');
  t.is(r.inbound.rewritten, 0);
  t.is(r.inbound.lastStreamId, 1);
});

test('inbound: a refused :authority turns on re-encoding; output frames stay under 16384 bytes and keep END_STREAM', (t) => {
  const big = Array.from({ length: 10 }, (_, i) => hpack.literal(`x-m${i}`, 'v'.repeat(4000))); // 40 KB: three frames or more
  const block = Buffer.concat([grpcRequestFields('Meta', '/run/x.sock'), ...big]);
  const frames = [frame(HEADERS, END_STREAM, 1, block.subarray(0, 16000)), frame(CONTINUATION, 0, 1, block.subarray(16000, 32000)), frame(CONTINUATION, END_HEADERS, 1, block.subarray(32000))];
  const r = inbound([PREFACE, Buffer.concat(frames)]);
  t.is(r.error, undefined);
  const out = Buffer.concat(r.out).subarray(PREFACE.length);
  const parsed: { type: number; flags: number; length: number }[] = [];
  const fragments: Buffer[] = [];
  for (let p = 0; p < out.length; ) {
    const h = readFrameHeader(out.subarray(p, p + 9));
    parsed.push({ type: h.type, flags: h.flags, length: h.length });
    fragments.push(out.subarray(p + 9, p + 9 + h.length));
    p += 9 + h.length;
  }
  t.true(parsed.length >= 3);
  t.true(parsed.every((f) => f.length <= 16384), 'every frame fits the smallest max frame size');
  t.deepEqual(parsed[0], { type: HEADERS, flags: END_STREAM, length: 16384 });
  t.true(parsed.slice(1).every((f) => f.type === CONTINUATION));
  t.deepEqual(parsed.map((f) => f.flags & END_HEADERS), [...parsed.slice(1).map(() => 0), END_HEADERS]);
  const fields = new HpackDecoder().decode(Buffer.concat(fragments)).fields;
  t.is(fields.find((f) => f.name.toString() === ':authority')!.value.toString(), '%2Frun%2Fx.sock');
  t.is(fields.length, 6 + 10);
  t.is(r.inbound.rewritten, 1);
});

test('inbound: table size updates may go up to what the server advertised in SETTINGS, no further', (t) => {
  const block = frame(HEADERS, END_HEADERS, 1, Buffer.concat([hpack.sizeUpdate(8192), grpcRequestFields('Echo', 'localhost')]));
  t.is(inbound([PREFACE, block]).error?.code, 9, 'over the default 4096');
  // the server's SETTINGS, split over three chunks, as the front's server side follows them
  const settings = Buffer.alloc(12);
  settings.writeUInt16BE(1, 0);
  settings.writeUInt32BE(8192, 2);
  settings.writeUInt16BE(3, 6);
  settings.writeUInt32BE(100, 8);
  const s = frame(4, 0, 0, settings);
  const seen: [number, number][] = [];
  const r = inbound([PREFACE, block], (i) => {
    const o = new Outbound((id, v) => {
      seen.push([id, v]);
      i.serverSetting(id, v);
    });
    for (const part of [s.subarray(0, 4), s.subarray(4, 13), s.subarray(13)]) o.feed(part);
    t.true(o.atBoundary);
  });
  t.deepEqual(seen, [[1, 8192], [3, 100]]);
  t.is(r.error, undefined);
  t.deepEqual(Buffer.concat(r.out), Buffer.concat([PREFACE, block]));
});

test('outbound: feed() stops at the first frame boundary', (t) => {
  const o = new Outbound(() => undefined);
  const two = Buffer.concat([frame(0, 0, 1, Buffer.alloc(100)), frame(0, 0, 1, Buffer.alloc(50))]);
  t.is(o.feed(two.subarray(0, 50), true), 0, 'at a boundary already');
  t.is(o.feed(two.subarray(0, 50)), 50);
  t.false(o.atBoundary);
  t.is(o.feed(two.subarray(50), true), 59, 'the rest of the first frame');
  t.true(o.atBoundary);
  t.is(o.feed(two.subarray(109), true), 0, 'already at a boundary');
});

test('inbound: a header split across chunks, in the middle of a frame header too, comes out whole', (t) => {
  const block = Buffer.concat([grpcRequestFields('Echo', '/x.sock')]);
  const bytes = Buffer.concat([PREFACE, frame(HEADERS, 0, 1, block.subarray(0, 10)), frame(CONTINUATION, END_HEADERS, 1, block.subarray(10)), frame(0, 1, 1, Buffer.from('abc'))]);
  // every byte its own chunk
  const r = inbound([...bytes].map((b) => Buffer.from([b])));
  t.is(r.error, undefined);
  const out = Buffer.concat(r.out);
  const h = readFrameHeader(out.subarray(24, 33));
  t.deepEqual([h.type, h.flags, h.streamId], [HEADERS, END_HEADERS, 1]);
  const fields = new HpackDecoder().decode(out.subarray(33, 33 + h.length)).fields;
  t.is(fields[3]!.value.toString(), '%2Fx.sock');
  t.deepEqual(out.subarray(33 + h.length), frame(0, 1, 1, Buffer.from('abc')));
});

// ---- differential, through a real grpc-js server ------------------------------------

test('a socket-path :authority: grpc-js alone resets the stream, through the front it is answered as a valid one', async (t) => {
  const direct = h2connect(ts.direct);
  const front = h2connect(ts.fronted);
  try {
    const msg = Buffer.from('hello');
    const want = await h2call(direct, 'localhost', 'Echo', msg);
    t.deepEqual(strip(want), { messages: ['hello'], grpcStatus: '0', rstCode: 0 });
    t.is((await h2call(direct, ts.direct, 'Echo', msg)).rstCode, 1, 'PROTOCOL_ERROR without the front');
    t.deepEqual(await h2call(front, bad, 'Echo', msg), want);
    t.deepEqual(await h2call(front, 'localhost', 'Echo', msg), want);
    const host = await h2call(front, bad, 'Host', Buffer.alloc(0));
    t.deepEqual(host.messages, [bad.replaceAll('/', '%2F')], 'the server sees the percent-encoded path, as grpc-go 1.57+ sends it');
  } finally {
    direct.close();
    front.close();
  }
});

test('a refused :authority on the first request or only on later ones of a connection', async (t) => {
  const direct = h2connect(ts.direct);
  try {
    for (const pattern of [['bad', 'good', 'bad', 'good', 'good'], ['good', 'good', 'bad', 'bad', 'good']]) {
      const front = h2connect(ts.fronted);
      for (const [i, kind] of pattern.entries()) {
        const headers = { 'x-seq': `${pattern.join()}-${i}` };
        const want = await h2call(direct, 'localhost', 'Meta', Buffer.alloc(0), headers);
        t.deepEqual(await h2call(front, kind === 'bad' ? bad : 'localhost', 'Meta', Buffer.alloc(0), headers), want, `${pattern.join()} #${i}`);
      }
      front.close();
    }
  } finally {
    direct.close();
  }
});

test('grpc-js as a client that sends the socket path (grpc.default_authority): INTERNAL alone, answered through the front', async (t) => {
  const Client = grpc.makeGenericClientConstructor(SERVICE as unknown as grpc.ServiceDefinition, 'Front');
  const call = (socket: string) => {
    const c = new Client(`unix://${socket}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': socket }) as unknown as grpc.Client &
      Record<string, (req: Buffer, cb: (e: grpc.ServiceError | null, r?: Buffer) => void) => void>;
    return new Promise<string>((res, rej) => c.Echo!(Buffer.from('x'), (e, r) => (c.close(), e ? rej(e) : res(r!.toString()))));
  };
  const err = await t.throwsAsync<grpc.ServiceError>(call(ts.direct));
  t.is(err?.code, grpc.status.INTERNAL);
  t.is(await call(ts.fronted), 'x');
});

test('3 KB of metadata that changes on every call evicts dynamic-table entries; the mirror follows, passing through and re-encoding', async (t) => {
  const direct = h2connect(ts.direct);
  const front = h2connect(ts.fronted);
  try {
    for (let i = 0; i < 40; i++) {
      // the first 20 calls pass through with a valid authority (the mirror must be right when the switch comes)
      const headers = { 'x-a': randomBytes(512).toString('hex'), 'x-b': randomBytes(512).toString('hex'), 'x-c': randomBytes(512).toString('hex'), 'x-n': String(i) };
      const want = await h2call(direct, 'localhost', 'Meta', Buffer.alloc(0), headers);
      t.deepEqual(JSON.parse(want.messages![0]!), headers);
      t.deepEqual(await h2call(front, i < 20 ? 'localhost' : bad, 'Meta', Buffer.alloc(0), headers), want, `call ${i}`);
    }
  } finally {
    direct.close();
    front.close();
  }
});

/** Send the same handcrafted request blocks (built for an authority) on a raw connection to grpc-js alone and through the front. */
async function rawDifferential(
  t: import('ava').ExecutionContext,
  send: (raw: RawH2, authority: string) => Promise<number[]>,
): Promise<CallResult[]> {
  const run = async (socket: string, authority: string) => {
    const raw = await RawH2.connect(socket);
    try {
      const ids = await send(raw, authority);
      const out = [];
      for (const id of ids) out.push(strip(await raw.result(id)));
      return { out, goaway: raw.goaway };
    } finally {
      raw.close();
    }
  };
  const want = await run(ts.direct, 'localhost');
  t.true(want.out.every((r) => r.rstCode === 0 && r.grpcStatus !== undefined), JSON.stringify(want));
  t.is(want.goaway, undefined);
  t.deepEqual(await run(ts.fronted, 'localhost'), want, 'valid authority through the front');
  t.deepEqual(await run(ts.fronted, bad), want, 'socket-path authority through the front');
  const refused = await run(ts.direct, bad);
  t.true(refused.out.some((r) => r.rstCode === 1), 'the same bytes with the socket path: grpc-js alone resets');
  return want.out;
}

const body = (s: string) => frame(0, END_STREAM, 0, grpcFrame(Buffer.from(s))).subarray(9);
const data = (id: number, s: string) => frame(0, END_STREAM, id, body(s));

test('raw: dynamic table size updates and references to entries, through every eviction', async (t) => {
  const answers = await rawDifferential(t, async (raw, authority) => {
    const meta = (id: number, fields: Buffer[]) =>
      raw.send(Buffer.concat([frame(HEADERS, END_HEADERS, id, Buffer.concat([...fields.slice(0, 1), grpcRequestFields('Meta', authority), ...fields.slice(1)])), data(id, '')]));
    // 1: shrink to 100 and index the authority and two values (the third evicts the first)
    meta(1, [hpack.sizeUpdate(100), hpack.literal('x-k1', 'one', 'incr'), hpack.literal('x-k2', 'two', 'incr'), hpack.literal('x-k3', 'three', 'incr')]);
    await raw.result(1);
    // 3: references x-k3 (62) and x-k2 (63); x-k1 is gone
    meta(3, [Buffer.alloc(0), hpack.indexed(62), hpack.indexed(63)]);
    await raw.result(3);
    // 5: to 0 (empties), back to 4096, a new entry referenced by name in the same block
    meta(5, [Buffer.concat([hpack.sizeUpdate(0), hpack.sizeUpdate(4096)]), hpack.literal('x-k4', 'four', 'incr'), hpack.literalIndexedName(62, 'four-again')]);
    await raw.result(5);
    // 7: an :authority indexed into the table, then sent as a 1-byte reference in the next block
    raw.send(
      Buffer.concat([
        frame(HEADERS, END_HEADERS, 7, Buffer.concat([hpack.indexed(3), hpack.indexed(6), hpack.literalIndexedName(4, SERVICE.Meta.path), hpack.literalIndexedName(1, authority, 'incr'), hpack.literalIndexedName(31, 'application/grpc'), hpack.literal('te', 'trailers')])),
        data(7, ''),
      ]),
    );
    await raw.result(7);
    raw.send(
      Buffer.concat([
        frame(HEADERS, END_HEADERS, 9, Buffer.concat([hpack.indexed(3), hpack.indexed(6), hpack.literalIndexedName(4, SERVICE.Meta.path), hpack.indexed(62), hpack.literalIndexedName(31, 'application/grpc'), hpack.literal('te', 'trailers'), hpack.indexed(63)])),
        data(9, ''),
      ]),
    );
    return [1, 3, 5, 7, 9];
  });
  t.deepEqual(
    answers.map((a) => JSON.parse(a.messages![0]!)),
    [{ 'x-k1': 'one', 'x-k2': 'two', 'x-k3': 'three' }, { 'x-k3': 'three', 'x-k2': 'two' }, { 'x-k4': 'four, four-again' }, {}, { 'x-k4': 'four' }],
  );
});

test('raw: CONTINUATION frames, each frame (and one frame header) split over separate writes', async (t) => {
  const answers = await rawDifferential(t, async (raw, authority) => {
    const block = Buffer.concat([grpcRequestFields('Meta', authority), hpack.literal('x-split', 'a'.repeat(300), 'incr')]);
    const bytes = Buffer.concat([
      frame(HEADERS, 0, 1, block.subarray(0, 7)),
      frame(CONTINUATION, 0, 1, block.subarray(7, 100)),
      frame(CONTINUATION, END_HEADERS, 1, block.subarray(100)),
      data(1, 'c'),
    ]);
    let from = 0;
    for (const cut of [5, 20, 40, 130, bytes.length]) {
      raw.send(bytes.subarray(from, cut));
      from = cut;
      await sleep(5);
    }
    // 40 KB of metadata: re-encoded, it must be cut into frames again
    const bigBlock = Buffer.concat([grpcRequestFields('Meta', authority), ...Array.from({ length: 10 }, (_, i) => hpack.literal(`x-big${i}`, String(i).repeat(4000)))]);
    raw.send(Buffer.concat([frame(HEADERS, 0, 3, bigBlock.subarray(0, 16000)), frame(CONTINUATION, 0, 3, bigBlock.subarray(16000, 32000)), frame(CONTINUATION, END_HEADERS, 3, bigBlock.subarray(32000)), data(3, '')]));
    return [1, 3];
  });
  t.deepEqual(JSON.parse(answers[0]!.messages![0]!), { 'x-split': 'a'.repeat(300) });
  t.is(Object.keys(JSON.parse(answers[1]!.messages![0]!)).length, 10);
});

test('raw: PADDED and PRIORITY HEADERS, also followed by CONTINUATION, and END_STREAM on HEADERS', async (t) => {
  const answers = await rawDifferential(t, async (raw, authority) => {
    const block = grpcRequestFields('Echo', authority);
    const prio = Buffer.from([0x80, 0, 0, 0, 200]); // exclusive on stream 0, weight 201
    raw.send(Buffer.concat([frame(HEADERS, END_HEADERS | PADDED | PRIORITY, 1, Buffer.concat([Buffer.from([17]), prio, block, Buffer.alloc(17)])), data(1, 'padded')]));
    raw.send(Buffer.concat([frame(HEADERS, PADDED, 3, Buffer.concat([Buffer.from([2]), block.subarray(0, 4), Buffer.alloc(2)])), frame(CONTINUATION, END_HEADERS, 3, block.subarray(4)), data(3, 'padded+cont')]));
    raw.send(frame(HEADERS, END_HEADERS | PRIORITY, 5, Buffer.concat([Buffer.from([0, 0, 0, 3, 15]), block])));
    raw.send(data(5, 'priority'));
    // a request without a message: END_STREAM on the HEADERS itself (grpc-js answers with an error status, the same everywhere)
    raw.send(frame(HEADERS, END_HEADERS | END_STREAM | PADDED, 7, Buffer.concat([Buffer.from([1]), block, Buffer.alloc(1)])));
    return [1, 3, 5, 7];
  });
  t.deepEqual(answers.slice(0, 3).map((a) => a.messages), [['padded'], ['padded+cont'], ['priority']]);
  t.not(answers[3]!.grpcStatus, '0');
});

test('50 concurrent streams on one connection', async (t) => {
  const front = h2connect(ts.fronted);
  const direct = h2connect(ts.direct);
  try {
    const calls = (session: typeof front, authority: string) =>
      Promise.all(Array.from({ length: 50 }, (_, i) => h2call(session, authority, 'Meta', Buffer.alloc(0), { 'x-i': String(i), 'x-pad': 'p'.repeat(i * 20) })));
    const want = await calls(direct, 'localhost');
    t.is(want.filter((r) => r.grpcStatus === '0').length, 50);
    t.deepEqual(await calls(front, bad), want);
  } finally {
    front.close();
    direct.close();
  }
});

test('a 4 MB message each way, under HTTP/2 flow control', async (t) => {
  const front = h2connect(ts.fronted);
  try {
    const msg = randomBytes(4 << 20);
    const r = await h2call(front, bad, 'Echo', msg);
    t.is(r.grpcStatus, '0');
    t.true(Buffer.from(r.messages![0]!, 'latin1').equals(msg));
  } finally {
    front.close();
  }
});

test('half-close: a client stream ended with END_STREAM is answered; a socket shut for writing ends as it does without the front', async (t) => {
  const front = h2connect(ts.fronted);
  try {
    const r = await h2call(front, bad, 'Concat', [Buffer.from('a'), Buffer.from('bc'), Buffer.from('def')]);
    t.deepEqual(r.messages, ['abcdef']);
  } finally {
    front.close();
  }
  const shut = async (socket: string) => {
    const raw = await RawH2.connect(socket);
    raw.send(Buffer.concat([frame(HEADERS, END_HEADERS, 1, grpcRequestFields('Echo', 'localhost')), data(1, 'x')]));
    raw.sock.end();
    const r = strip(await raw.result(1));
    await raw.until(() => raw.closed, 'close');
    return r;
  };
  t.deepEqual(await shut(ts.fronted), await shut(ts.direct));
});

test('backpressure both ways: the front reads no faster than the server takes, and writes no faster than the client reads', async (t) => {
  // a stand-in for grpc-js that hands us the connection's server side
  let inner: Duplex | undefined;
  const fake = { createConnectionInjector: () => ({ injectConnection: (d: Duplex) => (inner = d) }) } as unknown as grpc.Server;
  const path = join(dir, 'bp.sock');
  const front = await CriFront.listen(fake, path, silentLogger());
  const client = connect(path);
  try {
    await once(client, 'connect');
    while (!inner) await sleep(5);
    // client → server: 16 MB of DATA frames while the server side reads nothing
    const frames = Array.from({ length: 1024 }, (_, i) => frame(0, 0, 1, Buffer.alloc(16384, i % 251)));
    const sent = Buffer.concat([PREFACE, ...frames]);
    let accepted = 0;
    const writing = (async () => {
      for (let p = 0; p < sent.length; p += 65536) {
        accepted = p;
        if (!client.write(sent.subarray(p, p + 65536))) await once(client, 'drain');
      }
      accepted = sent.length;
    })();
    await sleep(300);
    t.true(accepted < sent.length / 2, `the client could only write ${accepted} of ${sent.length} bytes`);
    const got: Buffer[] = [];
    let n = 0;
    inner.on('data', (d: Buffer) => {
      got.push(d);
      n += d.length;
    });
    await writing;
    while (n < sent.length) await sleep(10);
    t.true(Buffer.concat(got).equals(sent), 'everything arrives, in order');

    // server → client: 16 MB written while the client reads nothing
    client.pause();
    const answer = Buffer.concat(frames);
    let written = 0;
    const serving = (async () => {
      for (let p = 0; p < answer.length; p += 65536) {
        if (!inner!.write(answer.subarray(p, p + 65536))) await once(inner!, 'drain');
        written = p + 65536;
      }
    })();
    await sleep(300);
    t.true(written < answer.length / 2, `the server could write ${written} of ${answer.length} bytes`);
    const back: Buffer[] = [];
    let m = 0;
    client.on('data', (d: Buffer) => {
      back.push(d);
      m += d.length;
    });
    client.resume();
    await serving;
    while (m < answer.length) await sleep(10);
    t.true(Buffer.concat(back).equals(answer));
  } finally {
    client.destroy();
    front.close();
  }
});

// ---- malformed input ends that one connection ---------------------------------------

const MALFORMED: [string, (authority: string) => Buffer, number][] = [
  ['index 0', () => frame(HEADERS, END_HEADERS, 3, Buffer.from([0x80])), 9],
  ['an index past the dynamic table', (a) => frame(HEADERS, END_HEADERS, 3, Buffer.concat([grpcRequestFields('Echo', a), hpack.indexed(70)])), 9],
  ['bad Huffman', (a) => frame(HEADERS, END_HEADERS, 3, Buffer.concat([grpcRequestFields('Echo', a), Buffer.from([0x00, 0x81, 0xff, 0x01, 0x61])])), 9],
  ['a size update over SETTINGS_HEADER_TABLE_SIZE', (a) => frame(HEADERS, END_HEADERS, 3, Buffer.concat([hpack.sizeUpdate(4097), grpcRequestFields('Echo', a)])), 9],
  ['a block cut short', (a) => frame(HEADERS, END_HEADERS, 3, grpcRequestFields('Echo', a).subarray(0, 12)), 9],
  ['CONTINUATION without HEADERS', () => frame(CONTINUATION, END_HEADERS, 3, Buffer.from([0x82])), 1],
  ['DATA inside a header block', (a) => Buffer.concat([frame(HEADERS, 0, 3, grpcRequestFields('Echo', a)), frame(0, 0, 3, Buffer.from('x'))]), 1],
  ['CONTINUATION of another stream', (a) => Buffer.concat([frame(HEADERS, 0, 3, grpcRequestFields('Echo', a)), frame(CONTINUATION, END_HEADERS, 5, Buffer.from([0x82]))]), 1],
];

for (const [what, bytes, code] of MALFORMED) {
  test(`malformed: ${what} → GOAWAY ${code === 9 ? 'COMPRESSION_ERROR' : 'PROTOCOL_ERROR'} on that connection only, as grpc-js alone answers`, async (t) => {
    const other = h2connect(ts.fronted);
    try {
      t.is((await h2call(other, bad, 'Echo', Buffer.from('before'))).messages?.[0], 'before');
      const run = async (socket: string, authority: string) => {
        const raw = await RawH2.connect(socket);
        try {
          raw.send(Buffer.concat([frame(HEADERS, END_HEADERS, 1, grpcRequestFields('Echo', authority)), data(1, 'first')]));
          const first = strip(await raw.result(1));
          raw.send(bytes(authority));
          await raw.until(() => !!raw.goaway, 'GOAWAY');
          return { first, goaway: { lastStreamId: raw.goaway!.lastStreamId, code: raw.goaway!.code } };
        } finally {
          raw.close();
        }
      };
      const want = await run(ts.direct, 'localhost');
      t.is(want.goaway.code, code);
      t.deepEqual(await run(ts.fronted, bad), want, 'the same first answer, the same GOAWAY code and last stream id');
      const raw = await RawH2.connect(ts.fronted);
      raw.send(bytes('localhost'));
      await raw.until(() => raw.closed, 'the front to close the connection');
      t.is(raw.goaway?.code, code);
      t.is((await h2call(other, bad, 'Echo', Buffer.from('after'))).messages?.[0], 'after', 'the other connection still works');
    } finally {
      other.close();
    }
  });
}

test('malformed input while a large answer streams: the GOAWAY lands between two frames', async (t) => {
  // windows wide open, so the server writes as fast as the socket takes it
  const raw = await RawH2.connect(ts.fronted, [[4, 0x7fffffff]]);
  try {
    raw.send(frame(8, 0, 0, Buffer.from([0x7f, 0xff, 0x00, 0x00])));
    const req = Buffer.alloc(8);
    req.writeUInt32BE(200, 0);
    req.writeUInt32BE(65536, 4);
    raw.send(Buffer.concat([frame(HEADERS, END_HEADERS, 1, grpcRequestFields('Stream', bad)), frame(0, END_STREAM, 1, grpcFrame(req))]));
    await raw.until(() => (raw.streams.get(1)?.data.length ?? 0) > 3, 'some of the answer');
    raw.send(frame(HEADERS, END_HEADERS, 3, Buffer.from([0x80])));
    await raw.until(() => raw.closed, 'close');
    t.is(raw.goaway?.code, 9);
    const before = raw.frames.slice(0, raw.frames.findIndex((f) => f.type === 7));
    t.true(before.every((f) => [0, 1, 4, 6, 8].includes(f.type)), 'only well-formed frames before the GOAWAY');
    const bodyBytes = Buffer.concat(raw.streams.get(1)!.data);
    t.true(bodyBytes.length > 0);
    // gRPC messages of 64 KB filled with their index: every byte read so far is consistent
    for (let i = 0; (i + 1) * 65541 <= bodyBytes.length; i++) t.is(bodyBytes[i * 65541 + 5 + 1000], i % 256);
  } finally {
    raw.close();
  }
});

test.serial('a bug in the front (an unexpected exception) ends that connection with GOAWAY INTERNAL_ERROR, not the daemon', async (t) => {
  const write = Inbound.prototype.write;
  let armed = true;
  Inbound.prototype.write = function (this: Inbound, chunk: Buffer) {
    if (armed && chunk.includes(Buffer.from('boom'))) throw new TypeError('boom');
    return write.call(this, chunk);
  };
  try {
    const raw = await RawH2.connect(ts.fronted);
    raw.send(Buffer.concat([frame(HEADERS, END_HEADERS, 1, grpcRequestFields('Echo', bad)), data(1, 'boom')]));
    await raw.until(() => raw.closed, 'close');
    t.is(raw.goaway?.code, 2);
    t.regex(raw.goaway!.debug, /boom/);
  } finally {
    armed = false;
    Inbound.prototype.write = write;
  }
  const other = h2connect(ts.fronted);
  t.deepEqual((await h2call(other, bad, 'Echo', Buffer.from('still here'))).messages, ['still here']);
  other.close();
});
