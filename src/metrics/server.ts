// The metrics listener (metrics_address): GET /metrics (Prometheus text format) and GET
// /healthz (200 "ok" while the daemon's own Status check passes, 503 and the reason otherwise)
// on one node:http server. Any other path is 404; another method on those two is 405.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log.js';
import type { Metrics } from './metrics.js';
import { parseListenAddress } from './address.js';

/** The daemon's health: ok, or why not. */
export type HealthCheck = () => Promise<{ ok: true } | { ok: false; reason: string }>;

/** A health check that takes longer than this is a failed one (the event loop or a lock is stuck). */
export const HEALTH_TIMEOUT_MS = 5_000;

export class MetricsServer {
  private constructor(
    private readonly server: Server,
    /** The address bound, as host:port (the port is the real one when 0 was asked). */
    readonly address: string,
  ) {}

  /** Listen on `address`; rejects with a message naming the address (in use, not local, ...). */
  static async listen(address: string, metrics: Metrics, health: HealthCheck, log: Logger): Promise<MetricsServer> {
    const { host, port } = parseListenAddress(address);
    const server = createServer((req, res) => {
      handle(req, res, metrics, health).catch((err: unknown) => {
        log.error('metrics endpoint failed', { path: req.url, error: String(err) });
        if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
        res.end(`${String(err)}\n`);
      });
    });
    // A scraper that keeps its connection must not hold the daemon's stop.
    server.keepAliveTimeout = 5_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        const why = err.code === 'EADDRINUSE' ? 'the address is in use' : err.code === 'EADDRNOTAVAIL' ? 'no interface has that address' : err.code === 'EACCES' ? 'permission denied' : err.message;
        reject(new Error(`metrics_address ${address}: cannot listen: ${why} (${err.code ?? 'error'})`));
      });
      server.listen({ host: host || undefined, port }, () => resolve());
    });
    server.on('error', (err) => log.error('metrics listener error', { error: String(err) }));
    const a = server.address() as AddressInfo;
    const bound = a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
    log.info('serving metrics', { address: bound, paths: '/metrics,/healthz' });
    return new MetricsServer(server, bound);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

async function handle(req: IncomingMessage, res: ServerResponse, metrics: Metrics, health: HealthCheck): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  if (path !== '/metrics' && path !== '/healthz') {
    text(res, 404, 'not found: this listener serves /metrics and /healthz\n');
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    text(res, 405, `method ${req.method ?? ''} not allowed\n`);
    return;
  }
  if (path === '/metrics') {
    const body = await metrics.scrape();
    res.writeHead(200, { 'Content-Type': metrics.contentType, 'Content-Length': Buffer.byteLength(body) });
    res.end(req.method === 'HEAD' ? undefined : body);
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<{ ok: false; reason: string }>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false, reason: `the Status check did not answer within ${HEALTH_TIMEOUT_MS} ms` }), HEALTH_TIMEOUT_MS);
  });
  const h = await Promise.race([health().catch((err: unknown) => ({ ok: false as const, reason: `the Status check failed: ${String(err)}` })), timeout]);
  clearTimeout(timer);
  // "ok" and nothing else, as the Kubernetes components' /healthz answer.
  if (h.ok) text(res, 200, 'ok', req.method === 'HEAD');
  else text(res, 503, `unhealthy: ${h.reason}\n`, req.method === 'HEAD');
}

function text(res: ServerResponse, status: number, body: string, head = false): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
  res.end(head ? undefined : body);
}
