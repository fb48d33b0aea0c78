// Running one probe (pkg/kubelet/prober/prober.go, pkg/probe/{exec,http,tcp,grpc}): exec through
// the runtime's ExecSync, an HTTP GET, a TCP connect, a gRPC health check. Host is the pod's IP
// unless the probe names one; a named port is looked up in the container's ports.
import * as grpc from '@grpc/grpc-js';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import type { CriClient } from './cri-client.js';
import { grpcCode } from './cri-client.js';
import type { Container, HTTPGetAction, Probe } from './types.js';

export type ProbeResult = 'Success' | 'Failure' | 'Unknown';

export interface ProbeOutcome {
  result: ProbeResult;
  output: string;
  /** The probe could not be run (the kubelet throws such results away). */
  error?: string;
}

/** The kubelet's User-Agent on probes: kube-probe/<major>.<minor>. */
export const PROBE_USER_AGENT = 'kube-probe/1.34';
const MAX_BODY = 10 * 1024;
const MAX_REDIRECTS = 10;

/** A port number, or the number of the container port with that name. */
export function resolvePort(port: number | string, container: Container): number {
  if (typeof port === 'number') return port;
  if (/^\d+$/.test(port)) return Number(port);
  const found = (container.ports ?? []).find((p) => p.name === port);
  if (!found) throw new Error(`couldn't find port: ${port} in container ${container.name}`);
  return found.containerPort;
}

export async function runProbe(p: Probe, container: Container, containerId: string, podIP: string, cri: CriClient): Promise<ProbeOutcome> {
  const timeout = p.timeoutSeconds ?? 1;
  try {
    if (p.exec) return await execProbe(cri, containerId, p.exec.command ?? [], timeout);
    if (p.httpGet) return await httpProbe(p.httpGet, container, podIP, timeout * 1000, PROBE_USER_AGENT);
    if (p.tcpSocket) return await tcpProbe(p.tcpSocket.host || podIP, resolvePort(p.tcpSocket.port, container), timeout * 1000);
    if (p.grpc) return await grpcProbe(podIP, p.grpc.port, p.grpc.service ?? '', timeout * 1000);
  } catch (err) {
    return { result: 'Unknown', output: '', error: (err as Error).message };
  }
  return { result: 'Unknown', output: '', error: 'missing probe handler' };
}

/** Exit 0 is success, any other failure; a timeout is a failure (ExecProbeTimeout). */
export async function execProbe(cri: CriClient, containerId: string, cmd: string[], timeoutSeconds: number): Promise<ProbeOutcome> {
  try {
    const res = await cri.execSync(containerId, cmd, timeoutSeconds);
    const output = Buffer.concat([res.stdout ?? Buffer.alloc(0), res.stderr ?? Buffer.alloc(0)]).toString('utf8');
    return { result: res.exit_code === 0 ? 'Success' : 'Failure', output };
  } catch (err) {
    if (grpcCode(err) === grpc.status.DEADLINE_EXCEEDED) return { result: 'Failure', output: `command ${JSON.stringify(cmd)} timed out` };
    throw err;
  }
}

/** 200 ≤ status < 400 is success; redirects to the same host are followed, to another host count as success. */
export async function httpProbe(h: HTTPGetAction, container: Container, podIP: string, timeoutMs: number, userAgent: string): Promise<ProbeOutcome> {
  let url = probeURL(h, container, podIP);
  const headers: Record<string, string> = { 'User-Agent': userAgent, Accept: '*/*' };
  for (const hd of h.httpHeaders ?? []) headers[hd.name] = hd.value;
  const deadline = Date.now() + timeoutMs;
  for (let hop = 0; ; hop++) {
    const res = await get(url, headers, Math.max(1, deadline - Date.now()));
    if (res.status >= 300 && res.status < 400 && res.location && hop < MAX_REDIRECTS) {
      const next = new URL(res.location, url);
      if (next.hostname === url.hostname) {
        url = next;
        continue;
      }
      return { result: 'Success', output: `Probe terminated redirects, Response: ${res.body}` };
    }
    if (res.status >= 200 && res.status < 400) return { result: 'Success', output: res.body };
    // status 0: no response (refused, reset, timed out); the body says why.
    if (res.status === 0) return { result: 'Failure', output: res.body };
    return { result: 'Failure', output: `HTTP probe failed with statuscode: ${res.status}` };
  }
}

