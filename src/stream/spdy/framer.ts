// SPDY/3.1 framing: what kubectl, crictl and the kubelet speak to a CRI stream
// server (through moby/spdystream). Frames are encoded and decoded here with
// their header blocks still compressed; the two zlib contexts a connection
// needs live in headers.ts, because Node's zlib can only keep a context across
// blocks through its asynchronous stream API.

export const CONTROL = {
  SYN_STREAM: 1,
  SYN_REPLY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PING: 6,
  GOAWAY: 7,
  HEADERS: 8,
  WINDOW_UPDATE: 9,
} as const;

export const FLAG_FIN = 0x01;
export const FLAG_UNIDIRECTIONAL = 0x02;

/** RST_STREAM status codes */
export const RST = {
  PROTOCOL_ERROR: 1,
  INVALID_STREAM: 2,
  REFUSED_STREAM: 3,
  UNSUPPORTED_VERSION: 4,
  CANCEL: 5,
  INTERNAL_ERROR: 6,
  FLOW_CONTROL_ERROR: 7,
  STREAM_IN_USE: 8,
  STREAM_ALREADY_CLOSED: 9,
  FRAME_TOO_LARGE: 11,
} as const;

/** GOAWAY status codes */
export const GOAWAY = { OK: 0, PROTOCOL_ERROR: 1, INTERNAL_ERROR: 2 } as const;

export const SPDY_VERSION = 3;
/** the 24-bit length field's ceiling */
export const MAX_WIRE_LENGTH = 0xffffff;

export interface SettingsEntry {
  flags: number;
  id: number;
  value: number;
}

export type Frame =
  | { type: 'DATA'; streamId: number; fin: boolean; data: Buffer }
  | {
      type: 'SYN_STREAM';
      streamId: number;
      associatedId: number;
      priority: number;
      fin: boolean;
      unidirectional: boolean;
      headerBlock: Buffer;
    }
  | { type: 'SYN_REPLY'; streamId: number; fin: boolean; headerBlock: Buffer }
  | { type: 'HEADERS'; streamId: number; fin: boolean; headerBlock: Buffer }
  | { type: 'RST_STREAM'; streamId: number; status: number }
  | { type: 'SETTINGS'; clear: boolean; entries: SettingsEntry[] }
  | { type: 'PING'; id: number }
  | { type: 'GOAWAY'; lastGoodStreamId: number; status: number }
  | { type: 'WINDOW_UPDATE'; streamId: number; delta: number }
  /** a control type SPDY/3.1 does not define: the spec says to ignore it */
  | { type: 'UNKNOWN'; frameType: number };

/** A connection-level error: the session answers it with GOAWAY and closes. */
export class SpdyProtocolError extends Error {
  constructor(
    message: string,
    readonly goAwayStatus: number = GOAWAY.PROTOCOL_ERROR,
  ) {
    super(message);
    this.name = 'SpdyProtocolError';
  }
}

// ---- encoding -------------------------------------------------------------------------

function control(type: number, flags: number, payload: Buffer): Buffer {
  if (payload.length > MAX_WIRE_LENGTH) throw new RangeError(`SPDY control frame too large: ${payload.length}`);
  const head = Buffer.allocUnsafe(8);
  head.writeUInt32BE((0x8000 | SPDY_VERSION) * 0x10000 + type, 0);
  head.writeUInt32BE(flags * 0x1000000 + payload.length, 4);
  return Buffer.concat([head, payload]);
}

function u32s(...values: number[]): Buffer {
  const b = Buffer.allocUnsafe(values.length * 4);
  values.forEach((v, i) => b.writeUInt32BE(v >>> 0, i * 4));
  return b;
}

