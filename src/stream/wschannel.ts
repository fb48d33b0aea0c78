// The k8s channel WebSocket framing (wsstream): every message starts with its
// channel number, a raw byte for the binary protocols, an ASCII digit followed
// by base64 for the base64.* ones (sent as text messages). v5 adds the
// half-close signal [255, channel]. Also: a WebSocket as a byte Duplex, for
// the SPDY-over-WebSocket port-forward tunnel.
import { Duplex, Readable, Writable } from 'node:stream';
import type { WebSocket } from 'ws';

export const CLOSE_SIGNAL = 255;

export type ChannelMessage = { channel: number; data: Buffer } | { close: number };

export interface ChannelCodec {
  readonly base64: boolean;
  encode(channel: number, data: Buffer): Buffer | string;
  decode(msg: Buffer): ChannelMessage | null;
}

export function channelCodec(protocol: string): ChannelCodec {
  const base64 = protocol.includes('base64.');
  const closeSignal = protocol === 'v5.channel.k8s.io';
  return {
    base64,
    encode: (channel, data) =>
      base64 ? String.fromCharCode(48 + channel) + data.toString('base64') : Buffer.concat([Buffer.of(channel), data]),
    decode: (msg) => {
      if (msg.length === 0) return null;
      if (closeSignal && msg[0] === CLOSE_SIGNAL) return msg.length === 2 ? { close: msg[1] } : null;
      if (!base64) return { channel: msg[0], data: msg.subarray(1) };
      return { channel: msg[0] - 48, data: Buffer.from(msg.subarray(1).toString('latin1'), 'base64') };
    },
  };
}

/** Send one message; resolves when ws has handed it to the socket. */
export function wsSend(ws: WebSocket, payload: Buffer | string): Promise<void> {
  return new Promise((resolve, reject) => {
    if (ws.readyState !== ws.OPEN) return reject(new Error('websocket is closed'));
    ws.send(payload, { binary: typeof payload !== 'string' }, (err) => (err ? reject(err) : resolve()));
  });
}

/** A Writable that sends each chunk as one message on `channel`. Waiting for
 *  each send's callback is the backpressure. */
export function channelWriter(ws: WebSocket, codec: ChannelCodec, channel: number): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      wsSend(ws, codec.encode(channel, chunk)).then(() => cb(), cb);
    },
  });
}

/** A Readable fed with a channel's messages; pauses the WebSocket while its
 *  consumer is behind. */
export interface ChannelReader extends Readable {
  feed(data: Buffer): void;
  /** the channel's EOF (v5 close signal, or the connection ended); idempotent */
  finish(): void;
}

export function channelReader(ws: WebSocket): ChannelReader {
  let ended = false;
  const r = new Readable({
    read() {
      if (ws.isPaused) ws.resume();
    },
  }) as ChannelReader;
  r.feed = (data) => {
    if (!ended && data.length > 0 && !r.push(data)) ws.pause();
  };
  r.finish = () => {
    if (ended) return;
    ended = true;
    r.push(null);
  };
  return r;
}

/** Binary messages as a byte stream both ways (crictl's SPDY/3.1+portforward tunnel). */
export function wsByteStream(ws: WebSocket): Duplex {
  const d = new Duplex({
    read() {
      if (ws.isPaused) ws.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      wsSend(ws, chunk).then(() => cb(), cb);
    },
    final(cb) {
      if (ws.readyState === ws.OPEN) ws.close(1000);
      cb();
    },
    destroy(err, cb) {
      if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.terminate();
      cb(err);
    },
  });
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (!isBinary) return d.destroy(new Error('text message on a binary tunnel'));
    if (!d.push(data)) ws.pause();
  });
  ws.on('close', () => d.push(null));
  ws.on('error', (err) => d.destroy(err));
  return d;
}
