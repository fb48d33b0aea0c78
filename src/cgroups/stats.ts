// Usage of one cgroup, read from its files: CPU, memory, swap, processes and pressure (PSI).
// Knows nothing of containers: callers give the directories (v1: one per controller; cgroup2:
// one). The files are read synchronously on purpose: cgroupfs answers from kernel memory and
// never waits on a disk, and a synchronous read costs about 15 µs of CPU where an async one
// (libuv's thread pool: open, fstat, read, close) costs about ten times that. The stats sampler
// reads these files for every container every window, so this is what keeps it cheap.
//
// Files whose values change only when a limit is written (memory.limit_in_bytes, memory.max, …)
// or that only the pod metrics show (user/system split, throttling, max usage, failcnt, kernel
// memory, OOM kills, threads) are "slow": read at most every SLOW_FILE_TTL_MS (30 s: each read
// of one is an open of a kernfs file, ~57 µs on this VM's v1 hierarchies) and kept in between,
// which halves what a sample reads. Writing a limit (the isolators' update(), the
// docker containerizer's) forgets the cgroup's slow files, so a new limit shows at once.
import { closeSync, constants as fsc, openSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { flatKeyedNumber, parseIntValue, parseLimit, toNum, USER_HZ } from './convert.js';
import type { Cgroups } from './cgroups.js';

/** One line of a pressure file ("some" or "full"); total in µs, as the kernel counts it. */
export interface PsiData {
  avg10: number;
  avg60: number;
  avg300: number;
  total: number;
}

/** A cgroup2 <resource>.pressure file. `full` is absent where the kernel has no such line. */
export interface Psi {
  some: PsiData;
  full?: PsiData;
}

/** What the readers below report (field names as Mesos' ResourceStatistics, which extends this). */
export interface CgroupUsage {
  /** cumulative CPU time, ns (cpuacct.usage; cpu.stat usage_usec × 1000) */
  cpuUsageNanos?: number;
  cpusUserTimeSecs?: number;
  cpusSystemTimeSecs?: number;
  cpusNrPeriods?: number;
  cpusNrThrottled?: number;
  cpusThrottledTimeSecs?: number;
  /** memory.usage_in_bytes (v1, with page cache) / memory.current (v2) */
  memTotalBytes?: number;
  /** anonymous memory: total_rss (v1) / anon (v2) */
  memRssBytes?: number;
  /** page cache: total_cache (v1) / file (v2) */
  memCacheBytes?: number;
  memInactiveFileBytes?: number;
  memMappedFileBytes?: number;
  /** kernel memory charged to the cgroup: memory.kmem.usage_in_bytes (v1) / kernel (v2, else kernel_stack + slab) */
  memKernelBytes?: number;
  /** undefined: no limit */
  memLimitBytes?: number;
  /** highest usage seen: memory.max_usage_in_bytes (v1) / memory.peak (v2, Linux 5.19+) */
  memMaxUsageBytes?: number;
  /** times usage hit the limit: memory.failcnt (v1) / memory.events max (v2) */
  memFailcnt?: number;
  memPageFaults?: number;
  memMajorPageFaults?: number;
  /** swap in use: memsw − usage (v1, needs swap accounting) / memory.swap.current (v2) */
  memSwapBytes?: number;
  /** swap limit on its own (v1: memsw limit − memory limit); undefined: no limit */
  memSwapLimitBytes?: number;
  /** processes the OOM killer killed in the cgroup: memory.oom_control / memory.events oom_kill */
  memOomKills?: number;
  /** processes (cgroup.procs lines) */
  processes?: number;
  /** tasks: pids.current (every thread) */
  threads?: number;
  /** cgroup2 only: cgroup v1 has no per-cgroup pressure files */
  cpuPressure?: Psi;
  memoryPressure?: Psi;
  ioPressure?: Psi;
}

/** Where one cgroup's files are. */
export type CgroupDirs =
  | { version: 1; cpu?: string; cpuacct?: string; memory?: string; pids?: string }
  | {
      version: 2;
      dir: string;
      /** where its processes are (Mesos' layout puts them in <dir>/leaf); default dir */
      procsDir?: string;
    };

/** One buffer for every read: the files are small, and the reads synchronous. */
const buf = Buffer.allocUnsafe(64 * 1024);

/**
 * The CPU counter files (`keep`: the one file per object the stats sampler reads every second)
 * are kept open and read with pread from offset 0, which makes the kernel render them anew
 * (seq_file restarts at 0): an open + close around each read cost 16-20 µs, a pread 3-11 µs
 * (this VM, v1 hierarchies), and opens cost more with many cgroups. So are the memory files a
 * full sample reads every fifth window (usage, memory.stat, swap), for the same saving per
 * read. Not the slow files or every file: 1000 containers' dozen files
 * each made the cache thrash (open and close were a fifth of a core); four per object stay under
 * the cap up to 2000 objects. At most MAX_OPEN_STAT_FILES, least recently read closed first;
 * a file not read for IDLE_MS is closed, and removeCgroup closes a cgroup's before its rmdir
 * (an open file keeps a removed memory cgroup's memory in the kernel). /proc files are never
 * kept (a pid is reused), nor pid lists (NOT_KEPT).
 */
export const MAX_OPEN_STAT_FILES = 8192;
/** v1 keeps a pid list per open file and does not load it again at offset 0: these are opened per read. */
const NOT_KEPT = /\/(cgroup\.procs|cgroup\.threads|tasks)$/;
const IDLE_MS = 30_000;
const openStatFiles = new Map<string, { fd: number; used: number }>();
let lastIdleSweep = 0;

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // nothing to do about a failed close of a read-only fd
  }
}

