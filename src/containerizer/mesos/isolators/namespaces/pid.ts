// namespaces/pid: a pod gets a new PID namespace (its pause helper is PID 1)
// unless NODE; a container joins the pod's (POD), the target's (TARGET), or
// gets a new one (CONTAINER) whose PID 1 is the container's command, as with
// runc: the launch helper unshares it for its children and stays outside, the
// command's parent. Mesos nests that namespace under the pod's; the kernel
// refuses CLONE_NEWPID after setns(pid) (the active and for-children
// namespaces differ), so like runc we make it a child of the host's.
import { failedPrecondition } from '../../../../errors.js';
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
        return { setup: [['new-pid-ns']] };
      case 'TARGET':
        if (config.namespaces.targetPid === undefined) throw failedPrecondition('pid TARGET needs a running target container');
        return { enterNamespaces: [parentNs(config, 'pid', config.namespaces.targetPid)] };
    }
  }
}
