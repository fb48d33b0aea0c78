// HTTP/2 framing (RFC 9113 §4, §6): the constants and the few frames the
// front writes itself.

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const FRAME_HEADER_SIZE = 9;
/** The smallest SETTINGS_MAX_FRAME_SIZE there is: a frame this big fits any peer. */
export const MIN_MAX_FRAME_SIZE = 16384;

export const FrameType = { DATA: 0x0, HEADERS: 0x1, SETTINGS: 0x4, PUSH_PROMISE: 0x5, GOAWAY: 0x7, CONTINUATION: 0x9 } as const;
export const Flag = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4, PADDED: 0x8, PRIORITY: 0x20 } as const;
export const ErrorCode = { PROTOCOL_ERROR: 0x1, INTERNAL_ERROR: 0x2, FRAME_SIZE_ERROR: 0x6, COMPRESSION_ERROR: 0x9, ENHANCE_YOUR_CALM: 0xb } as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];
export const Setting = { HEADER_TABLE_SIZE: 0x1, MAX_FRAME_SIZE: 0x5 } as const;

/** A violation that ends the connection with a GOAWAY carrying `code`. */
export class ConnectionError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface FrameHeader {
  length: number;
  type: number;
  flags: number;
  streamId: number;
}

export function readFrameHeader(b: Buffer): FrameHeader {
  return { length: b.readUIntBE(0, 3), type: b[3]!, flags: b[4]!, streamId: b.readUInt32BE(5) & 0x7fffffff };
}

function frameHeader(out: Buffer, length: number, type: number, flags: number, streamId: number): void {
  out.writeUIntBE(length, 0, 3);
  out[3] = type;
  out[4] = flags;
  out.writeUInt32BE(streamId, 5);
}

export function goawayFrame(lastStreamId: number, code: ErrorCode, debug: string): Buffer {
  const text = Buffer.from(debug.slice(0, 200));
  const f = Buffer.alloc(FRAME_HEADER_SIZE + 8 + text.length);
  frameHeader(f, 8 + text.length, FrameType.GOAWAY, 0, 0);
  f.writeUInt32BE(lastStreamId, 9);
  f.writeUInt32BE(code, 13);
  text.copy(f, 17);
  return f;
}

/**
 * One header block as a HEADERS frame and as many CONTINUATION frames as it
 * takes, none over MIN_MAX_FRAME_SIZE bytes of payload. `priority` is the 5
 * bytes of the original HEADERS' PRIORITY fields, if it had them.
 */
export function headerFrames(streamId: number, block: Buffer, endStream: boolean, priority?: Buffer): Buffer {
  const prio = priority?.length ?? 0;
  const frames = Math.max(1, Math.ceil((block.length + prio) / MIN_MAX_FRAME_SIZE));
  const out = Buffer.allocUnsafe(frames * FRAME_HEADER_SIZE + prio + block.length);
  let p = 0;
  let taken = 0;
  for (let i = 0; i < frames; i++) {
    const room = MIN_MAX_FRAME_SIZE - (i === 0 ? prio : 0);
    const n = Math.min(room, block.length - taken);
    const last = i === frames - 1;
    const flags = (last ? Flag.END_HEADERS : 0) | (i === 0 ? (endStream ? Flag.END_STREAM : 0) | (prio ? Flag.PRIORITY : 0) : 0);
    frameHeader(out.subarray(p), n + (i === 0 ? prio : 0), i === 0 ? FrameType.HEADERS : FrameType.CONTINUATION, flags, streamId);
    p += FRAME_HEADER_SIZE;
    if (i === 0 && priority) p += priority.copy(out, p);
    p += block.copy(out, p, taken, taken + n);
    taken += n;
  }
  return out;
}
