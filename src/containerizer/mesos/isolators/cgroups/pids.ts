// cgroups/pids: pids.max (0 or missing = "max"), pids.current → processes. Same files on v1 and v2.
import { parseIntValue, readCgroupFileOpt, toNum, writeCgroupFile } from '../../../../cgroups/index.js';
import type { ResourceLimits, ResourceStatistics } from '../../isolator.js';
import { CgroupsIsolatorBase, type CgroupsIsolatorOptions } from './base.js';

function pidsMax(r: ResourceLimits): string {
  return r.pidsLimit && r.pidsLimit > 0 ? String(Math.trunc(r.pidsLimit)) : 'max';
}

async function pidsUsage(dir: string): Promise<Partial<ResourceStatistics>> {
  const cur = await readCgroupFileOpt(dir, 'pids.current');
  const n = cur === undefined ? undefined : toNum(parseIntValue(cur));
  return n === undefined ? {} : { processes: n };
}

export class PidsIsolator extends CgroupsIsolatorBase {
  readonly name = 'cgroups/pids';

  constructor(opts: CgroupsIsolatorOptions) {
    super(opts, { controller: 'pids' });
  }

  protected override async updateV1(rel: string, r: ResourceLimits): Promise<void> {
    await writeCgroupFile(this.v1Dir('pids', rel)!, 'pids.max', pidsMax(r));
  }

  protected override async updateV2(dir: string, r: ResourceLimits): Promise<void> {
    await writeCgroupFile(dir, 'pids.max', pidsMax(r));
  }

  protected override usageV1(rel: string): Promise<Partial<ResourceStatistics>> {
    return pidsUsage(this.v1Dir('pids', rel)!);
  }

  protected override usageV2(dir: string): Promise<Partial<ResourceStatistics>> {
    return pidsUsage(dir);
  }
}
