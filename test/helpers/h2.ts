// For the CRI front's tests: a grpc-js server with a small test service,
// served both directly (bindAsync) and through the front, and two clients:
// Node's http2 (which sends any :authority, as old grpc-go does) and a raw
// socket that writes handcrafted frames and header blocks.
import * as grpc from '@grpc/grpc-js';
import * as http2 from 'node:http2';
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { join } from 'node:path';
import { CriFront } from '../../src/cri/h2front/front.js';
import { HpackDecoder } from '../../src/cri/h2front/hpack.js';
import { silentLogger } from '../../src/log.js';

const id = (b: Buffer) => b;
const method = (path: string, requestStream = false, responseStream = false) => ({
  path,
  requestStream,
  responseStream,
  requestSerialize: id,
  requestDeserialize: id,
  responseSerialize: id,
  responseDeserialize: id,
});

export const SERVICE = {
  /** answers the request message */
  Echo: method('/test.Front/Echo'),
  /** answers the JSON of the request's x-* metadata */
  Meta: method('/test.Front/Meta'),
  /** answers the :authority the server saw */
  Host: method('/test.Front/Host'),
  /** client streaming: answers all request messages joined */
  Concat: method('/test.Front/Concat', true, false),
  /** server streaming: the request is count and size (2 × uint32); answers count messages of size bytes */
  Stream: method('/test.Front/Stream', false, true),
};

export interface TestServer {
  server: grpc.Server;
  front: CriFront;
  /** grpc-js's own listener */
  direct: string;
  /** the front's socket */
  fronted: string;
  /** messages the Stream handler has handed to grpc-js so far */
  streamed: { written: number };
  close(): Promise<void>;
}

