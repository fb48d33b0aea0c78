// A client for the OCI distribution API (Registry HTTP API v2): endpoints
// (mirrors first, then the registry itself), HTTPS with a plain-HTTP
// fallback for insecure hosts, bearer-token and basic auth, redirects, and a
// no-progress watchdog on every request. Uses node:http/https directly: the
// TLS verification switch for insecure hosts is per request there.
import { Code, StatusError } from '../errors.js';
import { createHash } from 'node:crypto';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import type { RegistriesConfig } from '../config.js';
import { DEFAULT_DOMAIN } from './reference.js';

/** Where Docker Hub's API lives (`docker.io` is only its name). */
export const DOCKER_HUB_API = 'registry-1.docker.io';

export const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

export type RegistryErrorKind = 'unauthenticated' | 'denied' | 'not-found' | 'unavailable' | 'stalled' | 'invalid' | 'unsupported';

const KIND_STATUS: Record<RegistryErrorKind, Code> = {
  unauthenticated: Code.UNAUTHENTICATED,
  denied: Code.PERMISSION_DENIED,
  'not-found': Code.NOT_FOUND,
  unavailable: Code.UNAVAILABLE,
  stalled: Code.DEADLINE_EXCEEDED,
  invalid: Code.FAILED_PRECONDITION,
  unsupported: Code.UNIMPLEMENTED,
};

export class RegistryError extends StatusError {
  constructor(
    readonly kind: RegistryErrorKind,
    message: string,
  ) {
    super(KIND_STATUS[kind], message);
    this.name = 'RegistryError';
  }
}

/** Credentials as CRI's AuthConfig carries them. */
export interface Credentials {
  username?: string;
  password?: string;
  /** base64 of `user:password` */
  auth?: string;
  /** the host these credentials are for (kubelet fills it in) */
  serverAddress?: string;
  /** an OAuth2 refresh token, exchanged at the token server */
  identityToken?: string;
  /** a bearer token sent to the registry as is */
  registryToken?: string;
}

export interface Endpoint {
  /** host[:port] as the registry is reached */
  host: string;
  /** path prefix before /v2 (mirrors may have one), without a trailing slash */
  prefix: string;
  /** schemes to try, in order */
  schemes: ('https' | 'http')[];
  /** skip TLS verification */
  insecureTls: boolean;
  mirror: boolean;
  /** display name: the URL of the endpoint */
  label: string;
}

export function isLoopbackHost(hostPort: string): boolean {
  let h = hostPort;
  if (h.startsWith('[')) h = h.slice(1, h.indexOf(']'));
  else if (h.includes(':')) h = h.slice(0, h.lastIndexOf(':'));
  h = h.toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1';
  return false;
}

/** Mirrors (in config order), then the registry itself. */
export function endpointsFor(domain: string, cfg: RegistriesConfig): Endpoint[] {
  const out: Endpoint[] = [];
  for (const m of cfg.mirrors[domain] ?? []) {
    const u = new URL(m);
    const host = u.host;
    const scheme = u.protocol === 'http:' ? 'http' : 'https';
    const insecure = isInsecure(host, cfg);
    out.push({
      host,
      prefix: u.pathname.replace(/\/+$/, '').replace(/\/v2$/, ''),
      schemes: scheme === 'http' ? ['http'] : insecure ? ['https', 'http'] : ['https'],
      insecureTls: insecure,
      mirror: true,
      label: `${scheme}://${host}${u.pathname.replace(/\/+$/, '')}`,
    });
  }
  if (out.length > 0 && !cfg.fallbackToUpstream) return out;
  const host = domain === DEFAULT_DOMAIN ? DOCKER_HUB_API : domain;
  const insecure = isInsecure(domain, cfg) || isInsecure(host, cfg);
  out.push({ host, prefix: '', schemes: insecure ? ['https', 'http'] : ['https'], insecureTls: insecure, mirror: false, label: domain });
  return out;
}

