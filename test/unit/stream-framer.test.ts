// SPDY/3.1 framing without a network: each frame type through encode and the
// incremental decoder, header blocks through one zlib context per direction,
// frames split across and merged into chunks, and what a bad frame does to a
// session (GOAWAY PROTOCOL_ERROR).
import test from 'ava';
import { once } from 'node:events';
import { Duplex, PassThrough } from 'node:stream';
import zlib from 'node:zlib';
import { SPDY3_DICTIONARY } from '../../src/stream/spdy/dictionary.js';
import {
  CONTROL,
  encodeFrame,
  FrameDecoder,
  GOAWAY,
  RST,
  SpdyProtocolError,
  type Frame,
} from '../../src/stream/spdy/framer.js';
import { HeaderCompressor, HeaderDecompressor, packHeaderBlock, unpackHeaderBlock, type SpdyHeaders } from '../../src/stream/spdy/headers.js';
import { SpdySession } from '../../src/stream/spdy/session.js';

function adler32(b: Buffer): number {
  let a = 1;
  let s = 0;
  for (const x of b) {
    a = (a + x) % 65521;
    s = (s + a) % 65521;
  }
  return (s * 65536 + a) >>> 0;
}

test('the SPDY/3 dictionary is the draft one, byte for byte (length and Adler-32)', (t) => {
  t.is(SPDY3_DICTIONARY.length, 1423);
  t.is(adler32(SPDY3_DICTIONARY), 0xe3c6a7c2);
});

const samples: Frame[] = [
  { type: 'DATA', streamId: 5, fin: false, data: Buffer.from('hello') },
  { type: 'DATA', streamId: 7, fin: true, data: Buffer.alloc(0) },
  { type: 'SYN_STREAM', streamId: 1, associatedId: 0, priority: 3, fin: false, unidirectional: false, headerBlock: Buffer.from('xyz') },
  { type: 'SYN_STREAM', streamId: 3, associatedId: 1, priority: 0, fin: true, unidirectional: true, headerBlock: Buffer.alloc(0) },
  { type: 'SYN_REPLY', streamId: 1, fin: false, headerBlock: Buffer.from('ab') },
  { type: 'HEADERS', streamId: 9, fin: true, headerBlock: Buffer.from('c') },
  { type: 'RST_STREAM', streamId: 11, status: RST.CANCEL },
  { type: 'SETTINGS', clear: false, entries: [{ flags: 1, id: 7, value: 65536 }, { flags: 0, id: 4, value: 100 }] },
  { type: 'PING', id: 1 },
  { type: 'GOAWAY', lastGoodStreamId: 13, status: GOAWAY.PROTOCOL_ERROR },
  { type: 'WINDOW_UPDATE', streamId: 3, delta: 0x10000 },
];

for (const f of samples) {
  test(`${f.type}${'fin' in f && f.fin ? ' with FIN' : ''} survives encode and decode`, (t) => {
    const wire = encodeFrame(f);
    if (f.type !== 'DATA') t.is(wire.readUInt16BE(0), 0x8003, 'control bit and version 3');
    t.deepEqual(new FrameDecoder().push(wire), [f]);
  });
}

test('the wire layout of a DATA frame with FIN and of a PING is the spec one', (t) => {
  t.deepEqual(
    [...encodeFrame({ type: 'DATA', streamId: 3, fin: true, data: Buffer.from('A') })],
    [0, 0, 0, 3, 1, 0, 0, 1, 0x41],
  );
  t.deepEqual([...encodeFrame({ type: 'PING', id: 7 })], [0x80, 3, 0, CONTROL.PING, 0, 0, 0, 4, 0, 0, 0, 7]);
});

test('frames split at every byte, and many frames in one chunk, decode the same', (t) => {
  const wire = Buffer.concat(samples.map(encodeFrame));
  const whole = new FrameDecoder().push(wire);
  t.deepEqual(whole, samples);
  const dec = new FrameDecoder();
  const bytewise: Frame[] = [];
  for (let i = 0; i < wire.length; i++) bytewise.push(...dec.push(wire.subarray(i, i + 1)));
  t.deepEqual(bytewise, samples);
  const dec2 = new FrameDecoder();
  const uneven: Frame[] = [];
  for (let i = 0; i < wire.length; i += 13) uneven.push(...dec2.push(wire.subarray(i, i + 13)));
  t.deepEqual(uneven, samples);
});

