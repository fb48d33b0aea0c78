// Where a launch's time goes, step by step: each mark() takes the time since the one before.
// Logged at debug level ("launch steps"); hack/bench reads it for the per-step breakdown.
import { performance } from 'node:perf_hooks';

export class Steps {
  private last = performance.now();
  private readonly ms: Record<string, number> = {};

  /** The time since the previous mark (or construction) goes to `name` (added up if repeated). */
  mark(name: string): void {
    const now = performance.now();
    this.ms[name] = Math.round(((this.ms[name] ?? 0) + now - this.last) * 1000) / 1000;
    this.last = now;
  }

  /** ms per step, in the order first marked. */
  fields(): Record<string, number> {
    return { ...this.ms };
  }
}
