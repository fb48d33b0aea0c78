// Client→server bytes. Every frame but HEADERS/CONTINUATION goes on as the
// same Buffer slices it arrived in. A header block (HEADERS plus its
// CONTINUATIONs) is reassembled and decoded, so the HPACK mirror always holds
// the client encoder's table. Blocks go on byte for byte until one has an
// :authority (or host) nghttp2 would refuse; from then on every block of the
// connection is re-encoded without the dynamic table (nghttp2's copy of it
// stops following the client's) and only refused authorities are escaped.
import { authorityOk, escapeAuthority, isAuthorityName } from './authority.js';
import { ConnectionError, ErrorCode, Flag, FRAME_HEADER_SIZE, FrameType, headerFrames, MIN_MAX_FRAME_SIZE, PREFACE, readFrameHeader, Setting } from './frames.js';
import { encodeWithoutIndexing, HpackDecoder, HpackError, type HeaderField } from './hpack.js';

/** Buffered header block bytes beyond which the connection ends (nghttp2 would refuse a list 1/16 of that). */
const MAX_BLOCK = 1 << 20;

const PREFACE_STATE = 0;
const HEADER = 1;
const PASS = 2;
const COLLECT = 3;
/** not HTTP/2: everything goes on and nghttp2 answers it */
const RAW = 4;

interface Frame {
  header: Buffer;
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer[];
}

interface Block {
  streamId: number;
  endStream: boolean;
  priority?: Buffer;
  fragments: Buffer[];
  /** the original frames, to forward unchanged */
  raw: Buffer[];
  size: number;
}

export class Inbound {
  /** The highest stream id a HEADERS frame began: what a GOAWAY names as the last stream. */
  lastStreamId = 0;
  /** Header blocks re-encoded so far; 0 while the connection passes through. */
  rewritten = 0;
  readonly decoder = new HpackDecoder();
  /** Called once, with the first refused authority, when the connection starts re-encoding. */
  onRewrite?: (authority: string) => void;

  private state = PREFACE_STATE;
  private prefaceAt = 0;
  private readonly hdr = Buffer.alloc(FRAME_HEADER_SIZE);
  private hdrFill = 0;
  private remaining = 0;
  private frame?: Frame;
  private block?: Block;
  private rewriting = false;
  private maxFrameSize = MIN_MAX_FRAME_SIZE;
  private chunk: Buffer = Buffer.alloc(0);
  /** chunk[from, i) goes on unchanged at the next flush */
  private from = 0;

  constructor(private readonly out: (b: Buffer) => void) {}

  /**
   * A setting the server sent. Taking the largest value ever advertised is
   * lenient where a server lowers one, but the size updates themselves are
   * forwarded, so nghttp2 still refuses what it would refuse without us.
   */
  serverSetting(id: number, value: number): void {
    if (id === Setting.HEADER_TABLE_SIZE) this.decoder.limit = Math.max(this.decoder.limit, value);
    else if (id === Setting.MAX_FRAME_SIZE) this.maxFrameSize = Math.max(this.maxFrameSize, value);
  }

