// namespaces/pid: a pod gets a new PID namespace (its init is PID 1) unless
// NODE; a container joins the pod's (POD), the target's (TARGET), or gets a
// new one (CONTAINER). Mesos nests that one under the pod's with an extra
// process hop; the kernel refuses CLONE_NEWPID right after setns(pid) (the
// active and for-children namespaces differ), so like runc we make it a child
// of the host's namespace instead.
import type { ContainerConfig, LaunchInfo } from '../../isolator.js';
import { LaunchOnlyIsolator, parentNs } from '../base.js';

export class PidNamespaceIsolator extends LaunchOnlyIsolator {
  readonly name = 'namespaces/pid';

  async prepare(config: ContainerConfig): Promise<Partial<LaunchInfo>> {
    const mode = config.namespaces.pid;
    if (config.kind === 'pod') return mode === 'NODE' ? {} : { cloneNamespaces: ['pid'] };
    switch (mode) {
      case 'NODE':
        return {};
      case 'POD':
        return { enterNamespaces: [parentNs(config, 'pid')] };
      case 'CONTAINER':
        return { cloneNamespaces: ['pid'] };
      case 'TARGET':
        if (config.namespaces.targetPid === undefined) throw new Error('pid TARGET needs a running target container');
        return { enterNamespaces: [parentNs(config, 'pid', config.namespaces.targetPid)] };
    }
  }
}
