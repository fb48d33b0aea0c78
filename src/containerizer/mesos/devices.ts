// Devices of a container, as runc makes them: the nodes every container gets in its /dev, and
// the device cgroup's allow list (runc's specconv AllowedDevices, which it appends to every
// container's rules, with containerd's "deny everything" first). Shared by filesystem/linux
// (which makes the nodes) and cgroups/devices (which allows them).
import type { DeviceRule } from '../../cgroups/index.js';

/** A device node made in the container's /dev (or elsewhere), and what the device cgroup allows on it. */
export interface ContainerDevice {
  /** Absolute path in the container. */
  path: string;
  type: 'c' | 'b';
  major: number;
  minor: number;
  /** Permission bits of the node (07777). */
  fileMode: number;
  uid: number;
  gid: number;
  /** Device cgroup access, a subset of "rwm". */
  access: string;
  /** The host's node (where it differs from `path`): bound instead of made in a user namespace. */
  hostPath?: string;
}

/** The nodes every container gets: /dev/{null,zero,full,random,urandom,tty}, 0666 root:root. */
export const DEFAULT_DEVICES: ContainerDevice[] = (
  [
    ['null', 1, 3],
    ['zero', 1, 5],
    ['full', 1, 7],
    ['random', 1, 8],
    ['urandom', 1, 9],
    ['tty', 5, 0],
  ] as const
).map(([name, major, minor]) => ({ path: `/dev/${name}`, type: 'c', major, minor, fileMode: 0o666, uid: 0, gid: 0, access: 'rwm' }));

const allow = (type: DeviceRule['type'], major: number | undefined, minor: number | undefined, access = 'rwm'): DeviceRule => ({
  allow: true,
  type,
  ...(major !== undefined ? { major } : {}),
  ...(minor !== undefined ? { minor } : {}),
  access,
});

/**
 * runc's built-in allow list: mknod of any device (using one still needs its own rule), the
 * default nodes, every pty slave (/dev/pts/*, major 136) and /dev/ptmx (5:2), and tun/tap
 * (10:200, which runc 1.2.0 dropped and 1.2.4 put back). /dev/console needs no rule: with a
 * terminal it is the pty slave bound there.
 */
export const DEFAULT_ALLOWED_DEVICES: DeviceRule[] = [
  allow('c', undefined, undefined, 'm'),
  allow('b', undefined, undefined, 'm'),
  ...DEFAULT_DEVICES.map((d) => allow(d.type, d.major, d.minor)),
  allow('c', 136, undefined),
  allow('c', 5, 2),
  allow('c', 10, 200),
];

export const DENY_ALL: DeviceRule = { allow: false, type: 'a', access: 'rwm' };
export const ALLOW_ALL: DeviceRule = { allow: true, type: 'a', access: 'rwm' };

/** The device cgroup rules of a container: everything when privileged, else the defaults and its own devices. */
export function deviceRules(privileged: boolean, devices: ContainerDevice[]): DeviceRule[] {
  if (privileged) return [ALLOW_ALL];
  return [DENY_ALL, ...DEFAULT_ALLOWED_DEVICES, ...devices.map((d) => allow(d.type, d.major, d.minor, d.access))];
}
