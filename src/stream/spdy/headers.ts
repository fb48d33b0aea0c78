// SPDY/3 name/value header blocks and their compression. Each direction of a
// connection is ONE zlib stream primed with the SPDY/3 dictionary, flushed with
// Z_SYNC_FLUSH after every block, so block n can only be (de)compressed after
// block n-1: calls are queued and run strictly in order. Node's synchronous
// zlib calls close the context after one use, hence the asynchronous API.
import zlib from 'node:zlib';
import { SPDY3_DICTIONARY } from './dictionary.js';
import { SpdyProtocolError } from './framer.js';

/** Lower-case names (SPDY/3 requires it; Go's framer rejects anything else).
 *  A multi-valued header keeps SPDY's NUL separator inside the value. */
export type SpdyHeaders = Record<string, string>;

const MAX_HEADERS = 1000;
/** inflated size bound: a compressed block must not expand into the heap */
const MAX_BLOCK = 1 << 20;

export function packHeaderBlock(headers: SpdyHeaders): Buffer {
  const entries = Object.entries(headers);
  const parts: Buffer[] = [u32(entries.length)];
  for (const [name, value] of entries) {
    const n = Buffer.from(name.toLowerCase(), 'utf8');
    const v = Buffer.from(value, 'utf8');
    parts.push(u32(n.length), n, u32(v.length), v);
  }
  return Buffer.concat(parts);
}

export function unpackHeaderBlock(b: Buffer): SpdyHeaders {
  let off = 0;
  const read = (): Buffer => {
    if (off + 4 > b.length) throw new SpdyProtocolError('truncated header block');
    const len = b.readUInt32BE(off);
    off += 4;
    if (off + len > b.length) throw new SpdyProtocolError('truncated header block');
    const out = b.subarray(off, off + len);
    off += len;
    return out;
  };
  if (b.length < 4) throw new SpdyProtocolError('truncated header block');
  const count = b.readUInt32BE(0);
  off = 4;
  if (count > MAX_HEADERS) throw new SpdyProtocolError(`header block with ${count} headers`);
  const headers: SpdyHeaders = {};
  for (let i = 0; i < count; i++) {
    const name = read().toString('utf8');
    const value = read().toString('utf8');
    if (name.length === 0) throw new SpdyProtocolError('empty header name');
    // Duplicate names are a protocol error in SPDY/3; keep both values rather
    // than fail a peer over it.
    headers[name] = name in headers ? `${headers[name]}\0${value}` : value;
  }
  if (off !== b.length) throw new SpdyProtocolError('trailing bytes after header block');
  return headers;
}

function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n);
  return b;
}

/** One zlib stream whose every input is followed by Z_SYNC_FLUSH, run in order. */
class FlushedZlib {
  private tail: Promise<unknown> = Promise.resolve();
  private out: Buffer[] = [];
  private size = 0;
  private failure: Error | null = null;
  private fail: ((e: Error) => void) | null = null;

  constructor(private readonly z: zlib.Inflate | zlib.Deflate) {
    z.on('data', (chunk: Buffer) => {
      this.out.push(chunk);
      this.size += chunk.length;
      if (this.size > MAX_BLOCK) this.abort(new SpdyProtocolError(`header block inflates beyond ${MAX_BLOCK} bytes`));
    });
    z.on('error', (e: Error) => this.abort(new SpdyProtocolError(`header block: ${e.message}`)));
  }

  /** `then` runs inside the queue, so whatever it writes keeps the zlib order. */
  run<T>(input: Buffer, then: (output: Buffer) => T): Promise<T> {
    const step = this.tail.then(
      () =>
        new Promise<T>((resolve, reject) => {
          if (this.failure) return reject(this.failure);
          this.fail = reject;
          this.z.write(input);
          // Node emits the flushed output as 'data' before the flush callback.
          this.z.flush(zlib.constants.Z_SYNC_FLUSH, () => {
            this.fail = null;
            if (this.failure) return reject(this.failure);
            const output = Buffer.concat(this.out);
            this.out = [];
            this.size = 0;
            try {
              resolve(then(output));
            } catch (e) {
              reject(e as Error);
            }
          });
        }),
    );
    this.tail = step.catch(() => undefined);
    return step;
  }

  /** resolves when every queued block has been processed */
  idle(): Promise<void> {
    return this.tail.then(() => undefined);
  }

  close(): void {
    this.abort(new Error('header compression context closed'));
  }

  private abort(e: Error): void {
    if (!this.failure) this.failure = e;
    this.fail?.(this.failure);
    this.fail = null;
    this.z.destroy();
  }
}

export class HeaderCompressor {
  private readonly z = new FlushedZlib(
    zlib.createDeflate({ dictionary: SPDY3_DICTIONARY, level: zlib.constants.Z_BEST_COMPRESSION }),
  );

  /** Compress one block; `then` gets the compressed bytes in call order. */
  compress<T>(headers: SpdyHeaders, then: (block: Buffer) => T): Promise<T> {
    return this.z.run(packHeaderBlock(headers), then);
  }

  /** resolves once every frame queued through compress() has been written */
  idle(): Promise<void> {
    return this.z.idle();
  }

  close(): void {
    this.z.close();
  }
}

export class HeaderDecompressor {
  private readonly z = new FlushedZlib(zlib.createInflate({ dictionary: SPDY3_DICTIONARY }));

  decompress(block: Buffer): Promise<SpdyHeaders> {
    return this.z.run(block, unpackHeaderBlock);
  }

  close(): void {
    this.z.close();
  }
}
