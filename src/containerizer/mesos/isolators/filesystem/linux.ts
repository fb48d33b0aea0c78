// filesystem/linux: every container gets a new mount namespace. For a CRI
// container it computes the mount plan the launch helper carries out before
// pivot_root: the rootfs (an overlay the provisioner mounted on the host),
// /proc, /dev, /sys, /dev/shm from the pod, the pod's hostname/hosts/resolv.conf
// and the CRI mounts with their propagation; then masked and read-only paths.
import { invalidArgument } from '../../../../errors.js';
import { lstatSync, readlinkSync, statSync } from 'node:fs';
import { mkdirp } from '../../../../util/mkdirp.js';
import { join, posix } from 'node:path';
import { MS } from '../../../../native/index.js';
import { runtimeFile, type RuntimeFile } from '../../../../paths.js';
import { DEFAULT_DEVICES, type ContainerDevice } from '../../devices.js';
import type { ContainerConfig, CriMount, LaunchInfo } from '../../isolator.js';
import type { BindMode, BindPropagation, PlanOp } from '../../launcher/plan.js';
import { LaunchOnlyIsolator } from '../base.js';

export const DEFAULT_MASKED_PATHS = [
  '/proc/acpi',
  '/proc/asound',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
  '/sys/devices/virtual/powercap',
];

export const DEFAULT_READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

const SANDBOX_FILES: [RuntimeFile, string][] = [
  ['hostname', '/etc/hostname'],
  ['hosts', '/etc/hosts'],
  ['resolvConf', '/etc/resolv.conf'],
];

export class LinuxFilesystemIsolator extends LaunchOnlyIsolator {
  readonly name = 'filesystem/linux';

  async prepare(config: ContainerConfig): Promise<Partial<LaunchInfo>> {
    // The cgroup namespace is created after the child joined its cgroups, so its root is the container's own cgroup.
    const cloneNamespaces: LaunchInfo['cloneNamespaces'] = ['mnt', 'cgroup'];
    if (config.kind === 'pod' || !config.rootfs) return { cloneNamespaces };
    return { cloneNamespaces, setup: containerMountPlan(config) };
  }
}

export function containerMountPlan(config: ContainerConfig): PlanOp[] {
  const root = config.rootfs!;
  const inRoot = (p: string) => secureJoin(root, p);
  const mounts = [...(config.mounts ?? [])];
  const mounted = new Set(mounts.map((m) => posix.normalize(m.containerPath)));
  if (config.sandboxFilesDir) {
    // As containerd: the pod's files follow the rootfs (read-only with readonly_rootfs); a CRI mount wins.
    for (const [file, target] of SANDBOX_FILES) {
      if (mounted.has(target)) continue;
      mounts.push({ containerPath: target, hostPath: runtimeFile(config.sandboxFilesDir, file), readonly: !!config.readonlyRootfs, propagation: 'PROPAGATION_PRIVATE' });
    }
  }
  // Parents before children, so a mount inside another mount's target lands on top of it.
  mounts.sort((a, b) => depth(a.containerPath) - depth(b.containerPath));
  // A bidirectional mount must stay a peer of the host's mount: clone it before the namespace turns rslave.
  const trees = new Map<CriMount, number>();
  const ops: PlanOp[] = [];
  for (const m of mounts) {
    if (m.propagation !== 'PROPAGATION_BIDIRECTIONAL') continue;
    ensureSource(m);
    trees.set(m, trees.size);
    ops.push(['tree', trees.get(m)!, m.hostPath]);
  }
  ops.push(
    // rslave: host mounts still propagate in, nothing we mount leaks out.
    ['propagation', '/', MS.REC | MS.SLAVE],
    ['bind', root, root, 'rw', '-'],
  );
  const proc = inRoot('/proc');
  ops.push(['mkdir', proc, 0o555], ['mount', 'proc', proc, 'proc', MS.NOSUID | MS.NOEXEC | MS.NODEV, null]);

  const dev = inRoot('/dev');
  ops.push(['mkdir', dev, 0o755], ['mount', 'tmpfs', dev, 'tmpfs', MS.NOSUID | MS.STRICTATIME, 'mode=755,size=65536k']);
  for (const d of DEFAULT_DEVICES) ops.push(mknod(join(dev, posix.relative('/dev', d.path)), d));
  ops.push(
    ['mkdir', join(dev, 'pts'), 0o755],
    // A private devpts: its own ptmx and pty numbers; slaves are group tty (5), 0620.
    ['mount', 'devpts', join(dev, 'pts'), 'devpts', MS.NOSUID | MS.NOEXEC, 'newinstance,ptmxmode=0666,mode=0620,gid=5'],
    ['symlink', 'pts/ptmx', join(dev, 'ptmx')],
    ['symlink', '/proc/self/fd', join(dev, 'fd')],
    ['symlink', '/proc/self/fd/0', join(dev, 'stdin')],
    ['symlink', '/proc/self/fd/1', join(dev, 'stdout')],
    ['symlink', '/proc/self/fd/2', join(dev, 'stderr')],
    ['symlink', '/proc/kcore', join(dev, 'core')],
    ['mkdir', join(dev, 'shm'), 0o1777],
  );
  // With a terminal, its slave is bound on /dev/console once the init opened it (after setup).
  if (config.tty) ops.push(['console', '/dev/console']);
  // /dev/shm stays writable, also with readonly_rootfs.
  if (config.shmPath) ops.push(['bind', config.shmPath, join(dev, 'shm'), 'rw', '-']);
  else ops.push(['mount', 'shm', join(dev, 'shm'), 'tmpfs', MS.NOSUID | MS.NODEV | MS.NOEXEC, 'mode=1777,size=65536k']);
  ops.push(['mkdir', join(dev, 'mqueue'), 0o755], ['mount', 'mqueue', join(dev, 'mqueue'), 'mqueue', MS.NOSUID | MS.NOEXEC | MS.NODEV, null]);

  const sys = inRoot('/sys');
  ops.push(['mkdir', sys, 0o555], ['mount', 'sysfs', sys, 'sysfs', MS.NOSUID | MS.NOEXEC | MS.NODEV | (config.privileged ? 0 : MS.RDONLY), null]);

  for (const m of mounts) ops.push(...bindMount(m, inRoot(m.containerPath), trees.get(m)));
  // Image volumes are plain directories of the container's writable layer unless a CRI mount covers them.
  for (const v of config.imageVolumes ?? []) if (!mounted.has(posix.normalize(v))) ops.push(['mkdir', inRoot(v), 0o755]);
  // As runc: after the mounts, so a mount does not hide them; before the rootfs turns read-only.
  for (const d of config.devices ?? []) {
    const path = posix.normalize(d.path);
    // devpts' own ptmx stays (a privileged container's host list has the host's /dev/ptmx).
    if (path === '/dev/ptmx') continue;
    // Our /dev is a fresh tmpfs: the image's /dev (and its symlinks) is not under it.
    const target = path.startsWith('/dev/') ? join(dev, posix.relative('/dev', path)) : inRoot(path);
    ops.push(['mkdir', posix.dirname(target), 0o755], mknod(target, d));
  }

  // Only the rootfs' own mount: /dev, /dev/shm, /proc and each CRI mount keep their own flags.
  if (config.readonlyRootfs) ops.push(['remount-ro', root]);
  ops.push(['pivot_root', root]);
  if (!config.privileged) {
    const masked = config.maskedPaths && config.maskedPaths.length ? config.maskedPaths : DEFAULT_MASKED_PATHS;
    const readonly = config.readonlyPaths && config.readonlyPaths.length ? config.readonlyPaths : DEFAULT_READONLY_PATHS;
    for (const p of masked) ops.push(['mask', p]);
    for (const p of readonly) ops.push(['readonly', p]);
  }
  return ops;
}

