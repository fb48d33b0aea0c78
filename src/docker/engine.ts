// A small Docker Engine API client (API 1.41, Docker 20.10) over the Engine's unix socket, with
// Node's own http. Only what the Docker containerizer and its executor use; README says why this
// is not dockerode.
import { request as httpRequest, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { Code, StatusError } from '../errors.js';

export const API_VERSION = 'v1.41';

export class EngineError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'EngineError';
  }
}

/** unix:///path or a bare path → the socket path. Only unix sockets: the Engine's TCP API is unauthenticated. */
export function socketPath(host: string): string {
  if (host.startsWith('unix://')) return host.slice('unix://'.length);
  if (host.startsWith('/')) return host;
  throw new Error(`docker_host: "${host}" is not unix:///path (only the Engine's unix socket is supported)`);
}

export interface RequestOptions {
  body?: unknown;
  /** raw body (a tar) instead of JSON */
  raw?: Buffer;
  headers?: Record<string, string>;
  timeoutMs?: number;
}

export interface ContainerInspect {
  Id: string;
  Name: string;
  Created: string;
  State: { Status: string; Running: boolean; Paused: boolean; OOMKilled: boolean; Dead: boolean; Pid: number; ExitCode: number; Error: string; StartedAt: string; FinishedAt: string };
  Config: { Labels: Record<string, string> | null; Hostname: string; Image: string; Tty?: boolean };
  HostConfig: Record<string, unknown>;
  Image: string;
  GraphDriver?: { Name: string; Data?: { UpperDir?: string } | null };
}

export interface ContainerSummary {
  Id: string;
  Names: string[];
  Labels: Record<string, string>;
  State: string;
}

/** The Engine's AuthConfig (the X-Registry-Auth JSON). */
export interface EngineAuth {
  username?: string;
  password?: string;
  serveraddress?: string;
  identitytoken?: string;
  registrytoken?: string;
}

export interface EngineRegistryConfig {
  InsecureRegistryCIDRs?: string[];
  IndexConfigs?: Record<string, { Secure?: boolean }>;
}

export class Engine {
  readonly socket: string;

  constructor(host: string) {
    this.socket = socketPath(host);
  }

