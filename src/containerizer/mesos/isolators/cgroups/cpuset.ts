// cgroups/cpuset: cpuset.cpus / cpuset.mems when CRI gives them. On v1 a new cgroup inherits the
// parent's values at creation (createCgroup copies them: an empty cpuset refuses tasks).
import { readFileSync } from 'node:fs';
import { formatCpuList, parseCpuList, writeCgroupFile } from '../../../../cgroups/index.js';
import { ResourceError, type ResourceLimits } from '../../isolator.js';
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

  /**
   * The lists are checked here, against what the host has online: the cgroups are made behind
   * CreateContainer's answer, where the kernel's EINVAL would only show as a StartError.
   */
  override async check(r: ResourceLimits): Promise<void> {
    await super.check(r);
    checkList('cpuset_cpus', r.cpusetCpus, '/sys/devices/system/cpu/online', 'CPUs');
    checkList('cpuset_mems', r.cpusetMems, '/sys/devices/system/node/online', 'memory nodes');
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

function checkList(field: string, value: string | undefined, onlineFile: string, what: string): void {
  if (!value) return;
  const wanted = parseCpuList(value);
  if (wanted === undefined) throw new ResourceError(field, `"${value}" is not a list such as "0-3,6"`);
  let online: number[] | undefined;
  try {
    online = parseCpuList(readFileSync(onlineFile, 'utf8'));
  } catch {
    return; // no such file (a kernel without NUMA nodes): the kernel checks it
  }
  if (!online) return;
  const missing = wanted.filter((n) => !online.includes(n));
  if (missing.length > 0) throw new ResourceError(field, `"${value}" names ${what} this host does not have online (${formatCpuList(missing)}; online: ${formatCpuList(online)})`);
}
