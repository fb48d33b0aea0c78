// Typed front of the native addon (addon/src/addon.cc). Everything that needs
// clone3/setns/pidfd/mount lives there; the rules it keeps: no setns/unshare/
// chroot on a Node thread, only async-signal-safe calls after clone, every fd
// it opens is O_CLOEXEC.
import { createRequire } from 'node:module';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../util/paths.js';

export type NamespaceType = 'mnt' | 'pid' | 'net' | 'uts' | 'ipc' | 'cgroup' | 'user';

export interface NamespaceJoin {
  type: NamespaceType;
  /** A namespace file such as /proc/<pid>/ns/net, opened before the clone. */
  path: string;
}

export interface SpawnOptions {
  /** Executable. Absolute path, or a bare name searched in `searchPath` (after joins, so inside a joined mount ns). */
  file: string;
  argv: string[];
  /** KEY=VALUE strings; the child gets exactly these. */
  env: string[];
  /** Namespaces the final child is created in (clone3 CLONE_NEW* flags). */
  cloneNamespaces: NamespaceType[];
  /**
   * Namespaces joined before the final child is cloned. Joined by the held
   * intermediate process in the order user, cgroup, ipc, uts, net, pid, mnt;
   * the final child is cloned with CLONE_PARENT so it is our child and lands
   * in a joined PID namespace.
   */
  joinNamespaces: NamespaceJoin[];
  /** fds that become the child's 0, 1, 2; -1 means /dev/null. */
  stdio: [number, number, number];
  /** fds that become the child's 3, 4, ... in this order (CLOEXEC cleared only in the child). */
  extraFds?: number[];
  /** Optional cgroup v2 directory fd for CLONE_INTO_CGROUP of the intermediate. */
  cgroupFd?: number;
  /** Working directory of the final child (after joins). */
  cwd?: string;
  /** Credentials set in the final child just before exec (setgroups, setgid, setuid). */
  uid?: number;
  gid?: number;
  groups?: number[];
  /** Hex mask of the capabilities kept in every set (the bounding set is cut to it); absent = unchanged. */
  capabilities?: string;
  /** Hex mask of ambient capabilities raised after the sets are set (each must be in `capabilities`). */
  ambient?: string;
  /** PR_SET_NO_NEW_PRIVS before exec. */
  noNewPrivs?: boolean;
  /**
   * A seccomp filter in the text form of src/security/seccomp/compile.ts: compiled before the clone
   * (a bad one throws), installed in the final child (before the credentials change without
   * noNewPrivs, which needs CAP_SYS_ADMIN; last before exec with it).
   */
  seccomp?: string;
  /**
   * An AppArmor profile: the final child writes "exec <profile>" to its
   * /proc/thread-self/attr/apparmor/exec (attr/exec on kernels before 5.8) while it still holds
   * its privileges, so the profile applies from its execve.
   */
  apparmor?: string;
  /** PATH value used to search `file` when it has no slash. */
  searchPath?: string;
  /** setsid() in the final child (default true). */
  setsid?: boolean;
  /**
   * Run on a terminal: after the joins, the final child opens /dev/ptmx of the mount namespace
   * it is in (the container's devpts), makes the slave its controlling terminal and its fds
   * 0, 1, 2 (`stdio` is ignored), and sends the master over this socket (one end of
   * socketPair(); take it with recvFd once release() resolved). Needs setsid.
   */
  ptySocket?: number;
}

/**
 * An intermediate child created by spawnHeld, blocked on a pipe until release(). It shares the
 * daemon's address space (CLONE_VM|CLONE_VFORK on a dedicated thread, posix_spawn-style), so no
 * page tables are copied.
 */
export interface HeldChild {
  /** pid of the held intermediate; it is what gets placed into cgroups. */
  readonly pid: number;
  readonly handle: unknown;
}

export interface SpawnedChild {
  /** pid of the final child, in the daemon's PID namespace. */
  pid: number;
  /** pidfd of the final child (O_CLOEXEC). */
  pidfd: number;
}

