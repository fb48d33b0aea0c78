// The CRI socket's front. grpc-go before 1.57 (kubelet, crictl and critest up
// to 1.28) sends the socket path as :authority; nghttp2 inside Node's http2
// refuses the '/' in it and resets the stream before grpc-js sees the
// request, and Node has no switch for that check. containerd and CRI-O serve
// those clients, so cri-mesos owns the socket itself and hands each
// connection to grpc-js (createConnectionInjector) through a filter:
// client→server header blocks are re-encoded once a client sends such an
// authority (inbound.ts), server→client bytes pass untouched (outbound.ts).
import * as grpc from '@grpc/grpc-js';
import { createServer, type Server, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import type { Logger } from '../../log.js';
import { ConnectionError, ErrorCode, goawayFrame } from './frames.js';
import { Inbound } from './inbound.js';
import { Outbound } from './outbound.js';

/** How long a connection being ended may take to reach a frame boundary, then to close after our GOAWAY. */
const GOAWAY_GRACE_MS = 2000;

export class CriFront {
  private readonly sockets = new Set<Socket>();

  private constructor(private readonly server: Server) {}

  /** Serve grpcServer on the unix socket at path (which must not exist). grpcServer needs no bindAsync. */
  static async listen(grpcServer: grpc.Server, path: string, log: Logger): Promise<CriFront> {
    const injector = grpcServer.createConnectionInjector(grpc.ServerCredentials.createInsecure());
    // half-open: a client's FIN reaches nghttp2 as EOF and nghttp2 decides when ours follows
    const server = createServer({ allowHalfOpen: true });
    const front = new CriFront(server);
    server.on('connection', (sock) => {
      front.sockets.add(sock);
      sock.once('close', () => front.sockets.delete(sock));
      injector.injectConnection(new FrontConnection(sock, log).inner);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return front;
  }

  /** Accept no more connections; open ones go on until the gRPC server ends them. */
  stopAccepting(): void {
    if (this.server.listening) this.server.close();
  }

  /** Accept no more connections and cut those still open. */
  close(): void {
    this.stopAccepting();
    for (const s of this.sockets) s.destroy();
  }
}

/** One client connection: the client's socket on one side, the Duplex grpc-js reads and writes on the other. */
class FrontConnection {
  readonly inner: Duplex;
  private readonly inbound: Inbound;
  private readonly outbound: Outbound;
  /** set once the connection is being ended by us */
  private goaway?: Buffer;
  /** the GOAWAY went out: whatever the server still writes is dropped */
  private done = false;

  constructor(
    private readonly sock: Socket,
    private readonly log: Logger,
  ) {
    this.inbound = new Inbound((b) => {
      if (!this.inner.push(b)) sock.pause();
    });
    this.inbound.onRewrite = (authority) =>
      log.debug('a CRI client sends an :authority nghttp2 refuses; re-encoding its header blocks', { authority });
    this.outbound = new Outbound((id, value) => this.inbound.serverSetting(id, value));
    this.inner = new Duplex({
      allowHalfOpen: true,
      read: () => {
        if (!this.goaway) sock.resume();
      },
      writev: (chunks, cb) => this.toClient(chunks, cb),
      final: (cb) => {
        if (!this.goaway) sock.end();
        cb();
      },
      destroy: (err, cb) => {
        if (!this.goaway) sock.destroy();
        cb(err);
      },
    });
    // Whatever ends the inner side also closes the socket; an error there must not take the daemon down.
    this.inner.on('error', () => undefined);
    sock.on('data', (d: Buffer) => this.fromClient(d));
    sock.on('end', () => {
      if (!this.goaway) this.inner.push(null);
    });
    sock.on('error', () => undefined); // 'close' follows
    sock.on('close', () => this.inner.destroy());
  }

  private fromClient(d: Buffer): void {
    if (this.goaway) return;
    try {
      this.inbound.write(d);
    } catch (e) {
      // a bug of ours ends this connection, not the daemon
      this.fail(e instanceof ConnectionError ? e : new ConnectionError(ErrorCode.INTERNAL_ERROR, `cri-mesos front: ${String(e)}`));
    }
  }

  private toClient(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void {
    const sock = this.sock;
    if (this.done || sock.destroyed) return cb();
    if (this.goaway) {
      // finish the frame in flight, then the GOAWAY
      for (const { chunk } of chunks) {
        const k = this.outbound.feed(chunk, true);
        if (k) sock.write(k === chunk.length ? chunk : chunk.subarray(0, k));
        if (this.outbound.atBoundary) {
          this.sendGoaway();
          break;
        }
      }
      return cb();
    }
    let ok = true;
    if (chunks.length > 1) sock.cork();
    for (const { chunk } of chunks) {
      this.outbound.feed(chunk);
      ok = sock.write(chunk);
    }
    if (chunks.length > 1) sock.uncork();
    if (ok) return cb();
    const go = () => {
      sock.off('drain', go);
      sock.off('close', go);
      cb();
    };
    sock.on('drain', go);
    sock.on('close', go);
  }

  /** End this connection only: GOAWAY at the next server frame boundary, then close. */
  private fail(e: ConnectionError): void {
    const name = Object.entries(ErrorCode).find(([, v]) => v === e.code)?.[0] ?? String(e.code);
    this.log.warn('ending a CRI connection: the client sent malformed HTTP/2', { code: name, error: e.message });
    this.goaway = goawayFrame(this.inbound.lastStreamId, e.code, e.message);
    this.sock.resume(); // read on (and drop) until the client closes
    if (this.outbound.atBoundary) this.sendGoaway();
    else setTimeout(() => this.done || this.sock.destroy(), GOAWAY_GRACE_MS).unref();
  }

  private sendGoaway(): void {
    this.done = true;
    this.sock.end(this.goaway!);
    this.inner.destroy();
    setTimeout(() => this.sock.destroy(), GOAWAY_GRACE_MS).unref();
  }
}