/** Close the kept files of `dir` and of its descendants (before it is removed). */
export function closeStatFiles(dir: string): void {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  for (const [path, e] of openStatFiles) {
    if (path.startsWith(prefix)) {
      closeQuietly(e.fd);
      openStatFiles.delete(path);
    }
  }
}

/** How many control files are kept open (tests). */
export function openStatFileCount(): number {
  return openStatFiles.size;
}

function keptFd(path: string, now: number): number {
  const hit = openStatFiles.get(path);
  if (hit) {
    // Map order is the LRU order: move to the end.
    openStatFiles.delete(path);
    hit.used = now;
    openStatFiles.set(path, hit);
    return hit.fd;
  }
  if (now - lastIdleSweep > IDLE_MS / 3) {
    lastIdleSweep = now;
    for (const [p, e] of openStatFiles) {
      if (now - e.used < IDLE_MS) break;
      closeQuietly(e.fd);
      openStatFiles.delete(p);
    }
  }
  const fd = openSync(path, fsc.O_RDONLY);
  if (openStatFiles.size >= MAX_OPEN_STAT_FILES) {
    const [oldest, e] = openStatFiles.entries().next().value as [string, { fd: number }];
    closeQuietly(e.fd);
    openStatFiles.delete(oldest);
  }
  openStatFiles.set(path, { fd, used: now });
  return fd;
}

/** Read from offset 0 into `buf`; a file that fills it is read again whole. */
function preadAll(fd: number, path: string): string {
  let n = 0;
  for (;;) {
    const r = readSync(fd, buf, n, buf.length - n, n);
    if (r === 0) break;
    n += r;
    if (n === buf.length) return readFileSync(path, 'utf8');
  }
  return buf.toString('utf8', 0, n);
}

let controlFileReads = 0;

/** How many control files this process has read (the stats sampler reports it per pass). */
export function statFileReads(): number {
  return controlFileReads;
}

/** The text of a small control file (no fstat, no allocation but the string). libuv opens with O_CLOEXEC. */
function readSmall(path: string, keep: boolean): string {
  controlFileReads++;
  if (!keep || path.startsWith('/proc/') || NOT_KEPT.test(path)) {
    const fd = openSync(path, fsc.O_RDONLY);
    try {
      return preadAll(fd, path);
    } finally {
      closeSync(fd);
    }
  }
  const fd = keptFd(path, Date.now());
  try {
    return preadAll(fd, path);
  } catch (e) {
    // The cgroup went away under the kept fd (ENODEV), or the fd is no longer good: drop it and
    // open the path once more, which tells ENOENT when the cgroup is gone.
    const kept = openStatFiles.get(path);
    if (kept?.fd === fd) {
      openStatFiles.delete(path);
      closeQuietly(fd);
    }
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENODEV' && code !== 'EBADF' && code !== 'ESTALE') throw e;
    const again = keptFd(path, Date.now());
    return preadAll(again, path);
  }
}

/** The file's text, or undefined when the cgroup or the file is not there (controller absent, cgroup gone). */
export function readStatFile(dir: string | undefined, file: string, keep = false): string | undefined {
  if (dir === undefined) return undefined;
  try {
    return readSmall(`${dir}/${file}`, keep);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // ENODEV / EOPNOTSUPP: a pressure file of a kernel booted with psi=0.
    if (code === 'ENOENT' || code === 'ENODEV' || code === 'EOPNOTSUPP' || code === 'ENOTSUP') return undefined;
    throw e;
  }
}

/** How long a slow file's text is kept (ms). */
export const SLOW_FILE_TTL_MS = 30_000;

