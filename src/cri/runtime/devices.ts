// CRI devices → the container's device nodes, as containerd's WithDevices and WithHostDevices
// find them: each host_path is stat'ed on the host (symlinks followed, so udev's stable names
// work); a directory adds every device under it, at the same place under container_path; the
// node keeps the host node's type, numbers, mode and owner. A privileged container gets every
// device of the host's /dev.
import { lstatSync, readdirSync, realpathSync, type BigIntStats } from 'node:fs';
import { isAbsolute, join, posix } from 'node:path';
import type { Device__Output } from '../../../api/generated/runtime/v1/Device.js';
import { validAccess } from '../../cgroups/index.js';
import type { ContainerDevice } from '../../containerizer/mesos/devices.js';
import { errnoOf, invalidArgument } from '../../errors.js';

/** Directories of a /dev that hold no devices of their own (as containerd's walk skips them). */
const SKIP_DIRS = new Set(['pts', 'shm', 'fd', 'mqueue', '.lxc', '.lxd-mounts', '.udev']);

// glibc's gnu_dev_major / gnu_dev_minor.
const major = (rdev: bigint) => Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
const minor = (rdev: bigint) => Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));

function node(st: BigIntStats, path: string, access: string, hostPath: string): ContainerDevice | undefined {
  const type = st.isCharacterDevice() ? 'c' : st.isBlockDevice() ? 'b' : undefined;
  if (!type) return undefined;
  return {
    path,
    type,
    major: major(st.rdev),
    minor: minor(st.rdev),
    fileMode: Number(st.mode & 0o7777n),
    uid: Number(st.uid),
    gid: Number(st.gid),
    access,
    ...(hostPath !== path ? { hostPath } : {}),
  };
}

/** Every device under the host directory `dir`, placed under `containerDir`; symlinks and other files are passed over. */
function walk(dir: string, containerDir: string, access: string): ContainerDevice[] {
  const out: ContainerDevice[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const host = join(dir, e.name);
    const inside = posix.join(containerDir, e.name);
    if (e.isDirectory()) {
      if (!SKIP_DIRS.has(e.name)) out.push(...walk(host, inside, access));
      continue;
    }
    // A terminal's console is the container's own (a pty slave), never the host's.
    if (e.name === 'console') continue;
    let st: BigIntStats;
    try {
      st = lstatSync(host, { bigint: true });
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') continue; // gone meanwhile
      throw err;
    }
    const d = node(st, inside, access, host);
    if (d) out.push(d);
  }
  return out;
}

/** The CRI `devices` list, validated; INVALID_ARGUMENT names the entry. */
export function criDevices(devices: Device__Output[]): ContainerDevice[] {
  return devices.flatMap((d, i) => {
    const field = `devices[${i}]`;
    if (!d.host_path || !isAbsolute(d.host_path)) throw invalidArgument(`${field}.host_path "${d.host_path}" must be an absolute path`);
    const containerPath = d.container_path || d.host_path;
    if (!isAbsolute(containerPath)) throw invalidArgument(`${field}.container_path "${containerPath}" must be absolute`);
    // An empty permissions string means all access, as for a device without a cgroup rule.
    const access = d.permissions || 'rwm';
    if (!validAccess(access)) throw invalidArgument(`${field}.permissions "${d.permissions}" must be a combination of r, w and m`);
    let resolved: string;
    let st: BigIntStats;
    try {
      resolved = realpathSync(d.host_path);
      st = lstatSync(resolved, { bigint: true });
    } catch (err) {
      const code = errnoOf(err);
      throw invalidArgument(`${field}.host_path "${d.host_path}": ${code === 'ENOENT' ? 'no such device on the host' : String(code ?? err)}`, err);
    }
    if (st.isDirectory()) return walk(resolved, posix.normalize(containerPath), access);
    const dev = node(st, posix.normalize(containerPath), access, resolved);
    if (!dev) throw invalidArgument(`${field}.host_path "${d.host_path}" is not a device node`);
    return [dev];
  });
}

/** Every char and block device of the host's /dev, at the same paths (privileged containers). */
export function hostDevices(): ContainerDevice[] {
  return walk('/dev', '/dev', 'rwm');
}
