// cgroups/cpuset: cpuset.cpus / cpuset.mems when CRI gives them. On v1 a new cgroup inherits the
// parent's values at creation (createCgroup copies them: an empty cpuset refuses tasks).
import { writeCgroupFile } from '../../../../cgroups/index.js';
import type { ResourceLimits } from '../../isolator.js';
import { CgroupsIsolatorBase, type CgroupsIsolatorOptions } from './base.js';

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
}
