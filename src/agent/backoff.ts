// The kubelet's restart back-off (k8s.io/client-go/util/flowcontrol.Backoff, as used by
// kuberuntime doBackOff): per key, the first retry is free, then 10 s, doubling up to 5 min;
// an entry idle for twice the maximum (10 min: the container ran that long) starts over.

export const DEFAULT_BACKOFF_INITIAL_MS = 10_000;
export const DEFAULT_BACKOFF_MAX_MS = 300_000;

interface Entry {
  backoffMs: number;
  lastUpdate: number;
}

export class Backoff {
  private readonly entries = new Map<string, Entry>();

  constructor(
    readonly initialMs = DEFAULT_BACKOFF_INITIAL_MS,
    readonly maxMs = DEFAULT_BACKOFF_MAX_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** The current back-off of `key` in ms (0 when it has none). */
  get(key: string): number {
    return this.entries.get(key)?.backoffMs ?? 0;
  }

  /** Records a retry at `eventTime`: initial for a new or expired entry, else double (capped). */
  next(key: string, eventTime: number): void {
    const e = this.entries.get(key);
    if (!e || this.hasExpired(eventTime, e.lastUpdate)) this.entries.set(key, { backoffMs: this.initialMs, lastUpdate: this.now() });
    else this.entries.set(key, { backoffMs: Math.min(e.backoffMs * 2, this.maxMs), lastUpdate: this.now() });
  }

  /** Whether a retry for something that happened at `eventTime` must still wait (IsInBackOffSince). */
  isInBackOffSince(key: string, eventTime: number): boolean {
    const e = this.entries.get(key);
    if (!e || this.hasExpired(eventTime, e.lastUpdate)) return false;
    return this.now() - eventTime < e.backoffMs;
  }

  /** Whether something tried at `eventTime` is within the back-off of the last update (IsInBackOffSinceUpdate). */
  isInBackOffSinceUpdate(key: string, eventTime: number): boolean {
    const e = this.entries.get(key);
    if (!e || this.hasExpired(eventTime, e.lastUpdate)) return false;
    return eventTime - e.lastUpdate < e.backoffMs;
  }

  /** When the back-off since the last update ends (ms since the epoch). */
  retryAfterUpdate(key: string): number {
    const e = this.entries.get(key);
    return e ? e.lastUpdate + e.backoffMs : 0;
  }

  /** When the back-off for an event at `eventTime` ends (ms since the epoch). */
  retryAt(key: string, eventTime: number): number {
    return eventTime + this.get(key);
  }

  reset(key: string): void {
    this.entries.delete(key);
  }

  /** Drops the keys that contain `part` (a pod's uid, once the pod is gone). */
  forgetMatching(part: string): void {
    for (const k of this.entries.keys()) if (k.includes(part)) this.entries.delete(k);
  }

  private hasExpired(eventTime: number, lastUpdate: number): boolean {
    return eventTime - lastUpdate > this.maxMs * 2;
  }
}