  /** Take the next bytes from the client; throws ConnectionError when the connection must end. */
  write(chunk: Buffer): void {
    this.chunk = chunk;
    this.from = 0;
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      switch (this.state) {
        case PREFACE_STATE:
          while (i < n && this.prefaceAt < PREFACE.length) {
            if (chunk[i] !== PREFACE[this.prefaceAt]) {
              this.state = RAW;
              break;
            }
            i++;
            this.prefaceAt++;
          }
          if (this.prefaceAt === PREFACE.length) this.state = HEADER;
          break;
        case RAW:
          i = n;
          break;
        case HEADER: {
          if (this.hdrFill === 0 && n - i >= FRAME_HEADER_SIZE) {
            this.onFrameHeader(chunk.subarray(i, i + FRAME_HEADER_SIZE), i);
            i += FRAME_HEADER_SIZE;
            break;
          }
          // a frame header split between chunks: kept aside until whole, then forwarded as a copy
          if (this.hdrFill === 0) this.flush(i);
          const k = Math.min(FRAME_HEADER_SIZE - this.hdrFill, n - i);
          chunk.copy(this.hdr, this.hdrFill, i, i + k);
          this.hdrFill += k;
          i += k;
          this.from = i;
          if (this.hdrFill < FRAME_HEADER_SIZE) break;
          this.hdrFill = 0;
          this.onFrameHeader(Buffer.from(this.hdr), -1);
          break;
        }
        case PASS: {
          const k = Math.min(this.remaining, n - i);
          i += k;
          this.remaining -= k;
          if (this.remaining === 0) this.state = HEADER;
          break;
        }
        case COLLECT: {
          const k = Math.min(this.remaining, n - i);
          this.frame!.payload.push(chunk.subarray(i, i + k));
          i += k;
          this.from = i;
          this.remaining -= k;
          if (this.remaining === 0) this.endFrame();
          break;
        }
      }
    }
    this.flush(n);
  }

  private flush(to: number): void {
    if (to > this.from) this.out(this.from === 0 && to === this.chunk.length ? this.chunk : this.chunk.subarray(this.from, to));
    this.from = to;
  }

  /** `at`: where the header starts in the current chunk, or -1 for a copy of a split one (already taken out of the pass-through). */
  private onFrameHeader(h: Buffer, at: number): void {
    const { length, type, flags, streamId } = readFrameHeader(h);
    const block = this.block;
    if (block && (type !== FrameType.CONTINUATION || streamId !== block.streamId)) {
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `frame type ${type} on stream ${streamId} inside the header block of stream ${block.streamId}`);
    }
    if (type === FrameType.HEADERS || type === FrameType.CONTINUATION) {
      if (type === FrameType.CONTINUATION && !block) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `CONTINUATION on stream ${streamId} without HEADERS`);
      if (streamId === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'HEADERS on stream 0');
      if (length > this.maxFrameSize) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, `a ${length}-byte frame (the limit is ${this.maxFrameSize})`);
      // as nghttp2 counts it: a stream whose HEADERS began is named in a GOAWAY even if its block fails
      if (type === FrameType.HEADERS && streamId > this.lastStreamId) this.lastStreamId = streamId;
      if (at >= 0) {
        this.flush(at);
        this.from = at + FRAME_HEADER_SIZE;
      }
      this.frame = { header: h, type, flags, streamId, payload: [] };
      this.remaining = length;
      this.state = COLLECT;
      if (length === 0) this.endFrame();
      return;
    }
    if (type === FrameType.PUSH_PROMISE) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'PUSH_PROMISE from a client');
    if (at < 0) this.out(h);
    this.remaining = length;
    this.state = length ? PASS : HEADER;
  }

  private endFrame(): void {
    const f = this.frame!;
    this.frame = undefined;
    this.state = HEADER;
    const payload = f.payload.length === 1 ? f.payload[0]! : Buffer.concat(f.payload);
    let block = this.block;
    if (f.type === FrameType.HEADERS) {
      let off = 0;
      let pad = 0;
      if (f.flags & Flag.PADDED) {
        if (payload.length < 1) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'a PADDED HEADERS frame without a pad length');
        pad = payload[0]!;
        off = 1;
      }
      let priority: Buffer | undefined;
      if (f.flags & Flag.PRIORITY) {
        if (payload.length < off + 5) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'a PRIORITY HEADERS frame too short for its priority fields');
        priority = payload.subarray(off, off + 5);
        off += 5;
      }
      if (off + pad > payload.length) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'HEADERS padding longer than the frame');
      block = this.block = { streamId: f.streamId, endStream: (f.flags & Flag.END_STREAM) !== 0, priority, fragments: [], raw: [], size: 0 };
      block.fragments.push(payload.subarray(off, payload.length - pad));
    } else {
      block!.fragments.push(payload);
    }
    block!.raw.push(f.header, ...f.payload);
    block!.size += payload.length;
    if (block!.size > MAX_BLOCK) throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, `a header block over ${MAX_BLOCK} bytes`);
    if (f.flags & Flag.END_HEADERS) this.endBlock();
  }

  private endBlock(): void {
    const b = this.block!;
    this.block = undefined;
    const bytes = b.fragments.length === 1 ? b.fragments[0]! : Buffer.concat(b.fragments);
    let decoded;
    try {
      decoded = this.decoder.decode(bytes);
    } catch (e) {
      if (e instanceof HpackError) throw new ConnectionError(ErrorCode.COMPRESSION_ERROR, `stream ${b.streamId}: ${e.message}`);
      throw e;
    }
    if (!this.rewriting) {
      const bad = decoded.fields.find(refused);
      if (!bad) {
        for (const r of b.raw) this.out(r);
        return;
      }
      this.rewriting = true;
      this.onRewrite?.(bad.value.toString('latin1'));
    }
    decoded.fields = decoded.fields.map((f) => (refused(f) ? { ...f, value: escapeAuthority(f.value) } : f));
    this.out(headerFrames(b.streamId, encodeWithoutIndexing(decoded), b.endStream, b.priority));
    this.rewritten++;
  }
}

function refused(f: HeaderField): boolean {
  return isAuthorityName(f.name) && !authorityOk(f.value);
}
