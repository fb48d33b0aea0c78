// cgroups/pids: pids.max (0 or missing = "max"); usage: pids.current (tasks) → threads, cgroup.procs →
// processes. Same files on v1 and v2.
import { join } from 'node:path';
import { V2_LEAF, readPids, writeCgroupFile } from '../../../../cgroups/index.js';
import type { ResourceLimits, ResourceStatistics } from '../../isolator.js';
import { CgroupsIsolatorBase, type CgroupsIsolatorOptions } from './base.js';

function pidsMax(r: ResourceLimits): string {
  return r.pidsLimit && r.pidsLimit > 0 ? String(Math.trunc(r.pidsLimit)) : 'max';
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

  protected override async usageV1(rel: string): Promise<Partial<ResourceStatistics>> {
    return readPids(this.v1Dir('pids', rel)!);
  }

  /** Processes live in <dir>/leaf (base.ts); pids.current is hierarchical. */
  protected override async usageV2(dir: string): Promise<Partial<ResourceStatistics>> {
    return readPids(dir, join(dir, V2_LEAF));
  }
}