export function encodeFrame(f: Frame): Buffer {
  switch (f.type) {
    case 'DATA': {
      if (f.data.length > MAX_WIRE_LENGTH) throw new RangeError(`SPDY data frame too large: ${f.data.length}`);
      const head = u32s(f.streamId & 0x7fffffff, (f.fin ? FLAG_FIN : 0) * 0x1000000 + f.data.length);
      return Buffer.concat([head, f.data]);
    }
    case 'SYN_STREAM': {
      const fixed = Buffer.alloc(10);
      fixed.writeUInt32BE(f.streamId & 0x7fffffff, 0);
      fixed.writeUInt32BE(f.associatedId & 0x7fffffff, 4);
      fixed[8] = (f.priority & 0x7) << 5;
      const flags = (f.fin ? FLAG_FIN : 0) | (f.unidirectional ? FLAG_UNIDIRECTIONAL : 0);
      return control(CONTROL.SYN_STREAM, flags, Buffer.concat([fixed, f.headerBlock]));
    }
    case 'SYN_REPLY':
    case 'HEADERS':
      return control(
        CONTROL[f.type],
        f.fin ? FLAG_FIN : 0,
        Buffer.concat([u32s(f.streamId & 0x7fffffff), f.headerBlock]),
      );
    case 'RST_STREAM':
      return control(CONTROL.RST_STREAM, 0, u32s(f.streamId & 0x7fffffff, f.status));
    case 'SETTINGS': {
      const words = [f.entries.length];
      for (const e of f.entries) words.push(e.flags * 0x1000000 + (e.id & 0xffffff), e.value);
      return control(CONTROL.SETTINGS, f.clear ? 1 : 0, u32s(...words));
    }
    case 'PING':
      return control(CONTROL.PING, 0, u32s(f.id));
    case 'GOAWAY':
      return control(CONTROL.GOAWAY, 0, u32s(f.lastGoodStreamId & 0x7fffffff, f.status));
    case 'WINDOW_UPDATE':
      return control(CONTROL.WINDOW_UPDATE, 0, u32s(f.streamId & 0x7fffffff, f.delta & 0x7fffffff));
    case 'UNKNOWN':
      return control(f.frameType, 0, Buffer.alloc(0));
  }
}

// ---- decoding -------------------------------------------------------------------------

/** Bytes received but not yet parsed; copies only what a frame needs, so a large
 *  frame arriving in many TCP chunks costs one copy, not one per chunk. */
class ByteQueue {
  private chunks: Buffer[] = [];
  length = 0;

  push(b: Buffer): void {
    if (b.length === 0) return;
    this.chunks.push(b);
    this.length += b.length;
  }

  /** the first n bytes, contiguous (n <= length) */
  peek(n: number): Buffer {
    if (this.chunks[0].length < n) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0].subarray(0, n);
  }

  take(n: number): Buffer {
    const out = this.peek(n);
    const first = this.chunks[0];
    if (first.length === n) this.chunks.shift();
    else this.chunks[0] = first.subarray(n);
    this.length -= n;
    return out;
  }
}

export interface DecoderLimits {
  /** largest control frame payload accepted (header blocks live there); default 1 MiB */
  maxControlLength?: number;
  /** largest DATA payload accepted; default the wire maximum (16 MiB - 1) */
  maxDataLength?: number;
}

const FIXED_LENGTH: Partial<Record<number, number>> = {
  [CONTROL.RST_STREAM]: 8,
  [CONTROL.PING]: 4,
  [CONTROL.GOAWAY]: 8,
  [CONTROL.WINDOW_UPDATE]: 8,
};

const MIN_LENGTH: Partial<Record<number, number>> = {
  [CONTROL.SYN_STREAM]: 10,
  [CONTROL.SYN_REPLY]: 4,
  [CONTROL.HEADERS]: 4,
  [CONTROL.SETTINGS]: 4,
};

/** Incremental frame parser: feed it socket chunks of any size, get whole frames. */
export class FrameDecoder {
  private readonly queue = new ByteQueue();
  private readonly maxControl: number;
  private readonly maxData: number;

  constructor(limits: DecoderLimits = {}) {
    this.maxControl = limits.maxControlLength ?? 1 << 20;
    this.maxData = limits.maxDataLength ?? MAX_WIRE_LENGTH;
  }

