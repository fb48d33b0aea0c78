// cgroups/devices: which device nodes a container may open or make. v1: the `devices`
// controller (devices.deny "a", then a devices.allow line per rule); cgroup2 (where no v1
// devices hierarchy is mounted): a BPF_PROG_TYPE_CGROUP_DEVICE program attached to the
// container's cgroup, as runc does. The rules are runc's default allow list plus the
// container's own devices, or everything for a privileged container (../../devices.ts).
// Pods get no rules: the pause helper opens no device, and on v1 a container's list can never
// be wider than its pod's.
import { applyV1DeviceRules, applyV2DeviceRules } from '../../../../cgroups/index.js';
import { deviceRules } from '../../devices.js';
import { idString, type ContainerConfig, type LaunchInfo } from '../../isolator.js';
import { CgroupsIsolatorBase, type CgroupsIsolatorOptions } from './base.js';

export class DevicesIsolator extends CgroupsIsolatorBase {
  readonly name = 'cgroups/devices';

  constructor(opts: CgroupsIsolatorOptions) {
    super(opts, { controller: 'devices', v2WithoutController: true });
  }

  override async prepare(config: ContainerConfig): Promise<Partial<LaunchInfo> | undefined> {
    const launch = await super.prepare(config);
    if (this.backend === 'none' || config.kind === 'pod') return launch;
    const rel = this.rel(config.id);
    // Before the launch: the helper is placed in this cgroup while held, so every node it
    // makes and everything the command opens is checked against these rules.
    const rules = deviceRules(!!config.privileged, config.devices ?? []);
    if (this.backend === 'v1') await applyV1DeviceRules(this.v1Dir('devices', rel)!, rules);
    else applyV2DeviceRules(this.v2Dir(rel), rules);
    this.log.debug('device rules applied', { container: idString(config.id), backend: this.backend, rules: rules.length });
    return launch;
  }

  // Resource updates carry no devices.
  protected override async updateV1(): Promise<void> {}
  protected override async updateV2(): Promise<void> {}
}
