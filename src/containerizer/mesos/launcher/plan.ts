// The launch plan: what cri-mesos-launch (addon/launch/) executes. Policy is
// computed here in TypeScript; the helper only carries the plan out, in order.
//
// Wire format (the file `plan` in the container's runtime dir):
//   one operation per line; fields separated by TAB; the first field is the op.
//   In every field `\\` stands for a backslash, `\t` for TAB, `\n` for newline.
//   A field that is exactly `-` means "none" (NULL source/fstype/data of mount).
//
// Invocation: cri-mesos-launch <pause|container> <plan path | ->
//   fd 0,1: /dev/null; fd 2: the helper's own diagnostics (runtime dir/launch.log)
//   fd 0 holds the plan instead when the path is "-" (a pod's helper that runs in the pod's user
//         namespace cannot open the root-only runtime dir; a pooled pause helper, which waits for
//         the pod it will serve); it is /dev/null once read. Such a plan ends with an `end` op: one
//         cut short (the daemon died while or before writing it) fails instead of running in part
//   fd 3: sync pipe. After every setup op ran the helper writes "ok\n" and closes
//         it; on failure it writes "error <message>\n" and exits 1.
//   fd 4, 5, ...: what isolators pass (LaunchInfo.passFds, in order), named by tree-fd ops
//
// Setup ops run in file order before "ok":
//   rundir <path> <exec fifo> <ctl fifo> <status> <attach socket>   (container mode) open the
//                           runtime dir; the names of the FIFOs, the status file and the attach
//                           socket in it (src/paths.ts names them). A pause helper gets none: it
//                           writes nothing there (and in a user namespace could not open it)
//   stdio <tty 0|1> <stdin 0|1> <stdin-once 0|1>   (container mode) the command's stdio, as
//                           CRI's tty, stdin and stdin_once: tty runs it on a terminal from the
//                           container's devpts (opened by the init after setup; the helper holds
//                           the master, which is also its stdout in the log); stdin keeps its
//                           stdin open (a pipe, or the terminal) for attach clients; stdin-once
//                           ends it when the first attach that wrote to it leaves
//   log <path>              open the CRI log file (O_APPEND|O_CREAT, 0640) and keep
//                           its directory fd for `reopen`
//   propagation <path> <flags>          mount(NULL, path, NULL, flags, NULL)
//   mount <src> <target> <fstype> <flags> <data>   a new mount (never a bind or remount)
//   tree <n> <src>                      open_tree(OPEN_TREE_CLONE|AT_RECURSIVE): a detached copy of
//                                       src, taken while it is still a peer of the host's mount
//   tree-fd <n> <fd>                    slot n is the inherited fd: a detached mount tree the daemon
//                                       made (native idmappedTree: a host path idmapped with the pod's
//                                       user namespace); slots of tree and tree-fd count 0, 1, ... together
//   bind <src|@n> <target> <rw|ro|rro> <private|rslave|rshared|->
//                                       recursive bind (or attach tree n), then the read-only
//                                       remount of the top mount keeping nosuid/nodev/noexec (rro:
//                                       mount_setattr(AT_RECURSIVE, MOUNT_ATTR_RDONLY)), then the
//                                       propagation of the tree ("-": leave it)
//   remount-ro <path>                   remount an existing mount read-only, keeping locked flags
//   mkdir <path> <octal mode>           mkdir -p
//   touch <path>                        create an empty file (and parents) if missing
//   mknod <path> <c|b> <octal mode> <major> <minor> <uid> <gid>   a device node, owned and moded
//                                       as given; one already there of that device is kept, any other
//                                       file (not a directory) is replaced
//   symlink <target> <linkpath>         EEXIST is fine
//   pivot_root <newroot>                chdir, pivot_root(".", "."), detach the old root, chdir /
//   mask <path>                         /dev/null over a file, empty ro tmpfs over a dir; ENOENT skipped
//   readonly <path>                     bind onto itself and remount read-only; ENOENT skipped
//   console <path>                      (container mode, with tty) once the init has opened the
//                                       command's terminal, its slave is bind-mounted on <path>
//                                       (a file created 0666 if missing), as runc's /dev/console
//   cgroupns                            unshare(CLONE_NEWCGROUP): a pooled pause helper's cgroup
//                                       namespace, made once the daemon has moved it into its pod's cgroups
//   hostname <name>
//   sysctl <key> <value>                write /proc/sys/<key with . as />
//   loopback-up                         bring `lo` up in the current network namespace
//   oom-score-adj <n>                   EPERM/EACCES is a warning (no CAP_SYS_RESOURCE here)
//   new-pid-ns                          (container mode) the command is PID 1 of a PID namespace of
//                                       its own that the helper is outside of: the helper unshares
//                                       CLONE_NEWPID before it forks the init; with userns, a short-lived
//                                       child joins the user namespace, unshares it there (so that it
//                                       owns it) and clones the init with CLONE_PARENT
//   userns <path>                       (container mode) the pod's user namespace (its ns file). The
//                                       helper opens it and stays in the host's; the init first applies
//                                       oom-score-adj (which needs the host's root), then joins it, takes
//                                       uid 0, gid 0 and no groups there, and unshares a mount and a
//                                       cgroup namespace owned by it; every other setup op runs after
//                                       that, so /proc, sysfs, devpts, mqueue and tmpfs are mounted from
//                                       inside the user namespace (as runc's init does). Device nodes
//                                       cannot be made there: the plan binds the host's (as runc does)
//
// Settings applied in the forked command (container mode):
//   cwd <dir>  user <uid> <gid>  groups <gid>...  env <KEY=VALUE>  argv <arg0> <arg>...
//   no-new-privs  capabilities <hex mask kept in every set>
//   ambient <hex mask>      raised (PR_CAP_AMBIENT_RAISE) after the user and the capability sets
//                           changed, so they survive exec for a non-root user; each is in the mask
//   seccomp <hex BPF>       the compiled program (struct sock_filter[], native seccompCompile); the
//                           init installs it before the user and capabilities change without
//                           no-new-privs (that needs CAP_SYS_ADMIN), as the last step before exec
//                           with it; pause mode: before "ok"
//   apparmor <profile>      (container mode) the init writes "exec <profile>" to
//                           /proc/thread-self/attr/apparmor/exec (attr/exec where the kernel has no
//                           per-LSM directory, before 5.8) while it still holds its privileges, as
//                           runc does; the profile applies from the command's execve. Planned only
//                           where /sys/module/apparmor/parameters/enabled is Y (src/security/apparmor.ts)
//   user, groups            (pause mode) the pause helper takes this uid, gid and groups after its
//                           setup and seccomp, before "ok" (the pod's run_as_user, run_as_group and
//                           supplemental_groups)
//
// Container mode: the helper runs rundir, log and new-pid-ns itself, then forks
// the container's init, which runs every other setup op (so that /proc is
// mounted from inside its PID namespace) and reports back; the helper then
// answers "ok" (the init is the helper's only child). After that:
// wait for one byte on <rundir>/exec.fifo (StartContainer), let the init exec
// the command with stdout/stderr on pipes; open <rundir>/ctl.fifo read-write;
// write CRI log lines and fan the output out to attach clients on <rundir>/<attach socket>
// (framed protocol: src/containerizer/mesos/attach.ts); forward catchable signals to the command (to a PID 1 of
// its own namespace only once it handles them: the kernel would drop them); reap; on
// `reopen\n` from ctl.fifo reopen the log;
// when the command exits, drain the pipes, write `<rundir>/status` as
// "<wait status> <unix nanos>\n" (tmp + fsync + rename) and exit with the
// command's exit code (128+signal when killed).
// Pause mode, after "ok": reap children until SIGTERM/SIGINT.