  /** Throws SpdyProtocolError on a malformed or oversized frame; the connection
   *  cannot be resynchronised after that. */
  push(chunk: Buffer): Frame[] {
    this.queue.push(chunk);
    const frames: Frame[] = [];
    while (this.queue.length >= 8) {
      const head = this.queue.peek(8);
      const isControl = (head[0] & 0x80) !== 0;
      const flags = head[4];
      const length = head.readUInt32BE(4) & 0xffffff;
      const limit = isControl ? this.maxControl : this.maxData;
      if (length > limit) {
        throw new SpdyProtocolError(`${isControl ? 'control' : 'data'} frame of ${length} bytes exceeds ${limit}`);
      }
      if (this.queue.length < 8 + length) break;
      const frame = this.queue.take(8 + length);
      const payload = frame.subarray(8);
      if (isControl) frames.push(this.control(frame.readUInt16BE(0) & 0x7fff, frame.readUInt16BE(2), flags, payload));
      else {
        const streamId = frame.readUInt32BE(0) & 0x7fffffff;
        if (streamId === 0) throw new SpdyProtocolError('DATA frame on stream 0');
        frames.push({ type: 'DATA', streamId, fin: (flags & FLAG_FIN) !== 0, data: payload });
      }
    }
    return frames;
  }

  private control(version: number, type: number, flags: number, p: Buffer): Frame {
    if (version !== SPDY_VERSION) throw new SpdyProtocolError(`unsupported SPDY version ${version}`);
    const fixed = FIXED_LENGTH[type];
    if (fixed !== undefined && p.length !== fixed) {
      throw new SpdyProtocolError(`control frame type ${type} with length ${p.length}, want ${fixed}`);
    }
    const min = MIN_LENGTH[type];
    if (min !== undefined && p.length < min) {
      throw new SpdyProtocolError(`control frame type ${type} with length ${p.length}, want at least ${min}`);
    }
    const fin = (flags & FLAG_FIN) !== 0;
    const id = (off: number) => p.readUInt32BE(off) & 0x7fffffff;
    const streamFrame = (streamId: number) => {
      if (streamId === 0) throw new SpdyProtocolError(`control frame type ${type} on stream 0`);
      return streamId;
    };
    switch (type) {
      case CONTROL.SYN_STREAM:
        return {
          type: 'SYN_STREAM',
          streamId: streamFrame(id(0)),
          associatedId: id(4),
          priority: p[8] >> 5,
          fin,
          unidirectional: (flags & FLAG_UNIDIRECTIONAL) !== 0,
          headerBlock: p.subarray(10),
        };
      case CONTROL.SYN_REPLY:
        return { type: 'SYN_REPLY', streamId: streamFrame(id(0)), fin, headerBlock: p.subarray(4) };
      case CONTROL.HEADERS:
        return { type: 'HEADERS', streamId: streamFrame(id(0)), fin, headerBlock: p.subarray(4) };
      case CONTROL.RST_STREAM:
        return { type: 'RST_STREAM', streamId: streamFrame(id(0)), status: p.readUInt32BE(4) };
      case CONTROL.SETTINGS: {
        const count = p.readUInt32BE(0);
        if (p.length !== 4 + count * 8) throw new SpdyProtocolError(`SETTINGS with ${count} entries in ${p.length} bytes`);
        const entries: SettingsEntry[] = [];
        for (let off = 4; off < p.length; off += 8) {
          entries.push({ flags: p[off], id: p.readUInt32BE(off) & 0xffffff, value: p.readUInt32BE(off + 4) });
        }
        return { type: 'SETTINGS', clear: (flags & 1) !== 0, entries };
      }
      case CONTROL.PING:
        return { type: 'PING', id: p.readUInt32BE(0) };
      case CONTROL.GOAWAY:
        return { type: 'GOAWAY', lastGoodStreamId: id(0), status: p.readUInt32BE(4) };
      case CONTROL.WINDOW_UPDATE:
        return { type: 'WINDOW_UPDATE', streamId: id(0), delta: id(4) };
      default:
        return { type: 'UNKNOWN', frameType: type };
    }
  }
}
