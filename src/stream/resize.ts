// Terminal resize events: the client writes a sequence of concatenated JSON
// objects {"Width":W,"Height":H} (Go field names; Go's encoder adds a newline
// after each, other clients may not). Decoded incrementally, queued for the
// runtime as an async iterable.
import type { Readable } from 'node:stream';
import type { TerminalSize } from './types.js';

/** Splits a byte stream into top-level JSON objects. */
export class JsonObjectSplitter {
  private buf = '';
  private depth = 0;
  private inString = false;
  private escaped = false;
  private start = -1;
  private scanned = 0;

  constructor(private readonly maxObject = 64 * 1024) {}

  push(chunk: Buffer | string): unknown[] {
    this.buf += chunk.toString();
    const out: unknown[] = [];
    for (let i = this.scanned; i < this.buf.length; i++) {
      const c = this.buf[i];
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === '\\') this.escaped = true;
        else if (c === '"') this.inString = false;
      } else if (c === '"') this.inString = true;
      else if (c === '{') {
        if (this.depth++ === 0) this.start = i;
      } else if (c === '}' && this.depth > 0 && --this.depth === 0) {
        out.push(JSON.parse(this.buf.slice(this.start, i + 1)));
        this.buf = this.buf.slice(i + 1);
        i = -1;
        this.start = -1;
      } else if (this.depth === 0 && !/\s/.test(c)) {
        throw new Error(`unexpected ${JSON.stringify(c)} between resize objects`);
      }
    }
    this.scanned = this.buf.length;
    if (this.buf.length > this.maxObject) throw new Error('resize object too large');
    return out;
  }
}

export function toTerminalSize(v: unknown): TerminalSize | null {
  if (typeof v !== 'object' || v === null) return null;
  const { Width, Height } = v as { Width?: unknown; Height?: unknown };
  if (!Number.isInteger(Width) || !Number.isInteger(Height)) return null;
  return { width: Width as number, height: Height as number };
}

/** An async iterable fed by push(); ends on end(). Keeps only the newest sizes
 *  if the runtime falls behind: an old terminal size is of no use. */
export class ResizeQueue implements AsyncIterable<TerminalSize> {
  private items: TerminalSize[] = [];
  private waiter: ((r: IteratorResult<TerminalSize>) => void) | null = null;
  private ended = false;

  constructor(private readonly keep = 16) {}

  push(size: TerminalSize): void {
    if (this.ended) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      return w({ value: size, done: false });
    }
    this.items.push(size);
    if (this.items.length > this.keep) this.items.shift();
  }

  end(): void {
    this.ended = true;
    const w = this.waiter;
    this.waiter = null;
    w?.({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterator<TerminalSize> {
    return {
      next: () => {
        const item = this.items.shift();
        if (item) return Promise.resolve({ value: item, done: false });
        if (this.ended) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => (this.waiter = resolve));
      },
      return: () => {
        this.end();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }

  private splitter = new JsonObjectSplitter();

  /** Feed raw bytes of the resize stream/channel. */
  feed(chunk: Buffer): void {
    try {
      for (const v of this.splitter.push(chunk)) {
        const size = toTerminalSize(v);
        if (size) this.push(size);
      }
    } catch {
      this.end(); // k8s stops reading resize events at the first decode error, too
    }
  }

  /** Feed it from a byte stream; ends when the stream does. */
  consume(source: Readable): void {
    source.on('data', (chunk: Buffer) => this.feed(chunk));
    source.on('end', () => this.end());
    source.on('close', () => this.end());
  }
}
