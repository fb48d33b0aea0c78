// Pure statistics for hack/bench: percentiles, summaries, ratios, and the
// phase breakdown parsed from cri-mesos's info log. No I/O here.

export interface Summary {
  n: number;
  min: number;
  p25: number;
  p50: number;
  p75: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

/**
 * The q-quantile (0 ≤ q ≤ 1) of ascending `sorted`, linearly interpolated between
 * closest ranks (Hyndman & Fan type 7: numpy's and Excel's default).
 */
export function quantileSorted(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile ${q} is outside [0, 1]`);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sorted[lo]!;
  const b = sorted[hi]!;
  return a + (b - a) * (pos - lo);
}

/** p in percent (0–100) of unsorted `xs`. */
export function percentile(xs: readonly number[], p: number): number {
  return quantileSorted([...xs].sort((a, b) => a - b), p / 100);
}

export function summarize(xs: readonly number[]): Summary | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => quantileSorted(s, p);
  return {
    n: s.length,
    min: s[0]!,
    p25: q(0.25),
    p50: q(0.5),
    p75: q(0.75),
    p95: q(0.95),
    p99: q(0.99),
    max: s[s.length - 1]!,
    mean: s.reduce((a, b) => a + b, 0) / s.length,
  };
}

/** b / a, or undefined when either side is missing or a is 0. */
export function ratio(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || a === 0) return undefined;
  return b / a;
}

/** Operations per second for `count` operations finished in `wallMs`. */
export function throughput(count: number, wallMs: number): number {
  return wallMs > 0 ? (count * 1000) / wallMs : NaN;
}

/** The order in which two targets take their turns: A B B A A B B A … (so neither is always second). */
export function interleaveOrder(rounds: number, targets: number): number[][] {
  const out: number[][] = [];
  for (let r = 0; r < rounds; r++) {
    const order = Array.from({ length: targets }, (_, i) => i);
    out.push(r % 2 === 0 ? order : order.reverse());
  }
  return out;
}

/** Split n iterations into rounds of at most `size`. */
export function rounds(n: number, size: number): number[] {
  const out: number[] = [];
  const s = Math.max(1, Math.floor(size));
  for (let left = n; left > 0; left -= s) out.push(Math.min(s, left));
  return out;
}

/** CPU seconds from /proc/<pid>/stat text: utime + stime (and the children's, reaped), given clock ticks per second. */
export function cpuSecondsFromStat(stat: string, ticksPerSecond: number): { self: number; children: number } {
  // comm may contain spaces and parentheses: fields start after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); utime is field 14 → rest[11]
  const f = (i: number) => Number(rest[i - 3]);
  return { self: (f(14) + f(15)) / ticksPerSecond, children: (f(16) + f(17)) / ticksPerSecond };
}

// ---- cri-mesos log phases ---------------------------------------------------

export interface PhaseSample {
  /** "pod" or "container" */
  kind: 'pod' | 'container';
  /** e.g. "PREPARING→ISOLATING" */
  phase: string;
  ms: number;
}

const LOG_LINE = /^time="([^"]+)" level=\w+ msg="([^"]*)"(.*)$/;

/** key=value pairs of a logfmt tail (values may be quoted). */
export function logfmtFields(rest: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of rest.matchAll(/(\w[\w.-]*)=("(?:[^"\\]|\\.)*"|\S*)/g)) {
    const v = m[2]!;
    out[m[1]!] = v.startsWith('"') ? v.slice(1, -1).replace(/\\"/g, '"') : v;
  }
  return out;
}

/** When (epoch ms) cri-mesos's text log first says `msg`; null if it never does. */
export function logTime(log: string, msg: string): number | null {
  for (const line of log.split('\n')) {
    const f = logfmtFields(line);
    if (f.msg === msg && f.time) return Date.parse(f.time);
  }
  return null;
}

/**
 * Durations between consecutive "container state" transitions per container, from cri-mesos's info log.
 * Waiting is left out: a container's FETCHING→RUNNING/DESTROYING (created, waiting for StartContainer) and
 * RUNNING→DESTROYING (its lifetime).
 * For pods, RUNNING→ready is the time from the pause process running until "pod sandbox ready".
 */
export function phasesFromLog(log: string): PhaseSample[] {
  const last = new Map<string, { state: string; t: number }>();
  const out: PhaseSample[] = [];
  for (const line of log.split('\n')) {
    const m = LOG_LINE.exec(line);
    if (!m) continue;
    const t = Date.parse(m[1]!);
    const msg = m[2]!;
    const f = logfmtFields(m[3]!);
    if (msg === 'container state' && f.container && f.state) {
      const kind = f.container.includes('.') ? 'container' : 'pod';
      const prev = last.get(f.container);
      const waiting =
        (kind === 'container' && prev?.state === 'FETCHING' && (f.state === 'RUNNING' || f.state === 'DESTROYING')) ||
        (prev?.state === 'RUNNING' && f.state === 'DESTROYING');
      if (prev && !waiting) {
        out.push({ kind, phase: `${prev.state}→${f.state}`, ms: t - prev.t });
      }
      last.set(f.container, { state: f.state, t });
    } else if ((msg === 'CNI ADD' || msg === 'CNI DEL') && f.pod && f.ms) {
      // inside PREPARING→ISOLATING (ADD) and DESTROYING→TERMINATED (DEL): the plugins' own time
      out.push({ kind: 'pod', phase: `${msg} (plugins)`, ms: Number(f.ms) });
    } else if (msg === 'pod sandbox ready' && f.pod) {
      const prev = last.get(f.pod);
      if (prev) out.push({ kind: 'pod', phase: `${prev.state}→ready`, ms: t - prev.t });
    }
  }
  return out;
}

/** Server-side RPC durations ("response" lines with ms=…) per RPC name. */
export function rpcTimesFromLog(log: string): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const line of log.split('\n')) {
    const m = LOG_LINE.exec(line);
    if (!m || m[2] !== 'response') continue;
    const f = logfmtFields(m[3]!);
    if (!f.rpc || !f.ms) continue;
    (out[f.rpc] ??= []).push(Number(f.ms));
  }
  return out;
}

/** Group phase samples into summaries keyed by "kind phase", in first-seen order. */
export function summarizePhases(samples: readonly PhaseSample[]): { kind: string; phase: string; summary: Summary }[] {
  const groups = new Map<string, { kind: string; phase: string; ms: number[] }>();
  for (const s of samples) {
    const k = `${s.kind} ${s.phase}`;
    let g = groups.get(k);
    if (!g) groups.set(k, (g = { kind: s.kind, phase: s.phase, ms: [] }));
    g.ms.push(s.ms);
  }
  return [...groups.values()].map((g) => ({ kind: g.kind, phase: g.phase, summary: summarize(g.ms)! }));
}
