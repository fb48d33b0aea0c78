// Parse /proc/self/mountinfo into cgroup hierarchies (v1 controllers and the cgroup2 mount).

/** Controller names the kernel can attach to a v1 hierarchy (anything else in the super options is a flag). */
const V1_CONTROLLERS = new Set([
  'cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'net_cls', 'net_prio',
  'blkio', 'perf_event', 'hugetlb', 'pids', 'rdma', 'misc',
]);

export interface CgroupMount {
  mountPoint: string;
  /** Root of the mount inside the hierarchy ('/' unless we are in a cgroup namespace or a bind mount). */
  root: string;
}

export interface V1Mount extends CgroupMount {
  /** Controllers on this hierarchy, e.g. ['cpu', 'cpuacct'] or ['name=systemd']. */
  controllers: string[];
}

export interface ParsedMountInfo {
  v1: V1Mount[];
  v2?: CgroupMount;
}

/** mountinfo escapes space, tab, newline and backslash as \ooo. */
function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export function parseMountInfo(text: string): ParsedMountInfo {
  const out: ParsedMountInfo = { v1: [] };
  const seen = new Set<string>();
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const pre = line.slice(0, sep).split(' ');
    const post = line.slice(sep + 3).split(' ');
    if (pre.length < 5 || post.length < 1) continue;
    const root = unescape(pre[3]!);
    const mountPoint = unescape(pre[4]!);
    const fstype = post[0];
    if (fstype === 'cgroup2') {
      // First mount wins; later ones are usually bind mounts into containers.
      if (!out.v2) out.v2 = { mountPoint, root };
    } else if (fstype === 'cgroup') {
      const opts = (post[2] ?? '').split(',');
      const controllers = opts.filter((o) => V1_CONTROLLERS.has(o) || o.startsWith('name='));
      if (controllers.length === 0) continue;
      const key = [...controllers].sort().join(',');
      if (seen.has(key)) continue;
      seen.add(key);
      out.v1.push({ mountPoint, root, controllers });
    }
  }
  return out;
}
