// The CRI streaming server (what the kubelet's pkg/kubelet/cri/streaming is to
// containerd and CRI-O): Exec/Attach/PortForward park their request here and
// return a URL with a single-use token; the client then connects to that URL
// and upgrades to SPDY/3.1 or WebSocket. Loopback only unless configured.
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { AttachRequest__Output } from '../../api/generated/runtime/v1/AttachRequest.js';
import type { ExecRequest__Output } from '../../api/generated/runtime/v1/ExecRequest.js';
import type { PortForwardRequest__Output } from '../../api/generated/runtime/v1/PortForwardRequest.js';
import type { Logger } from '../log.js';
import { Code, StatusError } from '../errors.js';
import { RequestCache } from './cache.js';
import { headerValues, isSpdyUpgrade, isWebSocketUpgrade, negotiate, rawResponse, spdyUpgrade } from './handshake.js';
import {
  serveSpdyPortForward,
  serveTunnelPortForward,
  serveWsPortForward,
  SPDY_PORTFORWARD_PROTOCOLS,
  TUNNEL_PORTFORWARD_PROTOCOL,
  WS_PORTFORWARD_PROTOCOLS,
  type PortForwardContext,
} from './portforward.js';
import {
  acceptSpdyRemoteCommand,
  acceptWsRemoteCommand,
  SPDY_REMOTECOMMAND_PROTOCOLS,
  WS_REMOTECOMMAND_PROTOCOLS,
} from './remotecommand.js';
import { SpdySession } from './spdy/session.js';
import type { ExitStatus, StreamIO } from './types.js';

export type { ExitStatus, StreamIO, TerminalSize } from './types.js';
export { CacheFullError } from './cache.js';

/** What the streaming layer needs from the runtime. */
export interface Runtime {
  /** Run the command; resolve with its exit code when it ends (even if the
   *  client has gone). Throwing reports an internal error to the client. */
  exec(req: ExecRequest__Output, io: StreamIO): Promise<ExitStatus>;
  /** Attach to the container's streams; resolve when the attach ends. */
  attach(req: AttachRequest__Output, io: StreamIO): Promise<void>;
  /** A connection to `port` inside the pod's network namespace. */
  portForward(podSandboxId: string, port: number): Promise<Duplex>;
}

export interface StreamServerOptions {
  /** listen address; default 127.0.0.1 */
  address?: string;
  /** listen port; default 0 (a free one) */
  port?: number;
  /** close a streaming connection after this long without traffic; default 4 h */
  idleTimeoutMs?: number;
  /** how long a client has to open all its SPDY streams; default 30 s */
  streamCreationTimeoutMs?: number;
  /** how long a stream URL stays valid unused; default 1 min */
  requestTtlMs?: number;
  /** serve HTTPS (both or neither) */
  tlsCertFile?: string;
  tlsKeyFile?: string;
  logger?: Logger;
}

/** A request the streaming server cannot serve (maps to gRPC InvalidArgument). */
export class StreamRequestError extends StatusError {
  constructor(message: string) {
    super(Code.INVALID_ARGUMENT, message);
    this.name = 'StreamRequestError';
  }
}

type Cached =
  | { kind: 'exec'; req: ExecRequest__Output }
  | { kind: 'attach'; req: AttachRequest__Output }
  | { kind: 'portforward'; req: PortForwardRequest__Output };

const ROUTE = /^\/(exec|attach|portforward)\/([A-Za-z0-9_-]{1,64})\/?$/;

export class StreamServer {
  private readonly cache: RequestCache<Cached>;
  // Subprotocols are negotiated here, not by ws: ws rejects crictl's
  // 'SPDY/3.1+portforward.k8s.io' as an invalid token ('/' is a separator).
  private readonly wss = new WebSocketServer({ noServer: true });
  private server: http.Server | https.Server | null = null;
  private readonly sockets = new Set<Socket>();
  private readonly log?: Logger;
  private readonly address: string;
  private readonly idleMs: number;
  private readonly creationMs: number;

