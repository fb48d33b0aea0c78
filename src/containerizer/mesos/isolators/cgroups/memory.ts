// cgroups/memory: hard limit (and memory+swap) written exactly in bytes — no Mesos MB rounding, no
// 32 MB floor, lowering allowed (the kernel's EBUSY, when it cannot reclaim, is passed through).
// The kernel itself rounds v1 limits down to a page multiple. Usage read by cgroups/stats.ts (working
// set per cadvisor, in the CRI layer); OOM from the cgroup's own oom_kill counter.
import { invalidArgument } from '../../../../errors.js';
import {
  UNLIMITED_THRESHOLD,
  parseFlatKeyed,
  parseIntValue,
  parseLimit,
  readCgroupFile,
  readCgroupFileOpt,
  readMemoryV1,
  readMemoryV2,
  writeCgroupFile,
} from '../../../../cgroups/index.js';
import { readFileSync } from 'node:fs';
import { ResourceError, type IsolatorStatus, type ResourceLimits, type ResourceStatistics } from '../../isolator.js';
import { CgroupsIsolatorBase, type CgroupsIsolatorOptions, type V1Equivalent } from './base.js';

/** CRI value → file value: -1 = unlimited; 0/undefined = not set (leave the kernel's value). */
function limitValue(v: number | undefined, unlimited: string): string | undefined {
  if (v === undefined || v === 0) return undefined;
  return v < 0 ? unlimited : String(Math.trunc(v));
}

export class MemoryIsolator extends CgroupsIsolatorBase {
  readonly name = 'cgroups/memory';

  constructor(opts: CgroupsIsolatorOptions) {
    super(opts, { controller: 'memory' });
  }

  /** CRI's swap limit is memory + swap: below the memory limit the kernel refuses it. */
  override async check(r: ResourceLimits): Promise<void> {
    await super.check(r);
    const mem = r.memoryLimitBytes ?? 0;
    const sw = r.memorySwapLimitBytes ?? 0;
    if (mem > 0 && sw > 0 && sw < mem) throw new ResourceError('memory_swap_limit_in_bytes', `${sw} is below memory_limit_in_bytes ${mem} (it counts memory and swap together)`);
  }

  protected override async updateV1(rel: string, r: ResourceLimits): Promise<void> {
    const dir = this.v1Dir('memory', rel)!;
    const mem = limitValue(r.memoryLimitBytes, '-1');
    const sw = limitValue(r.memorySwapLimitBytes, '-1');
    // The kernel keeps memory.limit ≤ memsw.limit at every step: raise memsw before memory,
    // lower memory before memsw.
    let swFirst = false;
    if (sw !== undefined) {
      const cur = await readCgroupFileOpt(dir, 'memory.memsw.limit_in_bytes');
      if (cur === undefined) {
        this.log.warn('swap limit requested but memory.memsw is unavailable (no swap accounting)', { path: rel });
      } else {
        const next = sw === '-1' ? UNLIMITED_THRESHOLD * 2n : BigInt(sw);
        swFirst = next >= (parseIntValue(cur) ?? 0n);
        if (swFirst) await writeCgroupFile(dir, 'memory.memsw.limit_in_bytes', sw);
      }
    }
    if (mem !== undefined) await writeCgroupFile(dir, 'memory.limit_in_bytes', mem);
    if (sw !== undefined && !swFirst && (await readCgroupFileOpt(dir, 'memory.memsw.limit_in_bytes')) !== undefined) {
      await writeCgroupFile(dir, 'memory.memsw.limit_in_bytes', sw);
    }
  }