function isInsecure(host: string, cfg: RegistriesConfig): boolean {
  if (isLoopbackHost(host)) return true;
  const bare = host.replace(/:\d+$/, '');
  return cfg.insecure.some((h) => h === host || h === bare);
}

/** A stall timer: fires `onStall` when `kick` has not been called for `ms`. */
export class Watchdog {
  private timer?: NodeJS.Timeout;
  /** Set when it fired. */
  error?: Error;
  constructor(
    private readonly ms: number,
    private readonly makeError: () => Error,
    private readonly onStall: (e: Error) => void,
  ) {
    this.kick();
  }
  private fire = () => {
    this.error = this.makeError();
    this.onStall(this.error);
  };
  kick(): void {
    if (this.timer) this.timer.refresh();
    else this.timer = setTimeout(this.fire, this.ms);
  }
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
  }
}

interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parse `Bearer realm="…",service="…",scope="…"` (first challenge only; that is what registries send). */
export function parseChallenge(header: string | undefined): Challenge | undefined {
  if (!header) return undefined;
  const m = /^\s*([A-Za-z][\w-]*)\s*(.*)$/s.exec(header);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  const re = /([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?\s*/g;
  let p: RegExpExecArray | null;
  while ((p = re.exec(m[2]!))) {
    const key = p[1]!.toLowerCase();
    if (key in params) break; // start of a second challenge
    params[key] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3]!;
  }
  return { scheme: m[1]!.toLowerCase(), params };
}

export function basicCredentials(c: Credentials | undefined): { username: string; password: string } | undefined {
  if (!c) return undefined;
  if (c.username || c.password) return { username: c.username ?? '', password: c.password ?? '' };
  if (c.auth) {
    const dec = Buffer.from(c.auth, 'base64').toString('utf8');
    const i = dec.indexOf(':');
    if (i < 0) throw new RegistryError('invalid', 'auth config: "auth" must be base64 of user:password');
    return { username: dec.slice(0, i), password: dec.slice(i + 1) };
  }
  return undefined;
}

export function credentialsKey(c: Credentials | undefined): string {
  if (!c) return '';
  return createHash('sha256').update(JSON.stringify([c.username, c.password, c.auth, c.identityToken, c.registryToken])).digest('hex').slice(0, 16);
}

export interface RequestOptions {
  method?: 'GET' | 'HEAD';
  accept?: string;
  /** repository path, for the token scope */
  repo: string;
  /** no-progress timeout for headers and each body chunk */
  stallMs: number;
}

export interface Response {
  status: number;
  headers: IncomingMessage['headers'];
  body: IncomingMessage;
  /** kick on every body chunk; stop when done */
  watchdog: Watchdog;
  /** the URL that answered (after redirects) */
  url: string;
}

const agents = {
  http: new http.Agent({ keepAlive: true, maxSockets: 16 }),
  https: new https.Agent({ keepAlive: true, maxSockets: 16 }),
  httpsInsecure: new https.Agent({ keepAlive: true, maxSockets: 16, rejectUnauthorized: false }),
};

interface CachedToken {
  header: string;
  expires: number;
}

/**
 * One registry session: a domain, its endpoints, credentials, and the auth
 * state learned on the way (tokens are cached per endpoint host and scope).
 */
export class RegistryClient {
  private static tokens = new Map<string, CachedToken>();
  private static schemeOf = new Map<string, 'http' | 'https'>();
  /** per endpoint host: authorization header to send (basic), or how to get one (bearer) */
  private challenges = new Map<string, Challenge>();

  constructor(
    readonly domain: string,
    readonly creds: Credentials | undefined,
  ) {}

  /** Credentials apply to the reference's registry, and to a mirror only when server_address names it. */
  private credsFor(ep: Endpoint): Credentials | undefined {
    if (!this.creds) return undefined;
    if (!ep.mirror) return this.creds;
    const sa = (this.creds.serverAddress ?? '').replace(/^https?:\/\//, '').replace(/\/.*$/, '');
    return sa && sa === ep.host ? this.creds : undefined;
  }

  /** GET/HEAD `<endpoint>/v2/<path>`, with auth, redirects and the HTTP fallback. Non-2xx answers are returned, not thrown, except 401. */
  async request(ep: Endpoint, path: string, opts: RequestOptions): Promise<Response> {
    const known = RegistryClient.schemeOf.get(ep.host);
    const schemes = known && ep.schemes.includes(known) ? [known] : ep.schemes;
    let lastErr: unknown;
    for (const scheme of schemes) {
      try {
        const res = await this.requestAuthed(ep, scheme, `${ep.prefix}/v2/${path}`, opts);
        RegistryClient.schemeOf.set(ep.host, scheme);
        return res;
      } catch (e) {
        lastErr = e;
        // Fall back to http only when https did not even get an HTTP answer.
        if (e instanceof RegistryError && e.kind !== 'unavailable') throw e;
      }
    }
    throw lastErr;
  }

  private async requestAuthed(ep: Endpoint, scheme: 'http' | 'https', path: string, opts: RequestOptions): Promise<Response> {
    const scope = `repository:${opts.repo}:pull`;
    let authz = await this.authorization(ep, scheme, scope, opts);
    for (let attempt = 0; ; attempt++) {
      const res = await send(ep, `${scheme}://${ep.host}${path}`, { ...opts, authorization: authz });
      if (res.status !== 401) return res;
      res.body.resume();
      res.watchdog.stop();
      const ch = parseChallenge(headerString(res.headers['www-authenticate']));
      const creds = this.credsFor(ep);
      if (attempt > 0 || !ch || (ch.scheme !== 'bearer' && ch.scheme !== 'basic')) {
        throw unauthenticated(ep, creds, authz !== undefined, ch);
      }
      this.challenges.set(ep.host, ch);
      RegistryClient.tokens.delete(this.tokenKey(ep, scope));
      authz = await this.authorization(ep, scheme, scope, opts);
      if (authz === undefined) throw unauthenticated(ep, creds, false, ch);
    }
  }

  private tokenKey(ep: Endpoint, scope: string): string {
    return `${ep.host}|${scope}|${credentialsKey(this.credsFor(ep))}`;
  }

  /** The Authorization header for a request, from what the last challenge asked for. */
  private async authorization(ep: Endpoint, scheme: 'http' | 'https', scope: string, opts: RequestOptions): Promise<string | undefined> {
    const ch = this.challenges.get(ep.host);
    const creds = this.credsFor(ep);
    if (!ch) {
      // A cached token from an earlier pull spares the 401 round trip.
      const t = RegistryClient.tokens.get(this.tokenKey(ep, scope));
      return t && t.expires > Date.now() ? t.header : undefined;
    }
    if (ch.scheme === 'basic') {
      const b = basicCredentials(creds);
      return b ? `Basic ${Buffer.from(`${b.username}:${b.password}`).toString('base64')}` : undefined;
    }
    if (creds?.registryToken) return `Bearer ${creds.registryToken}`;
    const key = this.tokenKey(ep, scope);
    const cached = RegistryClient.tokens.get(key);
    if (cached && cached.expires > Date.now()) return cached.header;
    const token = await this.fetchToken(ep, scheme, ch, scope, creds, opts.stallMs);
    RegistryClient.tokens.set(key, token);
    return token.header;
  }

  private async fetchToken(ep: Endpoint, scheme: string, ch: Challenge, scope: string, creds: Credentials | undefined, stallMs: number): Promise<CachedToken> {
    const realm = ch.params.realm;
    if (!realm) throw new RegistryError('unavailable', `registry ${ep.label}: bearer challenge without a realm`);
    let url: URL;
    try {
      url = new URL(realm, `${scheme}://${ep.host}/`);
    } catch {
      throw new RegistryError('unavailable', `registry ${ep.label}: bad token realm ${JSON.stringify(realm)}`);
    }
    if (url.protocol === 'http:' && !ep.schemes.includes('http') && !isLoopbackHost(url.host)) {
      throw new RegistryError('unavailable', `registry ${ep.label}: refusing to send credentials to the plain-HTTP token realm ${realm}`);
    }
    const scopes = [...new Set([scope, ...(ch.params.scope ? [ch.params.scope] : [])])];
    const basic = basicCredentials(creds);
    let res: Response;
    if (creds?.identityToken) {
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.identityToken, client_id: 'cri-mesos', scope: scopes.join(' ') });
      if (ch.params.service) form.set('service', ch.params.service);
      res = await send(ep, url.href, { method: 'POST', body: form.toString(), contentType: 'application/x-www-form-urlencoded', stallMs, repo: '' });
    } else {
      if (ch.params.service) url.searchParams.set('service', ch.params.service);
      for (const s of scopes) url.searchParams.append('scope', s);
      if (basic) url.searchParams.set('account', basic.username);
      const authorization = basic ? `Basic ${Buffer.from(`${basic.username}:${basic.password}`).toString('base64')}` : undefined;
      res = await send(ep, url.href, { stallMs, repo: '', authorization });
    }
    const body = await readBody(res, 1 << 20, `token from ${url.host}`);
    if (res.status === 401 || res.status === 403) {
      throw new RegistryError(
        'unauthenticated',
        `registry ${ep.label}: the token server ${url.host} rejected ${basic ? `the credentials of user "${basic.username}"` : creds?.identityToken ? 'the identity token' : 'the anonymous request (credentials needed)'} (HTTP ${res.status})`,
      );
    }
    if (res.status !== 200) throw new RegistryError('unavailable', `registry ${ep.label}: token server ${url.host} answered HTTP ${res.status}`);
    let tok: { token?: string; access_token?: string; expires_in?: number };
    try {
      tok = JSON.parse(body.toString('utf8')) as typeof tok;
    } catch {
      throw new RegistryError('unavailable', `registry ${ep.label}: token server ${url.host} sent no JSON`);
    }
    const t = tok.token || tok.access_token;
    if (!t) throw new RegistryError('unavailable', `registry ${ep.label}: token server ${url.host} sent no token`);
    const life = Math.max(10, Math.min(typeof tok.expires_in === 'number' ? tok.expires_in : 60, 3600));
    return { header: `Bearer ${t}`, expires: Date.now() + (life - 5) * 1000 };
  }
}

