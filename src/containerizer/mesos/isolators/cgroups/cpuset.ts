// cgroups/cpuset: cpuset.cpus / cpuset.mems when CRI gives them. On v1 a new cgroup inherits the
// parent's values at creation (createCgroup copies them: an empty cpuset refuses tasks).
import { writeCgroupFile } from '../../../../cgroups/index.js';
import type { ResourceLimits } from '../../isolator.js';
import { CgroupsIsolatorBase, type CgroupsIsolatorOptions, type V1Equivalent } from './base.js';

async function writeCpuset(dir: string, r: ResourceLimits): Promise<void> {
  if (r.cpusetCpus) await writeCgroupFile(dir, 'cpuset.cpus', r.cpusetCpus);
  if (r.cpusetMems) await writeCgroupFile(dir, 'cpuset.mems', r.cpusetMems);
}

export class CpusetIsolator extends CgroupsIsolatorBase {
  readonly name = 'cgroups/cpuset';

  constructor(opts: CgroupsIsolatorOptions) {
    super(opts, { controller: 'cpuset' });
  }

  protected override updateV1(rel: string, r: ResourceLimits): Promise<void> {
    return writeCpuset(this.v1Dir('cpuset', rel)!, r);
  }

  protected override updateV2(dir: string, r: ResourceLimits): Promise<void> {
    return writeCpuset(dir, r);
  }

  /** cpuset.cpus and cpuset.mems have the same names and formats on v1. */
  protected override async v1Equivalent(key: string, value: string): Promise<V1Equivalent | undefined> {
    return key === 'cpuset.cpus' || key === 'cpuset.mems' ? { file: key, value } : undefined;
  }
}
