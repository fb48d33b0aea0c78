// cgroups/cpu: cpu.shares + CFS quota/period written exactly as CRI sends them (v1), or
// cpu.weight (runc's shares formula) + cpu.max (cgroup2). Usage from cpuacct (v1) / cpu.stat (v2).
import {
  USER_HZ,
  cpuMaxValue,
  parseFlatKeyed,
  parseIntValue,
  readCgroupFileOpt,
  sharesToWeight,
  toNum,
  writeCgroupFile,
} from '../../../../cgroups/index.js';
import type { ResourceLimits, ResourceStatistics } from '../../isolator.js';
import { CgroupsIsolatorBase, type CgroupsIsolatorOptions, type V1Equivalent } from './base.js';

export class CpuIsolator extends CgroupsIsolatorBase {
  readonly name = 'cgroups/cpu';

  constructor(opts: CgroupsIsolatorOptions) {
    super(opts, { controller: 'cpu', extraV1: ['cpuacct'] });
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
    const out: Partial<ResourceStatistics> = { timestamp: Date.now() / 1000 };
    const acct = this.v1Dir('cpuacct', rel);
    if (acct !== undefined) {
      const usage = await readCgroupFileOpt(acct, 'cpuacct.usage');
      if (usage !== undefined) out.cpuUsageNanos = toNum(parseIntValue(usage));
      const stat = await readCgroupFileOpt(acct, 'cpuacct.stat');
      if (stat !== undefined) {
        const s = parseFlatKeyed(stat);
        if (s.has('user')) out.cpusUserTimeSecs = Number(s.get('user')) / USER_HZ;
        if (s.has('system')) out.cpusSystemTimeSecs = Number(s.get('system')) / USER_HZ;
      }
    }
    const cpuStat = await readCgroupFileOpt(this.v1Dir('cpu', rel)!, 'cpu.stat');
    if (cpuStat !== undefined) {
      const s = parseFlatKeyed(cpuStat);
      out.cpusNrPeriods = toNum(s.get('nr_periods'));
      out.cpusNrThrottled = toNum(s.get('nr_throttled'));
      const t = s.get('throttled_time'); // ns
      if (t !== undefined) out.cpusThrottledTimeSecs = Number(t) / 1e9;
    }
    return dropUndefined(out);
  }

  protected override async usageV2(dir: string): Promise<Partial<ResourceStatistics>> {
    const out: Partial<ResourceStatistics> = { timestamp: Date.now() / 1000 };
    const text = await readCgroupFileOpt(dir, 'cpu.stat');
    if (text !== undefined) {
      const s = parseFlatKeyed(text);
      const usec = s.get('usage_usec');
      if (usec !== undefined) out.cpuUsageNanos = Number(usec) * 1000;
      const user = s.get('user_usec');
      if (user !== undefined) out.cpusUserTimeSecs = Number(user) / 1e6;
      const sys = s.get('system_usec');
      if (sys !== undefined) out.cpusSystemTimeSecs = Number(sys) / 1e6;
      out.cpusNrPeriods = toNum(s.get('nr_periods'));
      out.cpusNrThrottled = toNum(s.get('nr_throttled'));
      const thr = s.get('throttled_usec');
      if (thr !== undefined) out.cpusThrottledTimeSecs = Number(thr) / 1e6;
    }
    return dropUndefined(out);
  }
}

export function dropUndefined<T extends object>(o: T): T {
  for (const k of Object.keys(o) as Array<keyof T>) if (o[k] === undefined) delete o[k];
  return o;
}