function unauthenticated(ep: Endpoint, creds: Credentials | undefined, sentAuth: boolean, ch: Challenge | undefined): RegistryError {
  const b = (() => {
    try {
      return basicCredentials(creds);
    } catch {
      return undefined;
    }
  })();
  if (!sentAuth || (!b && !creds?.identityToken && !creds?.registryToken && ch?.scheme === 'basic')) {
    return new RegistryError('unauthenticated', `registry ${ep.label} requires authentication and no usable credentials were given`);
  }
  const who = b ? `user "${b.username}"` : creds?.registryToken ? 'the registry token' : creds?.identityToken ? 'the identity token' : 'anonymous access';
  const why = ch?.params.error === 'insufficient_scope' ? ' (insufficient scope: no pull access, or the repository does not exist)' : '';
  return new RegistryError('unauthenticated', `registry ${ep.label} rejected the credentials of ${who}${why}`);
}

function headerString(h: string | string[] | undefined): string | undefined {
  return Array.isArray(h) ? h[0] : h;
}

interface SendOptions {
  method?: 'GET' | 'HEAD' | 'POST';
  accept?: string;
  authorization?: string;
  body?: string;
  contentType?: string;
  stallMs: number;
  repo: string;
}

/** One HTTP exchange, following redirects (Authorization only stays on the same origin). */
async function send(ep: Endpoint, url: string, opts: SendOptions): Promise<Response> {
  let current = new URL(url);
  let authorization = opts.authorization;
  for (let hop = 0; hop < 6; hop++) {
    const res = await sendOnce(ep, current, { ...opts, authorization });
    if (![301, 302, 303, 307, 308].includes(res.status) || !res.headers.location) return res;
    res.body.resume();
    res.watchdog.stop();
    const next = new URL(res.headers.location, current);
    if (next.protocol !== 'https:' && next.protocol !== 'http:') throw new RegistryError('unavailable', `registry ${ep.label}: redirect to ${next.protocol}`);
    if (next.protocol === 'http:' && current.protocol === 'https:' && !ep.schemes.includes('http')) {
      throw new RegistryError('unavailable', `registry ${ep.label}: refusing a redirect from HTTPS to plain HTTP (${next.origin})`);
    }
    if (next.origin !== current.origin) authorization = undefined;
    current = next;
  }
  throw new RegistryError('unavailable', `registry ${ep.label}: too many redirects`);
}