function mknod(target: string, d: ContainerDevice): PlanOp {
  return ['mknod', target, d.type, d.fileMode, d.major, d.minor, d.uid, d.gid];
}

const PROPAGATION: Record<CriMount['propagation'], BindPropagation> = {
  PROPAGATION_PRIVATE: 'private',
  PROPAGATION_HOST_TO_CONTAINER: 'rslave',
  PROPAGATION_BIDIRECTIONAL: 'rshared',
};

function depth(path: string): number {
  return posix.normalize(path).split('/').filter(Boolean).length;
}

/** Like containerd: a missing host path becomes a directory. Returns whether the source is a directory. */
function ensureSource(m: CriMount): boolean {
  try {
    return statSync(m.hostPath).isDirectory();
  } catch {
    mkdirp(m.hostPath);
    return true;
  }
}

function bindMount(m: CriMount, target: string, tree: number | undefined): PlanOp[] {
  const isDir = ensureSource(m);
  const mode: BindMode = m.recursiveReadOnly ? 'rro' : m.readonly ? 'ro' : 'rw';
  return [
    // A file source (the kubelet's /etc/hosts, /dev/termination-log) needs a file to mount on.
    isDir ? ['mkdir', target, 0o755] : ['touch', target],
    ['bind', tree === undefined ? m.hostPath : `@${tree}`, target, mode, PROPAGATION[m.propagation] ?? 'private'],
  ];
}

/**
 * Join `path` under `root`, resolving symlinks as if `root` were `/`, so an
 * image's symlinks can never point a mount target outside its rootfs.
 */
export function secureJoin(root: string, path: string): string {
  const parts = posix.normalize('/' + path).split('/').filter(Boolean);
  const resolved: string[] = [];
  let links = 0;
  while (parts.length > 0) {
    const part = parts.shift()!;
    if (part === '.') continue;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const candidate = join(root, ...resolved, part);
    let target: string | undefined;
    try {
      if (lstatSync(candidate).isSymbolicLink()) target = readlinkSync(candidate);
    } catch {
      // missing: the rest is created by the helper
    }
    if (target === undefined) {
      resolved.push(part);
      continue;
    }
    if (++links > 40) throw invalidArgument(`too many symlinks resolving ${path} in the rootfs`);
    const next = target.split('/').filter(Boolean);
    if (target.startsWith('/')) resolved.length = 0;
    parts.unshift(...next);
  }
  return join(root, ...resolved);
}