export async function startTestServer(dir: string): Promise<TestServer> {
  const streamed = { written: 0 };
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 16 << 20, 'grpc.max_send_message_length': 16 << 20 });
  server.addService(SERVICE as unknown as grpc.ServiceDefinition, {
    Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, call.request),
    Meta: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      const x = Object.entries(call.metadata.getMap()).filter(([k]) => k.startsWith('x-'));
      cb(null, Buffer.from(JSON.stringify(Object.fromEntries(x))));
    },
    Host: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, Buffer.from(call.getHost())),
    Concat: (call: grpc.ServerReadableStream<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      const parts: Buffer[] = [];
      call.on('data', (b: Buffer) => parts.push(b));
      call.on('end', () => cb(null, Buffer.concat(parts)));
    },
    Stream: async (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      const count = call.request.readUInt32BE(0);
      const size = call.request.readUInt32BE(4);
      for (let i = 0; i < count; i++) {
        if (call.cancelled) return;
        streamed.written++;
        if (!call.write(Buffer.alloc(size, i % 256))) await once(call, 'drain');
      }
      call.end();
    },
  });
  const direct = join(dir, 'direct.sock');
  const fronted = join(dir, 'front.sock');
  await new Promise<void>((res, rej) => server.bindAsync(`unix://${direct}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? rej(e) : res())));
  const front = await CriFront.listen(server, fronted, silentLogger());
  return {
    server,
    front,
    direct,
    fronted,
    streamed,
    close: async () => {
      front.stopAccepting();
      server.forceShutdown();
      front.close();
    },
  };
}

/** A gRPC message: compressed flag, length, bytes. */
export function grpcFrame(msg: Buffer): Buffer {
  const h = Buffer.alloc(5);
  h.writeUInt32BE(msg.length, 1);
  return Buffer.concat([h, msg]);
}

/** The messages in a gRPC response body. */
export function grpcMessages(body: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let p = 0; p + 5 <= body.length; ) {
    const n = body.readUInt32BE(p + 1);
    out.push(body.subarray(p + 5, p + 5 + n));
    p += 5 + n;
  }
  return out;
}

export interface CallResult {
  /** the answer's messages, or undefined if the stream was reset */
  messages?: string[];
  /** the same messages as bytes */
  bytes?: Buffer[];
  grpcStatus?: string;
  rstCode: number;
}

export function h2connect(socket: string, settings?: http2.Settings): http2.ClientHttp2Session {
  const s = http2.connect('http://localhost', { createConnection: () => connect(socket), settings });
  s.on('error', () => undefined);
  return s;
}

/** One gRPC call over Node's http2 client, which sends :authority as given; rpc is a test method or a full method path. */
export async function h2call(
  session: http2.ClientHttp2Session,
  authority: string,
  rpc: keyof typeof SERVICE | `/${string}`,
  body: Buffer | Buffer[],
  headers: Record<string, string> = {},
): Promise<CallResult> {
  const req = session.request({
    ':method': 'POST',
    ':scheme': 'http',
    ':path': rpc.startsWith('/') ? rpc : SERVICE[rpc as keyof typeof SERVICE].path,
    ':authority': authority,
    'content-type': 'application/grpc',
    te: 'trailers',
    ...headers,
  });
  const parts: Buffer[] = [];
  let trailers: http2.IncomingHttpHeaders = {};
  req.on('data', (d: Buffer) => parts.push(d));
  req.on('trailers', (t) => (trailers = t));
  const closed = new Promise((r) => req.on('close', r));
  req.on('error', () => undefined);
  const messages = Array.isArray(body) ? body : [body];
  for (const m of messages) if (!req.write(grpcFrame(m))) await once(req, 'drain');
  req.end();
  await closed;
  if (req.rstCode) return { rstCode: req.rstCode };
  const answer = grpcMessages(Buffer.concat(parts));
  return { messages: answer.map((b) => b.toString('latin1')), bytes: answer, grpcStatus: trailers['grpc-status'] as string, rstCode: 0 };
}

// ---- raw HTTP/2 ---------------------------------------------------------------------

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId, 5);
  return Buffer.concat([h, payload]);
}

/** HPACK integer with an n-bit prefix whose other bits are `first`. */
export function hpackInt(value: number, prefix: number, first: number): Buffer {
  const max = (1 << prefix) - 1;
  if (value < max) return Buffer.from([first | value]);
  const out = [first | max];
  for (value -= max; value >= 0x80; value = Math.floor(value / 0x80)) out.push((value % 0x80) | 0x80);
  out.push(value);
  return Buffer.from(out);
}

const str = (s: string) => Buffer.concat([hpackInt(Buffer.byteLength(s), 7, 0), Buffer.from(s)]);

export const hpack = {
  indexed: (i: number) => hpackInt(i, 7, 0x80),
  sizeUpdate: (n: number) => hpackInt(n, 5, 0x20),
  /** a literal with a new name: 'incr' adds it to the dynamic table, 'none' does not, 'never' does not and marks it sensitive */
  literal: (name: string, value: string, kind: 'incr' | 'none' | 'never' = 'none') =>
    Buffer.concat([Buffer.from([kind === 'incr' ? 0x40 : kind === 'never' ? 0x10 : 0]), str(name), str(value)]),
  /** a literal whose name is at index */
  literalIndexedName: (index: number, value: string, kind: 'incr' | 'none' = 'none') =>
    Buffer.concat([kind === 'incr' ? hpackInt(index, 6, 0x40) : hpackInt(index, 4, 0), str(value)]),
};

/** A gRPC request's fields as literals without indexing: :method POST, :scheme http (static), :path, :authority, content-type, te. */
export function grpcRequestFields(rpc: keyof typeof SERVICE, authority: string): Buffer {
  return Buffer.concat([
    hpack.indexed(3),
    hpack.indexed(6),
    hpack.literalIndexedName(4, SERVICE[rpc].path),
    hpack.literalIndexedName(1, authority),
    hpack.literalIndexedName(31, 'application/grpc'),
    hpack.literal('te', 'trailers'),
  ]);
}

export interface RawFrame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

export interface RawStream {
  data: Buffer[];
  headers: Record<string, string>[];
  ended: boolean;
  rstCode?: number;
}

/** A client that writes whatever bytes it is given and records the frames it gets back. */
export class RawH2 {
  readonly frames: RawFrame[] = [];
  readonly streams = new Map<number, RawStream>();
  goaway?: { lastStreamId: number; code: number; debug: string };
  closed = false;
  private buf = Buffer.alloc(0);
  private readonly decoder = new HpackDecoder();
  private waiters: (() => void)[] = [];

  private constructor(readonly sock: Socket) {
    sock.on('data', (d: Buffer) => this.onData(d));
    sock.on('error', () => undefined);
    sock.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  /**
   * Connect, send the preface and SETTINGS (extra settings: [id, value]
   * pairs), and wait for the server's SETTINGS, so our ACK of it cannot land
   * inside a frame a test writes in pieces.
   */
  static async connect(path: string, settings: [number, number][] = []): Promise<RawH2> {
    const sock = connect(path);
    await once(sock, 'connect');
    const raw = new RawH2(sock);
    const p = Buffer.alloc(settings.length * 6);
    settings.forEach(([k, v], i) => {
      p.writeUInt16BE(k, i * 6);
      p.writeUInt32BE(v, i * 6 + 2);
    });
    raw.send(Buffer.concat([PREFACE, frame(4, 0, 0, p)]));
    await raw.until(() => raw.frames.some((f) => f.type === 4 && !(f.flags & 1)), "the server's SETTINGS");
    return raw;
  }

  send(b: Buffer): void {
    this.sock.write(b);
  }

  /** Resolves once pred() holds (checked after every frame and at close). */
  async until(pred: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }

  /** Wait for stream id to end (END_STREAM, RST_STREAM or the connection going away). */
  async result(streamId: number): Promise<CallResult & { raw: RawStream }> {
    await this.until(() => !!this.stream(streamId).ended || this.stream(streamId).rstCode !== undefined || this.closed, `stream ${streamId}`);
    const s = this.stream(streamId);
    if (s.rstCode !== undefined || !s.ended) return { rstCode: s.rstCode ?? -1, raw: s };
    const trailers = s.headers[s.headers.length - 1] ?? {};
    return { messages: grpcMessages(Buffer.concat(s.data)).map((b) => b.toString('latin1')), grpcStatus: trailers['grpc-status'], rstCode: 0, raw: s };
  }

  close(): void {
    this.sock.destroy();
  }

  private stream(id: number): RawStream {
    let s = this.streams.get(id);
    if (!s) this.streams.set(id, (s = { data: [], headers: [], ended: false }));
    return s;
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private onData(d: Buffer): void {
    this.buf = Buffer.concat([this.buf, d]);
    while (this.buf.length >= 9) {
      const len = this.buf.readUIntBE(0, 3);
      if (this.buf.length < 9 + len) break;
      const f: RawFrame = { type: this.buf[3]!, flags: this.buf[4]!, streamId: this.buf.readUInt32BE(5) & 0x7fffffff, payload: this.buf.subarray(9, 9 + len) };
      this.buf = this.buf.subarray(9 + len);
      this.frames.push(f);
      this.onFrame(f);
    }
    this.wake();
  }

  private onFrame(f: RawFrame): void {
    const s = f.streamId ? this.stream(f.streamId) : undefined;
    switch (f.type) {
      case 0: // DATA
        s!.data.push(Buffer.from(f.payload));
        if (f.flags & 1) s!.ended = true;
        break;
      case 1: {
        // HEADERS: the server sends END_HEADERS blocks without padding or priority
        const fields = this.decoder.decode(Buffer.from(f.payload)).fields;
        s!.headers.push(Object.fromEntries(fields.map((x) => [x.name.toString(), x.value.toString()])));
        if (f.flags & 1) s!.ended = true;
        break;
      }
      case 3:
        s!.rstCode = f.payload.readUInt32BE(0);
        break;
      case 4:
        if (!(f.flags & 1)) this.send(frame(4, 1, 0));
        break;
      case 6:
        if (!(f.flags & 1)) this.send(frame(6, 1, 0, f.payload));
        break;
      case 7:
        this.goaway = { lastStreamId: f.payload.readUInt32BE(0) & 0x7fffffff, code: f.payload.readUInt32BE(4), debug: f.payload.subarray(8).toString() };
        break;
    }
  }
}
