// One SPDY stream as a Node Duplex: writes become DATA frames, end() sends an
// empty DATA with FLAG_FIN, the peer's FIN ends the readable side, RST_STREAM
// destroys it. The session does the framing; this class only keeps the state.
import { Duplex } from 'node:stream';
import { RST } from './framer.js';
import type { SpdyHeaders } from './headers.js';

/** What a stream needs from its session (kept narrow so the two can be read apart). */
export interface StreamHost {
  readonly role: 'server' | 'client';
  sendReply(stream: SpdyStream): Promise<void>;
  sendData(streamId: number, data: Buffer, fin: boolean, cb: (err?: Error | null) => void): void;
  sendRst(streamId: number, status: number): void;
  /** the stream's buffer is full: stop reading the socket until wantMore */
  block(stream: SpdyStream): void;
  wantMore(stream: SpdyStream): void;
  forget(stream: SpdyStream): void;
}

export class SpdyStream extends Duplex {
  /** set when the peer reset the stream (RST_STREAM status) */
  resetStatus: number | null = null;
  remoteFin = false;
  localFin = false;
  private replied = false;
  private ready: Promise<void>;
  private markReady!: () => void;
  private markFailed!: (e: Error) => void;

  constructor(
    private readonly host: StreamHost,
    readonly id: number,
    readonly headers: SpdyHeaders,
  ) {
    // allowHalfOpen: stdin's FIN must not end stdout.
    super({ allowHalfOpen: true });
    this.ready = new Promise((resolve, reject) => {
      this.markReady = resolve;
      this.markFailed = reject;
    });
    this.ready.catch(() => undefined);
  }

  /** Server side: answer the peer's SYN_STREAM with an empty SYN_REPLY. */
  accept(): void {
    if (this.replied || this.host.role !== 'server') return;
    this.replied = true;
    this.host.sendReply(this).then(this.markReady, this.markFailed);
  }

  /** Server side: turn the stream down (k8s does this for bad port-forward headers). */
  refuse(status: number = RST.REFUSED_STREAM): void {
    this.resetWith(status);
  }

  /** Send RST_STREAM with `status` and drop the stream. */
  resetWith(status: number = RST.CANCEL): void {
    if (this.destroyed) return;
    this.host.sendRst(this.id, status);
    this.localFin = this.remoteFin = true; // nothing more to say either way
    this.destroy();
  }

  // ---- called by the session --------------------------------------------------------

  /** Client side: the peer's SYN_REPLY arrived. */
  onReply(): void {
    this.replied = true;
    this.markReady();
  }

  onData(data: Buffer): void {
    if (data.length > 0 && !this.push(data)) this.host.block(this);
  }

  onFin(): void {
    if (this.remoteFin) return;
    this.remoteFin = true;
    this.push(null);
    this.maybeDone();
  }

  onRst(status: number): void {
    this.resetStatus = status;
    this.markFailed(new Error(`stream ${this.id} reset by peer (status ${status})`));
    this.localFin = this.remoteFin = true;
    // No 'error' event: a reset is the peer's way to stop, and a consumer without
    // an error listener must not crash the daemon. Readers see 'close' without 'end'.
    this.destroy();
  }

  /** The session is gone. Readers still get what was received, then EOF;
   *  writes fail from now on. */
  onSessionClosed(): void {
    this.markFailed(new Error('SPDY session closed'));
    this.localFin = true;
    if (!this.remoteFin) {
      this.remoteFin = true;
      this.push(null);
    }
    if (this.readableEnded) return void this.destroy();
    this.once('end', () => this.destroy());
    if (this.readableLength === 0) this.resume(); // nothing left to lose: let 'end' fire
  }

  /** resolves once the stream may carry data (our SYN_REPLY written / theirs received) */
  whenReady(): Promise<void> {
    return this.ready;
  }

  // ---- Duplex -----------------------------------------------------------------------

  override _read(): void {
    this.host.wantMore(this);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (!this.replied) this.accept();
    // (after the session closed, `ready` is rejected and the write fails)
    this.ready.then(() => this.host.sendData(this.id, chunk, false, cb), cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (!this.replied) this.accept();
    this.ready.then(
      () =>
        this.host.sendData(this.id, Buffer.alloc(0), true, (err) => {
          this.localFin = true;
          this.maybeDone();
          cb(err);
        }),
      cb,
    );
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!(this.localFin && this.remoteFin)) this.host.sendRst(this.id, RST.CANCEL);
    this.host.wantMore(this);
    this.host.forget(this);
    cb(err);
  }

  private maybeDone(): void {
    if (this.localFin && this.remoteFin) this.host.forget(this);
  }
}
