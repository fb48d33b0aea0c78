// Linux capability sets for CRI containers: the default set containerd and
// Docker give, adjusted by the CRI security context's add/drop lists, and cut
// to the capabilities the runtime itself holds (its bounding set): capset
// refuses any other with EPERM, and "ALL" means all we have, as in containerd.
import { readFileSync } from 'node:fs';
import { invalidArgument } from '../../errors.js';

const CAPS = [
  'CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP',
  'LINUX_IMMUTABLE', 'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW', 'IPC_LOCK', 'IPC_OWNER',
  'SYS_MODULE', 'SYS_RAWIO', 'SYS_CHROOT', 'SYS_PTRACE', 'SYS_PACCT', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE',
  'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'MKNOD', 'LEASE', 'AUDIT_WRITE', 'AUDIT_CONTROL', 'SETFCAP',
  'MAC_OVERRIDE', 'MAC_ADMIN', 'SYSLOG', 'WAKE_ALARM', 'BLOCK_SUSPEND', 'AUDIT_READ', 'PERFMON', 'BPF',
  'CHECKPOINT_RESTORE',
];

export const DEFAULT_CAPABILITIES = [
  'CHOWN', 'DAC_OVERRIDE', 'FSETID', 'FOWNER', 'MKNOD', 'NET_RAW', 'SETGID', 'SETUID', 'SETFCAP', 'SETPCAP',
  'NET_BIND_SERVICE', 'SYS_CHROOT', 'KILL', 'AUDIT_WRITE',
];

function bit(name: string, field: string): bigint {
  const n = name.toUpperCase().replace(/^CAP_/, '');
  const i = CAPS.indexOf(n);
  if (i < 0) throw invalidArgument(`${field}: unknown capability "${name}"`);
  return 1n << BigInt(i);
}

const ALL = CAPS.reduce((m, _c, i) => m | (1n << BigInt(i)), 0n);

let bounding: bigint | undefined;

/** CapBnd of this process: what a container can be given at most. */
export function runtimeBoundingSet(): bigint {
  if (bounding === undefined) {
    const m = /^CapBnd:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    bounding = m ? BigInt('0x' + m[1]) : ALL;
  }
  return bounding;
}

export interface CapabilitySet {
  /** The mask kept in every set; undefined for privileged containers (they keep everything). */
  mask: bigint | undefined;
  /** Capabilities asked for that the runtime does not hold itself, so are not given. */
  unavailable: string[];
}

export function capabilityMask(privileged: boolean, add: string[], drop: string[], have: bigint = runtimeBoundingSet()): CapabilitySet {
  if (privileged) return { mask: undefined, unavailable: [] };
  let mask = DEFAULT_CAPABILITIES.reduce((m, c) => m | bit(c, 'default'), 0n);
  let wanted = 0n;
  for (const c of add) {
    const b = c.toUpperCase() === 'ALL' ? ALL & have : bit(c, 'linux.security_context.capabilities.add_capabilities');
    mask |= b;
    wanted |= b;
  }
  for (const c of drop) mask &= c.toUpperCase() === 'ALL' ? 0n : ~bit(c, 'linux.security_context.capabilities.drop_capabilities');
  const missing = mask & wanted & ~have;
  return { mask: mask & have, unavailable: CAPS.filter((_c, i) => (missing >> BigInt(i)) & 1n).map((c) => `CAP_${c}`) };
}

/**
 * CRI add_ambient_capabilities: each must be among the container's capabilities (`mask`;
 * undefined = privileged, every one the runtime holds), or the kernel cannot raise it.
 */
export function ambientMask(names: string[], mask: bigint | undefined, have: bigint = runtimeBoundingSet()): bigint {
  const field = 'linux.security_context.capabilities.add_ambient_capabilities';
  let out = 0n;
  for (const c of names) {
    const b = c.toUpperCase() === 'ALL' ? (mask ?? have) : bit(c, field);
    if ((b & (mask ?? have)) !== b) {
      throw invalidArgument(`${field}: ${c} is not among the container's capabilities (add it to add_capabilities)`);
    }
    out |= b;
  }
  return out;
}

/** The names (CAP_…) of the capabilities in a mask. */
export function capabilityNames(mask: bigint): string[] {
  return CAPS.filter((_c, i) => (mask >> BigInt(i)) & 1n).map((c) => `CAP_${c}`);
}
