// Which pod sysctls can be applied: only those the kernel keeps per namespace, and only when the
// pod has that namespace of its own (the kubelet's list of namespaced sysctls; runc validates the
// same). The pod's pause helper writes them (network/loopback's `sysctl` plan ops) after it was
// cloned into the pod's new IPC, network and UTS namespaces, and /proc/sys answers for the
// namespaces of the process that opens it: so they land in the pod's namespaces, never the host's.
// Containers join those namespaces and see them.
import { invalidArgument } from '../errors.js';

export interface SysctlNamespaces {
  /** The pod's network mode; UTS follows it (a NODE pod keeps the host's UTS namespace). */
  network: 'POD' | 'NODE';
  ipc: 'POD' | 'NODE';
}

type Namespace = 'ipc' | 'net' | 'uts';

/** The key in dotted form. A key with a '/' uses '/' as its separator (a '.' is then part of a name: `net/ipv4/conf/eth0.100/rp_filter`). */
export function sysctlSegments(key: string): string[] {
  return key.includes('/') ? key.split('/') : key.split('.');
}

/** The namespace that holds `key`, or undefined when the kernel keeps it for the whole host. */
export function sysctlNamespace(key: string): Namespace | undefined {
  const s = sysctlSegments(key);
  const [top, second = ''] = s;
  if (top === 'kernel' && s.length === 2) {
    if (second === 'sem' || second.startsWith('shm') || second.startsWith('msg')) return 'ipc';
    if (second === 'domainname' || second === 'hostname') return 'uts';
    return undefined;
  }
  if (top === 'fs' && second === 'mqueue' && s.length >= 3) return 'ipc';
  if (top === 'net' && s.length >= 2) return 'net';
  return undefined;
}

const NEEDS: Record<Namespace, string> = {
  ipc: "the pod's own IPC namespace, and this pod has the host's (namespace_options.ipc is NODE)",
  net: "the pod's own network namespace, and this pod has the host's (namespace_options.network is NODE)",
  uts: "the pod's own UTS namespace, and this pod has the host's (namespace_options.network is NODE: UTS follows the network)",
};

/**
 * Refuses, before anything is created, every sysctl the pod cannot have: INVALID_ARGUMENT naming
 * the key as `<field>["kernel.panic"]`.
 */
export function checkSysctls(sysctls: Record<string, string> | undefined, ns: SysctlNamespaces, field = 'config.linux.sysctls'): void {
  for (const [key, value] of Object.entries(sysctls ?? {})) {
    const name = `${field}[${JSON.stringify(key)}]`;
    const segments = sysctlSegments(key);
    if (segments.some((p) => p === '' || p === '.' || p === '..' || /[\s\0]/.test(p))) {
      throw invalidArgument(`${name}: not a sysctl name`);
    }
    if (value.includes('\0')) throw invalidArgument(`${name}: the value contains NUL`);
    const where = sysctlNamespace(key);
    if (!where) {
      throw invalidArgument(
        `${name}: not a namespaced sysctl; only kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*, net.*, kernel.domainname and kernel.hostname can be set for a pod`,
      );
    }
    const own = where === 'ipc' ? ns.ipc === 'POD' : ns.network === 'POD';
    if (!own) throw invalidArgument(`${name}: needs ${NEEDS[where]}`);
  }
}

/**
 * The pod's hostname when the sysctls set kernel.hostname: that name, which must agree with the
 * CRI hostname when both are given (runc refuses the sysctl for the same conflict). Otherwise the
 * CRI hostname.
 */
export function podHostname(hostname: string, sysctls: Record<string, string> | undefined, field = 'config.linux.sysctls'): string {
  for (const [key, value] of Object.entries(sysctls ?? {})) {
    if (sysctlSegments(key).join('.') !== 'kernel.hostname') continue;
    if (hostname && value !== hostname) {
      throw invalidArgument(`${field}[${JSON.stringify(key)}] "${value}" conflicts with config.hostname "${hostname}"`);
    }
    return value;
  }
  return hostname;
}
