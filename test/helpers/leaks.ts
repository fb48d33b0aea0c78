// What a daemon started by TestDaemon holds and what its pods and containers
// left behind: its fds and RSS; mounts, cgroups, runtime and provisioner
// dirs, records and processes. The soak test (test/integration/soak.test.ts)
// asserts on it and the benchmark's soak workload (hack/bench) reports it.
// No ava in here, as in daemon.ts.
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { Cgroups, listProcesses } from '../../src/cgroups/index.js';
import { parseMountInfoEntries } from '../../src/util/mountinfo.js';
import { descendants, listProcs, peakRssKb, rssKb } from '../../hack/bench/proc.js';
import type { TestDaemon } from './daemon.js';
import { POOL_CGROUP } from '../../src/containerizer/mesos/launcher/linux.js';
import { PROVISIONER_TRASH_PREFIX, removedRuntimeDirs } from '../../src/paths.js';

export interface Leftovers {
  /** what each of the daemon's fds points to (readlink of /proc/<pid>/fd/N), e.g. "pipe:[4711]" */
  fds: string[];
  /** mount points under the daemon's work and runtime dirs */
  mounts: string[];
  /** cgroups below the daemon's cgroup root, in every hierarchy (v1 and cgroup2); not the pod pool's */
  cgroups: string[];
  /** entries of <runtime dir>/containers */
  runtimeDirs: string[];
  /** entries of <work dir>/provisioner */
  provisioned: string[];
  /** checkpoint files in <work dir>/meta/{sandboxes,containers} */
  records: string[];
  /** "pid comm" of every process in those cgroups or below the daemon (tsx's esbuild when it runs from src/), but the pool's */
  processes: string[];
  /** pause helpers waiting in the daemon's pod pool (in its `pool-*` cgroups); each holds 2 pidfds and 2 pipes of the daemon's */
  pooled: number;
  rssKb: number;
  /** VmHWM: the daemon's peak RSS since it started */
  peakRssKb: number;
}

export const CATEGORIES = ['fds', 'mounts', 'cgroups', 'runtimeDirs', 'provisioned', 'records', 'processes'] as const;
export type Category = (typeof CATEGORIES)[number];

function entries(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

export { POOL_CGROUP };

/** The pids of the helpers waiting in a daemon's pod pool: the members of its pool-* freezer cgroups (the pool runs on a v1 freezer only). */
export function pooledPids(d: TestDaemon): number[] {
  const root = d.cgroupDir('freezer');
  return entries(root ?? '')
    .filter((n) => POOL_CGROUP.test(n))
    .flatMap((n) => readFileSync(join(root!, n, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number));
}

/**
 * Those of pooledPids that are ready: exec'd and waiting for a plan. A helper being spawned is
 * listed too while its held intermediate (the daemon's vfork child, with the daemon's command
 * line) is placed in its pool cgroup, before the pool counts it.
 */
export function readyPooledPids(d: TestDaemon): number[] {
  return pooledPids(d).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8') === 'cri-mesos-launch\0pause\0-\0';
    } catch {
      return false;
    }
  });
}

/** Every cgroup below `dir` (not dir itself), depth first. */
function cgroupsBelow(dir: string): string[] {
  const out: string[] = [];
  let kids: string[];
  try {
    kids = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => join(dir, e.name));
  } catch {
    return out;
  }
  for (const k of kids) out.push(k, ...cgroupsBelow(k));
  return out;
}

/**
 * What earlier Removes left to delete in the background: their rootfs trees (`.removed-<id>`,
 * still mounted until then) and runtime dirs (`<id>`). The daemon deletes them once the calls
 * pause, at most a second later.
 */
export function pendingDeletes(d: TestDaemon): string[] {
  return [...entries(join(d.workDir, 'provisioner')).filter((n) => n.startsWith(PROVISIONER_TRASH_PREFIX)), ...entries(removedRuntimeDirs(d.runtimeDir))];
}

