// The HTTP side of a SPDY upgrade (k8s httpstream.Handshake + the spdy
// upgrader): pick a subprotocol from X-Stream-Protocol-Version, answer 101 with
// Upgrade: SPDY/3.1, or refuse with a plain HTTP response on the raw socket.
import type { IncomingMessage } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';

export const PROTOCOL_HEADER = 'x-stream-protocol-version';
export const ACCEPTED_HEADER = 'X-Accepted-Stream-Protocol-Versions';

/** Every value of a (possibly repeated, possibly comma-separated) header. */
export function headerValues(req: IncomingMessage, name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (req.rawHeaders[i].toLowerCase() !== name) continue;
    for (const v of req.rawHeaders[i + 1].split(',')) if (v.trim()) out.push(v.trim());
  }
  return out;
}

/** The first protocol the client offers that we support (the client's preference wins). */
export function negotiate(offered: readonly string[], supported: readonly string[]): string | null {
  return offered.find((p) => supported.includes(p)) ?? null;
}

export function isSpdyUpgrade(req: IncomingMessage): boolean {
  return headerValues(req, 'upgrade').some((v) => v.toLowerCase() === 'spdy/3.1');
}

export function isWebSocketUpgrade(req: IncomingMessage): boolean {
  return headerValues(req, 'upgrade').some((v) => v.toLowerCase() === 'websocket');
}

/** A complete HTTP/1.1 response on a socket that no http.ServerResponse owns. */
export function rawResponse(socket: Duplex, status: number, body: string, headers: Record<string, string | string[]> = {}): void {
  const lines = [`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}`];
  const all = { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': String(Buffer.byteLength(body)), Connection: 'close', ...headers };
  for (const [k, v] of Object.entries(all)) for (const one of [v].flat()) lines.push(`${k}: ${one}`);
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
}

/** Negotiate and switch protocols. Returns the chosen protocol, or null after
 *  answering the client with 400/403. */
export function spdyUpgrade(req: IncomingMessage, socket: Duplex, supported: readonly string[]): string | null {
  const offered = headerValues(req, PROTOCOL_HEADER);
  if (offered.length === 0) {
    rawResponse(socket, 400, `unable to upgrade: X-Stream-Protocol-Version is required\n`);
    return null;
  }
  const chosen = negotiate(offered, supported);
  if (!chosen) {
    rawResponse(
      socket,
      403,
      `unable to upgrade: unable to negotiate protocol: client supports [${offered.join(' ')}], server accepts [${supported.join(' ')}]\n`,
      { [ACCEPTED_HEADER]: [...supported] },
    );
    return null;
  }
  socket.write(
    'HTTP/1.1 101 Switching Protocols\r\n' +
      'Connection: Upgrade\r\n' +
      'Upgrade: SPDY/3.1\r\n' +
      `X-Stream-Protocol-Version: ${chosen}\r\n\r\n`,
  );
  return chosen;
}
