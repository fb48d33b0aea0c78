// filesystem/linux: every container gets a new mount namespace. For a CRI
// container it computes the mount plan the launch helper carries out before
// pivot_root: the rootfs (an overlay the provisioner mounted on the host),
// /proc, /dev, /sys, /dev/shm from the pod, the pod's hostname/hosts/resolv.conf
// and the CRI mounts with their propagation; then masked and read-only paths.
// In a pod's user namespace every bind from the host (CRI mounts, the pod's files, its
// /dev/shm) is idmapped with that namespace: the daemon makes each a detached idmapped tree
// (native idmappedTree) and passes it to the helper, whose init attaches it (tree-fd, bind @n);
// a filesystem that cannot be idmapped is refused (FAILED_PRECONDITION naming the mount).
// Device nodes cannot be made in a user namespace: the host's are bound instead, as runc does.
import { lstatSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { errnoOf, failedPrecondition, invalidArgument } from '../../../../errors.js';
import { mkdirp } from '../../../../util/mkdirp.js';
import { join, posix } from 'node:path';
import { MS, native } from '../../../../native/index.js';
import { runtimeFile, type RuntimeFile } from '../../../../paths.js';
import { mountOf, ownMounts } from '../../../../util/mountinfo.js';
import { DEFAULT_DEVICES, type ContainerDevice } from '../../devices.js';
import type { ContainerConfig, CriMount, LaunchInfo } from '../../isolator.js';
import { FIRST_PASSED_FD, type BindMode, type BindPropagation, type PlanOp } from '../../launcher/plan.js';
import { LaunchOnlyIsolator, namespacePath } from '../base.js';
import { DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS } from '../../../../security/default-paths.js';


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
    if (!config.userNamespace) return { cloneNamespaces, setup: containerMountPlan(config) };
    const trees = await idmappedTrees(config);
    try {
      return { cloneNamespaces, setup: containerMountPlan(config, trees), passFds: trees.fds };
    } catch (err) {
      for (const fd of trees.fds) native().close(fd);
      throw err;
    }
  }
}

/** The idmapped trees of a container in a user namespace, as passed to its helper (fds[i] is FIRST_PASSED_FD + i there). */
export interface IdmappedTrees {
  fds: number[];
  /** Index into fds of each bindMounts(config) entry's tree. */
  mounts: number[];
  /** Index into fds of the pod's /dev/shm tree. */
  shm?: number;
}

/** The bind mounts from the host of a container (CRI mounts and the pod's files), parents before children. */
export function bindMounts(config: ContainerConfig): CriMount[] {
  const mounts = [...(config.mounts ?? [])];
  const mounted = new Set(mounts.map((m) => posix.normalize(m.containerPath)));
  if (config.sandboxFilesDir) {
    // As containerd: the pod's files follow the rootfs (read-only with readonly_rootfs); a CRI mount wins.
    for (const [file, target] of SANDBOX_FILES) {
      if (mounted.has(target)) continue;
      mounts.push({ containerPath: target, hostPath: runtimeFile(config.sandboxFilesDir, file), readonly: !!config.readonlyRootfs, propagation: 'PROPAGATION_PRIVATE' });
    }
  }
  // Parents before children, so a mount inside another mount's target lands on top of it (stable: equal depths keep their order).
  return mounts.sort((a, b) => depth(a.containerPath) - depth(b.containerPath));
}

/**
 * Every bind source of a container in a user namespace as a detached tree idmapped with the
 * pod's namespace (its fds are the caller's to close). A source that cannot be idmapped is
 * FAILED_PRECONDITION naming the mount; fds made before are closed.
 */
export async function idmappedTrees(config: ContainerConfig): Promise<IdmappedTrees> {
  if (config.parentPid === undefined) throw failedPrecondition(`container ${config.id.value}: the pod's init pid is unknown`);
  const userns = namespacePath(config.parentPid, 'user');
  const out: IdmappedTrees = { fds: [], mounts: [] };
  try {
    for (const m of bindMounts(config)) {
      if (m.propagation === 'PROPAGATION_BIDIRECTIONAL') {
        throw failedPrecondition(`${m.field ?? m.containerPath}: PROPAGATION_BIDIRECTIONAL cannot be used in a user namespace`);
      }
      ensureSource(m);
      const what = m.field ? `${m.field}.host_path` : `the pod's ${m.containerPath}`;
      out.mounts.push(out.fds.push(await idmappedTree(m.hostPath, userns, what)) - 1);
    }
    if (config.shmPath) out.shm = out.fds.push(await idmappedTree(config.shmPath, userns, "the pod's /dev/shm")) - 1;
  } catch (err) {
    for (const fd of out.fds) native().close(fd);
    throw err;
  }
  return out;
}