/**
 * A snapshot of the daemon (it must be running: its pid is read), taken once the background
 * deletes of earlier Removes have ended (or 5 s on: a delete that never ends shows as a leftover).
 */
export async function leftovers(d: TestDaemon): Promise<Leftovers> {
  const pid = d.pid;
  if (!pid) throw new Error('the daemon is not running');
  for (const deadline = Date.now() + 5000; pendingDeletes(d).length > 0 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 20));
  const fds: string[] = [];
  for (const fd of entries(`/proc/${pid}/fd`)) {
    try {
      fds.push(readlinkSync(`/proc/${pid}/fd/${fd}`));
    } catch {
      // closed meanwhile
    }
  }
  // The daemon's own view (its mount namespace), which is the host's.
  const under = (p: string) => [d.workDir, d.runtimeDir].some((dir) => p === dir || p.startsWith(dir + '/'));
  const mounts = parseMountInfoEntries(readFileSync(`/proc/${pid}/mountinfo`, 'utf8'))
    .map((m) => m.mountPoint)
    .filter(under);
  // Found as the daemon finds them: every hierarchy it would create cgroups in.
  const roots = Cgroups.detect()
    .allMountPoints()
    .map((mp) => join(mp, d.cgroupRoot));
  // The pod pool's cgroups and helpers are the daemon's own while it runs, not something a pod left.
  const isPool = (cg: string) => roots.some((r) => cg.startsWith(r + '/') && POOL_CGROUP.test(cg.slice(r.length + 1).split('/')[0]!));
  const cgroups = roots.flatMap(cgroupsBelow).filter((cg) => !isPool(cg));
  const inCgroups = new Set<number>();
  for (const r of roots) for (const p of await listProcesses(r, true)) inCgroups.add(p);
  const pooled = new Set(pooledPids(d));
  const procs = listProcs();
  const mine = new Set([...inCgroups, ...descendants(procs, pid).map((p) => p.pid)]);
  const processes = procs.filter((p) => mine.has(p.pid) && !pooled.has(p.pid)).map((p) => `${p.pid} ${p.comm}`);
  const meta = join(d.workDir, 'meta');
  return {
    fds: fds.sort(),
    mounts: mounts.sort(),
    cgroups: cgroups.sort(),
    runtimeDirs: entries(join(d.runtimeDir, 'containers')),
    provisioned: entries(join(d.workDir, 'provisioner')),
    records: ['sandboxes', 'containers'].flatMap((k) => entries(join(meta, k)).map((f) => `${k}/${f}`)),
    processes,
    pooled: pooled.size,
    rssKb: rssKb(pid),
    peakRssKb: peakRssKb(pid),
  };
}

/** An fd's kind without its inode: "pipe:[4711]" → "pipe", "anon_inode:[pidfd]" stays. */
export function fdKind(target: string): string {
  return target.replace(/^(pipe|socket|anon_inode:inotify):\[\d+\]$/, '$1');
}

/**
 * What `after` has that `before` had not, per category. fds are compared by
 * kind as a multiset (inodes change as fds are closed and reopened): the
 * kinds there are more of, once per extra fd.
 */
export function leaked(before: Leftovers, after: Leftovers): Record<Category, string[]> {
  const out = {} as Record<Category, string[]>;
  for (const c of CATEGORIES) {
    if (c === 'fds') {
      const had = new Map<string, number>();
      for (const k of before.fds.map(fdKind)) had.set(k, (had.get(k) ?? 0) + 1);
      out.fds = [];
      for (const k of after.fds.map(fdKind)) {
        const n = had.get(k) ?? 0;
        if (n > 0) had.set(k, n - 1);
        else out.fds.push(k);
      }
    } else {
      const had = new Set(before[c]);
      out[c] = after[c].filter((x) => !had.has(x));
    }
  }
  return out;
}