const slowFiles = new Map<string, { text: string | undefined; at: number }>();
let lastSweep = 0;

/** readStatFile for a slow file: the text read within the last SLOW_FILE_TTL_MS, else read now. */
export function readSlowFile(dir: string | undefined, file: string, now = Date.now()): string | undefined {
  if (dir === undefined) return undefined;
  if (now - lastSweep > SLOW_FILE_TTL_MS) {
    for (const [k, v] of slowFiles) if (now - v.at >= SLOW_FILE_TTL_MS) slowFiles.delete(k);
    lastSweep = now;
  }
  const key = `${dir}/${file}`;
  const hit = slowFiles.get(key);
  if (hit && now - hit.at < SLOW_FILE_TTL_MS) return hit.text;
  const text = readStatFile(dir, file);
  slowFiles.set(key, { text, at: now });
  return text;
}

/** Forget the slow files kept of the cgroup `dir` (a limit was written). */
export function forgetSlowFiles(dir: string): void {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  for (const k of slowFiles.keys()) if (k.startsWith(prefix)) slowFiles.delete(k);
}

function num(text: string | undefined): number | undefined {
  return text === undefined ? undefined : toNum(parseIntValue(text));
}

function drop<T extends object>(o: T): T {
  for (const k of Object.keys(o) as Array<keyof T>) if (o[k] === undefined) delete o[k];
  return o;
}

/** Parse a pressure file: "some avg10=0.12 avg60=0.05 avg300=0.01 total=12345" (and a "full" line). */
export function parsePsi(text: string): Psi | undefined {
  const lines: Partial<Record<'some' | 'full', PsiData>> = {};
  for (const line of text.split('\n')) {
    const m = /^(some|full)\s+(.*)$/.exec(line.trim());
    if (!m) continue;
    const kv = Object.fromEntries(
      m[2]!
        .split(/\s+/)
        .map((p) => p.split('='))
        .filter((p) => p.length === 2),
    ) as Record<string, string>;
    const avg10 = Number(kv.avg10);
    const avg60 = Number(kv.avg60);
    const avg300 = Number(kv.avg300);
    const total = Number(kv.total);
    if (![avg10, avg60, avg300, total].every(Number.isFinite)) continue;
    lines[m[1] as 'some' | 'full'] = { avg10, avg60, avg300, total };
  }
  if (!lines.some) return undefined;
  return lines.full ? { some: lines.some, full: lines.full } : { some: lines.some };
}

/** cpu.pressure, memory.pressure and io.pressure of a cgroup2 cgroup (absent where the kernel has no PSI). */
export function readPressure(dir: string): Pick<CgroupUsage, 'cpuPressure' | 'memoryPressure' | 'ioPressure'> {
  const one = (file: string) => {
    const t = readStatFile(dir, file);
    return t === undefined ? undefined : parsePsi(t);
  };
  return drop({ cpuPressure: one('cpu.pressure'), memoryPressure: one('memory.pressure'), ioPressure: one('io.pressure') });
}

/** v1: cpuacct.usage and cpuacct.stat (ticks of USER_HZ), cpu.stat (throttling, ns). */
export function readCpuV1(cpuacctDir: string | undefined, cpuDir: string | undefined): CgroupUsage {
  const out: CgroupUsage = { cpuUsageNanos: num(readStatFile(cpuacctDir, 'cpuacct.usage', true)) };
  const stat = readSlowFile(cpuacctDir, 'cpuacct.stat');
  if (stat !== undefined) {
    const user = flatKeyedNumber(stat, 'user');
    if (user !== undefined) out.cpusUserTimeSecs = user / USER_HZ;
    const system = flatKeyedNumber(stat, 'system');
    if (system !== undefined) out.cpusSystemTimeSecs = system / USER_HZ;
  }
  const cpuStat = readSlowFile(cpuDir, 'cpu.stat');
  if (cpuStat !== undefined) {
    out.cpusNrPeriods = flatKeyedNumber(cpuStat, 'nr_periods');
    out.cpusNrThrottled = flatKeyedNumber(cpuStat, 'nr_throttled');
    const t = flatKeyedNumber(cpuStat, 'throttled_time'); // ns
    if (t !== undefined) out.cpusThrottledTimeSecs = t / 1e9;
  }
  return drop(out);
}