  private send(method: string, path: string, opts: RequestOptions = {}): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const data = opts.raw ?? (opts.body !== undefined ? Buffer.from(JSON.stringify(opts.body)) : undefined);
      const req = httpRequest(
        {
          socketPath: this.socket,
          // A connection of its own: pooled sockets carry the agent's idle timeout, which cut long polls (wait).
          agent: false,
          method,
          path: `/${API_VERSION}${path}`,
          headers: {
            Host: 'docker',
            ...(data ? { 'Content-Type': opts.raw ? 'application/x-tar' : 'application/json', 'Content-Length': String(data.length) } : {}),
            ...opts.headers,
          },
          ...(opts.timeoutMs ? { timeout: opts.timeoutMs } : {}),
        },
        resolve,
      );
      req.on('error', (err) => reject(new StatusError(Code.UNAVAILABLE, `docker engine at ${this.socket}: ${err.message}`)));
      req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
      req.end(data);
    });
  }

  /** A request whose answer is read whole; errors (status >= 400) throw EngineError with the Engine's message. */
  async call<T = unknown>(method: string, path: string, opts: RequestOptions = {}): Promise<{ status: number; body: T }> {
    const res = await this.send(method, path, opts);
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const status = res.statusCode ?? 0;
    let body: unknown = text;
    if ((res.headers['content-type'] ?? '').includes('json') && text) {
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
    }
    if (status >= 400) {
      const msg = typeof body === 'object' && body && 'message' in body ? String((body as { message: unknown }).message) : text.trim();
      throw new EngineError(status, `docker ${method} ${path.split('?')[0]}: ${msg} (HTTP ${status})`);
    }
    return { status, body: body as T };
  }

  /**
   * A request whose answer is a stream of JSON objects (pull, load, import); resolves at its end,
   * throws the first `error` it carries.
   */
  async progress(method: string, path: string, opts: RequestOptions = {}): Promise<unknown[]> {
    const res = await this.send(method, path, opts);
    let text = '';
    for await (const c of res) text += (c as Buffer).toString('utf8');
    if ((res.statusCode ?? 0) >= 400) {
      let msg = text.trim();
      try {
        msg = (JSON.parse(text) as { message: string }).message ?? msg;
      } catch {
        // plain text
      }
      throw new EngineError(res.statusCode ?? 0, `docker ${method} ${path.split('?')[0]}: ${msg} (HTTP ${res.statusCode})`);
    }
    const items = text
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => {
        try {
          return JSON.parse(l) as { error?: string; errorDetail?: { message?: string } };
        } catch {
          return { error: `unreadable progress line: ${l}` };
        }
      });
    const bad = items.find((i) => i.error);
    if (bad) throw new EngineError(500, `docker ${method} ${path.split('?')[0]}: ${bad.errorDetail?.message ?? bad.error}`);
    return items;
  }

  async ping(): Promise<void> {
    await this.call('GET', '/_ping', { timeoutMs: 5000 });
  }

  async inspectContainer(id: string): Promise<ContainerInspect | undefined> {
    try {
      return (await this.call<ContainerInspect>('GET', `/containers/${encodeURIComponent(id)}/json`)).body;
    } catch (err) {
      if (err instanceof EngineError && err.status === 404) return undefined;
      throw err;
    }
  }

  async inspectImage(ref: string): Promise<{ Id: string; Config?: { StopSignal?: string; User?: string } } | undefined> {
    try {
      return (await this.call<{ Id: string }>('GET', `/images/${encodeURIComponent(ref)}/json`)).body;
    } catch (err) {
      if (err instanceof EngineError && err.status === 404) return undefined;
      throw err;
    }
  }

  /** POST /images/create?fromImage: a pull; `auth` is the X-Registry-Auth object. */
  /** docker pull repo:tag, with the credentials as X-Registry-Auth. */
  async pull(repo: string, tag: string, auth?: EngineAuth): Promise<void> {
    const q = new URLSearchParams({ fromImage: repo, tag });
    // URL-safe base64 *with* padding: Go's base64.URLEncoding (the Engine's decoder) wants it, and
    // an Engine that cannot decode the header pulls anonymously.
    const headers = auth ? { 'X-Registry-Auth': Buffer.from(JSON.stringify(auth)).toString('base64').replace(/\+/g, '-').replace(/\//g, '_') } : undefined;
    await this.progress('POST', `/images/create?${q}`, { ...(headers ? { headers } : {}) });
  }

  /** The Engine's registry settings (GET /info): which hosts it reaches over plain HTTP. */
  async registryConfig(): Promise<EngineRegistryConfig> {
    const { body } = await this.call<{ RegistryConfig?: EngineRegistryConfig }>('GET', '/info');
    return body.RegistryConfig ?? {};
  }

  async tag(image: string, repo: string, tag: string): Promise<void> {
    await this.call('POST', `/images/${encodeURIComponent(image)}/tag?${new URLSearchParams({ repo, tag })}`);
  }

  /** docker import: a rootfs tar as an image repo:tag. */
  async importRootfs(tar: Buffer, repo: string, tag: string): Promise<void> {
    await this.progress('POST', `/images/create?${new URLSearchParams({ fromSrc: '-', repo, tag })}`, { raw: tar });
  }

  /** docker load: a docker-archive tar. */
  async load(tar: Buffer): Promise<void> {
    await this.progress('POST', '/images/load?quiet=1', { raw: tar });
  }

  /** docker load of a streamed docker-archive (sent chunked). */
  async loadStream(tar: Readable): Promise<void> {
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = httpRequest(
        { socketPath: this.socket, agent: false, method: 'POST', path: `/${API_VERSION}/images/load?quiet=1`, headers: { Host: 'docker', 'Content-Type': 'application/x-tar' } },
        resolve,
      );
      req.on('error', (err) => reject(new StatusError(Code.UNAVAILABLE, `docker engine at ${this.socket}: ${err.message}`)));
      tar.on('error', (err) => req.destroy(err));
      tar.pipe(req);
    });
    let text = '';
    for await (const c of res) text += (c as Buffer).toString('utf8');
    const bad = text.split('\n').find((l) => l.includes('"error"'));
    if ((res.statusCode ?? 0) >= 400 || bad) throw new EngineError(res.statusCode ?? 500, `docker load: ${(bad ?? text).trim()} (HTTP ${res.statusCode})`);
  }

  async create(name: string, body: unknown): Promise<string> {
    const r = await this.call<{ Id: string; Warnings?: string[] }>('POST', `/containers/create?${new URLSearchParams({ name })}`, { body });
    return r.body.Id;
  }

  async start(id: string): Promise<void> {
    await this.call('POST', `/containers/${id}/start`);
  }

  /** false: the container is not running (or gone). */
  async kill(id: string, signal: number): Promise<boolean> {
    try {
      await this.call('POST', `/containers/${id}/kill?signal=${signal}`);
      return true;
    } catch (err) {
      if (err instanceof EngineError && (err.status === 409 || err.status === 404)) return false;
      throw err;
    }
  }

  async remove(id: string): Promise<void> {
    try {
      // v: its anonymous volumes go with it.
      await this.call('DELETE', `/containers/${id}?force=1&v=1`);
    } catch (err) {
      if (err instanceof EngineError && err.status === 404) return;
      throw err;
    }
  }

  /** Blocks until the container is not running; its exit status. */
  async wait(id: string, condition = 'not-running'): Promise<number> {
    const r = await this.call<{ StatusCode: number }>('POST', `/containers/${id}/wait?condition=${condition}`);
    return r.body.StatusCode;
  }

  async list(labels: string[]): Promise<ContainerSummary[]> {
    const filters = JSON.stringify({ label: labels });
    return (await this.call<ContainerSummary[]>('GET', `/containers/json?all=1&filters=${encodeURIComponent(filters)}`)).body;
  }

  async update(id: string, body: Record<string, unknown>): Promise<void> {
    await this.call('POST', `/containers/${id}/update`, { body });
  }

  async stats(id: string): Promise<DockerStats> {
    return (await this.call<DockerStats>('GET', `/containers/${id}/stats?stream=false`)).body;
  }

  /** A hijacked connection (attach, exec start): the raw stream after the 101. */
  hijack(path: string, body?: unknown): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const data = body !== undefined ? Buffer.from(JSON.stringify(body)) : undefined;
      const req = httpRequest({
        socketPath: this.socket,
        agent: false,
        method: 'POST',
        path: `/${API_VERSION}${path}`,
        headers: {
          Host: 'docker',
          Connection: 'Upgrade',
          Upgrade: 'tcp',
          ...(data ? { 'Content-Type': 'application/json', 'Content-Length': String(data.length) } : {}),
        },
      });
      req.on('upgrade', (_res, socket, head) => {
        if (head.length) socket.unshift(head);
        resolve(socket);
      });
      req.on('response', (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => reject(new EngineError(res.statusCode ?? 0, `docker POST ${path.split('?')[0]}: ${text.trim()} (HTTP ${res.statusCode})`)));
      });
      req.on('error', (err) => reject(new StatusError(Code.UNAVAILABLE, `docker engine at ${this.socket}: ${err.message}`)));
      req.end(data);
    });
  }
}

