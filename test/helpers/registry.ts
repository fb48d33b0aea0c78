// Real OCI registries on loopback for the pull tests: Debian's docker-registry
// (distribution 2.8) without auth, with htpasswd basic auth, or with token
// auth behind a small token server here that signs real JWTs (RS256, x5c
// header) with an openssl-made key. Images are pushed with the Registry API
// v2 (blob upload POST/PUT, manifest PUT). A loopback HTTP proxy in front of
// a registry can slow, stall or cut blob downloads.
//
// Every process is started by us and killed by its PID in stop(); every temp
// dir is removed there, also when a test failed.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createSign, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { gzipSync } from 'node:zlib';
import { sha256 } from '../../hack/build-test-images.js';

export const REGISTRY_BIN = '/usr/bin/docker-registry';
export const HTPASSWD_BIN = '/usr/bin/htpasswd';

export function registryAvailable(): boolean {
  return existsSync(REGISTRY_BIN) && existsSync(HTPASSWD_BIN) && existsSync('/usr/bin/openssl');
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

// ---- images ------------------------------------------------------------------

export interface Blob {
  digest: string;
  data: Buffer;
}

export interface BuiltImage {
  blobs: Blob[];
  manifest: Buffer;
  manifestDigest: string;
  mediaType: string;
  configDigest: string;
  layerDigests: string[];
}

export interface BuildOptions {
  architecture?: string;
  /** Docker v2 schema 2 media types instead of OCI */
  docker?: boolean;
  /** gzip the layers (default true) */
  gzip?: boolean;
  /** compress the layers with Debian's zstd CLI instead (`application/vnd.oci.image.layer.v1.tar+zstd`; OCI only) */
  zstd?: boolean;
  config?: Record<string, unknown>;
  /** override a layer's media type (e.g. zstd) */
  layerMediaType?: string;
}

const EPOCH = '2024-01-01T00:00:00.000Z';

/** Config, layers and manifest of an image from uncompressed layer tars (bottom first). */
export function buildImage(layers: Buffer[], o: BuildOptions = {}): BuiltImage {
  if (o.zstd && o.docker) throw new Error('Docker v2 schema 2 has no zstd layer media type');
  const gz = !o.zstd && (o.gzip ?? true);
  const layerBlobs = layers.map((l) => (o.zstd ? zstdCompress(l) : gz ? gzipSync(l, { level: 1 }) : l));
  const config = Buffer.from(
    JSON.stringify({
      created: EPOCH,
      architecture: o.architecture ?? 'amd64',
      os: 'linux',
      config: o.config ?? { Cmd: ['sh'], Env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'] },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => sha256(l)) },
    }),
  );
  const layerType =
    o.layerMediaType ??
    (o.docker
      ? 'application/vnd.docker.image.rootfs.diff.tar.gzip'
      : o.zstd
        ? 'application/vnd.oci.image.layer.v1.tar+zstd'
        : gz
          ? 'application/vnd.oci.image.layer.v1.tar+gzip'
          : 'application/vnd.oci.image.layer.v1.tar');
  const mediaType = o.docker ? 'application/vnd.docker.distribution.manifest.v2+json' : 'application/vnd.oci.image.manifest.v1+json';
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType,
      config: {
        mediaType: o.docker ? 'application/vnd.docker.container.image.v1+json' : 'application/vnd.oci.image.config.v1+json',
        digest: sha256(config),
        size: config.length,
      },
      layers: layerBlobs.map((b) => ({ mediaType: layerType, digest: sha256(b), size: b.length })),
    }),
  );
  return {
    blobs: [...layerBlobs.map((data) => ({ digest: sha256(data), data })), { digest: sha256(config), data: config }],
    manifest,
    manifestDigest: sha256(manifest),
    mediaType,
    configDigest: sha256(config),
    layerDigests: layerBlobs.map((b) => sha256(b)),
  };
}

/** `zstd -q -c` of a layer tar (Debian's zstd; hack/deps.sh --test installs it). */
export function zstdCompress(data: Buffer): Buffer {
  try {
    return execFileSync('zstd', ['-q', '-c'], { input: data, maxBuffer: 1 << 28 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new Error("the zstd CLI is missing: install Debian's zstd (apt-get install -y zstd, or bash hack/deps.sh --test)");
    }
    throw e;
  }
}

/** An OCI index (or docker manifest list) over platform images. */
export function buildIndex(entries: { image: BuiltImage; os: string; architecture: string }[], docker = false): { raw: Buffer; digest: string; mediaType: string } {
  const mediaType = docker ? 'application/vnd.docker.distribution.manifest.list.v2+json' : 'application/vnd.oci.image.index.v1+json';
  const raw = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType,
      manifests: entries.map((e) => ({
        mediaType: e.image.mediaType,
        digest: e.image.manifestDigest,
        size: e.image.manifest.length,
        platform: { os: e.os, architecture: e.architecture },
      })),
    }),
  );
  return { raw, digest: sha256(raw), mediaType };
}

