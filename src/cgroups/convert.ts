// Pure conversions and parsers for cgroup file contents.

/** v1 "unlimited" memory reads as PAGE_COUNTER_MAX * PAGE_SIZE (≈ 2^63); anything ≥ 2^62 means no limit. */
export const UNLIMITED_THRESHOLD = 2n ** 62n;

/** USER_HZ for cpuacct.stat ticks (fixed at 100 on Linux regardless of CONFIG_HZ). */
export const USER_HZ = 100;

/** runc's cpu.shares → cpu.weight mapping (what kubelet expects on cgroup2). 0 means "not set". */
export function sharesToWeight(shares: number): number {
  if (!shares) return 0;
  // v1 clamps shares to [2, 262144]; clamping first keeps the weight inside cgroup2's [1, 10000].
  const s = Math.min(Math.max(Math.trunc(shares), 2), 262144);
  return 1 + Math.trunc(((s - 2) * 9999) / 262142);
}

/** cgroup2 cpu.max value: "<quota|max> <period>" (period omitted when not given: the kernel keeps its own). */
export function cpuMaxValue(quota: number | undefined, period: number | undefined): string {
  const q = quota && quota > 0 ? String(Math.trunc(quota)) : 'max';
  return period && period > 0 ? `${q} ${Math.trunc(period)}` : q;
}

/**
 * A cpuset list ("0-3,6", as cpuset.cpus and cpuset.mems take it) → its numbers, ascending;
 * undefined when it is not one (a bad range, a stray character).
 */
export function parseCpuList(text: string): number[] | undefined {
  const t = text.trim();
  if (t === '') return [];
  const out = new Set<number>();
  for (const part of t.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) return undefined;
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    // The kernel's own bound on a list (NR_CPUS is at most 8192); a range past it is a typo.
    if (b < a || b >= 8192) return undefined;
    for (let i = a; i <= b; i++) out.add(i);
  }
  return [...out].sort((x, y) => x - y);
}

/** Numbers → a cpuset list, ranges joined ([0, 1, 2, 5] → "0-2,5"). */
export function formatCpuList(nums: number[]): string {
  const sorted = [...new Set(nums)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(i === j ? String(sorted[i]) : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

/** Parse a flat-keyed file ("key value" per line: memory.stat, cpu.stat, cpuacct.stat, memory.events). */
export function parseFlatKeyed(text: string): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const line of text.split('\n')) {
    const m = /^(\S+)\s+(-?\d+)\s*$/.exec(line);
    if (m) out.set(m[1]!, BigInt(m[2]!));
  }
  return out;
}

/**
 * One value of a flat-keyed file, without parsing the rest: the integer on the line that starts
 * with `key` and a blank, or undefined (no such line, or not an integer). The stats sampler wants
 * six of memory.stat's seventy lines; parsing all of them (a regex and a BigInt each) was most of
 * the JS of a full sample. Same value as Number(parseFlatKeyed(text).get(key)).
 */
export function flatKeyedNumber(text: string, key: string): number | undefined {
  for (let from = 0; ; ) {
    const at = text.indexOf(key, from);
    if (at < 0) return undefined;
    from = at + 1;
    if (at > 0 && text.charCodeAt(at - 1) !== 10) continue;
    let i = at + key.length;
    let c = text.charCodeAt(i);
    if (c !== 32 && c !== 9) continue;
    while (c === 32 || c === 9) c = text.charCodeAt(++i);
    const start = i;
    if (c === 45) c = text.charCodeAt(++i); // '-'
    const digits = i;
    while (c >= 48 && c <= 57) c = text.charCodeAt(++i);
    if (i === digits) return undefined;
    const end = i;
    while (c === 32 || c === 9 || c === 13) c = text.charCodeAt(++i);
    if (i < text.length && c !== 10) return undefined;
    return Number(text.slice(start, end));
  }
}

/** Parse a single integer value, or undefined for "max"/empty. */
export function parseIntValue(text: string): bigint | undefined {
  const t = text.trim();
  if (!/^-?\d+$/.test(t)) return undefined;
  return BigInt(t);
}

/** A limit read back from v1 (bytes) or v2 ("max"); undefined = unlimited. */
export function parseLimit(text: string): number | undefined {
  const v = parseIntValue(text);
  if (v === undefined || v < 0n || v >= UNLIMITED_THRESHOLD) return undefined;
  return Number(v);
}

export function toNum(v: bigint | undefined): number | undefined {
  return v === undefined ? undefined : Number(v);
}

/** Parse cgroup.procs / tasks. */
export function parsePids(text: string): number[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^\d+$/.test(l))
    .map(Number);
}