async function idmappedTree(path: string, userns: string, what: string): Promise<number> {
  try {
    return await native().idmappedTree(path, userns, true);
  } catch (err) {
    const code = errnoOf(err);
    const call = (err as NodeJS.ErrnoException).syscall;
    if (code === 'ENOSYS') throw failedPrecondition(`${what} "${path}": this kernel has no idmapped mounts (open_tree and mount_setattr, Linux 5.12+), which the pod's user namespace needs`, err);
    if (call === 'mount_setattr' && (code === 'EINVAL' || code === 'EPERM')) {
      throw failedPrecondition(
        `${what} "${path}": ${filesystems(path)} does not support idmapped mounts, which the pod's user namespace needs for every mount (ext4, xfs, btrfs and tmpfs do)`,
        err,
      );
    }
    throw failedPrecondition(`${what} "${path}": cannot make an idmapped mount of it for the pod's user namespace: ${(err as Error).message}`, err);
  }
}

/**
 * The filesystem `path` is on and those mounted under it (a recursive bind takes them along),
 * for messages: "its filesystem (ext4)", or "... or one mounted under it (overlay on /x/y)".
 */
function filesystems(path: string): string {
  try {
    const mounts = ownMounts();
    const real = realpathSync(path);
    const own = mountOf(mounts, real)?.fstype ?? 'unknown';
    const under = mounts.filter((m) => m.mountPoint.startsWith(real === '/' ? '/' : real + '/')).map((m) => `${m.fstype} on ${m.mountPoint}`);
    return under.length ? `its filesystem (${own}) or one mounted under it (${[...new Set(under)].join(', ')})` : `its filesystem (${own})`;
  } catch {
    return 'its filesystem';
  }
}

export function containerMountPlan(config: ContainerConfig, idmapped?: IdmappedTrees): PlanOp[] {
  const root = config.rootfs!;
  const inRoot = (p: string) => secureJoin(root, p);
  const mounts = bindMounts(config);
  const mounted = new Set(mounts.map((m) => posix.normalize(m.containerPath)));
  const trees = new Map<CriMount, number>();
  const ops: PlanOp[] = [];
  if (idmapped) {
    // Every source is a tree the daemon made, idmapped with the pod's user namespace.
    mounts.forEach((m, i) => {
      trees.set(m, trees.size);
      ops.push(['tree-fd', trees.get(m)!, FIRST_PASSED_FD + idmapped.mounts[i]!]);
    });
  } else {
    // A bidirectional mount must stay a peer of the host's mount: clone it before the namespace turns rslave.
    for (const m of mounts) {
      if (m.propagation !== 'PROPAGATION_BIDIRECTIONAL') continue;
      ensureSource(m);
      trees.set(m, trees.size);
      ops.push(['tree', trees.get(m)!, m.hostPath]);
    }
  }
  const shmTree = idmapped?.shm !== undefined ? trees.size : undefined;
  if (shmTree !== undefined) ops.push(['tree-fd', shmTree, FIRST_PASSED_FD + idmapped!.shm!]);
  ops.push(
    // rslave: host mounts still propagate in, nothing we mount leaks out.
    ['propagation', '/', MS.REC | MS.SLAVE],
    ['bind', root, root, 'rw', '-'],
  );
  const proc = inRoot('/proc');
  ops.push(['mkdir', proc, 0o555], ['mount', 'proc', proc, 'proc', MS.NOSUID | MS.NOEXEC | MS.NODEV, null]);

  const dev = inRoot('/dev');
  ops.push(['mkdir', dev, 0o755], ['mount', 'tmpfs', dev, 'tmpfs', MS.NOSUID | MS.STRICTATIME, 'mode=755,size=65536k']);
  const node = (target: string, d: ContainerDevice): PlanOp[] => (idmapped ? bindDevice(target, d) : [mknod(target, d)]);
  for (const d of DEFAULT_DEVICES) ops.push(...node(join(dev, posix.relative('/dev', d.path)), d));
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
  if (config.shmPath) ops.push(['bind', shmTree !== undefined ? `@${shmTree}` : config.shmPath, join(dev, 'shm'), 'rw', '-']);
  else ops.push(['mount', 'shm', join(dev, 'shm'), 'tmpfs', MS.NOSUID | MS.NODEV | MS.NOEXEC, 'mode=1777,size=65536k']);
  ops.push(['mkdir', join(dev, 'mqueue'), 0o755], ['mount', 'mqueue', join(dev, 'mqueue'), 'mqueue', MS.NOSUID | MS.NOEXEC | MS.NODEV, null]);

  const sys = inRoot('/sys');
  // Read-only as a flag of this mount, never of the superblock: the pod's containers share one
  // sysfs superblock (per network namespace), and a privileged one needs it writable.
  ops.push(['mkdir', sys, 0o555], ['mount', 'sysfs', sys, 'sysfs', MS.NOSUID | MS.NOEXEC | MS.NODEV, null]);
  if (!config.privileged) ops.push(['remount-ro', sys]);

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
    ops.push(['mkdir', posix.dirname(target), 0o755], ...node(target, d));
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

/** The host's node bound on `target` (in a user namespace, where mknod of a device is refused). */
function bindDevice(target: string, d: ContainerDevice): PlanOp[] {
  return [
    ['touch', target],
    ['bind', d.hostPath ?? d.path, target, 'rw', '-'],
  ];
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
