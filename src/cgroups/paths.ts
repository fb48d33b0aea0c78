// Where a container's cgroups live, relative to each hierarchy's mount point.
// pod → <cgroupParent ?? root>/<pod>; nested → <pod path>/<ctr>[/<grandchild>...] (own cgroups, share_cgroups=false).
import type { ContainerConfig, ContainerId } from '../containerizer/mesos/isolator.js';

function checkComponent(c: string, what: string): string {
  if (!c || c === '.' || c === '..' || c.includes('/') || c.includes('\0')) {
    throw new Error(`invalid ${what} for a cgroup path: ${JSON.stringify(c)}`);
  }
  return c;
}

/**
 * systemd driver names ("kubepods-burstable-pod123.slice") expand to their slice chain
 * ("kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod123.slice"), as systemd lays them out.
 */
export function expandSlice(name: string): string {
  if (name === '-.slice') return '';
  const base = name.slice(0, -'.slice'.length);
  if (!base || base.startsWith('-') || base.endsWith('-') || base.includes('--')) {
    throw new Error(`invalid systemd slice name: ${JSON.stringify(name)}`);
  }
  const parts = base.split('-');
  const out: string[] = [];
  for (let i = 1; i <= parts.length; i++) out.push(parts.slice(0, i).join('-') + '.slice');
  return out.join('/');
}

/** Normalise a CRI cgroup_parent ("/kubepods/pod1", "kubepods-pod1.slice") to a relative path. */
export function normalizeCgroupParent(parent: string): string {
  const trimmed = parent.replace(/^\/+|\/+$/g, '');
  if (!trimmed) return '';
  if (!trimmed.includes('/') && trimmed.endsWith('.slice')) return expandSlice(trimmed);
  return trimmed
    .split('/')
    .filter((c) => c !== '')
    .map((c) => checkComponent(c, 'cgroup_parent component'))
    .join('/');
}

/** ContainerId chain from the root (pod) down to `id`. */
export function idChain(id: ContainerId): string[] {
  const chain: string[] = [];
  for (let cur: ContainerId | undefined = id; cur; cur = cur.parent) chain.unshift(checkComponent(cur.value, 'container id'));
  return chain;
}

/** Relative cgroup path (no leading slash) of a container in every hierarchy. */
export function cgroupPathFor(config: Pick<ContainerConfig, 'id' | 'cgroupParent'>, root: string): string {
  const base = config.cgroupParent !== undefined && config.cgroupParent !== ''
    ? normalizeCgroupParent(config.cgroupParent)
    : normalizeCgroupParent(root);
  return [base, ...idChain(config.id)].filter((c) => c !== '').join('/');
}

/**
 * On cgroup2 a cgroup that has controllers enabled for its children may hold no processes, so
 * processes live in `<path>/leaf` (Mesos' layout) and limits are set on `<path>`.
 */
export const V2_LEAF = 'leaf';
export function v2ProcessPath(rel: string): string {
  return rel ? `${rel}/${V2_LEAF}` : V2_LEAF;
}