// ---- registries ----------------------------------------------------------------

export interface RegistryOptions {
  basic?: { users: Record<string, string> };
  token?: { users: Record<string, string>; refreshTokens?: Record<string, string> };
  /** listen on this port of 127.0.0.1 (default: a free one) */
  port?: number;
  /** keep the registry's storage here, and leave it there in stop() (default: inside the temp dir) */
  storageDir?: string;
}

export class TestRegistry {
  readonly dir = mkdtempSync(join(tmpdir(), 'cm-registry-'));
  port = 0;
  proc?: ChildProcess;
  tokenServer?: TokenServer;
  private output = '';
  private readonly users: Record<string, string> = {};

  private constructor(readonly opts: RegistryOptions) {}

  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  static async start(opts: RegistryOptions = {}): Promise<TestRegistry> {
    const r = new TestRegistry(opts);
    try {
      r.port = opts.port ?? (await freePort());
      let auth = '';
      if (opts.basic) {
        const lines = Object.entries(opts.basic.users).map(([u, p]) => execFileSync(HTPASSWD_BIN, ['-Bbn', u, p], { encoding: 'utf8' }).trim());
        writeFileSync(join(r.dir, 'htpasswd'), lines.join('\n') + '\n');
        auth = `auth:\n  htpasswd:\n    realm: test-registry\n    path: ${join(r.dir, 'htpasswd')}\n`;
        Object.assign(r.users, opts.basic.users);
      } else if (opts.token) {
        r.tokenServer = await TokenServer.start(r.dir, opts.token.users, opts.token.refreshTokens ?? {});
        auth = `auth:\n  token:\n    realm: ${r.tokenServer.realm}\n    service: test-registry\n    issuer: test-issuer\n    rootcertbundle: ${r.tokenServer.certPath}\n`;
        Object.assign(r.users, opts.token.users);
      }
      writeFileSync(
        join(r.dir, 'config.yml'),
        `version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${opts.storageDir ?? join(r.dir, 'data')}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${r.port}\n${auth}`,
      );
      await r.launch();
      return r;
    } catch (e) {
      await r.stop();
      throw e;
    }
  }

  /** Start (again, e.g. after kill()) on the same port and data. */
  async launch(): Promise<void> {
    const proc = spawn(REGISTRY_BIN, ['serve', join(this.dir, 'config.yml')], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    proc.stdout!.on('data', (d: Buffer) => (this.output += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (this.output += d.toString()));
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`docker-registry exited (${proc.exitCode}): ${this.output}`);
      const status = await httpStatus(`http://${this.host}/v2/`).catch(() => 0);
      if (status === 200 || status === 401) return;
      if (Date.now() > deadline) throw new Error(`docker-registry did not answer on ${this.host}: ${this.output}`);
      await sleep(30);
    }
  }

  logs(): string {
    return this.output;
  }

  /** SIGKILL the registry process (ours, by PID). */
  async kill(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    process.kill(p.pid!, 'SIGKILL');
    await exited;
  }