export type BindMode = 'rw' | 'ro' | 'rro';
export type BindPropagation = 'private' | 'rslave' | 'rshared' | '-';

export type PlanOp =
  | ['rundir', string, string, string, string, string]
  | ['stdio', 0 | 1, 0 | 1, 0 | 1]
  | ['log', string]
  | ['propagation', string, number]
  | ['mount', string | null, string, string | null, number, string | null]
  | ['tree', number, string]
  | ['tree-fd', number, number]
  | ['userns', string]
  | ['bind', string, string, BindMode, BindPropagation]
  | ['remount-ro', string]
  | ['new-pid-ns']
  | ['mkdir', string, number]
  | ['touch', string]
  | ['mknod', string, 'c' | 'b', number, number, number, number, number]
  | ['console', string]
  | ['symlink', string, string]
  | ['pivot_root', string]
  | ['mask', string]
  | ['readonly', string]
  | ['cgroupns']
  | ['end']
  | ['hostname', string]
  | ['sysctl', string, string]
  | ['loopback-up']
  | ['oom-score-adj', number]
  | ['cwd', string]
  | ['user', number, number]
  | ['groups', ...number[]]
  | ['env', string]
  | ['argv', ...string[]]
  | ['no-new-privs']
  | ['capabilities', bigint]
  | ['ambient', bigint]
  | ['seccomp', string]
  | ['apparmor', string];

/** The first fd number of LaunchInfo.passFds in the helper (fd 3 is the sync pipe). */
export const FIRST_PASSED_FD = 4;

function escapeField(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n');
}

function encodeField(op: string, value: unknown, index: number): string {
  if (value === null) return '-';
  if (typeof value === 'bigint') return value.toString(16);
  if (typeof value === 'number') {
    // Modes are octal on the wire; everything else is decimal.
    const octal = (op === 'mkdir' && index === 2) || (op === 'mknod' && index === 3);
    return octal ? '0' + value.toString(8) : String(value);
  }
  return escapeField(String(value));
}

export function encodePlan(ops: PlanOp[]): string {
  return ops.map((op) => op.map((v, i) => (i === 0 ? v : encodeField(op[0], v, i))).join('\t')).join('\n') + '\n';
}

export function decodePlan(text: string): string[][] {
  return text
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) =>
      line.split('\t').map((f) => f.replace(/\\(.)/g, (_m, c: string) => (c === 't' ? '\t' : c === 'n' ? '\n' : c))),
    );
}
