// cgroups/cpu: cpu.shares + CFS quota/period written exactly as CRI sends them (v1), or
// cpu.weight (runc's shares formula) + cpu.max (cgroup2). Usage from cpuacct (v1) / cpu.stat and
// the cpu and io pressure files (v2), read by cgroups/stats.ts.
import { cpuMaxValue, readCpuV1, readCpuV2, sharesToWeight, writeCgroupFile } from '../../../../cgroups/index.js';
import { ResourceError, type ResourceLimits, type ResourceStatistics } from '../../isolator.js';
import { CgroupsIsolatorBase, type CgroupsIsolatorOptions, type V1Equivalent } from './base.js';

export class CpuIsolator extends CgroupsIsolatorBase {
  readonly name = 'cgroups/cpu';

  constructor(opts: CgroupsIsolatorOptions) {
    super(opts, { controller: 'cpu', extraV1: ['cpuacct'] });
  }

  /** The kernel's bounds (1 ms … 1 s a period, at least 1 ms a quota), checked before any cgroup is made. */
  override async check(r: ResourceLimits): Promise<void> {
    await super.check(r);
    if (r.cpuPeriod !== undefined && r.cpuPeriod > 0 && (r.cpuPeriod < 1000 || r.cpuPeriod > 1_000_000)) {
      throw new ResourceError('cpu_period', `${r.cpuPeriod} µs is outside the kernel's 1000 … 1000000`);
    }
    if (r.cpuQuota !== undefined && r.cpuQuota > 0 && r.cpuQuota < 1000) throw new ResourceError('cpu_quota', `${r.cpuQuota} µs is below the kernel's minimum of 1000`);
  }

  protected override async updateV1(rel: string, r: ResourceLimits): Promise<void> {
    const dir = this.v1Dir('cpu', rel)!;
    if (r.cpuShares) await writeCgroupFile(dir, 'cpu.shares', Math.trunc(r.cpuShares));
    // Period before quota: the quota is validated against the period the kernel holds.
    if (r.cpuPeriod && r.cpuPeriod > 0) await writeCgroupFile(dir, 'cpu.cfs_period_us', Math.trunc(r.cpuPeriod));
    await writeCgroupFile(dir, 'cpu.cfs_quota_us', r.cpuQuota && r.cpuQuota > 0 ? Math.trunc(r.cpuQuota) : -1);
  }

  /** cpu.weight is cpu.shares by runc's formula run backwards; cpu.idle 0 is v1's behaviour. */
  protected override async v1Equivalent(key: string, value: string): Promise<V1Equivalent | undefined> {
    const v = value.trim();
    if (key === 'cpu.weight' && /^\d+$/.test(v) && Number(v) >= 1 && Number(v) <= 10000) {
      return { file: 'cpu.shares', value: String(2 + Math.trunc(((Number(v) - 1) * 262142) / 9999)) };
    }
    if (key === 'cpu.idle' && v === '0') return 'default';
    return undefined;
  }

  protected override async updateV2(dir: string, r: ResourceLimits): Promise<void> {
    const weight = sharesToWeight(r.cpuShares ?? 0);
    if (weight) await writeCgroupFile(dir, 'cpu.weight', weight);
    await writeCgroupFile(dir, 'cpu.max', cpuMaxValue(r.cpuQuota, r.cpuPeriod));
  }

  protected override async usageV1(rel: string): Promise<Partial<ResourceStatistics>> {
    return readCpuV1(this.v1Dir('cpuacct', rel), this.v1Dir('cpu', rel));
  }

  /** cpu.stat, and the cpu and io pressure (PSI files exist in every cgroup2 cgroup). */
  protected override async usageV2(dir: string): Promise<Partial<ResourceStatistics>> {
    return readCpuV2(dir);
  }
}
