// A SPDY/3.1 session over any byte Duplex (a hijacked HTTP socket, a TLS socket,
// or WebSocket binary messages for crictl's tunnel). Either role: the stream
// server is 'server' (the peer opens odd streams), the test client is 'client'.
//
// Flow control is deliberately NOT enforced: moby/spdystream never sends
// WINDOW_UPDATE, so honouring SPDY's 64 KiB send window would stall every
// stream. Like the Go server we write unthrottled and let TCP push back:
// stream writes complete only once the socket has drained, and a stream whose
// reader is slow pauses the socket.
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import type { Logger } from '../../log.js';
import {
  encodeFrame,
  FrameDecoder,
  GOAWAY,
  RST,
  SpdyProtocolError,
  type DecoderLimits,
  type Frame,
} from './framer.js';
import { HeaderCompressor, HeaderDecompressor, type SpdyHeaders } from './headers.js';
import { SpdyStream, type StreamHost } from './stream.js';

export interface SessionOptions {
  role: 'server' | 'client';
  logger?: Logger;
  /** close (GOAWAY) after this long without a frame either way; 0 = never */
  idleTimeoutMs?: number;
  limits?: DecoderLimits;
  /** largest DATA payload we send; Go reads any size, 64 KiB keeps streams interleaved */
  maxSendFrame?: number;
  /** after close(), how long to wait for the peer to hang up before destroying */
  closeGraceMs?: number;
}

type Waiter = (err?: Error | null) => void;

export declare interface SpdySession {
  on(event: 'stream', listener: (stream: SpdyStream) => void): this;
  on(event: 'close', listener: () => void): this;
  on(event: 'goaway', listener: (status: number) => void): this;
}

export class SpdySession extends EventEmitter implements StreamHost {
  readonly role: 'server' | 'client';
  private readonly log?: Logger;
  private readonly decoder: FrameDecoder;
  private readonly compressor = new HeaderCompressor();
  private readonly decompressor = new HeaderDecompressor();
  private readonly streams = new Map<number, SpdyStream>();
  private readonly maxSendFrame: number;
  private readonly closeGraceMs: number;

  private inbox: Frame[] = [];
  /** a header block is being inflated: later frames wait behind it */
  private inflating = false;
  private readonly blockedBy = new Set<SpdyStream>();
  private paused = false;
  private drainWaiters: Waiter[] = [];

  private nextStreamId: number;
  private lastPeerStreamId = 0;
  private nextPingId: number;
  private readonly pings = new Map<number, () => void>();

  private idleTimer: NodeJS.Timeout | null = null;
  private lastActivity = Date.now();
  private readonly idleMs: number;

  /** the peer hung up; frames already received are still delivered */
  private peerEnded = false;
  goneAway = false;
  closing = false;
  destroyed = false;

  constructor(
    private readonly socket: Duplex,
    opts: SessionOptions,
  ) {
    super();
    this.role = opts.role;
    this.log = opts.logger;
    this.decoder = new FrameDecoder(opts.limits);
    this.maxSendFrame = opts.maxSendFrame ?? 64 * 1024;
    this.closeGraceMs = opts.closeGraceMs ?? 5000;
    // Client-initiated streams and pings are odd, the server's even.
    this.nextStreamId = this.role === 'client' ? 1 : 2;
    this.nextPingId = this.role === 'client' ? 1 : 2;
    this.idleMs = opts.idleTimeoutMs ?? 0;

    socket.on('data', (chunk: Buffer) => this.onChunk(chunk));
    socket.on('drain', () => this.flushWaiters(null));
    // Frames already received (possibly waiting on an inflate) are still
    // delivered when the peer hangs up; pump() destroys the session after them.
    const hungUp = () => {
      this.peerEnded = true;
      this.pump();
    };
    socket.on('end', hungUp);
    socket.on('close', hungUp);
    socket.on('error', (err: Error) => {
      this.log?.debug('spdy socket error', { err: err.message });
      this.destroy();
    });
    if (this.idleMs > 0) this.armIdle(this.idleMs);
  }

