// Facts about the machine that the kubelet's container settings depend on (what cadvisor and
// libcontainer tell it): memory capacity, the cgroup mode, the swap controller, huge page sizes,
// the node's name and address.
import { existsSync, readdirSync, readFileSync, statfsSync } from 'node:fs';
import { hostname, networkInterfaces, totalmem } from 'node:os';
import { join } from 'node:path';

const CGROUP2_SUPER_MAGIC = 0x63677270;

export interface NodeInfo {
  /** bytes of memory (MemTotal) */
  memoryCapacity: number;
  /** /sys/fs/cgroup is a cgroup2 mount (libcontainer's IsCgroup2UnifiedMode) */
  cgroup2Unified: boolean;
  /** memory+swap can be limited (v1 memory.memsw.*, v2 memory.swap.max) */
  swapController: boolean;
  /** the host's huge page sizes as the CRI names them ("2MB", "1GB") */
  hugePageSizes: string[];
}

let cached: NodeInfo | undefined;

export function nodeInfo(): NodeInfo {
  cached ??= {
    memoryCapacity: memTotal(),
    cgroup2Unified: isCgroup2Unified(),
    swapController: hasSwapController(),
    hugePageSizes: hugePageSizes(),
  };
  return cached;
}

function memTotal(): number {
  try {
    const m = /^MemTotal:\s+(\d+) kB$/m.exec(readFileSync('/proc/meminfo', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // fall through
  }
  return totalmem();
}

function isCgroup2Unified(): boolean {
  try {
    return statfsSync('/sys/fs/cgroup').type === CGROUP2_SUPER_MAGIC;
  } catch {
    return false;
  }
}

function hasSwapController(): boolean {
  if (!isCgroup2Unified()) return existsSync('/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes');
  // The root has no memory.swap.max: look at our own cgroup, as the kubelet does.
  try {
    const own = /^0::(.*)$/m.exec(readFileSync('/proc/self/cgroup', 'utf8'))?.[1] ?? '/';
    return existsSync(join('/sys/fs/cgroup', own, 'memory.swap.max'));
  } catch {
    return false;
  }
}

function hugePageSizes(): string[] {
  try {
    return readdirSync('/sys/kernel/mm/hugepages')
      .map((d) => /^hugepages-(\d+)kB$/.exec(d)?.[1])
      .filter((kb): kb is string => kb !== undefined)
      .map((kb) => hugePageUnitSize(Number(kb) * 1024));
  } catch {
    return [];
  }
}

/** 2097152 → "2MB", 1073741824 → "1GB" (v1helper.HugePageUnitSizeFromByteSize). */
export function hugePageUnitSize(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];
  let i = 0;
  let n = bytes;
  while (n >= 1024 && n % 1024 === 0 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n}${units[i]}`;
}

/** The kubelet's default node name: the host name, in lower case. */
export function defaultNodeName(): string {
  return hostname().trim().toLowerCase();
}

/** The node's first non-loopback IPv4 address, else 127.0.0.1 (the kubelet's --node-ip default picks one). */
export function defaultNodeIP(): string {
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}
