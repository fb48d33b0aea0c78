// What nghttp2 accepts in :authority and host on a server (nghttp2_check_authority,
// VALID_AUTHORITY_CHARS in lib/nghttp2_helper.c, nghttp2 1.61 as in Node 20),
// and the percent-encoding that makes any other value acceptable.

const ALLOWED = new Uint8Array(256);
for (const c of "!$%&'()*+,-.0123456789:;=@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]_abcdefghijklmnopqrstuvwxyz~") ALLOWED[c.charCodeAt(0)] = 1;

const AUTHORITY = Buffer.from(':authority');
const HOST = Buffer.from('host');

/** nghttp2 checks these two names' values as an authority. */
export function isAuthorityName(name: Buffer): boolean {
  return (name.length === 10 && name.equals(AUTHORITY)) || (name.length === 4 && name.equals(HOST));
}

/** nghttp2 would accept this value (the empty one too). */
export function authorityOk(value: Buffer): boolean {
  for (let i = 0; i < value.length; i++) if (!ALLOWED[value[i]!]) return false;
  return true;
}

const HEX = '0123456789ABCDEF';

/**
 * Each byte nghttp2 refuses becomes %XX (what grpc-go 1.57+ sends for a
 * socket path: "/run/x.sock" → "%2Frun%2Fx.sock"); all others are kept,
 * '%' too, as nghttp2 accepts it.
 */
export function escapeAuthority(value: Buffer): Buffer {
  let s = '';
  for (let i = 0; i < value.length; i++) {
    const b = value[i]!;
    s += ALLOWED[b] ? String.fromCharCode(b) : '%' + HEX[b >> 4]! + HEX[b & 15]!;
  }
  return Buffer.from(s, 'latin1');
}