  /** Client role: open a stream and wait for the peer's SYN_REPLY. */
  async openStream(headers: SpdyHeaders): Promise<SpdyStream> {
    if (this.destroyed || this.goneAway || this.closing) throw new Error('SPDY session is closed');
    const id = this.nextStreamId;
    this.nextStreamId += 2;
    const stream = new SpdyStream(this, id, headers);
    this.streams.set(id, stream);
    await this.compressor.compress(headers, (block) =>
      this.write({ type: 'SYN_STREAM', streamId: id, associatedId: 0, priority: 0, fin: false, unidirectional: false, headerBlock: block }),
    );
    await stream.whenReady();
    return stream;
  }

  /** Round trip time of one PING, in ms. */
  ping(): Promise<number> {
    const id = this.nextPingId;
    this.nextPingId += 2;
    if (this.nextPingId > 0x7fffffff) this.nextPingId -= 0x7ffffffe; // wrap, keeping the parity
    const start = process.hrtime.bigint();
    return new Promise((resolve, reject) => {
      if (this.destroyed) return reject(new Error('SPDY session is closed'));
      this.pings.set(id, () => resolve(Number(process.hrtime.bigint() - start) / 1e6));
      this.write({ type: 'PING', id });
    });
  }

  /** GOAWAY, then hang up once everything queued has been written. */
  close(status: number = GOAWAY.OK): void {
    if (this.closing || this.destroyed) return;
    this.closing = true;
    // SYN_REPLYs still being compressed must go out before GOAWAY (the race
    // k8s guards against with replySent).
    void this.compressor.idle().then(() => {
      this.write({ type: 'GOAWAY', lastGoodStreamId: this.lastPeerStreamId, status });
      this.socket.end();
    });
    setTimeout(() => this.destroy(), this.closeGraceMs).unref();
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    for (const s of [...this.streams.values()]) s.onSessionClosed();
    this.streams.clear();
    this.flushWaiters(new Error('SPDY session closed'));
    this.compressor.close();
    this.decompressor.close();
    this.socket.destroy();
    this.emit('close');
  }

  get activeStreams(): number {
    return this.streams.size;
  }

  // ---- StreamHost -----------------------------------------------------------------

  sendReply(stream: SpdyStream): Promise<void> {
    return this.compressor.compress({}, (block) => {
      this.write({ type: 'SYN_REPLY', streamId: stream.id, fin: false, headerBlock: block });
    });
  }

  sendData(streamId: number, data: Buffer, fin: boolean, cb: Waiter): void {
    if (this.destroyed) return cb(new Error('SPDY session closed'));
    let ok = true;
    if (data.length === 0) ok = this.write({ type: 'DATA', streamId, fin, data });
    for (let off = 0; off < data.length; off += this.maxSendFrame) {
      const piece = data.subarray(off, off + this.maxSendFrame);
      ok = this.write({ type: 'DATA', streamId, fin: fin && off + piece.length === data.length, data: piece });
    }
    if (ok) cb();
    else this.drainWaiters.push(cb);
  }

  sendRst(streamId: number, status: number): void {
    if (!this.destroyed) this.write({ type: 'RST_STREAM', streamId, status });
  }

  block(stream: SpdyStream): void {
    this.blockedBy.add(stream);
    this.updateFlow();
  }

  wantMore(stream: SpdyStream): void {
    if (this.blockedBy.delete(stream)) this.updateFlow();
  }

  forget(stream: SpdyStream): void {
    if (this.streams.get(stream.id) === stream) this.streams.delete(stream.id);
    this.blockedBy.delete(stream);
    this.updateFlow();
  }

  // ---- input ----------------------------------------------------------------------

  private onChunk(chunk: Buffer): void {
    if (this.destroyed) return;
    this.lastActivity = Date.now();
    let frames: Frame[];
    try {
      frames = this.decoder.push(chunk);
    } catch (e) {
      return this.protocolError(e as Error);
    }
    this.inbox.push(...frames);
    this.pump();
  }

  /** Handle queued frames in order; a header block's inflate is asynchronous. */
  private pump(): void {
    while (!this.inflating && !this.destroyed && this.inbox.length > 0) {
      const f = this.inbox.shift()!;
      if (f.type === 'SYN_STREAM' || f.type === 'SYN_REPLY' || f.type === 'HEADERS') {
        this.inflating = true;
        this.updateFlow();
        this.decompressor.decompress(f.headerBlock).then(
          (headers) => {
            this.inflating = false;
            this.updateFlow();
            this.handleHeaders(f, headers);
            this.pump();
          },
          (e: Error) => this.protocolError(e),
        );
        return;
      }
      this.handle(f);
    }
    if (this.peerEnded && !this.inflating) this.destroy();
  }

