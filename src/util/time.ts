// Wall clock with ns resolution: the epoch at start plus the monotonic clock since.
const epochBase = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();

export function nowNanos(): string {
  return (epochBase + process.hrtime.bigint()).toString();
}
