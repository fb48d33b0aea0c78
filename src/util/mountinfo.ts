// /proc/<pid>/mountinfo (proc(5)), parsed into entries. The cgroup detection
// and the mount-propagation checks of CRI mounts both read it.
import { readFileSync, realpathSync } from 'node:fs';

export interface MountInfoEntry {
  mountPoint: string;
  /** Root of the mount within its filesystem. */
  root: string;
  /** Optional fields such as shared:N, master:N, propagate_from:N, unbindable. */
  optional: string[];
  fstype: string;
  source: string;
  superOptions: string;
}

/** mountinfo escapes space, tab, newline and backslash as \ooo. */
function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export function parseMountInfoEntries(text: string): MountInfoEntry[] {
  const out: MountInfoEntry[] = [];
  for (const line of text.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const pre = line.slice(0, sep).split(' ');
    const post = line.slice(sep + 3).split(' ');
    if (pre.length < 6 || post.length < 1) continue;
    out.push({
      root: unescape(pre[3]!),
      mountPoint: unescape(pre[4]!),
      optional: pre.slice(6),
      fstype: post[0]!,
      source: unescape(post[1] ?? ''),
      superOptions: post[2] ?? '',
    });
  }
  return out;
}

/** The mount that `path` (already resolved) lives on: the longest mount point above it, the last one mounted there. */
export function mountOf(entries: MountInfoEntry[], path: string): MountInfoEntry | undefined {
  let best: MountInfoEntry | undefined;
  for (const e of entries) {
    const mp = e.mountPoint;
    const under = mp === '/' || path === mp || path.startsWith(mp + '/');
    if (under && (!best || mp.length >= best.mountPoint.length)) best = e;
  }
  return best;
}

export interface Propagation {
  mountPoint: string;
  shared: boolean;
  slave: boolean;
}

/** This process's mount table (/proc/self/mountinfo). */
export function ownMounts(): MountInfoEntry[] {
  return parseMountInfoEntries(readFileSync('/proc/self/mountinfo', 'utf8'));
}

/**
 * Propagation of the mount holding `path` (symlinks resolved) in `mounts`. A path that does not
 * exist yet is on the mount of its nearest existing ancestor.
 */
export function propagationOf(path: string, mounts: MountInfoEntry[]): Propagation | undefined {
  let resolved: string | undefined;
  for (let p = path; resolved === undefined; p = p.slice(0, p.lastIndexOf('/')) || '/') {
    try {
      resolved = realpathSync(p);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || p === '/') throw err;
    }
  }
  const m = mountOf(mounts, resolved);
  if (!m) return undefined;
  return {
    mountPoint: m.mountPoint,
    shared: m.optional.some((o) => o.startsWith('shared:')),
    slave: m.optional.some((o) => o.startsWith('master:')),
  };
}