test('a large DATA frame arriving in many chunks is reassembled once', (t) => {
  const data = Buffer.alloc(3 << 20, 0x5a);
  const wire = encodeFrame({ type: 'DATA', streamId: 1, fin: false, data });
  const dec = new FrameDecoder();
  const out: Frame[] = [];
  for (let i = 0; i < wire.length; i += 65536) out.push(...dec.push(wire.subarray(i, i + 65536)));
  t.is(out.length, 1);
  t.true(out[0].type === 'DATA' && out[0].data.equals(data));
});

test('an oversized or malformed frame is a protocol error, before its payload arrives', (t) => {
  const dec = new FrameDecoder({ maxControlLength: 1024, maxDataLength: 4096 });
  const head = Buffer.from([0x80, 3, 0, 1, 0, 0x10, 0, 0]); // SYN_STREAM claiming 1 MiB
  t.throws(() => dec.push(head), { instanceOf: SpdyProtocolError, message: /exceeds 1024/ });
  t.throws(() => new FrameDecoder({ maxDataLength: 4096 }).push(Buffer.from([0, 0, 0, 1, 0, 0, 0x20, 0])), {
    message: /data frame of 8192 bytes exceeds 4096/,
  });
  const badPing = Buffer.from([0x80, 3, 0, 6, 0, 0, 0, 5, 0, 0, 0, 1, 9]);
  t.throws(() => new FrameDecoder().push(badPing), { message: /length 5, want 4/ });
  const v2 = Buffer.from([0x80, 2, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1]);
  t.throws(() => new FrameDecoder().push(v2), { message: /version 2/ });
});

test('header blocks: several blocks share one zlib context per direction, and Go-style bare headers pass', async (t) => {
  const c = new HeaderCompressor();
  const d = new HeaderDecompressor();
  const blocks: SpdyHeaders[] = [
    { streamtype: 'error' },
    { streamtype: 'stdin' },
    { streamtype: 'stdout' },
    {},
    { streamtype: 'data', port: '8080', requestid: '0' },
  ];
  const wire = await Promise.all(blocks.map((h) => c.compress(h, (b) => b)));
  // the first block carries the zlib header with the dictionary id; later ones don't
  t.is(wire[0][0], 0x78);
  t.true((wire[0][1] & 0x20) !== 0, 'FDICT set');
  t.is(wire[0].readUInt32BE(2), adler32(SPDY3_DICTIONARY));
  t.true(wire[2].length < packHeaderBlock(blocks[2]).length, 'later blocks reuse the window');
  for (let i = 0; i < blocks.length; i++) t.deepEqual(await d.decompress(wire[i]), blocks[i]);
  // a block decoded out of its context is garbage: the contexts really are shared
  await t.throwsAsync(new HeaderDecompressor().decompress(wire[2]));
  c.close();
  d.close();
});

test('header blocks inflate with a stock zlib reader primed with the dictionary', async (t) => {
  const c = new HeaderCompressor();
  const a = await c.compress({ streamtype: 'stdout' }, (b) => b);
  const b = await c.compress({ streamtype: 'stderr' }, (x) => x);
  const inflated = zlib.inflateSync(Buffer.concat([a, b]), { dictionary: SPDY3_DICTIONARY, finishFlush: zlib.constants.Z_SYNC_FLUSH });
  const first = unpackHeaderBlock(inflated.subarray(0, packHeaderBlock({ streamtype: 'stdout' }).length));
  t.deepEqual(first, { streamtype: 'stdout' });
  c.close();
});

test('header names are lower-cased on the way out; multi-values keep the NUL separator', (t) => {
  t.deepEqual(unpackHeaderBlock(packHeaderBlock({ StreamType: 'error', 'x-a': 'one\0two' })), {
    streamtype: 'error',
    'x-a': 'one\0two',
  });
  t.throws(() => unpackHeaderBlock(Buffer.from([0, 0, 0, 1, 0, 0, 0, 9])), { message: /truncated/ });
});

// ---- session behaviour on raw frames ----------------------------------------------------

/** A server session on one end of an in-memory pipe; the test writes raw frames. */
function rawPeer() {
  const toServer = new PassThrough();
  const toClient = new PassThrough();
  const serverSide = Duplex.from({ readable: toServer, writable: toClient });
  const session = new SpdySession(serverSide, { role: 'server' });
  const dec = new FrameDecoder();
  const got: Frame[] = [];
  toClient.on('data', (c: Buffer) => got.push(...dec.push(c)));
  return { session, send: (b: Buffer) => toServer.write(b), got };
}

const tick = () => new Promise((r) => setTimeout(r, 20));
/** poll until `cond` holds (the session works asynchronously; fixed sleeps flake under load) */
async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !cond(); i++) await tick();
}