  async stop(): Promise<void> {
    await this.kill().catch(() => {});
    await this.tokenServer?.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Authorization header for pushing as `user` (push+pull scope). */
  async pushAuth(repo: string): Promise<string | undefined> {
    const [user, pass] = Object.entries(this.users)[0] ?? [];
    if (!user) return undefined;
    if (this.opts.basic) return `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
    return `Bearer ${this.tokenServer!.issue(user, [{ type: 'repository', name: repo, actions: ['pull', 'push'] }])}`;
  }

  async pushBlob(repo: string, blob: Blob): Promise<void> {
    const authz = await this.pushAuth(repo);
    const h: Record<string, string> = authz ? { Authorization: authz } : {};
    const head = await request('HEAD', `http://${this.host}/v2/${repo}/blobs/${blob.digest}`, h);
    if (head.status === 200) return;
    const start = await request('POST', `http://${this.host}/v2/${repo}/blobs/uploads/`, h);
    if (start.status !== 202) throw new Error(`upload start for ${repo}: HTTP ${start.status} ${start.body.toString()}`);
    const loc = new URL(String(start.headers.location), `http://${this.host}/`);
    loc.searchParams.set('digest', blob.digest);
    const put = await request('PUT', loc.href, { ...h, 'Content-Type': 'application/octet-stream' }, blob.data);
    if (put.status !== 201) throw new Error(`upload of ${blob.digest}: HTTP ${put.status} ${put.body.toString()}`);
  }

  async pushManifest(repo: string, ref: string, raw: Buffer, mediaType: string): Promise<void> {
    const authz = await this.pushAuth(repo);
    const h: Record<string, string> = { 'Content-Type': mediaType, ...(authz ? { Authorization: authz } : {}) };
    const put = await request('PUT', `http://${this.host}/v2/${repo}/manifests/${ref}`, h, raw);
    if (put.status !== 201) throw new Error(`manifest ${repo}:${ref}: HTTP ${put.status} ${put.body.toString()}`);
  }

  /** Push an image's blobs and its manifest under `tag` (and always by digest). */
  async pushImage(repo: string, tag: string | undefined, img: BuiltImage): Promise<void> {
    for (const b of img.blobs) await this.pushBlob(repo, b);
    await this.pushManifest(repo, tag ?? img.manifestDigest, img.manifest, img.mediaType);
  }

  async pushIndex(repo: string, tag: string, images: BuiltImage[], index: { raw: Buffer; mediaType: string }): Promise<void> {
    for (const img of images) await this.pushImage(repo, undefined, img);
    await this.pushManifest(repo, tag, index.raw, index.mediaType);
  }
}

// ---- token server ----------------------------------------------------------------

interface Access {
  type: string;
  name: string;
  actions: string[];
}

/** Issues distribution-compatible JWTs (RS256, x5c) for known users; 401 for anyone else. */
export class TokenServer {
  readonly keyPath: string;
  readonly certPath: string;
  private server?: http.Server;
  port = 0;
  private key = '';
  private certDer = '';
  /** requests seen (for tests) */
  readonly seen: { user?: string; scope: string[]; grant?: string }[] = [];

  private constructor(
    dir: string,
    private readonly users: Record<string, string>,
    private readonly refreshTokens: Record<string, string>,
  ) {
    this.keyPath = join(dir, 'token.key');
    this.certPath = join(dir, 'token.pem');
  }

  get realm(): string {
    return `http://127.0.0.1:${this.port}/token`;
  }

  static async start(dir: string, users: Record<string, string>, refreshTokens: Record<string, string>): Promise<TokenServer> {
    const t = new TokenServer(dir, users, refreshTokens);
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', t.keyPath, '-out', t.certPath, '-days', '2', '-subj', '/CN=cri-mesos test token issuer'], {
      stdio: 'ignore',
    });
    t.key = readFileSync(t.keyPath, 'utf8');
    t.certDer = readFileSync(t.certPath, 'utf8').replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
    t.server = http.createServer((req, res) => t.handle(req, res));
    await new Promise<void>((r) => t.server!.listen(0, '127.0.0.1', () => r()));
    t.port = (t.server.address() as AddressInfo).port;
    return t;
  }

  issue(user: string, access: Access[]): string {
    const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'RS256', x5c: [this.certDer] };
    const claims = { iss: 'test-issuer', sub: user, aud: 'test-registry', exp: now + 300, nbf: now - 10, iat: now, jti: randomBytes(8).toString('hex'), access };
    const input = `${b64(header)}.${b64(claims)}`;
    const sig = createSign('RSA-SHA256').update(input).sign(this.key).toString('base64url');
    return `${input}.${sig}`;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      let user: string | undefined;
      let scopes = url.searchParams.getAll('scope');
      let grant: string | undefined;
      if (req.method === 'POST') {
        const form = new URLSearchParams(Buffer.concat(chunks).toString());
        grant = form.get('grant_type') ?? undefined;
        scopes = (form.get('scope') ?? '').split(' ').filter(Boolean);
        if (grant === 'refresh_token') user = this.refreshTokens[form.get('refresh_token') ?? ''];
        else if (grant === 'password' && this.users[form.get('username') ?? ''] === form.get('password')) user = form.get('username')!;
      } else {
        const m = /^Basic (.+)$/.exec(req.headers.authorization ?? '');
        if (m) {
          const dec = Buffer.from(m[1]!, 'base64').toString();
          const i = dec.indexOf(':');
          const u = dec.slice(0, i);
          if (i > 0 && this.users[u] === dec.slice(i + 1)) user = u;
        }
      }
      this.seen.push({ user, scope: scopes, grant });
      if (!user) {
        res.writeHead(401, { 'Content-Type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'bad credentials' }] }));
        return;
      }
      const access: Access[] = scopes.map((s) => {
        const [type, name, actions] = s.split(':');
        return { type: type!, name: name!, actions: (actions ?? '').split(',').filter(Boolean) };
      });
      const token = this.issue(user, access);
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(
        JSON.stringify(grant ? { access_token: token, expires_in: 300 } : { token, expires_in: 300, issued_at: new Date().toISOString() }),
      );
    });
  }

  async stop(): Promise<void> {
    if (this.server) await new Promise<void>((r) => this.server!.close(() => r()));
    this.server?.closeAllConnections?.();
  }
}

