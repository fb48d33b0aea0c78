// The request cache behind the stream URLs (as the kubelet's streaming
// server): each Exec/Attach/PortForward call parks its request under a random
// single-use token; the HTTP request that follows consumes it. Unused tokens
// expire after the TTL, and the number parked at once is capped.
import { randomBytes } from 'node:crypto';
import { Code, StatusError } from '../errors.js';

export class CacheFullError extends StatusError {
  constructor(max: number) {
    super(Code.RESOURCE_EXHAUSTED, `too many pending stream requests (at most ${max})`);
    this.name = 'CacheFullError';
  }
}

interface Entry<T> {
  value: T;
  expires: number;
}

export class RequestCache<T> {
  // Map keeps insertion order, which is also expiry order: pruning stops at the first live one.
  private readonly entries = new Map<string, Entry<T>>();

  constructor(
    private readonly ttlMs = 60_000,
    private readonly maxInFlight = 1000,
    private readonly now: () => number = Date.now,
  ) {}

  insert(value: T): string {
    this.prune();
    if (this.entries.size >= this.maxInFlight) throw new CacheFullError(this.maxInFlight);
    const token = randomBytes(16).toString('base64url');
    this.entries.set(token, { value, expires: this.now() + this.ttlMs });
    return token;
  }

  /** the request for `token`, once; undefined if unknown, used or expired */
  consume(token: string): T | undefined {
    const e = this.entries.get(token);
    if (!e) return undefined;
    this.entries.delete(token);
    return e.expires > this.now() ? e.value : undefined;
  }

  get size(): number {
    this.prune();
    return this.entries.size;
  }

  private prune(): void {
    const now = this.now();
    for (const [token, e] of this.entries) {
      if (e.expires > now) break;
      this.entries.delete(token);
    }
  }
}
