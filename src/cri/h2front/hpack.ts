// HPACK (RFC 7541). The decoder mirrors one client's encoder: it sees every
// header block of a connection in order, so its dynamic table is the one the
// server's decoder would have. The encoder writes only literals that never
// touch the dynamic table, so its output can be read by a server decoder
// whatever state that decoder's table is in.
import { huffmanDecode } from './huffman.js';

/** A header block the server would refuse with COMPRESSION_ERROR. */
export class HpackError extends Error {}

export interface HeaderField {
  name: Buffer;
  value: Buffer;
  /** sent as "never indexed" (a sensitive value): any re-encoding must keep that */
  neverIndexed: boolean;
}

export interface HeaderBlock {
  /** dynamic table size updates at the start of the block, in order */
  tableSizeUpdates: number[];
  fields: HeaderField[];
}

/** Appendix A. */
const STATIC_TABLE: ReadonlyArray<readonly [string, string]> = [
  [':authority', ''], [':method', 'GET'], [':method', 'POST'], [':path', '/'], [':path', '/index.html'],
  [':scheme', 'http'], [':scheme', 'https'], [':status', '200'], [':status', '204'], [':status', '206'],
  [':status', '304'], [':status', '400'], [':status', '404'], [':status', '500'], ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'], ['accept-language', ''], ['accept-ranges', ''], ['accept', ''],
  ['access-control-allow-origin', ''], ['age', ''], ['allow', ''], ['authorization', ''], ['cache-control', ''],
  ['content-disposition', ''], ['content-encoding', ''], ['content-language', ''], ['content-length', ''],
  ['content-location', ''], ['content-range', ''], ['content-type', ''], ['cookie', ''], ['date', ''], ['etag', ''],
  ['expect', ''], ['expires', ''], ['from', ''], ['host', ''], ['if-match', ''], ['if-modified-since', ''],
  ['if-none-match', ''], ['if-range', ''], ['if-unmodified-since', ''], ['last-modified', ''], ['link', ''],
  ['location', ''], ['max-forwards', ''], ['proxy-authenticate', ''], ['proxy-authorization', ''], ['range', ''],
  ['referer', ''], ['refresh', ''], ['retry-after', ''], ['server', ''], ['set-cookie', ''],
  ['strict-transport-security', ''], ['transfer-encoding', ''], ['user-agent', ''], ['vary', ''], ['via', ''],
  ['www-authenticate', ''],
];
const STATIC = STATIC_TABLE.map(([n, v]) => ({ name: Buffer.from(n, 'latin1'), value: Buffer.from(v, 'latin1') }));
const STATIC_FULL = new Map(STATIC_TABLE.map(([n, v], i) => [`${n}\0${v}`, i + 1] as const).reverse());
const STATIC_NAME = new Map(STATIC_TABLE.map(([n], i) => [n, i + 1] as const).reverse());

/** nghttp2's bounds (lib/nghttp2_hd.c), so the mirror fails where the server would. */
const MAX_STRING = 65536;
const MAX_INT = 0xffffffff;
const ENTRY_OVERHEAD = 32;

interface Entry {
  name: Buffer;
  value: Buffer;
  size: number;
}

export class HpackDecoder {
  /** oldest first; HPACK index 62 is the last one */
  private readonly entries: Entry[] = [];
  private size = 0;
  private maxSize: number;
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;

  /**
   * @param tableSize the SETTINGS_HEADER_TABLE_SIZE in force (4096 unless the
   *   server advertised another): the table starts at that size and the
   *   encoder's size updates may not exceed `limit`, which starts there too.
   * @param maxListSize bytes (RFC 7541 §4.1 sizes) a decoded list may have,
   *   so re-encoding a block of 1-byte references cannot blow up memory.
   */
  constructor(
    tableSize = 4096,
    private readonly maxListSize = 1 << 20,
  ) {
    this.maxSize = tableSize;
    this.limit = tableSize;
  }

  /** The largest dynamic table size an update may ask for. */
  limit: number;

  /** Decode one complete header block, updating the dynamic table as the server's decoder would. */
  decode(block: Buffer): HeaderBlock {
    this.buf = block;
    this.pos = 0;
    const out: HeaderBlock = { tableSizeUpdates: [], fields: [] };
    let listSize = 0;
    while (this.pos < block.length) {
      const b = block[this.pos]!;
      let field: HeaderField;
      if (b & 0x80) {
        const e = this.at(this.int(7));
        field = { name: e.name, value: e.value, neverIndexed: false };
      } else if (b & 0x40) {
        field = this.literal(6, false);
        this.add(field.name, field.value);
      } else if (b & 0x20) {
        if (out.fields.length) throw new HpackError('a dynamic table size update after a header field');
        const n = this.int(5);
        if (n > this.limit) throw new HpackError(`dynamic table size update to ${n}, over the limit ${this.limit}`);
        this.resize(n);
        out.tableSizeUpdates.push(n);
        continue;
      } else {
        field = this.literal(4, (b & 0x10) !== 0);
      }
      listSize += field.name.length + field.value.length + ENTRY_OVERHEAD;
      if (listSize > this.maxListSize) throw new HpackError(`the header list is over ${this.maxListSize} bytes`);
      out.fields.push(field);
    }
    this.buf = Buffer.alloc(0);
    return out;
  }