  /**
   * cgroup2 memory keys on v1: memory.max is the limit and memory.swap.max the memsw limit minus
   * the memory limit; oom.group, min, low and high have no v1 counterpart, so only their
   * defaults (what v1 does anyway) are accepted.
   */
  protected override async v1Equivalent(key: string, value: string, r: ResourceLimits, dir?: string): Promise<V1Equivalent | undefined> {
    const v = value.trim();
    switch (key) {
      case 'memory.max':
        return v === 'max' ? { file: 'memory.limit_in_bytes', value: '-1' } : /^\d+$/.test(v) ? { file: 'memory.limit_in_bytes', value: v } : undefined;
      case 'memory.swap.max': {
        if (v !== 'max' && !/^\d+$/.test(v)) return undefined;
        const memsw = this.cgroups.v1('memory') !== undefined && (await readCgroupFileOpt(this.cgroups.v1('memory')!, 'memory.memsw.limit_in_bytes')) !== undefined;
        // No swap accounting: no swap limit can be set, which changes nothing where the host has no swap.
        if (!memsw) return v === 'max' || (v === '0' && !hostHasSwap()) ? 'default' : undefined;
        if (v === 'max') return { file: 'memory.memsw.limit_in_bytes', value: '-1' };
        if (!dir) return { file: 'memory.memsw.limit_in_bytes', value: v };
        const limit = r.memoryLimitBytes && r.memoryLimitBytes > 0 ? BigInt(Math.trunc(r.memoryLimitBytes)) : parseIntValue(await readCgroupFile(dir, 'memory.limit_in_bytes'));
        // Without a memory limit memsw cannot cap swap alone: only "no swap" where there is none is the same.
        if (limit === undefined || limit >= UNLIMITED_THRESHOLD) return v === '0' && !hostHasSwap() ? 'default' : undefined;
        return { file: 'memory.memsw.limit_in_bytes', value: String(limit + BigInt(v)) };
      }
      case 'memory.oom.group':
        return v === '0' ? 'default' : undefined;
      case 'memory.min':
      case 'memory.low':
        return v === '0' ? 'default' : undefined;
      case 'memory.high':
        return v === 'max' ? 'default' : undefined;
      default:
        return undefined;
    }
  }

  protected override async updateV2(dir: string, r: ResourceLimits): Promise<void> {
    const mem = limitValue(r.memoryLimitBytes, 'max');
    if (mem !== undefined) await writeCgroupFile(dir, 'memory.max', mem);
    const sw = r.memorySwapLimitBytes;
    if (sw === undefined || sw === 0) return;
    if ((await readCgroupFileOpt(dir, 'memory.swap.max')) === undefined) {
      this.log.warn('swap limit requested but memory.swap.max is unavailable', { dir });
      return;
    }
    if (sw < 0) return writeCgroupFile(dir, 'memory.swap.max', 'max');
    // CRI's value is memory+swap (v1 memsw semantics); cgroup2 limits swap alone (runc's conversion).
    const memLimit = r.memoryLimitBytes && r.memoryLimitBytes > 0 ? r.memoryLimitBytes : parseLimit(await readCgroupFile(dir, 'memory.max'));
    if (memLimit === undefined) return writeCgroupFile(dir, 'memory.swap.max', 'max');
    if (sw < memLimit) throw invalidArgument(`memory+swap limit ${sw} is below the memory limit ${memLimit}`);
    await writeCgroupFile(dir, 'memory.swap.max', String(Math.trunc(sw - memLimit)));
  }

  protected override async usageV1(rel: string): Promise<Partial<ResourceStatistics>> {
    return readMemoryV1(this.v1Dir('memory', rel)!);
  }

  protected override async usageV2(dir: string): Promise<Partial<ResourceStatistics>> {
    return readMemoryV2(dir);
  }

  protected override async statusV1(rel: string): Promise<IsolatorStatus> {
    // v1 counts oom_kill on the victim's own memcg only (not propagated), i.e. exactly this container.
    const text = await readCgroupFileOpt(this.v1Dir('memory', rel)!, 'memory.oom_control');
    return oomFrom(text);
  }

  protected override async statusV2(dir: string): Promise<IsolatorStatus> {
    // Hierarchical: includes the <path>/leaf the processes live in.
    return oomFrom(await readCgroupFileOpt(dir, 'memory.events'));
  }
}

/** /proc/swaps lists a device or file. */
function hostHasSwap(): boolean {
  try {
    return readFileSync('/proc/swaps', 'utf8').trim().split('\n').length > 1;
  } catch {
    return false;
  }
}

function oomFrom(text: string | undefined): IsolatorStatus {
  if (text === undefined) return {};
  const n = parseFlatKeyed(text).get('oom_kill');
  return n !== undefined && n > 0n ? { oomKilled: true } : {};
}