export function probeURL(h: HTTPGetAction, container: Container, podIP: string): URL {
  const host = h.host || podIP;
  const port = resolvePort(h.port, container);
  const scheme = (h.scheme ?? 'HTTP').toLowerCase();
  const path = h.path || '/';
  const hostPart = host.includes(':') ? `[${host}]` : host;
  return new URL(`${scheme}://${hostPart}:${port}${path.startsWith('/') ? path : `/${path}`}`);
}

function get(url: URL, headers: Record<string, string>, timeoutMs: number): Promise<{ status: number; body: string; location?: string }> {
  return new Promise((resolve, reject) => {
    const hostHeader = Object.entries(headers).find(([k]) => k.toLowerCase() === 'host')?.[1];
    const opts = { method: 'GET', headers, signal: AbortSignal.timeout(timeoutMs), ...(hostHeader ? { servername: hostHeader } : {}), rejectUnauthorized: false };
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, opts, (res: IncomingMessage) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (body.length < MAX_BODY) body += chunk.slice(0, MAX_BODY - body.length);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, ...(res.headers.location ? { location: res.headers.location } : {}) }));
      res.on('error', reject);
    });
    req.on('error', (err) => {
      if ((err as { name?: string }).name === 'AbortError' || (err as { code?: string }).code === 'ABORT_ERR') resolve({ status: 0, body: `Get "${url.href}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)` });
      else resolve({ status: 0, body: `Get "${url.href}": ${err.message}` });
    });
    req.end();
  });
}

/** A TCP connection within the timeout is success. */
export function tcpProbe(host: string, port: number, timeoutMs: number): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    const sock = connect({ host, port });
    const timer = setTimeout(() => {
      sock.destroy();
      resolve({ result: 'Failure', output: `dial tcp ${host}:${port}: i/o timeout` });
    }, timeoutMs);
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.destroy();
      resolve({ result: 'Success', output: '' });
    });
    sock.once('error', (err) => {
      clearTimeout(timer);
      resolve({ result: 'Failure', output: `dial tcp ${host}:${port}: ${err.message}` });
    });
  });
}

/** grpc.health.v1.Health/Check; SERVING (1) is success. Messages are encoded by hand (two fields). */
export function grpcProbe(host: string, port: number, service: string, timeoutMs: number): Promise<ProbeOutcome> {
  const Client = grpc.makeGenericClientConstructor(
    {
      Check: {
        path: '/grpc.health.v1.Health/Check',
        requestStream: false,
        responseStream: false,
        requestSerialize: (s: string) => encodeString(1, s),
        requestDeserialize: (b: Buffer) => b.toString(),
        responseSerialize: (n: number) => Buffer.from([0x08, n]),
        responseDeserialize: (b: Buffer) => decodeVarintField(b, 1),
      },
    },
    'Health',
  );
  const addr = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  const client = new Client(addr, grpc.credentials.createInsecure());
  return new Promise<ProbeOutcome>((resolve) => {
    (client as unknown as { Check: (req: string, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: number) => void) => void }).Check(
      service,
      { deadline: Date.now() + timeoutMs },
      (err, status) => {
        client.close();
        if (err) {
          resolve({ result: 'Failure', output: err.code === grpc.status.DEADLINE_EXCEEDED ? `timeout: health rpc did not complete within ${timeoutMs}ms` : `error: this server does not implement the grpc health protocol (grpc.health.v1.Health): ${err.details}` });
        } else if (status === 1) resolve({ result: 'Success', output: '' });
        else resolve({ result: 'Failure', output: `service unhealthy (responded with "${['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'][status ?? 0] ?? status}")` });
      },
    );
  });
}

function encodeString(field: number, s: string): Buffer {
  if (!s) return Buffer.alloc(0);
  const bytes = Buffer.from(s, 'utf8');
  return Buffer.concat([Buffer.from([(field << 3) | 2]), varint(bytes.length), bytes]);
}

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}

function decodeVarintField(b: Buffer, field: number): number {
  let i = 0;
  const readVarint = () => {
    let v = 0;
    let shift = 0;
    while (i < b.length) {
      const byte = b[i++]!;
      v |= (byte & 0x7f) << shift;
      if (!(byte & 0x80)) break;
      shift += 7;
    }
    return v;
  };
  while (i < b.length) {
    const key = readVarint();
    const wire = key & 7;
    if (key >> 3 === field && wire === 0) return readVarint();
    if (wire === 0) readVarint();
    else if (wire === 2) i += readVarint();
    else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else break;
  }
  return 0;
}
