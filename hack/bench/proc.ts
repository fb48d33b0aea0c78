// /proc readers for hack/bench: process tree, RSS/PSS, CPU time, and which
// process listens on a unix socket.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { cpuSecondsFromStat } from './stats.js';

export interface Proc {
  pid: number;
  ppid: number;
  comm: string;
  cmdline: string;
}

let ticks: number | undefined;
export function clockTicks(): number {
  if (ticks === undefined) {
    try {
      ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticks = 100;
    }
  }
  return ticks;
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

export function listProcs(): Proc[] {
  const out: Proc[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const stat = read(`/proc/${d}/stat`);
    if (!stat) continue;
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    const ppid = Number(stat.slice(close + 2).split(' ')[1]);
    const cmdline = (read(`/proc/${d}/cmdline`) ?? '').replace(/\0/g, ' ').trim();
    out.push({ pid: Number(d), ppid, comm, cmdline });
  }
  return out;
}

/** All descendants of `root` (not root itself). */
export function descendants(procs: Proc[], root: number): Proc[] {
  const kids = new Map<number, Proc[]>();
  for (const p of procs) {
    const list = kids.get(p.ppid);
    if (list) list.push(p);
    else kids.set(p.ppid, [p]);
  }
  const out: Proc[] = [];
  const stack = [root];
  while (stack.length) {
    for (const c of kids.get(stack.pop()!) ?? []) {
      out.push(c);
      stack.push(c.pid);
    }
  }
  return out;
}

export function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(read(`/proc/${pid}/status`) ?? '');
  return m ? Number(m[1]) : 0;
}

/** VmHWM: the process's peak RSS since it started. */
export function peakRssKb(pid: number): number {
  const m = /VmHWM:\s+(\d+)/.exec(read(`/proc/${pid}/status`) ?? '');
  return m ? Number(m[1]) : 0;
}

/** Gone, or a zombie (exited, not reaped yet). */
export function exited(pid: number): boolean {
  const stat = read(`/proc/${pid}/stat`);
  if (!stat) return true;
  return /^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
}

export function pssKb(pid: number): number {
  const m = /^Pss:\s+(\d+)/m.exec(read(`/proc/${pid}/smaps_rollup`) ?? '');
  return m ? Number(m[1]) : 0;
}

export function cpuSeconds(pid: number): { self: number; children: number } | undefined {
  const stat = read(`/proc/${pid}/stat`);
  return stat ? cpuSecondsFromStat(stat, clockTicks()) : undefined;
}

/** The pid of the process holding the listening unix socket bound to `path`, if it can be found. */
export function socketOwner(path: string): number | undefined {
  const inodes = new Set<string>();
  for (const line of (read('/proc/net/unix') ?? '').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    // Num RefCount Protocol Flags Type St Inode Path; Flags 00010000 = listening
    if (f.length >= 8 && f[7] === path && f[3] === '00010000') inodes.add(f[6]!);
  }
  if (!inodes.size) return undefined;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${d}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${d}/fd/${fd}`));
        if (m && inodes.has(m[1]!)) return Number(d);
      } catch {
        // raced
      }
    }
  }
  return undefined;
}

export function loadavg(): number[] {
  return (read('/proc/loadavg') ?? '').split(' ').slice(0, 3).map(Number);
}

export function memTotalMb(): number {
  const m = /MemTotal:\s+(\d+)/.exec(read('/proc/meminfo') ?? '');
  return m ? Math.round(Number(m[1]) / 1024) : 0;
}
