// A small client for the CRI stream server, as kubectl/crictl drive it:
// SPDY/3.1 (client role of our own session: streams opened in the order error,
// stdin, stdout, stderr, resize, each waiting for its SYN_REPLY like client-go)
// and WebSocket (k8s channel protocols, and the SPDY tunnel for port-forward).
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { Duplex, PassThrough, Readable, Writable } from 'node:stream';
import { WebSocket } from 'ws';
import { SpdySession } from '../../src/stream/spdy/session.js';
import type { SpdyStream } from '../../src/stream/spdy/stream.js';
import { channelCodec, wsByteStream } from '../../src/stream/wschannel.js';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly headers: http.IncomingHttpHeaders,
    readonly body: string,
  ) {
    super(`HTTP ${status}: ${body.trim()}`);
  }
}

export function collect(r: Readable): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    r.on('data', (c: Buffer) => chunks.push(c));
    r.on('end', () => resolve(Buffer.concat(chunks)));
    r.on('close', () => resolve(Buffer.concat(chunks)));
    r.on('error', reject);
  });
}

export interface SpdyConnection {
  session: SpdySession;
  protocol: string;
  socket: Socket;
}

/** POST + Upgrade: SPDY/3.1, offering `protocols` in order (client-go sends one header per value). */
export function spdyConnect(url: string, protocols: string[], method = 'POST'): Promise<SpdyConnection> {
  return new Promise((resolve, reject) => {
    const headers: http.OutgoingHttpHeaders = { Connection: 'Upgrade', Upgrade: 'SPDY/3.1' };
    if (protocols.length) headers['X-Stream-Protocol-Version'] = protocols;
    // https: a test server's self-signed certificate (tests check what is served, not the PKI).
    const req = url.startsWith('https:') ? https.request(url, { method, headers, rejectUnauthorized: false }) : http.request(url, { method, headers });
    req.on('upgrade', (res, socket, head) => {
      if (head.length) socket.unshift(head);
      const session = new SpdySession(socket, { role: 'client' });
      resolve({ session, protocol: String(res.headers['x-stream-protocol-version'] ?? ''), socket });
    });
    req.on('response', (res) => {
      collect(res).then((b) => reject(new HttpError(res.statusCode ?? 0, res.headers, b.toString())), reject);
    });
    req.on('error', reject);
    req.end();
  });
}

export interface ExecOptions {
  stdin?: boolean;
  stdout?: boolean;
  stderr?: boolean;
  tty?: boolean;
}

/** One exec/attach as the client sees it, whatever the transport. */
export interface ExecClient {
  protocol: string;
  /** write, then end() to half-close stdin */
  stdin: Writable | null;
  stdout: Readable | null;
  stderr: Readable | null;
  /** send a terminal size (tty only) */
  resize(width: number, height: number): void;
  /** everything the server wrote on the error channel, once it is closed */
  status: Promise<string>;
  close(): void;
}

/** Exit code as client-go's v4 decoder reads it: null when the status is not a v4 exit. */
export function exitCodeOf(status: string): number | null {
  if (!status) return null;
  const s = JSON.parse(status) as { status: string; reason?: string; details?: { causes?: { reason?: string; message: string }[] } };
  if (s.status === 'Success') return 0;
  const cause = s.details?.causes?.find((c) => c.reason === 'ExitCode');
  return s.reason === 'NonZeroExitCode' && cause ? Number(cause.message) : null;
}

export async function spdyExec(
  url: string,
  o: ExecOptions,
  protocols = ['v4.channel.k8s.io', 'v3.channel.k8s.io', 'v2.channel.k8s.io', 'channel.k8s.io'],
): Promise<ExecClient> {
  const { session, protocol } = await spdyConnect(url, protocols);
  const open = (type: string) => session.openStream({ streamtype: type });
  const error = await open('error');
  error.end(); // the client never writes on it
  const stdin = o.stdin ? await open('stdin') : null;
  const stdout = o.stdout ? await open('stdout') : null;
  const stderr = o.stderr && !o.tty ? await open('stderr') : null;
  const resizable = o.tty && (protocol === 'v4.channel.k8s.io' || protocol === 'v3.channel.k8s.io');
  const resize = resizable ? await open('resize') : null;
  // a late write (the server may already be done) must not be an unhandled error
  for (const st of [error, stdin, stdout, stderr, resize]) st?.on('error', () => undefined);
  return {
    protocol,
    stdin,
    stdout,
    stderr,
    resize: (width, height) => resize?.write(`${JSON.stringify({ Width: width, Height: height })}\n`),
    status: collect(error).then((b) => b.toString()),
    close: () => session.destroy(),
  };
}

// ---- WebSocket ----------------------------------------------------------------------

/** `onMessage` is attached before the handshake completes: ws delivers
 *  messages that came with the 101 response before an await could resume. */
export function wsConnect(url: string, protocols: string[], onMessage?: (data: Buffer, isBinary: boolean, ws: WebSocket) => void): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url.replace(/^http/, 'ws'), protocols);
    if (onMessage) ws.on('message', (data: Buffer, isBinary: boolean) => onMessage(data, isBinary, ws));
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => {
      collect(res).then((b) => reject(new HttpError(res.statusCode ?? 0, res.headers, b.toString())), reject);
    });
    ws.once('error', reject);
  });
}

