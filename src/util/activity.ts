// The CRI calls in flight and when the last one ended. Background work that would compete with
// calls for the CPUs (the pod pool's refills: a clone, an exec, cgroup writes; the deletes a
// Remove leaves behind) waits for a quiet moment instead: on a 2-CPU node a refill during a
// StopPodSandbox made the stop 5-7 ms slower.
import { setTimeout as sleep } from 'node:timers/promises';

/** How long without a call counts as a quiet moment (ms). */
export const QUIET_MS = 20;

export class Activity {
  private inFlight = 0;
  private lastEnd = 0;

  begin(): void {
    this.inFlight++;
  }

  end(): void {
    this.inFlight = Math.max(0, this.inFlight - 1);
    this.lastEnd = performance.now();
  }

  /**
   * Resolves once `quietMs` have passed with no call, or after `maxMs` at the latest (calls may
   * never pause), or at once when `signal` aborts (the waiter no longer needs it: its timers go).
   */
  async quiet(quietMs: number, maxMs: number, signal?: AbortSignal): Promise<void> {
    const deadline = performance.now() + maxMs;
    for (;;) {
      const wait = Math.min(this.untilQuiet(quietMs), deadline - performance.now());
      if (wait <= 0 || signal?.aborted) return;
      try {
        await sleep(Math.ceil(wait), undefined, signal ? { signal } : undefined);
      } catch {
        return; // aborted
      }
    }
  }

  /** How many ms until `quietMs` will have passed with no call (a guess while calls are in flight); 0: quiet now. */
  untilQuiet(quietMs: number): number {
    if (this.inFlight > 0) return quietMs;
    return Math.max(0, this.lastEnd + quietMs - performance.now());
  }
}
