// Removing a pod's cgroup once its sandbox is gone, as the kubelet's pod container manager does
// for pods that no longer exist (the runtime made kubepods/<qos>/pod<uid> as the sandbox's
// cgroup_parent and removes only its own cgroups under it).
import { Cgroups } from '../cgroups/index.js';

const QOS_DIRS = [[], ['burstable'], ['besteffort']];

/** Removes kubepods[/<qos>]/pod<uid> under the cgroup root from every hierarchy; returns the error, if any. */
export async function removePodCgroup(cgroupRoot: string, uid: string): Promise<Error | undefined> {
  let cg: Cgroups;
  try {
    cg = Cgroups.detect();
  } catch (err) {
    return err as Error;
  }
  const root = cgroupRoot.split('/').filter(Boolean);
  let failed: Error | undefined;
  for (const qos of QOS_DIRS) {
    const rel = [...root, 'kubepods', ...qos, `pod${uid}`].join('/');
    try {
      await cg.removeEverywhere(rel, { retries: 100, intervalMs: 20 });
    } catch (err) {
      failed = err as Error;
    }
  }
  return failed;
}