export interface ExitInfo {
  /** Raw wait status decomposition; null when the process was not our child (after a daemon restart). */
  exitCode: number | null;
  signal: number | null;
}

export interface StatfsInfo {
  bsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
}

export interface NativeAddon {
  /**
   * Clone the held intermediate on a thread of its own (not the libuv threadpool). Resolves
   * once the intermediate exists and has reported its pid; rejects on bad options, an fd that
   * cannot be opened (e.g. a namespace path: code ENOENT) or a failed clone3.
   */
  spawnHeld(opts: SpawnOptions): Promise<HeldChild>;
  /** Let the intermediate go on: it joins, clones the final child, which execs. Resolves after the exec succeeded. */
  release(held: HeldChild): Promise<SpawnedChild>;
  /** Kill and reap a held intermediate that will not be released. */
  abort(held: HeldChild): void;
  /** Resolves when the process behind `pidfd` exits; reaps it when it is our child. Does not close the pidfd. */
  waitPidfd(pidfd: number): Promise<ExitInfo>;
  pidfdOpen(pid: number): number;
  pidfdSendSignal(pidfd: number, signal: number): void;
  close(fd: number): void;
  /** pipe2(O_CLOEXEC): [readFd, writeFd]. */
  pipe(): [number, number];
  mkfifo(path: string, mode: number): void;
  /**
   * A seccomp filter (text of src/security/seccomp/compile.ts) compiled with libseccomp to its BPF
   * program (struct sock_filter[]), for the launch helper. Cached by text; throws on a bad filter.
   */
  seccompCompile(text: string): Buffer;
  mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null): void;
  umount2(target: string, flags: number): void;
  /** umount2 on a libuv pool thread (an overlay's unmount syncs its upper filesystem). */
  umount2Async(target: string, flags: number): Promise<void>;
  mknod(path: string, mode: number, major: number, minor: number): void;
  /**
   * Loads a BPF_PROG_TYPE_CGROUP_DEVICE program (struct bpf_insn[], src/cgroups/devices.ts) and
   * attaches it to the cgroup2 directory `dir` (BPF_F_ALLOW_MULTI), then detaches the device
   * programs attached there before. Throws an errno error naming the bpf() command; a program
   * the verifier refused carries its log in `.verifierLog`.
   */
  attachDeviceFilter(dir: string, insns: Buffer): void;
  lsetxattr(path: string, name: string, value: Buffer, flags: number): void;
  lgetxattr(path: string, name: string): Buffer | null;
  statfs(path: string): StatfsInfo;
  /** The kernel has mount_setattr (Linux 5.12+): recursive read-only mounts work. */
  hasMountSetattr(): boolean;
  /** socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC), to pass an fd (SpawnOptions.ptySocket). */
  socketPair(): [number, number];
  /** The fd queued on a socketPair end (O_CLOEXEC); throws EAGAIN when none is queued. */
  recvFd(socket: number): number;
  /** TIOCSWINSZ on a terminal, e.g. a pty master. */
  setWinsize(fd: number, cols: number, rows: number): void;
  /** The terminal's VEOF character (^D unless changed), read through its master. */
  ttyEofChar(fd: number): number;
  setNonblocking(fd: number): void;
  /** fcntl(F_DUPFD_CLOEXEC). */
  dup(fd: number): number;
  /**
   * A TCP connection to 127.0.0.1:port, else [::1]:port, inside the network namespace
   * `nsPath`, made on a native thread of its own that joins the namespace and then ends.
   * Resolves to the connected socket's fd (O_CLOEXEC); rejects with an errno error (code
   * ECONNREFUSED, ENOENT for a namespace file that is gone, ...).
   */
  connectInNetns(nsPath: string, port: number): Promise<number>;
  /**
   * A new network namespace, pinned at `path` (an empty file, created if missing) by a bind
   * mount of its namespace file. Made on a native thread of its own that unshares
   * CLONE_NEWNET, mounts and ends (never a Node or libuv pool thread). Rejects with an errno
   * error naming the syscall.
   */
  pinNetns(path: string): Promise<void>;
  /**
   * Namespaces made by a short-lived child process and pinned: the child is created in a new
   * user namespace (`user`: its uid_map and gid_map, in /proc/<pid>/uid_map's format, written by
   * the daemon; setgroups stays "allow") or joins the pinned one at `joinUser`, then unshares
   * `unshare` (not user or pid), so those are owned by that user namespace. Each `pins` entry's
   * namespace file is bind-mounted on its path (an empty file, created if missing); then the
   * child is killed. Run on a native thread of its own, never a Node thread (setns into a user
   * namespace refuses a multithreaded process, so a child process does it). Rejects with an
   * errno error naming the syscall; a half-made set is unmounted again.
   */
  nsPin(opts: { user?: { uidMap: string; gidMap: string }; joinUser?: string; unshare?: NamespaceType[]; pins: { type: NamespaceType; path: string }[] }): Promise<void>;
  /**
   * A detached copy of the mount tree at `path` (open_tree(OPEN_TREE_CLONE), with its submounts
   * unless `recursive` is false), idmapped with the user namespace file `userns`
   * (mount_setattr(MOUNT_ATTR_IDMAP)): owners on disk show through that namespace's mapping.
   * Resolves to its fd (O_CLOEXEC; the caller closes it), for the launch helper's tree-fd op or
   * moveMount. Rejects with an errno error naming open_tree or mount_setattr: EINVAL from
   * mount_setattr is a filesystem without idmapped mounts. On a native thread of its own.
   */
  idmappedTree(path: string, userns: string, recursive?: boolean): Promise<number>;
  /** move_mount(MOVE_MOUNT_F_EMPTY_PATH): attach a detached mount tree (an idmappedTree fd) on `target`. */
  moveMount(fd: number, target: string): void;
  /**
   * One datagram to the AF_UNIX socket `socket` ($NOTIFY_SOCKET: a path, or `@name` in the
   * abstract namespace), sent without blocking (MSG_DONTWAIT | MSG_NOSIGNAL): the sd_notify
   * protocol without libsystemd. Throws an errno error naming socket, sendto or close (EAGAIN:
   * the manager's queue is full and the message was dropped; ECONNREFUSED/ENOENT: nobody listens).
   */
  sdNotify(socket: string, message: string): void;
}