  constructor(
    private readonly runtime: Runtime,
    private readonly opts: StreamServerOptions = {},
  ) {
    this.log = opts.logger;
    this.address = opts.address ?? '127.0.0.1';
    this.idleMs = opts.idleTimeoutMs ?? 4 * 3600_000;
    this.creationMs = opts.streamCreationTimeoutMs ?? 30_000;
    this.cache = new RequestCache<Cached>(opts.requestTtlMs ?? 60_000);
  }

  async start(): Promise<void> {
    if (this.server) return;
    const { tlsCertFile, tlsKeyFile } = this.opts;
    if (!!tlsCertFile !== !!tlsKeyFile) throw new Error('stream server: TLS needs both a certificate and a key');
    const server = tlsCertFile
      ? https.createServer({ cert: await readFile(tlsCertFile), key: await readFile(tlsKeyFile!) })
      : http.createServer();
    server.on(tlsCertFile ? 'secureConnection' : 'connection', (s: Socket) => {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    });
    server.on('request', (req, res) => this.onRequest(req, res));
    server.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket as Socket, head));
    server.on('clientError', (_err, socket) => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port ?? 0, this.address, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    this.log?.info('stream server listening', { url: this.url() });
  }

  /** Stop listening and drop every streaming connection. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    for (const ws of this.wss.clients) ws.terminate();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  listenAddress(): AddressInfo {
    const a = this.server?.address();
    if (!a || typeof a === 'string') throw new Error('stream server is not listening');
    return a;
  }

  /** base URL, e.g. http://127.0.0.1:41234 */
  url(): string {
    const a = this.listenAddress();
    const host = a.family === 'IPv6' || a.address.includes(':') ? `[${a.address}]` : a.address;
    return `${this.opts.tlsCertFile ? 'https' : 'http'}://${host}:${a.port}`;
  }

  getExecUrl(req: ExecRequest__Output): string {
    if (!req.container_id) throw new StreamRequestError('missing required container_id');
    if (!req.cmd?.length) throw new StreamRequestError('missing required cmd');
    checkStreams(req);
    return this.park({ kind: 'exec', req });
  }

  getAttachUrl(req: AttachRequest__Output): string {
    if (!req.container_id) throw new StreamRequestError('missing required container_id');
    checkStreams(req);
    return this.park({ kind: 'attach', req });
  }

  getPortForwardUrl(req: PortForwardRequest__Output): string {
    if (!req.pod_sandbox_id) throw new StreamRequestError('missing required pod_sandbox_id');
    return this.park({ kind: 'portforward', req });
  }

  private park(c: Cached): string {
    return `${this.url()}/${c.kind}/${this.cache.insert(c)}`;
  }

  // ---- HTTP -----------------------------------------------------------------------

  /** Find the parked request; the token is used up whatever happens next. */
  private lookup(req: http.IncomingMessage): Cached | { status: number; body: string } {
    const path = (req.url ?? '').split('?')[0];
    const m = ROUTE.exec(path);
    if (!m) return { status: 404, body: `not found: ${path}\n` };
    if (req.method !== 'GET' && req.method !== 'POST') return { status: 405, body: 'method not allowed\n' };
    const c = this.cache.consume(m[2]);
    if (!c || c.kind !== m[1]) return { status: 404, body: 'stream token not found: unknown, expired or already used\n' };
    return c;
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const c = this.lookup(req);
    const [status, body] = 'status' in c ? [c.status, c.body] : [400, 'unable to upgrade: missing upgrade headers in request\n'];
    res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' }).end(body);
  }

  private onUpgrade(req: http.IncomingMessage, socket: Socket, head: Buffer): void {
    socket.on('error', (err) => this.log?.debug('stream: socket error', { err: err.message }));
    const c = this.lookup(req);
    if ('status' in c) return rawResponse(socket, c.status, c.body);
    if (isWebSocketUpgrade(req)) return this.upgradeWebSocket(req, socket, head, c);
    if (isSpdyUpgrade(req)) return this.upgradeSpdy(req, socket, head, c);
    rawResponse(socket, 400, `unable to upgrade: unsupported upgrade ${JSON.stringify(req.headers.upgrade)}\n`);
  }

  private upgradeSpdy(req: http.IncomingMessage, socket: Socket, head: Buffer, c: Cached): void {
    const supported = c.kind === 'portforward' ? SPDY_PORTFORWARD_PROTOCOLS : SPDY_REMOTECOMMAND_PROTOCOLS;
    const protocol = spdyUpgrade(req, socket, supported);
    if (!protocol) return;
    socket.setNoDelay(true);
    if (head.length > 0) socket.unshift(head);
    const session = new SpdySession(socket, { role: 'server', logger: this.log, idleTimeoutMs: this.idleMs });
    this.log?.debug('stream: spdy session', { kind: c.kind, protocol });
    if (c.kind === 'portforward') return serveSpdyPortForward(session, this.pfContext(c.req.pod_sandbox_id));
    void acceptSpdyRemoteCommand(session, protocol, c.req, this.creationMs, this.log).then((io) => {
      if (io) void this.runRemoteCommand(c, io);
    });
  }

  private upgradeWebSocket(req: http.IncomingMessage, socket: Socket, head: Buffer, c: Cached): void {
    const offered = headerValues(req, 'sec-websocket-protocol');
    const supported = wsProtocolsFor(c.kind);
    const protocol = offered.length > 0 ? negotiate(offered, supported) : '';
    if (protocol === null) {
      return rawResponse(socket, 400, `requested protocol(s) are not supported: [${offered.join(' ')}]; supports [${supported.join(' ')}]\n`);
    }
    delete req.headers['sec-websocket-protocol'];
    const addProtocol = (headers: string[], r: http.IncomingMessage) => {
      if (r === req && protocol) headers.push(`Sec-WebSocket-Protocol: ${protocol}`);
    };
    this.wss.on('headers', addProtocol);
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      socket.setNoDelay(true);
      socket.setTimeout(this.idleMs, () => ws.terminate());
      ws.on('error', (err) => this.log?.debug('stream: websocket error', { err: err.message }));
      this.log?.debug('stream: websocket', { kind: c.kind, protocol });
      this.serveWebSocket(ws, protocol, c);
    });
    this.wss.off('headers', addProtocol);
  }

  private serveWebSocket(ws: WebSocket, protocol: string, c: Cached): void {
    if (c.kind === 'portforward') {
      const ctx = this.pfContext(c.req.pod_sandbox_id);
      if (protocol === TUNNEL_PORTFORWARD_PROTOCOL) serveTunnelPortForward(ws, ctx, this.idleMs);
      else serveWsPortForward(ws, protocol, c.req.port ?? [], ctx);
      return;
    }
    void this.runRemoteCommand(c, acceptWsRemoteCommand(ws, protocol, c.req, this.log));
  }

  private async runRemoteCommand(c: Extract<Cached, { kind: 'exec' | 'attach' }>, io: StreamIO): Promise<void> {
    let status: ExitStatus;
    try {
      if (c.kind === 'exec') status = await this.runtime.exec(c.req, io);
      else {
        await this.runtime.attach(c.req, io);
        status = { exitCode: 0 };
      }
    } catch (err) {
      const what = c.kind === 'exec' ? 'error executing command in container' : 'error attaching to container';
      this.log?.warn(`stream: ${what}`, { containerId: c.req.container_id, err: (err as Error).message });
      status = { internalError: `${what}: ${(err as Error).message}` };
    }
    await io.done(status);
  }

  private pfContext(podSandboxId: string): PortForwardContext {
    return {
      podSandboxId,
      connect: (port) => this.runtime.portForward(podSandboxId, port),
      streamCreationTimeoutMs: this.creationMs,
      log: this.log,
    };
  }
}

function wsProtocolsFor(kind: Cached['kind']): string[] {
  return kind === 'portforward' ? [TUNNEL_PORTFORWARD_PROTOCOL, ...WS_PORTFORWARD_PROTOCOLS] : WS_REMOTECOMMAND_PROTOCOLS;
}

/** At least one stream; a terminal carries stderr in stdout (INVALID_ARGUMENT otherwise). */
export function checkStreams(r: { tty: boolean; stdin: boolean; stdout: boolean; stderr: boolean }): void {
  if (!r.stdin && !r.stdout && !r.stderr) throw new StreamRequestError('one of stdin, stdout and stderr must be true');
  if (r.tty && r.stderr) throw new StreamRequestError('tty and stderr cannot both be true (a terminal carries stderr in stdout)');
}
