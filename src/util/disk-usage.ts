// Bytes and inodes of directories (containers' writable layers), walked in the background at a
// bounded cost, as Mesos' disk/du isolator runs du every container_disk_watch_interval:
//
// - one walk at a time, with synchronous lstat/readdir in slices of at most SLICE_MS, the event
//   loop served between slices: an async call costs ~30 µs of CPU on the main thread and a pool
//   thread and two thread switches, a synchronous one ~2 µs (the async walker was, with 100
//   containers, the largest part of an idle daemon's CPU). The layers sit on the daemon's own
//   work dir, which it writes synchronously anyway;
// - a round walks every directory that is due, never walked ones first, then the longest due;
//   after a round that took d ms the walker idles for d × (1/duty − 1), at least ROUND_GAP_MS:
//   with the default duty of 2 % it walks at most 2 % of the time, however many directories
//   there are, and it wakes a few times a second, not once per directory;
// - a directory is walked again at most every minAgeMs (default 2 s); a new one wakes an idle
//   walker, so a new container gets its first number within a round.
//
// Readers get the last result with the time it was taken; nobody waits for a walk.
import { lstatSync, readdirSync } from 'node:fs';
import { setImmediate as yieldLoop } from 'node:timers/promises';
import type { Logger } from '../log.js';

/** The longest the walker holds the event loop at a time (ms). */
export const SLICE_MS = 2;
/** The shortest idle time between two rounds (ms). */
export const ROUND_GAP_MS = 250;

export interface DiskUsage {
  /** allocated bytes (st_blocks × 512), hard links once */
  bytes: number;
  /** inodes (files, directories, links, whiteouts), the root included */
  inodes: number;
  /** when the walk ended, ms since the epoch */
  at: number;
}

export interface DiskUsageWatcherOptions {
  /** a directory is walked again at most this often (ms, default 2000) */
  minAgeMs?: number;
  /** share of wall time the walker may spend walking (0 < duty ≤ 1, default 0.02) */
  duty?: number;
  log?: Logger;
  /** the walk (tests); default walkDiskUsage */
  walk?: (dir: string, signal: AbortSignal) => Promise<Omit<DiskUsage, 'at'> | undefined>;
}

/**
 * Bytes and inodes under `root`, hard links counted once; undefined when `root` is not there.
 * Entries that vanish during the walk are skipped. An aborted walk is undefined.
 */
export async function walkDiskUsage(root: string, signal?: AbortSignal): Promise<Omit<DiskUsage, 'at'> | undefined> {
  const seen = new Set<string>();
  let bytes = 0;
  let inodes = 0;
  const todo = [root];
  let sliceStart = performance.now();
  while (todo.length) {
    if (performance.now() - sliceStart >= SLICE_MS) {
      await yieldLoop();
      sliceStart = performance.now();
    }
    if (signal?.aborted) return undefined;
    const p = todo.pop()!;
    const st = lstatSafe(p);
    if (!st) {
      if (p === root) return undefined;
      continue;
    }
    if (st.nlink <= 1 || st.isDirectory()) {
      bytes += st.blocks * 512;
      inodes++;
    } else {
      const key = `${st.dev}:${st.ino}`;
      if (!seen.has(key)) {
        seen.add(key);
        bytes += st.blocks * 512;
        inodes++;
      }
    }
    if (st.isDirectory()) {
      let names: string[];
      try {
        names = readdirSync(p);
      } catch {
        continue;
      }
      for (const n of names) todo.push(`${p}/${n}`);
    }
  }
  return signal?.aborted ? undefined : { bytes, inodes };
}

/** lstat, or undefined when the entry is gone or unreadable (the walk skips it). */
function lstatSafe(p: string) {
  try {
    return lstatSync(p, { throwIfNoEntry: false });
  } catch {
    return undefined;
  }
}

interface Watched {
  dir: string;
  last?: DiskUsage;
  /** when it is due (ms since the epoch): at registration, then minAgeMs after each walk */
  dueAt: number;
}

export class DiskUsageWatcher {
  private readonly watched = new Map<string, Watched>();
  private readonly minAgeMs: number;
  private readonly duty: number;
  private readonly walk: (dir: string, signal: AbortSignal) => Promise<Omit<DiskUsage, 'at'> | undefined>;
  /** ends a walk under way at stop() */
  private abort = new AbortController();
  private running = false;
  private interrupt?: () => void;
  private wakeable = false;
  private loop?: Promise<void>;
  /** the walker's total busy time (ms), for the cost it is allowed */
  busyMs = 0;

  constructor(private readonly opts: DiskUsageWatcherOptions = {}) {
    this.minAgeMs = opts.minAgeMs ?? 2000;
    this.duty = Math.min(1, Math.max(0.001, opts.duty ?? 0.02));
    this.walk = opts.walk ?? walkDiskUsage;
  }

  /** Walk `dir` under `key` from now on (again: the same dir keeps its result). */
  watch(key: string, dir: string): void {
    const cur = this.watched.get(key);
    if (cur?.dir === dir) return;
    this.watched.set(key, { dir, dueAt: Date.now() });
    if (this.wakeable) this.interrupt?.();
  }

  unwatch(key: string): void {
    this.watched.delete(key);
  }

  /** The last result for `key`, if a walk has finished. */
  get(key: string): DiskUsage | undefined {
    return this.watched.get(key)?.last;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.abort = new AbortController();
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.abort.abort();
    this.interrupt?.();
    await this.loop;
  }

  /** The directories due, never walked first, then the longest due; else the ms until one is. */
  private due(now: number): { key: string; w: Watched }[] | number {
    const due: { key: string; w: Watched }[] = [];
    let wait = 1000;
    for (const [key, w] of this.watched) {
      if (w.dueAt > now) wait = Math.min(wait, w.dueAt - now);
      else due.push({ key, w });
    }
    if (!due.length) return Math.max(1, wait);
    return due.sort((x, y) => (!x.w.last === !y.w.last ? x.w.dueAt - y.w.dueAt : x.w.last ? 1 : -1));
  }

  /** Sleep `ms`; stop() ends it, and watch() too when `wakeable` (not the idle time after a round). */
  private sleep(ms: number, wakeable: boolean): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      t.unref();
      const self = this;
      function done() {
        clearTimeout(t);
        self.interrupt = undefined;
        self.wakeable = false;
        resolve();
      }
      this.interrupt = done;
      this.wakeable = wakeable;
    });
  }

  private async run(): Promise<void> {
    while (this.running) {
      const round = this.due(Date.now());
      if (typeof round === 'number') {
        await this.sleep(round, true);
        continue;
      }
      const t0 = performance.now();
      for (const n of round) {
        if (!this.running) break;
        // Unwatched while the round went on: not walked, and no result kept for it.
        if (this.watched.get(n.key) !== n.w) continue;
        let u: Omit<DiskUsage, 'at'> | undefined;
        try {
          u = await this.walk(n.w.dir, this.abort.signal);
        } catch (err) {
          this.opts.log?.debug('disk usage walk failed', { dir: n.w.dir, error: String(err) });
        }
        if (!this.running) break;
        n.w.dueAt = Date.now() + this.minAgeMs;
        // A dir that is gone has no usage (its last result is dropped, not kept stale).
        n.w.last = u ? { ...u, at: Date.now() } : undefined;
      }
      const took = performance.now() - t0;
      this.busyMs += took;
      if (!this.running) break;
      await this.sleep(Math.max(ROUND_GAP_MS, took * (1 / this.duty - 1)), false);
    }
  }
}
