// A pod's interface counters, read from /proc/<pid>/net/dev of a process in its network
// namespace: procfs shows the namespace of the process named, so nothing has to enter it (no
// setns, which a Node thread must never do). lo is left out, as containerd's CRI and cAdvisor do.
import { readFileSync } from 'node:fs';
import type { NetworkInterfaceStatistics } from '../containerizer/mesos/isolator.js';

/**
 * Parse /proc/net/dev: two header lines, then "  name: rx_bytes rx_packets rx_errs rx_drop fifo
 * frame compressed multicast tx_bytes tx_packets tx_errs tx_drop fifo colls carrier compressed".
 */
export function parseNetDev(text: string): NetworkInterfaceStatistics[] {
  const out: NetworkInterfaceStatistics[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*([^:\s]+):\s*(.*)$/.exec(line);
    if (!m) continue;
    const f = m[2]!.trim().split(/\s+/).map(Number);
    if (f.length < 16 || f.some((n) => !Number.isFinite(n))) continue;
    out.push({
      name: m[1]!,
      rxBytes: f[0]!,
      rxPackets: f[1]!,
      rxErrors: f[2]!,
      rxDropped: f[3]!,
      txBytes: f[8]!,
      txPackets: f[9]!,
      txErrors: f[10]!,
      txDropped: f[11]!,
    });
  }
  return out;
}

/** The interfaces (but lo) of the network namespace `pid` is in; undefined when the process is gone. */
export function readPodInterfaces(pid: number): NetworkInterfaceStatistics[] | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/net/dev`, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ESRCH') return undefined;
    throw e;
  }
  return parseNetDev(text).filter((i) => i.name !== 'lo');
}

/** The interface CRI's default_interface names: eth0 (the CNI interface), else the first. */
export const DEFAULT_INTERFACE = 'eth0';

export function defaultInterface(ifaces: NetworkInterfaceStatistics[]): NetworkInterfaceStatistics | undefined {
  return ifaces.find((i) => i.name === DEFAULT_INTERFACE) ?? ifaces[0];
}
