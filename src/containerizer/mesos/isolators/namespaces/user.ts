// namespaces/user: the pod's user namespace (CRI userns_options mode POD, Kubernetes'
// hostUsers: false), with the mappings the kubelet sends.
//   prepare (pod)       - the namespace is made with those uid_map and gid_map and pinned at
//                         <pod runtime dir>/userns (native nsPin: a short-lived child process, as
//                         a multithreaded daemon cannot make one itself); the pod's helper joins
//                         it first, so every namespace it is cloned with (network, UTS, IPC, PID,
//                         mount, cgroup) is owned by it, and becomes its root. network/cni, next,
//                         makes the pod's pinned network namespace inside it too.
//   prepare (container) - the `userns` op: the container's launch helper stays in the host's
//                         user namespace (it writes the log and the status), its init joins the
//                         pod's (see launcher/plan.ts).
//   remove (pod)        - the pin is unmounted and removed.
// Mesos has no user namespace isolator; this one follows the shape of its namespaces/* ones.
import { failedPrecondition } from '../../../../errors.js';
import { runtimeFile } from '../../../../paths.js';
import { native, unpinNamespace } from '../../../../native/index.js';
import { idMapText, type ContainerConfig, type LaunchInfo } from '../../isolator.js';
import { LaunchOnlyIsolator, namespacePath } from '../base.js';

export class UserNamespaceIsolator extends LaunchOnlyIsolator {
  readonly name = 'namespaces/user';

  async prepare(config: ContainerConfig): Promise<Partial<LaunchInfo>> {
    const userns = config.userNamespace;
    if (!userns) return {};
    if (config.kind === 'container') {
      if (config.parentPid === undefined) throw failedPrecondition(`container ${config.id.value}: the pod's init pid is unknown`);
      return { setup: [['userns', namespacePath(config.parentPid, 'user')]] };
    }
    const path = podUsernsPath(config);
    await native().nsPin({ user: { uidMap: idMapText(userns.uids), gidMap: idMapText(userns.gids) }, pins: [{ type: 'user', path }] });
    return { enterNamespaces: [{ type: 'user', path }] };
  }

  async remove(config: ContainerConfig): Promise<void> {
    if (config.kind !== 'pod' || !config.userNamespace) return;
    unpinNamespace(podUsernsPath(config));
  }
}

/** Where a pod's user namespace is pinned. */
export function podUsernsPath(config: Pick<ContainerConfig, 'runtimeDir'>): string {
  return runtimeFile(config.runtimeDir, 'userns');
}

