// The k8s port-forward protocol, server side, on three carriers:
//  - SPDY `portforward.k8s.io`: per forwarded connection the client opens an
//    error stream and a data stream sharing a requestID header;
//  - plain WebSocket: one data (2n) and one error (2n+1) channel per port, each
//    opened by the server with the port as uint16 little-endian;
//  - WebSocket `SPDY/3.1+portforward.k8s.io` (crictl >= 1.30): the SPDY protocol
//    tunnelled in binary messages.
// The runtime only supplies connect(port): a Duplex to that port in the pod.
import { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import type { Logger } from '../log.js';
import { RST } from './spdy/framer.js';
import { SpdySession } from './spdy/session.js';
import type { SpdyStream } from './spdy/stream.js';
import { channelCodec, channelReader, channelWriter, wsByteStream, wsSend } from './wschannel.js';

export const SPDY_PORTFORWARD_PROTOCOLS = ['portforward.k8s.io'];
export const WS_PORTFORWARD_PROTOCOLS = ['v4.channel.k8s.io', 'v4.base64.channel.k8s.io'];
export const TUNNEL_PORTFORWARD_PROTOCOL = 'SPDY/3.1+portforward.k8s.io';

export type Connect = (port: number) => Promise<Duplex>;

export interface PortForwardContext {
  /** for error messages: which pod the port belongs to */
  podSandboxId: string;
  connect: Connect;
  streamCreationTimeoutMs: number;
  log?: Logger;
}

/** Wire a client-side stream and the connection to the pod together, both
 *  directions with backpressure, half-closes passed on. Resolves when both
 *  sides are done; rejects if connect() fails. */
async function forward(client: Duplex, port: number, ctx: PortForwardContext): Promise<void> {
  const target = await ctx.connect(port);
  await new Promise<void>((resolve) => {
    let settled = false;
    const done = () => {
      if (settled) return;
      settled = true;
      if (!target.destroyed) target.destroy();
      if (!client.destroyed && !client.writableEnded) client.end();
      resolve();
    };
    target.on('error', (err: Error) => ctx.log?.debug('portforward: target error', { port, err: err.message }));
    client.on('error', (err: Error) => ctx.log?.debug('portforward: client error', { port, err: err.message }));
    client.pipe(target);
    target.pipe(client);
    target.once('close', () => {
      // pipe() ends the client side when the target ends cleanly; after an
      // abrupt close, end it here so the client sees EOF either way.
      if (!client.writableEnded && !client.destroyed) client.end();
      if (client.writableFinished || client.destroyed) done();
      else client.once('finish', done).once('close', done);
    });
    client.once('close', () => {
      // The client is gone (reset, or its session ended): drop the connection.
      done();
    });
  });
}

// ---- SPDY -----------------------------------------------------------------------------

interface Pair {
  error?: SpdyStream;
  data?: SpdyStream;
  timer: NodeJS.Timeout;
}

export function serveSpdyPortForward(session: SpdySession, ctx: PortForwardContext): void {
  const pairs = new Map<string, Pair>();

  session.on('stream', (s) => {
    const type = s.headers.streamtype;
    const portText = s.headers.port ?? '';
    const port = /^\d+$/.test(portText) ? Number(portText) : NaN;
    if (!(port >= 1 && port <= 65535) || (type !== 'error' && type !== 'data')) {
      ctx.log?.debug('portforward: refusing stream', { type, port: portText });
      return s.refuse(RST.REFUSED_STREAM);
    }
    // Clients older than requestID pair streams by id: error n, data n+2.
    const requestId = s.headers.requestid ?? String(type === 'error' ? s.id : s.id - 2);
    let pair = pairs.get(requestId);
    if (!pair) {
      const timer = setTimeout(() => {
        pairs.delete(requestId);
        const p = pair!;
        ctx.log?.warn('portforward: timed out waiting for the stream pair', { requestId });
        if (p.error) p.error.end(`timed out waiting for streams of request ${requestId}`);
        // a data stream without its error stream is refused, as the kubelet does
        p.data?.refuse(RST.REFUSED_STREAM);
      }, ctx.streamCreationTimeoutMs);
      timer.unref();
      pair = { timer };
      pairs.set(requestId, pair);
    }
    if (pair[type]) {
      s.refuse(RST.PROTOCOL_ERROR);
      pair.error?.write(`error processing stream for request ${requestId}: ${type} stream already assigned`);
      return;
    }
    s.accept();
    pair[type] = s;
    if (pair.error && pair.data) {
      clearTimeout(pair.timer);
      pairs.delete(requestId);
      runPair(pair.error, pair.data, port, ctx);
    }
  });
  session.on('close', () => {
    for (const p of pairs.values()) clearTimeout(p.timer);
    pairs.clear();
  });
}

function runPair(error: SpdyStream, data: SpdyStream, port: number, ctx: PortForwardContext): void {
  error.resume(); // the client never writes on it
  error.on('error', () => undefined);
  forward(data, port, ctx).then(
    () => error.end(),
    (err: Error) => {
      const msg = `error forwarding port ${port} to pod ${ctx.podSandboxId}: ${err.message}`;
      ctx.log?.info('portforward: connect failed', { port, err: err.message });
      error.end(msg);
      data.end();
    },
  );
}

// ---- WebSocket channels ---------------------------------------------------------------

export function serveWsPortForward(ws: WebSocket, protocol: string, ports: readonly number[], ctx: PortForwardContext): void {
  const codec = channelCodec(protocol);
  const readers = ports.map(() => channelReader(ws));
  ws.on('message', (raw: Buffer) => {
    const m = codec.decode(raw);
    if (!m || 'close' in m || m.channel % 2 !== 0) return;
    readers[m.channel / 2]?.feed(m.data);
  });
  ws.once('close', () => readers.forEach((r) => r.finish()));

  const runs = ports.map(async (port, i) => {
    const prefix = Buffer.alloc(2);
    prefix.writeUInt16LE(port);
    await Promise.all([wsSend(ws, codec.encode(2 * i, prefix)), wsSend(ws, codec.encode(2 * i + 1, prefix))]);
    const writer = channelWriter(ws, codec, 2 * i);
    const client = Duplex.from({ readable: readers[i], writable: writer });
    try {
      await forward(client, port, ctx);
    } catch (err) {
      const msg = `error forwarding port ${port} to pod ${ctx.podSandboxId}: ${(err as Error).message}`;
      await wsSend(ws, codec.encode(2 * i + 1, Buffer.from(msg))).catch(() => undefined);
    }
  });
  void Promise.allSettled(runs).then(() => {
    if (ws.readyState === ws.OPEN) ws.close(1000);
  });
}

// ---- the SPDY-over-WebSocket tunnel ---------------------------------------------------

export function serveTunnelPortForward(ws: WebSocket, ctx: PortForwardContext, idleTimeoutMs: number): SpdySession {
  const session = new SpdySession(wsByteStream(ws), { role: 'server', logger: ctx.log, idleTimeoutMs });
  serveSpdyPortForward(session, ctx);
  return session;
}
