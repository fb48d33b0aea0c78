// The CRI calls in flight and when the last one ended. Background work that would compete with
// calls for the CPUs (the pod pool's refills: a clone, an exec, cgroup writes) waits for a quiet
// moment instead: on a 2-CPU node a refill during a StopPodSandbox made the stop 5-7 ms slower.

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

  /** How many ms until `quietMs` will have passed with no call (a guess while calls are in flight); 0: quiet now. */
  untilQuiet(quietMs: number): number {
    if (this.inFlight > 0) return quietMs;
    return Math.max(0, this.lastEnd + quietMs - performance.now());
  }
}