function sendOnce(ep: Endpoint, url: URL, opts: SendOptions): Promise<Response> {
  const isHttps = url.protocol === 'https:';
  const sameHost = url.host === ep.host;
  const agent = isHttps ? (ep.insecureTls && sameHost ? agents.httpsInsecure : agents.https) : agents.http;
  const headers: Record<string, string> = { 'User-Agent': 'cri-mesos' };
  if (opts.accept) headers.Accept = opts.accept;
  if (opts.authorization) headers.Authorization = opts.authorization;
  if (opts.body !== undefined) {
    headers['Content-Type'] = opts.contentType ?? 'application/octet-stream';
    headers['Content-Length'] = String(Buffer.byteLength(opts.body));
  }
  return new Promise<Response>((resolve, reject) => {
    const mod = isHttps ? https : http;
    let settled = false;
    const req = mod.request(url, { method: opts.method ?? 'GET', headers, agent }, (res) => {
      settled = true;
      watchdog.kick();
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res, watchdog, url: url.href });
    });
    const watchdog = new Watchdog(
      opts.stallMs,
      () => new RegistryError('stalled', `registry ${ep.label}: no progress for ${Math.round(opts.stallMs / 1000)} s from ${url.host}`),
      (err) => req.destroy(err),
    );
    req.on('error', (e: Error) => {
      watchdog.stop();
      if (settled) return; // reported through the response stream
      reject(e instanceof RegistryError ? e : new RegistryError('unavailable', `registry ${ep.label}: ${url.protocol}//${url.host}: ${e.message}`));
    });
    req.end(opts.body);
  });
}