// ---- a proxy that misbehaves on blob downloads ------------------------------------

export type ProxyMode =
  | { kind: 'pass' }
  /** send `after` bytes of a blob body, then nothing (connection stays open) */
  | { kind: 'stall'; after: number }
  /** send `after` bytes of a blob body, then reset the connection */
  | { kind: 'cut'; after: number }
  /** send blob bodies in `chunk`-byte pieces every `intervalMs` */
  | { kind: 'slow'; chunk: number; intervalMs: number };

export class BlobProxy {
  mode: ProxyMode = { kind: 'pass' };
  port = 0;
  /** bytes of blob bodies sent to clients */
  blobBytes = 0;
  /** resolves the first time a blob body has reached the stall/cut point */
  private hitResolve?: () => void;
  hit = new Promise<void>((r) => (this.hitResolve = r));
  private server?: http.Server;
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();

  private constructor(readonly target: string) {}

  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  static async start(target: string): Promise<BlobProxy> {
    const p = new BlobProxy(target);
    p.server = http.createServer((req, res) => p.handle(req, res));
    p.server.on('connection', (s) => {
      p.sockets.add(s);
      s.on('close', () => p.sockets.delete(s));
    });
    await new Promise<void>((r) => p.server!.listen(0, '127.0.0.1', () => r()));
    p.port = (p.server.address() as AddressInfo).port;
    return p;
  }

  resetHit(): void {
    this.hit = new Promise<void>((r) => (this.hitResolve = r));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const up = http.request(
      { host: '127.0.0.1', port: Number(this.target.split(':')[1]), method: req.method, path: req.url, headers: { ...req.headers, host: this.target } },
      (ur) => {
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        const isBlob = /\/blobs\/sha256:/.test(req.url ?? '') && req.method === 'GET' && ur.statusCode === 200;
        const mode = this.mode;
        if (!isBlob || mode.kind === 'pass') {
          ur.on('data', (c: Buffer) => {
            if (isBlob) this.blobBytes += c.length;
          });
          ur.pipe(res);
          return;
        }
        let sent = 0;
        const queue: Buffer[] = [];
        let ended = false;
        let stopped = false;
        const pump = () => {
          if (stopped) return;
          if (mode.kind === 'slow') {
            // one piece per tick
            let piece = Buffer.alloc(0);
            while (piece.length < mode.chunk && queue.length) {
              const head = queue[0]!;
              const take = Math.min(head.length, mode.chunk - piece.length);
              piece = Buffer.concat([piece, head.subarray(0, take)]);
              if (take === head.length) queue.shift();
              else queue[0] = head.subarray(take);
            }
            if (piece.length) {
              res.write(piece);
              sent += piece.length;
              this.blobBytes += piece.length;
            }
            if (queue.length === 0 && ended) res.end();
            else {
              const t = setTimeout(pump, mode.intervalMs);
              this.timers.add(t);
            }
            return;
          }
          while (queue.length) {
            const head = queue.shift()!;
            const room = mode.after - sent;
            if (head.length <= room) {
              res.write(head);
              sent += head.length;
              this.blobBytes += head.length;
              continue;
            }
            if (room > 0) {
              res.write(head.subarray(0, room));
              sent += room;
              this.blobBytes += room;
            }
            stopped = true;
            this.hitResolve?.();
            if (mode.kind === 'cut') res.socket?.destroy();
            // stall: keep everything open; the upstream keeps draining into nowhere
            return;
          }
          if (ended) res.end();
        };
        ur.on('data', (c: Buffer) => {
          queue.push(c);
          if (mode.kind !== 'slow') pump();
        });
        ur.on('end', () => {
          ended = true;
          if (mode.kind !== 'slow') pump();
        });
        ur.on('error', () => res.socket?.destroy());
        ur.on('aborted', () => res.socket?.destroy());
        if (mode.kind === 'slow') pump();
      },
    );
    up.on('error', () => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.socket?.destroy();
    });
    req.pipe(up);
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    for (const s of this.sockets) s.destroy();
    if (this.server) await new Promise<void>((r) => this.server!.close(() => r()));
  }
}

// ---- tiny HTTP -----------------------------------------------------------------

function request(method: string, url: string, headers: Record<string, string> = {}, body?: Buffer): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers: { ...headers, ...(body ? { 'Content-Length': String(body.length) } : {}) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

function httpStatus(url: string): Promise<number> {
  return request('GET', url).then((r) => r.status);
}

export { request as httpRequest };
