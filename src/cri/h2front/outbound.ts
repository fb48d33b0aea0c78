// Server→client bytes go on untouched. This only follows their frame
// boundaries, reading 9-byte frame headers (so the front can put a GOAWAY
// between two frames), and the server's SETTINGS, whose limits are what the
// client's encoder and frames may use.
import { Flag, FRAME_HEADER_SIZE, FrameType, readFrameHeader } from './frames.js';

export class Outbound {
  private readonly hdr = Buffer.alloc(FRAME_HEADER_SIZE);
  private hdrFill = 0;
  private remaining = 0;
  /** the payload of a SETTINGS frame being read */
  private settings?: Buffer;
  private settingsFill = 0;

  constructor(private readonly onSetting: (id: number, value: number) => void) {}

  get atBoundary(): boolean {
    return this.hdrFill === 0 && this.remaining === 0;
  }

  /**
   * Follow the frames in chunk. With stopAtBoundary, stop at the first frame
   * boundary and return how many bytes of chunk lie before it (0 when already
   * at one); otherwise chunk.length.
   */
  feed(chunk: Buffer, stopAtBoundary = false): number {
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      if (stopAtBoundary && this.atBoundary) return i;
      if (this.remaining > 0) {
        const k = Math.min(this.remaining, n - i);
        if (this.settings) this.settingsFill += chunk.copy(this.settings, this.settingsFill, i, i + k);
        i += k;
        this.remaining -= k;
        if (this.remaining === 0 && this.settings) this.endSettings();
        continue;
      }
      const k = Math.min(FRAME_HEADER_SIZE - this.hdrFill, n - i);
      chunk.copy(this.hdr, this.hdrFill, i, i + k);
      this.hdrFill += k;
      i += k;
      if (this.hdrFill < FRAME_HEADER_SIZE) break;
      this.hdrFill = 0;
      const { length, type, flags } = readFrameHeader(this.hdr);
      this.remaining = length;
      // Node's server sends SETTINGS of a few entries; a malformed one is nghttp2's own bug, and ignored here
      if (type === FrameType.SETTINGS && !(flags & Flag.ACK) && length > 0 && length % 6 === 0 && length <= 600) {
        this.settings = Buffer.alloc(length);
        this.settingsFill = 0;
      }
    }
    return n;
  }

  private endSettings(): void {
    const s = this.settings!;
    this.settings = undefined;
    for (let p = 0; p + 6 <= s.length; p += 6) this.onSetting(s.readUInt16BE(p), s.readUInt32BE(p + 2));
  }
}