  private handle(f: Exclude<Frame, { type: 'SYN_STREAM' | 'SYN_REPLY' | 'HEADERS' }>): void {
    switch (f.type) {
      case 'DATA': {
        const s = this.streams.get(f.streamId);
        // Data for a stream we dropped (reset, or closed both ways) is late, not wrong.
        if (!s) return;
        if (s.remoteFin) return this.sendRst(f.streamId, RST.STREAM_ALREADY_CLOSED);
        s.onData(f.data);
        if (f.fin) s.onFin();
        return;
      }
      case 'RST_STREAM':
        this.streams.get(f.streamId)?.onRst(f.status);
        return;
      case 'PING':
        // A ping with the peer's parity is theirs: echo it. Ours come back as replies.
        if (f.id % 2 !== this.nextPingId % 2) this.write(f);
        else {
          this.pings.get(f.id)?.();
          this.pings.delete(f.id);
        }
        return;
      case 'GOAWAY':
        this.goneAway = true;
        this.emit('goaway', f.status);
        return;
      case 'SETTINGS':
      case 'WINDOW_UPDATE':
      case 'UNKNOWN':
        return; // see the note at the top: no flow control; unknown types are ignored
    }
  }

  private handleHeaders(f: Extract<Frame, { type: 'SYN_STREAM' | 'SYN_REPLY' | 'HEADERS' }>, headers: SpdyHeaders): void {
    if (f.type === 'SYN_STREAM') return this.onSynStream(f.streamId, headers, f.fin);
    const s = this.streams.get(f.streamId);
    if (!s) return;
    if (f.type === 'SYN_REPLY') s.onReply();
    if (f.fin) s.onFin();
  }

  private onSynStream(id: number, headers: SpdyHeaders, fin: boolean): void {
    const peerParity = this.role === 'server' ? 1 : 0;
    if (id % 2 !== peerParity || id <= this.lastPeerStreamId) {
      this.log?.debug('spdy: bad stream id', { id, last: this.lastPeerStreamId });
      return this.sendRst(id, RST.PROTOCOL_ERROR);
    }
    this.lastPeerStreamId = id;
    if (this.closing || this.goneAway || this.listenerCount('stream') === 0) {
      return this.sendRst(id, RST.REFUSED_STREAM);
    }
    const stream = new SpdyStream(this, id, headers);
    this.streams.set(id, stream);
    if (fin) stream.onFin();
    this.emit('stream', stream);
  }

  private protocolError(e: Error): void {
    if (this.destroyed) return;
    const status = e instanceof SpdyProtocolError ? e.goAwayStatus : GOAWAY.INTERNAL_ERROR;
    this.log?.warn('spdy protocol error, closing the session', { err: e.message });
    this.inbox = [];
    this.close(status);
    // nothing the peer sends after a framing error can be trusted
    this.socket.pause();
    this.destroyAfterFlush();
  }

  private destroyAfterFlush(): void {
    if (this.socket.writableFinished) this.destroy();
    else this.socket.once('finish', () => this.destroy());
  }

  // ---- output and flow --------------------------------------------------------------

  private write(f: Frame): boolean {
    if (this.destroyed || this.socket.writableEnded) return false;
    this.lastActivity = Date.now();
    return this.socket.write(encodeFrame(f));
  }

  private flushWaiters(err: Error | null): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w(err);
  }

  private updateFlow(): void {
    if (this.destroyed) return;
    const pause = this.inflating || this.blockedBy.size > 0;
    if (pause && !this.paused) this.socket.pause();
    else if (!pause && this.paused) this.socket.resume();
    this.paused = pause;
  }

  private armIdle(ms: number): void {
    this.idleTimer = setTimeout(() => {
      const idle = Date.now() - this.lastActivity;
      if (idle < this.idleMs) return this.armIdle(this.idleMs - idle);
      this.log?.info('spdy session idle, closing', { idleMs: this.idleMs });
      this.close();
    }, ms);
    this.idleTimer.unref();
  }
}