/** cgroup2: cpu.stat (µs) and the cpu and io pressure. */
export function readCpuV2(dir: string): CgroupUsage {
  const out: CgroupUsage = {};
  const text = readStatFile(dir, 'cpu.stat', true);
  if (text !== undefined) {
    const usec = flatKeyedNumber(text, 'usage_usec');
    if (usec !== undefined) out.cpuUsageNanos = usec * 1000;
    const user = flatKeyedNumber(text, 'user_usec');
    if (user !== undefined) out.cpusUserTimeSecs = user / 1e6;
    const sys = flatKeyedNumber(text, 'system_usec');
    if (sys !== undefined) out.cpusSystemTimeSecs = sys / 1e6;
    out.cpusNrPeriods = flatKeyedNumber(text, 'nr_periods');
    out.cpusNrThrottled = flatKeyedNumber(text, 'nr_throttled');
    const thr = flatKeyedNumber(text, 'throttled_usec');
    if (thr !== undefined) out.cpusThrottledTimeSecs = thr / 1e6;
  }
  const p = readPressure(dir);
  if (p.cpuPressure) out.cpuPressure = p.cpuPressure;
  if (p.ioPressure) out.ioPressure = p.ioPressure;
  return drop(out);
}

type MemoryStatField = 'memRssBytes' | 'memCacheBytes' | 'memInactiveFileBytes' | 'memMappedFileBytes' | 'memPageFaults' | 'memMajorPageFaults';
/** The memory.stat key of each field both versions report (v1: its hierarchical total_* lines). */
const MEMORY_STAT_V1: readonly (readonly [MemoryStatField, string])[] = [
  ['memRssBytes', 'total_rss'],
  ['memCacheBytes', 'total_cache'],
  ['memInactiveFileBytes', 'total_inactive_file'],
  ['memMappedFileBytes', 'total_mapped_file'],
  ['memPageFaults', 'total_pgfault'],
  ['memMajorPageFaults', 'total_pgmajfault'],
];
const MEMORY_STAT_V2: readonly (readonly [MemoryStatField, string])[] = [
  ['memRssBytes', 'anon'],
  ['memCacheBytes', 'file'],
  ['memInactiveFileBytes', 'inactive_file'],
  ['memMappedFileBytes', 'file_mapped'],
  ['memPageFaults', 'pgfault'],
  ['memMajorPageFaults', 'pgmajfault'],
];

function pickMemoryStat(out: CgroupUsage, text: string, keys: readonly (readonly [MemoryStatField, string])[]): void {
  for (const [field, key] of keys) out[field] = flatKeyedNumber(text, key);
}

/**
 * v1 memory. memory.stat's total_* counters are hierarchical (a pod's include its containers').
 * Swap is memsw − usage, present only with swap accounting (memory.memsw.*).
 */
export function readMemoryV1(dir: string): CgroupUsage {
  const usageText = readStatFile(dir, 'memory.usage_in_bytes', true);
  if (usageText === undefined) return {};
  const usage = parseIntValue(usageText);
  const out: CgroupUsage = { memTotalBytes: toNum(usage) };
  const statText = readStatFile(dir, 'memory.stat', true);
  if (statText !== undefined) pickMemoryStat(out, statText, MEMORY_STAT_V1);
  const limitText = readSlowFile(dir, 'memory.limit_in_bytes');
  if (limitText !== undefined) out.memLimitBytes = parseLimit(limitText);
  out.memMaxUsageBytes = num(readSlowFile(dir, 'memory.max_usage_in_bytes'));
  out.memFailcnt = num(readSlowFile(dir, 'memory.failcnt'));
  out.memKernelBytes = num(readSlowFile(dir, 'memory.kmem.usage_in_bytes'));
  const oom = readSlowFile(dir, 'memory.oom_control');
  if (oom !== undefined) out.memOomKills = flatKeyedNumber(oom, 'oom_kill');
  const memsw = num(readStatFile(dir, 'memory.memsw.usage_in_bytes', true));
  if (memsw !== undefined && out.memTotalBytes !== undefined) {
    out.memSwapBytes = Math.max(0, memsw - out.memTotalBytes);
    const swLimit = parseLimit(readSlowFile(dir, 'memory.memsw.limit_in_bytes') ?? 'max');
    if (swLimit !== undefined && out.memLimitBytes !== undefined) out.memSwapLimitBytes = Math.max(0, swLimit - out.memLimitBytes);
  }
  return drop(out);
}

