// Parse /proc/self/mountinfo into cgroup hierarchies (v1 controllers and the cgroup2 mount).
import { parseMountInfoEntries } from '../util/mountinfo.js';

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

export function parseMountInfo(text: string): ParsedMountInfo {
  const out: ParsedMountInfo = { v1: [] };
  const seen = new Set<string>();
  for (const { root, mountPoint, fstype, superOptions } of parseMountInfoEntries(text)) {
    if (fstype === 'cgroup2') {
      // First mount wins; later ones are usually bind mounts into containers.
      if (!out.v2) out.v2 = { mountPoint, root };
    } else if (fstype === 'cgroup') {
      const opts = superOptions.split(',');
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
