// The kernel's cgroup "favordynmods" mode. Moving a task between cgroups takes
// cgroup_threadgroup_rwsem for writing; in its default mode the first writer
// after a quiet spell waits for a whole RCU grace period (5-25 ms on these VMs),
// which is most of a pod launch. Any cgroup mount with `favordynmods` switches
// that lock, host-wide, to a mode without the wait (forks pay a little instead).
// A named v1 hierarchy with no controllers is the least intrusive such mount.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { native } from '../native/index.js';

export const FAVORDYNMODS_HIERARCHY = 'cri-mesos-favordynmods';

export function favorDynmodsActive(mountinfo = readFileSync('/proc/self/mountinfo', 'utf8')): boolean {
  return mountinfo.split('\n').some((line) => {
    const sep = line.indexOf(' - ');
    if (sep < 0) return false;
    const [fstype, , superOpts] = line.slice(sep + 3).split(' ');
    return (fstype === 'cgroup' || fstype === 'cgroup2') && (superOpts ?? '').split(',').includes('favordynmods');
  });
}

/** Make sure the mode is on; returns where we mounted the hierarchy, or undefined if it already was on. */
export function enableFavorDynmods(runtimeDir: string): string | undefined {
  if (favorDynmodsActive()) return undefined;
  const target = join(runtimeDir, 'cgroup-favordynmods');
  mkdirSync(target, { recursive: true, mode: 0o700 });
  native().mount('cgroup', target, 'cgroup', 0, `none,name=${FAVORDYNMODS_HIERARCHY},favordynmods`);
  return target;
}
