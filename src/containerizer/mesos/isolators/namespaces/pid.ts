// namespaces/pid: a pod gets a new PID namespace (its init is PID 1) unless
// NODE; a container joins the pod's (POD), the target's (TARGET), or gets a
// new one nested under the pod's (CONTAINER, as Mesos nests it).
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
        return { enterNamespaces: [parentNs(config, 'pid')], cloneNamespaces: ['pid'] };
      case 'TARGET':
        if (config.namespaces.targetPid === undefined) throw new Error('pid TARGET needs a running target container');
        return { enterNamespaces: [parentNs(config, 'pid', config.namespaces.targetPid)] };
    }
  }
}