  /** The dynamic table, newest first (for tests and diagnostics). */
  table(): { entries: [string, string][]; size: number; maxSize: number } {
    const entries = this.entries.map((e) => [e.name.toString('latin1'), e.value.toString('latin1')] as [string, string]).reverse();
    return { entries, size: this.size, maxSize: this.maxSize };
  }

  private literal(prefix: number, neverIndexed: boolean): HeaderField {
    const index = this.int(prefix);
    const name = index ? this.at(index).name : this.string();
    return { name, value: this.string(), neverIndexed };
  }

  /** §5.1, bounded like nghttp2: at most 32 bits. */
  private int(prefix: number): number {
    const max = (1 << prefix) - 1;
    let n = this.buf[this.pos++]! & max;
    if (n < max) return n;
    for (let shift = 0; ; shift += 7) {
      if (this.pos >= this.buf.length) throw new HpackError('the header block ends inside an integer');
      if (shift > 28) throw new HpackError('an integer over 32 bits');
      const b = this.buf[this.pos++]!;
      n += (b & 0x7f) * 2 ** shift;
      if (n > MAX_INT) throw new HpackError('an integer over 32 bits');
      if (!(b & 0x80)) return n;
    }
  }

  /** §5.2. */
  private string(): Buffer {
    if (this.pos >= this.buf.length) throw new HpackError('the header block ends before a string');
    const huffman = (this.buf[this.pos]! & 0x80) !== 0;
    const len = this.int(7);
    if (len > MAX_STRING) throw new HpackError(`a string of ${len} bytes (the limit is ${MAX_STRING})`);
    const start = this.pos;
    const end = start + len;
    if (end > this.buf.length) throw new HpackError('the header block ends inside a string');
    this.pos = end;
    if (!huffman) return this.buf.subarray(start, end);
    const s = huffmanDecode(this.buf, start, end);
    if (!s) throw new HpackError('a string with bad Huffman code (EOS, or padding that is not 1-bits of under a byte)');
    return s;
  }

  /** §2.3.3: 1-61 static, then the dynamic table newest first. */
  private at(index: number): { name: Buffer; value: Buffer } {
    if (index === 0) throw new HpackError('index 0');
    if (index <= STATIC.length) return STATIC[index - 1]!;
    const e = this.entries[this.entries.length - 1 - (index - STATIC.length - 1)];
    if (!e) throw new HpackError(`index ${index} is past the dynamic table (${this.entries.length} entries)`);
    return e;
  }

  /** §4.4: evict oldest until the new entry fits; one bigger than the table empties it. */
  private add(name: Buffer, value: Buffer): void {
    const size = name.length + value.length + ENTRY_OVERHEAD;
    while (this.entries.length && this.size + size > this.maxSize) this.size -= this.entries.shift()!.size;
    if (size > this.maxSize) return;
    // copies: the block the strings point into is not kept
    this.entries.push({ name: Buffer.from(name), value: Buffer.from(value), size });
    this.size += size;
  }

  /** §4.3. */
  private resize(maxSize: number): void {
    this.maxSize = maxSize;
    while (this.size > maxSize) this.size -= this.entries.shift()!.size;
  }
}

/**
 * The block as table size updates (kept, so the server's decoder sees every
 * update it would have) and fields that reference only the static table:
 * an exact static match is indexed, anything else is a literal without
 * indexing (or never indexed, as sent) with plain, non-Huffman strings.
 */
export function encodeWithoutIndexing(block: HeaderBlock): Buffer {
  let room = block.tableSizeUpdates.length * 6;
  for (const f of block.fields) room += 18 + f.name.length + f.value.length;
  const out = Buffer.allocUnsafe(room);
  let p = 0;
  const int = (n: number, prefix: number, first: number) => {
    const max = (1 << prefix) - 1;
    if (n < max) {
      out[p++] = first | n;
      return;
    }
    out[p++] = first | max;
    n -= max;
    while (n >= 0x80) {
      out[p++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    out[p++] = n;
  };
  const str = (s: Buffer) => {
    int(s.length, 7, 0);
    p += s.copy(out, p);
  };
  for (const n of block.tableSizeUpdates) int(n, 5, 0x20);
  for (const f of block.fields) {
    const name = f.name.toString('latin1');
    const full = f.neverIndexed ? undefined : STATIC_FULL.get(`${name}\0${f.value.toString('latin1')}`);
    if (full) {
      int(full, 7, 0x80);
      continue;
    }
    const first = f.neverIndexed ? 0x10 : 0x00;
    const index = STATIC_NAME.get(name);
    if (index) int(index, 4, first);
    else {
      out[p++] = first;
      str(f.name);
    }
    str(f.value);
  }
  return out.subarray(0, p);
}