let cached: NativeAddon | undefined;

export function native(): NativeAddon {
  if (cached) return cached;
  const file = join(projectRoot(), 'addon', 'build', 'Release', 'cri_mesos_native.node');
  if (!existsSync(file)) {
    throw new Error(`native addon not built: ${file} is missing (run npm run build:native)`);
  }
  const require = createRequire(import.meta.url);
  cached = require(file) as NativeAddon;
  return cached;
}

/** Path of the launch helper executable built from the same binding.gyp. */
export function launchHelperPath(): string {
  return join(projectRoot(), 'addon', 'build', 'Release', 'cri-mesos-launch');
}

// Mount flags (linux/mount.h), used by plans and the provisioner.
export const MS = {
  RDONLY: 1,
  NOSUID: 2,
  NODEV: 4,
  NOEXEC: 8,
  REMOUNT: 32,
  BIND: 4096,
  MOVE: 8192,
  REC: 16384,
  PRIVATE: 1 << 18,
  SLAVE: 1 << 19,
  SHARED: 1 << 20,
  STRICTATIME: 1 << 24,
  RELATIME: 1 << 21,
} as const;

export const MNT_DETACH = 2;

/** Unmount a namespace pinned by a bind mount (pinNetns, the pod's userns) and remove its file; both may be gone already. */
export function unpinNamespace(path: string): void {
  try {
    native().umount2(path, MNT_DETACH);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'ENOENT') throw err;
  }
  rmSync(path, { force: true });
}
