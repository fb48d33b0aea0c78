// cgroups/hugetlb: a limit per huge page size (CRI hugepage_limits; the kubelet sends one for every
// size the host has, usually 0). v1: hugetlb.<size>.limit_in_bytes; cgroup2: hugetlb.<size>.max,
// and hugetlb.<size>.rsvd.max where the kernel has reservation accounting (as runc does).
import { readdirSync } from 'node:fs';
import { readCgroupFileOpt, writeCgroupFile } from '../../../../cgroups/index.js';
import { ResourceError, type ResourceLimits } from '../../isolator.js';
import { CgroupsIsolatorBase, type CgroupsIsolatorOptions, type V1Equivalent } from './base.js';

/** "hugepages-2048kB" → "2MB", the names the cgroup files and the kubelet use. */
export function pageSizeName(dirName: string): string | undefined {
  const m = /^hugepages-(\d+)kB$/.exec(dirName);
  if (!m) return undefined;
  let kb = Number(m[1]);
  for (const unit of ['KB', 'MB', 'GB', 'TB']) {
    if (kb < 1024 || kb % 1024 !== 0) return `${kb}${unit}`;
    kb /= 1024;
  }
  return `${kb}PB`;
}

/** Huge page sizes this host has (/sys/kernel/mm/hugepages). */
export function hostPageSizes(dir = '/sys/kernel/mm/hugepages'): string[] {
  try {
    return readdirSync(dir)
      .map(pageSizeName)
      .filter((s): s is string => s !== undefined);
  } catch {
    return [];
  }
}

export class HugetlbIsolator extends CgroupsIsolatorBase {
  readonly name = 'cgroups/hugetlb';

  constructor(
    opts: CgroupsIsolatorOptions,
    private readonly pageSizes: string[] = hostPageSizes(),
  ) {
    super(opts, { controller: 'hugetlb' });
  }

  override async check(r: ResourceLimits): Promise<void> {
    await super.check(r);
    for (const [size, limit] of Object.entries(r.hugepageLimits ?? {})) {
      const field = `hugepage_limits[page_size=${size}]`;
      if (!this.pageSizes.includes(size)) throw new ResourceError(field, `this host has no ${size} huge pages (it has: ${this.pageSizes.join(', ') || 'none'})`);
      if (this.backend !== 'none') continue;
      // The kubelet sends 0 for every size it finds; without the controller that cannot be enforced.
      if (limit !== 0) throw new ResourceError(field, 'the hugetlb cgroup controller is not available on this host');
      this.log.warn('hugepage limit not applied: no hugetlb cgroup controller', { pageSize: size, limit });
    }
  }

  protected override async updateV1(rel: string, r: ResourceLimits): Promise<void> {
    const dir = this.v1Dir('hugetlb', rel)!;
    for (const [size, limit] of Object.entries(r.hugepageLimits ?? {})) await writeCgroupFile(dir, `hugetlb.${size}.limit_in_bytes`, Math.trunc(limit));
  }

  protected override async updateV2(dir: string, r: ResourceLimits): Promise<void> {
    for (const [size, limit] of Object.entries(r.hugepageLimits ?? {})) {
      await writeCgroupFile(dir, `hugetlb.${size}.max`, Math.trunc(limit));
      if ((await readCgroupFileOpt(dir, `hugetlb.${size}.rsvd.max`)) !== undefined) await writeCgroupFile(dir, `hugetlb.${size}.rsvd.max`, Math.trunc(limit));
    }
  }

  /** hugetlb.<size>.max is hugetlb.<size>.limit_in_bytes on v1 ("max" = -1). */
  protected override async v1Equivalent(key: string, value: string): Promise<V1Equivalent | undefined> {
    const m = /^hugetlb\.([0-9]+[KMGT]B)\.max$/.exec(key);
    if (!m || (value !== 'max' && !/^\d+$/.test(value))) return undefined;
    return { file: `hugetlb.${m[1]}.limit_in_bytes`, value: value === 'max' ? '-1' : value };
  }
}