/** cgroup2 memory (memory.stat is hierarchical) and memory pressure. */
export function readMemoryV2(dir: string): CgroupUsage {
  const current = readStatFile(dir, 'memory.current', true);
  if (current === undefined) return {};
  const out: CgroupUsage = { memTotalBytes: num(current) };
  const statText = readStatFile(dir, 'memory.stat', true);
  if (statText !== undefined) {
    pickMemoryStat(out, statText, MEMORY_STAT_V2);
    // "kernel" since Linux 5.18; before, its largest parts.
    const stack = flatKeyedNumber(statText, 'kernel_stack');
    const slab = flatKeyedNumber(statText, 'slab');
    out.memKernelBytes = flatKeyedNumber(statText, 'kernel') ?? (stack !== undefined || slab !== undefined ? (stack ?? 0) + (slab ?? 0) : undefined);
  }
  out.memLimitBytes = parseLimit(readSlowFile(dir, 'memory.max') ?? 'max');
  out.memMaxUsageBytes = num(readSlowFile(dir, 'memory.peak'));
  const events = readSlowFile(dir, 'memory.events');
  if (events !== undefined) {
    out.memFailcnt = flatKeyedNumber(events, 'max');
    out.memOomKills = flatKeyedNumber(events, 'oom_kill');
  }
  out.memSwapBytes = num(readStatFile(dir, 'memory.swap.current', true));
  const swMax = readSlowFile(dir, 'memory.swap.max');
  if (swMax !== undefined) out.memSwapLimitBytes = parseLimit(swMax);
  const p = readStatFile(dir, 'memory.pressure');
  if (p !== undefined) out.memoryPressure = parsePsi(p);
  return drop(out);
}

/** pids.current (tasks: threads too) and the processes listed in cgroup.procs of `procsDir`. */
export function readPids(pidsDir: string | undefined, procsDir: string | undefined = pidsDir): CgroupUsage {
  const out: CgroupUsage = { threads: num(readSlowFile(pidsDir, 'pids.current')) };
  const procs = readStatFile(procsDir, 'cgroup.procs');
  if (procs !== undefined) out.processes = countLines(procs);
  return drop(out);
}

/** The non-empty lines (cgroup.procs: one pid per line), without splitting the text. */
function countLines(text: string): number {
  let n = 0;
  let blank = true;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10) {
      if (!blank) n++;
      blank = true;
    } else if (c !== 32 && c !== 9 && c !== 13) blank = false;
  }
  return blank ? n : n + 1;
}

/** Everything above for one cgroup (what a cgroup outside the isolators, such as a docker container's, gives); cpuOnly: readCpuV1/V2 alone. */
export function readCgroupUsage(dirs: CgroupDirs, cpuOnly = false): CgroupUsage {
  if (cpuOnly) return dirs.version === 1 ? readCpuV1(dirs.cpuacct, dirs.cpu) : readCpuV2(dirs.dir);
  if (dirs.version === 1) {
    return {
      ...readCpuV1(dirs.cpuacct, dirs.cpu),
      ...(dirs.memory !== undefined ? readMemoryV1(dirs.memory) : {}),
      ...readPids(dirs.pids),
    };
  }
  return { ...readCpuV2(dirs.dir), ...readMemoryV2(dirs.dir), ...readPids(dirs.dir, dirs.procsDir ?? dirs.dir) };
}

/**
 * The cgroup of process `pid` as /proc/<pid>/cgroup names it, made absolute with the host's
 * mounts: the v1 hierarchies' dirs where cpu, cpuacct, memory or pids are v1 controllers, else
 * the cgroup2 dir. Undefined when the process is gone.
 */
export function cgroupDirsOfPid(pid: number, cgroups: Cgroups): CgroupDirs | undefined {
  const text = readStatFile(`/proc/${pid}`, 'cgroup');
  return text === undefined ? undefined : cgroupDirsFrom(text, cgroups);
}

/** cgroupDirsOfPid for a /proc/<pid>/cgroup text. */
export function cgroupDirsFrom(text: string, cgroups: Cgroups): CgroupDirs | undefined {
  const v1 = new Map<string, string>();
  let v2: string | undefined;
  for (const line of text.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line.trim());
    if (!m) continue;
    if (m[1] === '0' && m[2] === '') v2 = m[3]!;
    else for (const c of m[2]!.split(',')) v1.set(c, m[3]!);
  }
  const dir = (c: string) => {
    const rel = v1.get(c);
    return rel === undefined ? undefined : cgroups.v1Path(c, rel.replace(/^\/+/, ''));
  };
  if (['cpu', 'cpuacct', 'memory', 'pids'].some((c) => cgroups.v1(c) !== undefined && v1.has(c))) {
    const out: CgroupDirs = { version: 1 };
    for (const c of ['cpu', 'cpuacct', 'memory', 'pids'] as const) {
      const d = dir(c);
      if (d !== undefined) out[c] = d;
    }
    return out;
  }
  if (v2 !== undefined && cgroups.v2Root() !== undefined) return { version: 2, dir: join(cgroups.v2Root()!, v2.replace(/^\/+/, '')) };
  return undefined;
}