/** Read a whole (small) body; bigger than `limit` is an error. */
export async function readBody(res: Response, limit: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const c of res.body as AsyncIterable<Buffer>) {
      res.watchdog.kick();
      n += c.length;
      if (n > limit) {
        res.body.destroy();
        throw new RegistryError('invalid', `${what} is larger than ${limit} bytes`);
      }
      chunks.push(c);
    }
  } catch (e) {
    throw streamError(e, what, res);
  } finally {
    res.watchdog.stop();
  }
  return Buffer.concat(chunks);
}

/** Errors a response stream ends with: our watchdog's own, or a network one. */
export function streamError(e: unknown, what: string, res?: Response): Error {
  if (res?.watchdog.error) return res.watchdog.error;
  if (e instanceof RegistryError) return e;
  const cause = (e as { cause?: unknown }).cause;
  if (cause instanceof RegistryError) return cause;
  return new RegistryError('unavailable', `${what}: ${(e as Error).message}`);
}

/** The registry's JSON error body (`{"errors":[{"code":"MANIFEST_UNKNOWN",…}]}`) as text. */
export function describeErrorBody(body: Buffer): string {
  try {
    const j = JSON.parse(body.toString('utf8')) as { errors?: { code?: string; message?: string }[] };
    if (Array.isArray(j.errors) && j.errors.length) return j.errors.map((e) => [e.code, e.message].filter(Boolean).join(': ')).join('; ');
  } catch {
    // not JSON
  }
  return body.toString('utf8').slice(0, 200).trim();
}