export async function wsExec(url: string, o: ExecOptions, protocol = 'v5.channel.k8s.io'): Promise<ExecClient & { firstMessage: Promise<Buffer> }> {
  const outs = [null, new PassThrough(), new PassThrough(), new PassThrough()] as const;
  let first: (b: Buffer) => void;
  const firstMessage = new Promise<Buffer>((r) => (first = r));
  const ws = await wsConnect(url, [protocol], (raw, isBinary, ws) => {
    const codec = channelCodec(ws.protocol);
    first(raw);
    if (codec.base64 === isBinary) throw new Error(`message type does not match ${ws.protocol}`);
    const m = codec.decode(raw);
    if (m && 'channel' in m && m.channel >= 1 && m.channel <= 3) outs[m.channel]!.write(m.data);
  });
  const codec = channelCodec(ws.protocol);
  ws.on('close', () => outs.forEach((p) => p?.end()));
  const send = (ch: number, data: Buffer) => ws.send(codec.encode(ch, data));
  const stdin = o.stdin
    ? new Writable({
        write(chunk: Buffer, _e, cb) {
          ws.send(codec.encode(0, chunk), cb);
        },
        final(cb) {
          // only v5 can half-close a channel; older protocols end stdin by hanging up
          if (ws.protocol === 'v5.channel.k8s.io') ws.send(Buffer.of(255, 0), cb);
          else cb();
        },
      })
    : null;
  return {
    protocol: ws.protocol,
    stdin,
    stdout: o.stdout ? outs[1] : null,
    stderr: o.stderr ? outs[2] : null,
    resize: (width, height) => send(4, Buffer.from(JSON.stringify({ Width: width, Height: height }))),
    status: collect(outs[3]).then((b) => b.toString()),
    close: () => ws.terminate(),
    firstMessage,
  };
}

// ---- port-forward ---------------------------------------------------------------------

export interface ForwardedConnection {
  data: Duplex;
  /** text the server wrote on the error stream, once it is closed */
  error: Promise<string>;
}

export interface PortForwardClient {
  open(port: number): Promise<ForwardedConnection>;
  close(): void;
  session: SpdySession;
}

function spdyPortForwardClient(session: SpdySession): PortForwardClient {
  let nextRequest = 0;
  return {
    session,
    async open(port) {
      const requestid = String(nextRequest++);
      // client-go's order: the error stream first, then data
      const error = await session.openStream({ streamtype: 'error', port: String(port), requestid });
      error.end();
      const data: SpdyStream = await session.openStream({ streamtype: 'data', port: String(port), requestid });
      return { data, error: collect(error).then((b) => b.toString()) };
    },
    close: () => session.close(),
  };
}

export async function spdyPortForward(url: string): Promise<PortForwardClient> {
  const { session } = await spdyConnect(url, ['portforward.k8s.io']);
  return spdyPortForwardClient(session);
}

/** crictl >= 1.30's --transport websocket: SPDY inside binary WebSocket messages. */
export async function tunnelPortForward(url: string): Promise<PortForwardClient> {
  const ws = await tunnelConnect(url);
  return spdyPortForwardClient(new SpdySession(wsByteStream(ws), { role: 'client' }));
}

/** ws (like RFC 6455) refuses '/' in a subprotocol name, which gorilla, and so
 *  crictl, sends anyway: offer it as a raw header and take the answer off the
 *  response before ws checks it. */
function tunnelConnect(url: string): Promise<WebSocket> {
  const protocol = 'SPDY/3.1+portforward.k8s.io';
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url.replace(/^http/, 'ws'), { headers: { 'Sec-WebSocket-Protocol': protocol } });
    ws.once('upgrade', (res) => {
      const answer = res.headers['sec-websocket-protocol'];
      delete res.headers['sec-websocket-protocol'];
      if (answer !== protocol) reject(new Error(`server chose ${String(answer)}`));
    });
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => {
      collect(res).then((b) => reject(new HttpError(res.statusCode ?? 0, res.headers, b.toString())), reject);
    });
    ws.once('error', reject);
  });
}

/** Plain WebSocket port-forward: one data/error channel pair per port of the request. */
export async function wsPortForward(url: string, ports: number[], protocol = 'v4.channel.k8s.io'): Promise<{ conns: (ForwardedConnection & { prefixes: Promise<number[]> })[]; ws: WebSocket }> {
  const early: Buffer[] = [];
  const ws = await wsConnect(url, [protocol], (raw) => early.push(raw));
  const codec = channelCodec(ws.protocol);
  const conns = ports.map((_, i) => {
    const incoming = new PassThrough();
    const errors = new PassThrough();
    /** the port each channel announced first: [data, error] */
    const announced: (number | null)[] = [null, null];
    let gotPrefixes!: (p: number[]) => void;
    const prefixes = new Promise<number[]>((r) => (gotPrefixes = r));
    const data = Duplex.from({
      readable: incoming,
      writable: new Writable({
        write(chunk: Buffer, _e, cb) {
          ws.send(codec.encode(2 * i, chunk), cb);
        },
      }),
    });
    return { incoming, errors, announced, gotPrefixes, prefixes, data, error: collect(errors).then((b) => b.toString()) };
  });
  const onMessage = (raw: Buffer) => {
    const m = codec.decode(raw);
    if (!m || !('channel' in m)) return;
    const c = conns[m.channel >> 1];
    if (!c) return;
    const kind = m.channel % 2; // 0 data, 1 error
    // the first message on each channel is the port, uint16 little-endian
    if (c.announced[kind] === null) {
      c.announced[kind] = m.data.readUInt16LE(0);
      if (c.announced.every((p) => p !== null)) c.gotPrefixes(c.announced as number[]);
      return;
    }
    (kind ? c.errors : c.incoming).write(m.data);
  };
  ws.removeAllListeners('message');
  early.splice(0).forEach(onMessage);
  ws.on('message', onMessage);
  ws.on('close', () => conns.forEach((c) => (c.incoming.end(), c.errors.end())));
  return { ws, conns: conns.map((c) => ({ data: c.data, error: c.error, prefixes: c.prefixes })) };
}