/** The Engine's stats (cgroup v1 fields, API 1.41). */
export interface DockerStats {
  read: string;
  cpu_stats?: { cpu_usage?: { total_usage?: number; usage_in_usermode?: number; usage_in_kernelmode?: number }; throttling_data?: { periods?: number; throttled_periods?: number; throttled_time?: number } };
  memory_stats?: { usage?: number; limit?: number; stats?: Record<string, number> };
  pids_stats?: { current?: number };
}

/**
 * Splits the Engine's multiplexed stream (no tty): frames of [stream, 0, 0, 0, size (BE32)] +
 * payload, stream 1 = stdout, 2 = stderr.
 */
export class Demux {
  private buf: Buffer = Buffer.alloc(0);

  constructor(private readonly onFrame: (stream: 1 | 2, data: Buffer) => void) {}

  push(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    while (this.buf.length >= 8) {
      const size = this.buf.readUInt32BE(4);
      if (this.buf.length < 8 + size) break;
      const kind = this.buf[0] === 2 ? 2 : 1;
      this.onFrame(kind, this.buf.subarray(8, 8 + size));
      this.buf = this.buf.subarray(8 + size);
    }
  }
}

/** RFC 3339 with ns ("2026-11-30T12:00:00.123456789Z") → ns since the epoch as a decimal string; '0' for Docker's zero time. */
export function rfc3339Nanos(text: string | undefined): string {
  if (!text || text.startsWith('0001-')) return '0';
  const m = /^(.*?)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(text);
  if (!m) return '0';
  const secs = Date.parse(`${m[1]}${m[3]}`);
  if (Number.isNaN(secs)) return '0';
  const frac = (m[2] ?? '').padEnd(9, '0').slice(0, 9);
  return (BigInt(secs) * 1_000_000n + BigInt(frac)).toString();
}
