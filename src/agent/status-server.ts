// The agent's read-only HTTP endpoint (the kubelet's read-only port, 10255): GET /pods is the
// pods as a v1 PodList with their status, GET /healthz is "ok". GET /manifests (the agent's own)
// lists each manifest file with its pod or the reasons it was refused.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Pod } from './types.js';

export { DEFAULT_STATUS_ADDRESS } from './flag-defaults.js';

export interface ManifestReport {
  file: string;
  pod?: string;
  uid?: string;
  errors?: { field: string; reason: string }[];
}

export interface StatusSource {
  pods(): Pod[];
  manifests(): ManifestReport[];
}

/** "127.0.0.1:10255", "[::1]:10255", ":10255" → host and port. */
export function parseAddress(addr: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(addr);
  if (!m) throw new Error(`--status-address must be host:port (got ${JSON.stringify(addr)})`);
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`--status-address: port ${port} is out of range`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

export class StatusServer {
  private readonly server: Server;

  constructor(private readonly source: StatusSource) {
    this.server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { 'Content-Type': 'text/plain', Allow: 'GET' }).end('method not allowed\n');
        return;
      }
      try {
        if (path === '/healthz') {
          res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' }).end('ok');
        } else if (path === '/pods' || path === '/pods/') {
          const body = { kind: 'PodList', apiVersion: 'v1', metadata: {}, items: this.source.pods() };
          res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
        } else if (path === '/manifests') {
          res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ items: this.source.manifests() }));
        } else {
          res.writeHead(404, { 'Content-Type': 'text/plain' }).end('404 page not found\n');
        }
      } catch (err) {
        res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`${(err as Error).message}\n`);
      }
    });
  }

  listen(address: string): Promise<AddressInfo> {
    const { host, port } = parseAddress(address);
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