test('session: a PING from the peer is echoed, its own parity is not', async (t) => {
  const p = rawPeer();
  p.send(encodeFrame({ type: 'PING', id: 5 }));
  p.send(encodeFrame({ type: 'PING', id: 6 })); // even: a reply to a server ping, not echoed
  p.send(encodeFrame({ type: 'PING', id: 7 }));
  await until(() => p.got.length >= 2);
  t.deepEqual(p.got, [{ type: 'PING', id: 5 }, { type: 'PING', id: 7 }]);
  p.session.destroy();
});

test('session: SYN_STREAM gets SYN_REPLY, data flows, FIN ends the readable side, RST destroys', async (t) => {
  const p = rawPeer();
  const c = new HeaderCompressor();
  const d = new HeaderDecompressor();
  const streams: import('../../src/stream/spdy/stream.js').SpdyStream[] = [];
  p.session.on('stream', (s) => {
    streams.push(s);
    s.accept();
  });
  p.send(encodeFrame({ type: 'SYN_STREAM', streamId: 1, associatedId: 0, priority: 0, fin: false, unidirectional: false, headerBlock: await c.compress({ streamtype: 'stdin' }, (b) => b) }));
  p.send(encodeFrame({ type: 'SYN_STREAM', streamId: 3, associatedId: 0, priority: 0, fin: false, unidirectional: false, headerBlock: await c.compress({ streamtype: 'stdout' }, (b) => b) }));
  // settings and window updates are accepted and change nothing
  p.send(encodeFrame({ type: 'SETTINGS', clear: false, entries: [{ flags: 0, id: 7, value: 1 }] }));
  p.send(encodeFrame({ type: 'WINDOW_UPDATE', streamId: 1, delta: 1 }));
  p.send(encodeFrame({ type: 'DATA', streamId: 1, fin: true, data: Buffer.from('in') }));
  await until(() => streams.length === 2 && p.got.filter((f) => f.type === 'SYN_REPLY').length === 2);
  t.deepEqual(streams.map((s) => s.headers.streamtype), ['stdin', 'stdout']);
  const replies = p.got.filter((f) => f.type === 'SYN_REPLY');
  t.deepEqual(replies.map((f) => f.type === 'SYN_REPLY' && f.streamId), [1, 3]);
  for (const r of replies) if (r.type === 'SYN_REPLY') t.deepEqual(await d.decompress(r.headerBlock), {});
  const chunks: Buffer[] = [];
  streams[0].on('data', (b: Buffer) => chunks.push(b));
  await once(streams[0], 'end');
  t.is(Buffer.concat(chunks).toString(), 'in');
  // far more than SPDY's 64 KiB initial window, without any WINDOW_UPDATE from the peer
  streams[1].end(Buffer.alloc(200_000, 1));
  await once(streams[1], 'finish');
  await until(() => p.got.some((f) => f.type === 'DATA' && f.streamId === 3 && f.fin));
  const data = p.got.filter((f): f is Extract<Frame, { type: 'DATA' }> => f.type === 'DATA' && f.streamId === 3);
  t.is(data.reduce((n, f) => n + f.data.length, 0), 200_000);
  t.true(data.at(-1)!.fin);
  p.send(encodeFrame({ type: 'RST_STREAM', streamId: 3, status: RST.CANCEL }));
  await until(() => streams[1].destroyed);
  t.true(streams[1].destroyed);
  t.is(streams[1].resetStatus, RST.CANCEL);
  p.session.destroy();
  c.close();
  d.close();
});

test('session: a frame with an absurd length gets GOAWAY PROTOCOL_ERROR and the connection closes', async (t) => {
  const p = rawPeer();
  const closed = once(p.session, 'close');
  p.send(Buffer.from([0x80, 3, 0, 1, 0x00, 0xff, 0xff, 0xff]));
  await closed;
  t.deepEqual(p.got, [{ type: 'GOAWAY', lastGoodStreamId: 0, status: GOAWAY.PROTOCOL_ERROR }]);
});

test('session: an even (server-parity) SYN_STREAM from a client is reset with PROTOCOL_ERROR', async (t) => {
  const p = rawPeer();
  const c = new HeaderCompressor();
  p.session.on('stream', () => t.fail('must not surface'));
  p.send(encodeFrame({ type: 'SYN_STREAM', streamId: 2, associatedId: 0, priority: 0, fin: false, unidirectional: false, headerBlock: await c.compress({}, (b) => b) }));
  await until(() => p.got.length > 0);
  t.deepEqual(p.got, [{ type: 'RST_STREAM', streamId: 2, status: RST.PROTOCOL_ERROR }]);
  p.session.destroy();
  c.close();
});
