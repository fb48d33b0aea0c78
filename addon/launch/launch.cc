// cri-mesos-launch: the Mesos launch helper. It carries out a launch plan that
// TypeScript computed (src/containerizer/mesos/launcher/plan.ts documents the
// format and the protocol), then stays as the container's init: it waits for
// StartContainer on exec.fifo, forks the command, writes its output as CRI
// log lines, forwards signals, reaps, and writes the exit status.
//
//   cri-mesos-launch <pause|container> <plan path>
//   fd 3: sync pipe ("ok\n" or "error <message>\n"); fd 2: diagnostics.
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "../common/apparmor_exec.h"
#include "../common/fd_passing.h"
#include "../common/seccomp_filter.h"

namespace {

constexpr size_t kMaxLogLine = 16384;
constexpr int kDrainIdleMs = 250;
constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

int gSyncFd = 3;

void Diag(const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n > sizeof buf - 2) n = sizeof buf - 2;
  buf[n++] = '\n';
  // A diagnostic has nowhere else to go: a failed write to fd 2 is not reported.
  if (write(2, "cri-mesos-launch: ", 18) < 0 || write(2, buf, (size_t)n) < 0) return;
}

bool WriteAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= (size_t)w;
  }
  return true;
}

// close() where a failure changes nothing: Linux releases the fd even when close
// reports an error (EINTR, EIO), and for fds we only read from, sockets, pipes
// and directories there is no written data whose loss it could report. Files we
// wrote (the status file) are checked where they are closed.
void CloseQuietly(int fd) {
  if (fd >= 0 && close(fd) < 0) return;
}

// kill() of our own child: ESRCH only means it is gone already; anything else is
// reported (a failure to kill is never silent).
void KillChild(pid_t pid, int sig) {
  if (pid > 0 && kill(pid, sig) < 0 && errno != ESRCH) Diag("kill %d with signal %d: %s", (int)pid, sig, strerror(errno));
}

// Setup failure: tell the daemon on the sync pipe and exit 1.
[[noreturn]] void SetupFail(const std::string& msg) {
  Diag("%s", msg.c_str());
  if (gSyncFd >= 0) {
    std::string line = "error " + msg;
    for (char& c : line) {
      if (c == '\n') c = ' ';
    }
    line += "\n";
    // The daemon may be gone (it closed the pipe on a timeout): the message went to fd 2 above.
    if (!WriteAll(gSyncFd, line.data(), line.size())) Diag("sync pipe: %s", strerror(errno));
  }
  _exit(1);
}

std::string ErrStr(const std::string& what, int err) { return what + ": " + strerror(err); }

// Setup succeeded: "ok" on the sync pipe. If the daemon stopped listening (its launch timeout
// closed the pipe) it destroys the container, so the failure is only reported.
void AnswerOk() {
  if (gSyncFd < 0) return;
  if (!WriteAll(gSyncFd, "ok\n", 3)) Diag("answer ok on the sync pipe: %s", strerror(errno));
  CloseQuietly(gSyncFd);
  gSyncFd = -1;
}

// ---------------------------------------------------------------------------
// Plan parsing

std::vector<std::vector<std::string>> ParsePlan(const std::string& text) {
  std::vector<std::vector<std::string>> ops;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty()) continue;
    std::vector<std::string> fields(1);
    for (size_t i = 0; i < line.size(); i++) {
      char c = line[i];
      if (c == '\t') {
        fields.emplace_back();
      } else if (c == '\\' && i + 1 < line.size()) {
        char n = line[++i];
        fields.back() += n == 't' ? '\t' : n == 'n' ? '\n' : n;
      } else {
        fields.back() += c;
      }
    }
    ops.push_back(std::move(fields));
  }
  return ops;
}

// The plan: a file, or "-" for fd 0 (a helper that runs in a pod's user namespace cannot open
// the root-only runtime dir, so the daemon hands it the open file). fd 0 is /dev/null afterwards.
std::string ReadFile(const char* path) {
  const bool fromStdin = strcmp(path, "-") == 0;
  int fd = fromStdin ? 0 : open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) SetupFail(ErrStr(std::string("open plan ") + path, errno));
  std::string out;
  char buf[8192];
  while (true) {
    ssize_t r = read(fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) SetupFail(ErrStr(std::string("read plan ") + path, errno));
    if (r == 0) break;
    out.append(buf, (size_t)r);
  }
  if (fromStdin) {
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0 || dup2(null, 0) < 0) SetupFail(ErrStr("/dev/null on fd 0", errno));
    CloseQuietly(null);
  } else {
    CloseQuietly(fd);
  }
  return out;
}

bool ParseNum(const std::string& s, int base, unsigned long long* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  unsigned long long v = strtoull(s.c_str(), &end, base);
  if (errno || *end) return false;
  *out = v;
  return true;
}

bool ParseInt(const std::string& s, long long* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  long long v = strtoll(s.c_str(), &end, 10);
  if (errno || *end) return false;
  *out = v;
  return true;
}

// ---------------------------------------------------------------------------
// Settings for the command, collected from the plan.

struct Settings {
  std::string cwd;
  bool hasUser = false;
  uid_t uid = 0;
  gid_t gid = 0;
  bool hasGroups = false;
  std::vector<gid_t> groups;
  std::vector<std::string> env;
  std::vector<std::string> argv;
  bool noNewPrivs = false;
  bool hasCaps = false;
  uint64_t caps = 0;
  // The ambient op: raised after the capability sets are set (each must be in them).
  uint64_t ambient = 0;
  // The seccomp op: a compiled BPF program, installed by the init.
  bool hasSeccomp = false;
  std::vector<sock_filter> seccomp;
  // The apparmor op: "exec <profile>", written by the init before the credentials change.
  bool hasAppArmor = false;
  std::string appArmorMsg;
};

struct State {
  int rundirFd = -1;
  // Names inside the runtime dir, from the plan's rundir op (src/paths.ts names them).
  std::string execFifo, ctlFifo, status, statusTmp, attachSock;
  // The stdio op: the command's terminal and stdin (CRI tty, stdin, stdin_once).
  bool tty = false;
  bool openStdin = false;
  bool stdinOnce = false;
  // new-pid-ns: the command will be PID 1 of its own namespace; procFd is the helper's own /proc.
  bool newPidNs = false;
  // userns: the pod's user namespace, which the init joins (the helper stays in the host's).
  int usernsFd = -1;
  // The init is already in it (it was cloned there to be PID 1 of a namespace owned by it).
  bool usernsJoined = false;
  int procFd = -1;
  int logDirFd = -1;
  int logFd = -1;
  std::string logName;
  std::string logPath;
  int capLast = 40;
  // The console op: where the terminal's slave is bound once the init opened it.
  std::string consolePath;
  Settings settings;
};

State gState;

// ---------------------------------------------------------------------------
// Setup operations

std::string DirName(const std::string& p);

// mkdir -p: the path itself first, its parents only when it is missing. Most ops name a dir
// whose parents exist (rootfs/dev/pts ...): one mkdir (+ a stat when it exists) instead of a
// mkdir and a stat per component from "/" (about 140 syscalls of a container's setup).
int MkdirP(const std::string& path, mode_t mode) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  if (p.empty() || p == "/" || p == ".") return 0;
  if (mkdir(p.c_str(), mode) == 0) return 0;
  if (errno == ENOENT) {
    if (MkdirP(DirName(p), mode) < 0) return -1;
    if (mkdir(p.c_str(), mode) == 0) return 0;
  }
  if (errno != EEXIST) return -1;
  struct stat st;
  if (stat(p.c_str(), &st) < 0) return -1;
  if (!S_ISDIR(st.st_mode)) {
    errno = ENOTDIR;
    return -1;
  }
  return 0;
}

std::string DirName(const std::string& p) {
  size_t slash = p.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return p.substr(0, slash);
}

std::string BaseName(const std::string& p) {
  size_t slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

const char* Nullable(const std::string& s) { return s == "-" ? nullptr : s.c_str(); }

constexpr unsigned long kPropagation = MS_SHARED | MS_PRIVATE | MS_SLAVE | MS_UNBINDABLE;

// Remount an existing mount read-only. A bind remount must repeat the flags the
// kernel may have locked on the source (nosuid/nodev/noexec): dropping one is
// EPERM where it is locked (user namespaces), and silently clears it elsewhere.
// Atime flags are left out, which makes the kernel keep them as they are.
int RemountReadonly(const char* target) {
  struct statvfs sv;
  if (statvfs(target, &sv) < 0) return -1;
  unsigned long keep = 0;
  if (sv.f_flag & ST_NOSUID) keep |= MS_NOSUID;
  if (sv.f_flag & ST_NODEV) keep |= MS_NODEV;
  if (sv.f_flag & ST_NOEXEC) keep |= MS_NOEXEC;
  return mount(nullptr, target, nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | keep, nullptr);
}

// Detached mount trees cloned by `tree` (open_tree), attached later by `bind @N`.
std::vector<int> gTrees;

// tree-fd <n> <fd>: an inherited detached mount tree (the daemon made it: an idmapped clone of a
// host path) becomes slot n, attached later by `bind @n`.
void OpTreeFd(const std::string& slot, const std::string& fdText) {
  unsigned long long n, fd;
  if (!ParseNum(slot, 10, &n) || n != gTrees.size()) SetupFail("tree-fd: slots must be numbered 0, 1, ... in order");
  if (!ParseNum(fdText, 10, &fd) || fd < 3 || fd > 65535) SetupFail("tree-fd: bad fd " + fdText);
  // Not handed on to the command (the init closes every fd above 2 before exec anyway).
  if (fcntl((int)fd, F_SETFD, FD_CLOEXEC) < 0) SetupFail(ErrStr("tree-fd: fd " + fdText, errno));
  gTrees.push_back((int)fd);
}

void OpTree(const std::string& slot, const std::string& src) {
  unsigned long long n;
  if (!ParseNum(slot, 10, &n) || n != gTrees.size()) SetupFail("tree: slots must be numbered 0, 1, ... in order");
  long fd = syscall(SYS_open_tree, AT_FDCWD, src.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
  if (fd < 0) SetupFail(ErrStr("open_tree " + src, errno));
  gTrees.push_back((int)fd);
}

unsigned long PropagationFlag(const std::string& p) {
  if (p == "private") return MS_PRIVATE;
  if (p == "rslave") return MS_SLAVE;
  if (p == "rshared") return MS_SHARED;
  if (p != "-") SetupFail("bind: bad propagation " + p);
  return 0;
}

// bind <src|@slot> <target> <rw|ro|rro> <private|rslave|rshared|->, as runc does
// a bind mount: recursive bind, then a read-only remount of the top mount (rro:
// mount_setattr over the whole tree), then the propagation of the tree.
void OpBind(const std::vector<std::string>& f) {
  const std::string& src = f[1];
  const std::string& target = f[2];
  const std::string& mode = f[3];
  if (mode != "rw" && mode != "ro" && mode != "rro") SetupFail("bind: bad mode " + mode);
  unsigned long prop = PropagationFlag(f[4]);
  if (!src.empty() && src[0] == '@') {
    unsigned long long n;
    if (!ParseNum(src.substr(1), 10, &n) || n >= gTrees.size()) SetupFail("bind: unknown tree " + src);
    if (syscall(SYS_move_mount, gTrees[n], "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) < 0)
      SetupFail(ErrStr("attach mount tree on " + target, errno));
    CloseQuietly(gTrees[n]);
    gTrees[n] = -1;
  } else if (mount(src.c_str(), target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) < 0) {
    SetupFail(ErrStr("bind mount " + src + " on " + target, errno));
  }
  if (mode != "rw" && RemountReadonly(target.c_str()) < 0) SetupFail(ErrStr("remount read-only " + target, errno));
  if (mode == "rro") {
    struct mount_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.attr_set = MOUNT_ATTR_RDONLY;
    if (syscall(SYS_mount_setattr, AT_FDCWD, target.c_str(), AT_RECURSIVE, &attr, sizeof attr) < 0) {
      int e = errno;
      if (e == ENOSYS) SetupFail("recursive read-only mount of " + target + ": the kernel has no mount_setattr (Linux 5.12+)");
      SetupFail(ErrStr("recursive read-only mount of " + target, e));
    }
  }
  if (prop && mount(nullptr, target.c_str(), nullptr, MS_REC | prop, nullptr) < 0)
    SetupFail(ErrStr("mount propagation " + f[4] + " of " + target, errno));
}

// mount <src> <target> <fstype> <flags> <data>: a new (non-bind) mount.
void OpMount(const std::vector<std::string>& f) {
  if (f.size() != 6) SetupFail("mount: expected 5 fields");
  unsigned long long flags;
  if (!ParseNum(f[4], 10, &flags)) SetupFail("mount: bad flags " + f[4]);
  if (flags & (MS_BIND | MS_REMOUNT | kPropagation)) SetupFail("mount: use bind, remount-ro or propagation for " + f[2]);
  if (mount(Nullable(f[1]), f[2].c_str(), Nullable(f[3]), flags, Nullable(f[5])) < 0)
    SetupFail(ErrStr("mount " + f[1] + " on " + f[2] + " (" + f[3] + ")", errno));
}

void OpPivotRoot(const std::string& newRoot) {
  if (chdir(newRoot.c_str()) < 0) SetupFail(ErrStr("chdir " + newRoot, errno));
  if (syscall(SYS_pivot_root, ".", ".") < 0) SetupFail(ErrStr("pivot_root " + newRoot, errno));
  // The old root is stacked on "." and unmounted. Its mounts are all rslave
  // (the plan's first propagation op), so this does not reach the host. No
  // second MS_SLAVE|MS_REC on ".": mount(2) resolves "." to the new root, not
  // to the old root on top of it, and would turn bidirectional mounts slave.
  if (umount2(".", MNT_DETACH) < 0) SetupFail(ErrStr("umount old root", errno));
  if (chdir("/") < 0) SetupFail(ErrStr("chdir /", errno));
}

void OpMask(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) < 0) {
    if (errno == ENOENT) return;
    SetupFail(ErrStr("mask " + path, errno));
  }
  if (S_ISDIR(st.st_mode)) {
    if (mount("tmpfs", path.c_str(), "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0") < 0)
      SetupFail(ErrStr("mask " + path, errno));
  } else if (mount("/dev/null", path.c_str(), nullptr, MS_BIND, nullptr) < 0) {
    SetupFail(ErrStr("mask " + path, errno));
  }
}

void OpReadonly(const std::string& path) {
  if (mount(path.c_str(), path.c_str(), nullptr, MS_BIND | MS_REC, nullptr) < 0) {
    if (errno == ENOENT) return;
    SetupFail(ErrStr("readonly bind " + path, errno));
  }
  if (RemountReadonly(path.c_str()) < 0) SetupFail(ErrStr("readonly remount " + path, errno));
}

void OpSysctl(const std::string& key, const std::string& value) {
  std::string rel = key;
  if (rel.find('/') == std::string::npos) {
    for (char& c : rel) {
      if (c == '.') c = '/';
    }
  }
  if (rel.find("..") != std::string::npos) SetupFail("sysctl: bad key " + key);
  std::string path = "/proc/sys/" + rel;
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) SetupFail(ErrStr("sysctl " + key, errno));
  if (!WriteAll(fd, value.data(), value.size())) SetupFail(ErrStr("sysctl " + key + "=" + value, errno));
  if (close(fd) < 0) SetupFail(ErrStr("sysctl " + key + "=" + value + ": close", errno));
}

void OpLoopbackUp() {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) SetupFail(ErrStr("loopback-up: socket", errno));
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) SetupFail(ErrStr("loopback-up: SIOCGIFFLAGS", errno));
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) SetupFail(ErrStr("loopback-up: SIOCSIFFLAGS", errno));
  CloseQuietly(s);
}

void OpOomScoreAdj(const std::string& value) {
  int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
  if (fd < 0) SetupFail(ErrStr("oom-score-adj: open", errno));
  if (!WriteAll(fd, value.data(), value.size())) {
    if (errno == EPERM || errno == EACCES) {
      Diag("warning: oom-score-adj %s: %s (ignored)", value.c_str(), strerror(errno));
    } else {
      SetupFail(ErrStr("oom-score-adj " + value, errno));
    }
  }
  CloseQuietly(fd);  // the write's result was checked above
}

// mknod <path> <c|b> <mode> <major> <minor> <uid> <gid>. A node of that device already there is
// kept; any other file in the way (an image's, not a directory) is replaced. Owner and mode are
// set after: mknod's mode goes through the umask. The node is ours, never a symlink, when
// chown and chmod follow the path.
void OpMknod(const std::vector<std::string>& f) {
  unsigned long long mode, major, minor, uid, gid;
  if (!ParseNum(f[3], 8, &mode) || !ParseNum(f[4], 10, &major) || !ParseNum(f[5], 10, &minor) ||
      !ParseNum(f[6], 10, &uid) || !ParseNum(f[7], 10, &gid) || (f[2] != "c" && f[2] != "b"))
    SetupFail("mknod: bad fields for " + f[1]);
  const char* path = f[1].c_str();
  mode_t type = f[2] == "c" ? S_IFCHR : S_IFBLK;
  dev_t dev = makedev(major, minor);
  if (mknod(path, type | (mode_t)(mode & 07777), dev) < 0) {
    if (errno != EEXIST) SetupFail(ErrStr("mknod " + f[1], errno));
    struct stat st;
    if (lstat(path, &st) < 0) SetupFail(ErrStr("lstat " + f[1], errno));
    if ((st.st_mode & S_IFMT) != type || st.st_rdev != dev) {
      if (S_ISDIR(st.st_mode)) SetupFail("mknod " + f[1] + ": a directory is in the way");
      if (unlink(path) < 0) SetupFail(ErrStr("unlink " + f[1], errno));
      if (mknod(path, type | (mode_t)(mode & 07777), dev) < 0) SetupFail(ErrStr("mknod " + f[1], errno));
    }
  }
  if (chown(path, (uid_t)uid, (gid_t)gid) < 0) SetupFail(ErrStr("chown " + f[1], errno));
  if (chmod(path, (mode_t)(mode & 07777)) < 0) SetupFail(ErrStr("chmod " + f[1], errno));
}

int OpenLog() {
  return openat(gState.logDirFd, gState.logName.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

void RunOp(const std::vector<std::string>& f) {
  const std::string& op = f[0];
  auto need = [&](size_t n) {
    if (f.size() != n + 1) SetupFail(op + ": expected " + std::to_string(n) + " field(s)");
  };
  Settings& set = gState.settings;
  if (op == "rundir") {
    need(5);
    gState.rundirFd = open(f[1].c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (gState.rundirFd < 0) SetupFail(ErrStr("rundir " + f[1], errno));
    for (size_t i = 2; i <= 5; i++) {
      if (f[i].empty() || f[i].find('/') != std::string::npos) SetupFail("rundir: bad file name " + f[i]);
    }
    gState.execFifo = f[2];
    gState.ctlFifo = f[3];
    gState.status = f[4];
    gState.statusTmp = f[4] + ".tmp";
    gState.attachSock = f[5];
  } else if (op == "stdio") {
    need(3);
    for (size_t i = 1; i <= 3; i++) {
      if (f[i] != "0" && f[i] != "1") SetupFail("stdio: fields must be 0 or 1");
    }
    gState.tty = f[1] == "1";
    gState.openStdin = f[2] == "1";
    gState.stdinOnce = f[3] == "1";
  } else if (op == "log") {
    need(1);
    gState.logPath = f[1];
    gState.logName = BaseName(f[1]);
    gState.logDirFd = open(DirName(f[1]).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (gState.logDirFd < 0) SetupFail(ErrStr("log directory of " + f[1], errno));
    gState.logFd = OpenLog();
    if (gState.logFd < 0) SetupFail(ErrStr("log " + f[1], errno));
  } else if (op == "propagation") {
    need(2);
    unsigned long long flags;
    if (!ParseNum(f[2], 10, &flags)) SetupFail("propagation: bad flags " + f[2]);
    if (mount(nullptr, f[1].c_str(), nullptr, flags, nullptr) < 0) SetupFail(ErrStr("propagation " + f[1], errno));
  } else if (op == "mount") {
    OpMount(f);
  } else if (op == "tree") {
    need(2);
    OpTree(f[1], f[2]);
  } else if (op == "tree-fd") {
    need(2);
    OpTreeFd(f[1], f[2]);
  } else if (op == "bind") {
    need(4);
    OpBind(f);
  } else if (op == "remount-ro") {
    need(1);
    if (RemountReadonly(f[1].c_str()) < 0) SetupFail(ErrStr("remount read-only " + f[1], errno));
  } else if (op == "mkdir") {
    need(2);
    unsigned long long mode;
    if (!ParseNum(f[2], 8, &mode)) SetupFail("mkdir: bad mode " + f[2]);
    if (MkdirP(f[1], (mode_t)mode) < 0) SetupFail(ErrStr("mkdir " + f[1], errno));
  } else if (op == "touch") {
    need(1);
    if (MkdirP(DirName(f[1]), 0755) < 0) SetupFail(ErrStr("touch: mkdir parents of " + f[1], errno));
    int fd = open(f[1].c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
    if (fd < 0) {
      struct stat st;
      // An existing directory or device is fine: touch only ensures a mount point exists.
      if (stat(f[1].c_str(), &st) < 0) SetupFail(ErrStr("touch " + f[1], errno));
    } else {
      CloseQuietly(fd);  // nothing was written
    }
  } else if (op == "mknod") {
    need(7);
    OpMknod(f);
  } else if (op == "console") {
    need(1);
    gState.consolePath = f[1];
  } else if (op == "symlink") {
    need(2);
    if (symlink(f[1].c_str(), f[2].c_str()) < 0 && errno != EEXIST) SetupFail(ErrStr("symlink " + f[2], errno));
  } else if (op == "new-pid-ns") {
    need(0);
    // Our children (the init first) start a PID namespace of their own; we stay outside it
    // (ContainerMain makes it, once it knows whether a user namespace must own it).
    // Our /proc is kept open: after the init's pivot_root, "/proc" is its namespace's.
    gState.procFd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (gState.procFd < 0) SetupFail(ErrStr("open /proc", errno));
    gState.newPidNs = true;
  } else if (op == "userns") {
    need(1);
    if (gState.usernsFd >= 0) SetupFail("userns: given twice");
    gState.usernsFd = open(f[1].c_str(), O_RDONLY | O_CLOEXEC);
    if (gState.usernsFd < 0) SetupFail(ErrStr("userns " + f[1], errno));
  } else if (op == "pivot_root") {
    need(1);
    OpPivotRoot(f[1]);
  } else if (op == "mask") {
    need(1);
    OpMask(f[1]);
  } else if (op == "readonly") {
    need(1);
    OpReadonly(f[1]);
  } else if (op == "cgroupns") {
    // A pooled pause helper was cloned before its pod's cgroups existed: its cgroup namespace is
    // made here, once the daemon has moved it into them (DESIGN: "new, after joining its cgroups").
    need(0);
    if (unshare(CLONE_NEWCGROUP) < 0) SetupFail(ErrStr("unshare(CLONE_NEWCGROUP)", errno));
  } else if (op == "hostname") {
    need(1);
    if (sethostname(f[1].data(), f[1].size()) < 0) SetupFail(ErrStr("sethostname " + f[1], errno));
  } else if (op == "sysctl") {
    need(2);
    OpSysctl(f[1], f[2]);
  } else if (op == "loopback-up") {
    need(0);
    OpLoopbackUp();
  } else if (op == "oom-score-adj") {
    need(1);
    OpOomScoreAdj(f[1]);
  } else if (op == "cwd") {
    need(1);
    set.cwd = f[1];
  } else if (op == "user") {
    need(2);
    long long uid, gid;
    if (!ParseInt(f[1], &uid) || !ParseInt(f[2], &gid) || uid < 0 || gid < 0) SetupFail("user: bad uid/gid");
    set.hasUser = true;
    set.uid = (uid_t)uid;
    set.gid = (gid_t)gid;
  } else if (op == "groups") {
    set.hasGroups = true;
    set.groups.clear();
    for (size_t i = 1; i < f.size(); i++) {
      long long g;
      if (!ParseInt(f[i], &g) || g < 0) SetupFail("groups: bad gid " + f[i]);
      set.groups.push_back((gid_t)g);
    }
  } else if (op == "env") {
    need(1);
    set.env.push_back(f[1]);
  } else if (op == "argv") {
    if (f.size() < 2) SetupFail("argv: empty");
    set.argv.assign(f.begin() + 1, f.end());
  } else if (op == "no-new-privs") {
    set.noNewPrivs = true;
  } else if (op == "seccomp") {
    need(1);
    // The BPF program in hex (the daemon compiled it: addon seccompCompile); kept until the init
    // installs it, which is then one syscall.
    const std::string& hex = f[1];
    size_t bytes = hex.size() / 2;
    if (hex.size() % 2 || bytes == 0 || bytes % sizeof(sock_filter) || bytes / sizeof(sock_filter) > BPF_MAXINSNS)
      SetupFail("seccomp: bad program length");
    set.seccomp.resize(bytes / sizeof(sock_filter));
    unsigned char* p = reinterpret_cast<unsigned char*>(set.seccomp.data());
    for (size_t i = 0; i < bytes; i++) {
      unsigned long long b;
      if (!ParseNum(hex.substr(2 * i, 2), 16, &b)) SetupFail("seccomp: bad hex in the program");
      p[i] = (unsigned char)b;
    }
    set.hasSeccomp = true;
  } else if (op == "apparmor") {
    need(1);
    if (f[1].empty() || f[1].find('\0') != std::string::npos || f[1].find('\n') != std::string::npos)
      SetupFail("apparmor: bad profile name");
    set.hasAppArmor = true;
    set.appArmorMsg = apparmorf::ExecMessage(f[1]);
  } else if (op == "capabilities") {
    need(1);
    unsigned long long mask;
    if (!ParseNum(f[1], 16, &mask)) SetupFail("capabilities: bad mask " + f[1]);
    set.hasCaps = true;
    set.caps = mask;
  } else if (op == "ambient") {
    need(1);
    unsigned long long mask;
    if (!ParseNum(f[1], 16, &mask)) SetupFail("ambient: bad mask " + f[1]);
    set.ambient = mask;
  } else {
    SetupFail("unknown plan operation: " + op);
  }
}

// ---------------------------------------------------------------------------
// The command (runs in the forked child; the helper is single-threaded so the
// full library is usable here).

[[noreturn]] void ChildDie(int code, const std::string& msg) {
  std::string line = "cri-mesos-launch: " + msg + "\n";
  // The message goes to the container's stderr; if that fails the exit code still tells.
  if (!WriteAll(2, line.data(), line.size())) _exit(code);
  _exit(code);
}

void ApplyCaps(const Settings& set) {
  for (int c = 0; c <= gState.capLast; c++) {
    if (c < 64 && (set.caps >> c) & 1) continue;
    if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
      ChildDie(127, ErrStr("drop capability " + std::to_string(c) + " from the bounding set", errno));
  }
}

void SetCaps(const Settings& set) {
  struct __user_cap_header_struct hdr;
  struct __user_cap_data_struct data[2];
  memset(&hdr, 0, sizeof hdr);
  memset(data, 0, sizeof data);
  hdr.version = _LINUX_CAPABILITY_VERSION_3;
  hdr.pid = 0;
  for (int i = 0; i < 2; i++) {
    uint32_t part = (uint32_t)(set.caps >> (32 * i));
    data[i].effective = data[i].permitted = data[i].inheritable = part;
  }
  if (syscall(SYS_capset, &hdr, data) < 0) ChildDie(127, ErrStr("capset", errno));
}

// The command's fds 0, 1, 2. With a terminal all three are its slave, which also becomes
// the controlling terminal of a new session (as runc does for a tty process).
struct CommandStdio {
  int in = -1, out = -1, err = -1;
  bool ctty = false;
};

[[noreturn]] void RunCommand(const CommandStdio& io) {
  const Settings& set = gState.settings;
  sigset_t none;
  sigemptyset(&none);
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; sig++) {
    // EINVAL: a signal glibc reserves for itself (32, 33), which it will not let us touch.
    if (sig != SIGKILL && sig != SIGSTOP && sigaction(sig, &dfl, nullptr) < 0 && errno != EINVAL)
      ChildDie(127, ErrStr("reset signal " + std::to_string(sig), errno));
  }
  if (io.ctty) {
    if (setsid() < 0) ChildDie(127, ErrStr("setsid", errno));
    if (ioctl(io.in, TIOCSCTTY, 0) < 0) ChildDie(127, ErrStr("TIOCSCTTY", errno));
  }
  if (dup2(io.in, 0) < 0 || dup2(io.out, 1) < 0 || dup2(io.err, 2) < 0) ChildDie(127, ErrStr("dup2 stdio", errno));
  if (syscall(SYS_close_range, 3u, ~0u, 0u) < 0) ChildDie(127, ErrStr("close_range", errno));
  umask(022);  // cannot fail; returns the previous mask

  if (!set.cwd.empty()) {
    if (MkdirP(set.cwd, 0755) < 0) ChildDie(127, ErrStr("mkdir cwd \"" + set.cwd + "\"", errno));
    if (chdir(set.cwd.c_str()) < 0) ChildDie(127, ErrStr("chdir to cwd \"" + set.cwd + "\"", errno));
  }
  // The AppArmor profile of the execve below, set while we are still root with every capability
  // and before no_new_privs and seccomp (runc's order); a failure is never ignored.
  if (set.hasAppArmor) {
    const char* stage = "";
    if (apparmorf::SetExecProfile(set.appArmorMsg, &stage) < 0)
      ChildDie(127, ErrStr("apparmor \"" + set.appArmorMsg.substr(5) + "\": " + stage, errno));
  }
  // Without no_new_privs the kernel wants CAP_SYS_ADMIN to install a filter: so now, before the
  // user and the capabilities change (runc's order). The filter then sees setgroups..capset.
  if (set.hasSeccomp && !set.noNewPrivs && seccompf::Install(set.seccomp) < 0) ChildDie(127, ErrStr("seccomp", errno));
  if (set.hasCaps) ApplyCaps(set);
  if (set.hasCaps && set.hasUser && set.uid != 0 && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
    ChildDie(127, ErrStr("prctl(PR_SET_KEEPCAPS)", errno));
  if (set.hasGroups) {
    if (setgroups(set.groups.size(), set.groups.data()) < 0) ChildDie(127, ErrStr("setgroups", errno));
  } else if (set.hasUser) {
    if (setgroups(0, nullptr) < 0) ChildDie(127, ErrStr("setgroups", errno));
  }
  if (set.hasUser) {
    if (setresgid(set.gid, set.gid, set.gid) < 0) ChildDie(127, ErrStr("setgid " + std::to_string(set.gid), errno));
    if (setresuid(set.uid, set.uid, set.uid) < 0) ChildDie(127, ErrStr("setuid " + std::to_string(set.uid), errno));
  }
  if (set.hasCaps) {
    if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0) ChildDie(127, ErrStr("prctl(PR_SET_KEEPCAPS)", errno));
    SetCaps(set);
  }
  // Ambient last: a raise needs the capability permitted and inheritable under the final uid.
  for (int c = 0; c < 64; c++) {
    if (((set.ambient >> c) & 1) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0)
      ChildDie(127, ErrStr("raise ambient capability " + std::to_string(c), errno));
  }
  if (set.noNewPrivs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) ChildDie(127, ErrStr("no_new_privs", errno));

  std::vector<char*> argv, envp;
  for (auto& a : set.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::string path = kDefaultPath;
  for (auto& e : set.env) {
    envp.push_back(const_cast<char*>(e.c_str()));
    if (e.compare(0, 5, "PATH=") == 0) path = e.substr(5);
  }
  envp.push_back(nullptr);
  // With no_new_privs, the last step before exec (after it: sigprocmask, the PATH search, execve).
  if (set.hasSeccomp && set.noNewPrivs && seccompf::Install(set.seccomp) < 0) ChildDie(127, ErrStr("seccomp", errno));
  if (sigprocmask(SIG_SETMASK, &none, nullptr) < 0) ChildDie(127, ErrStr("sigprocmask", errno));

  const std::string& file = set.argv[0];
  if (file.find('/') != std::string::npos) {
    execve(file.c_str(), argv.data(), envp.data());
    int e = errno;
    ChildDie(e == EACCES ? 126 : 127, "exec: \"" + file + "\": " + strerror(e));
  }
  bool sawEacces = false;
  int hardErr = 0;
  size_t start = 0;
  while (true) {
    size_t end = path.find(':', start);
    std::string dir = path.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (dir.empty()) dir = ".";
    std::string cand = dir + "/" + file;
    execve(cand.c_str(), argv.data(), envp.data());
    int e = errno;
    if (e == EACCES) {
      sawEacces = true;
    } else if (e != ENOENT && e != ENOTDIR && e != ESTALE && e != ENODEV && e != ETIMEDOUT) {
      hardErr = e;
      break;
    }
    if (end == std::string::npos) break;
    start = end + 1;
  }
  if (hardErr) ChildDie(127, "exec: \"" + file + "\": " + strerror(hardErr));
  if (sawEacces) ChildDie(126, "exec: \"" + file + "\": permission denied");
  ChildDie(127, "exec: \"" + file + "\": executable file not found in $PATH");
}

// ---------------------------------------------------------------------------
// CRI log writer

// clock_gettime with a valid clock and pointer cannot fail (EFAULT/EINVAL only).
struct timespec Now(clockid_t clock) {
  struct timespec ts = {0, 0};
  if (clock_gettime(clock, &ts) < 0) Diag("clock_gettime: %s", strerror(errno));
  return ts;
}

void Timestamp(char* out, size_t size) {
  struct timespec ts = Now(CLOCK_REALTIME);
  struct tm tm;
  memset(&tm, 0, sizeof tm);
  if (!gmtime_r(&ts.tv_sec, &tm)) Diag("gmtime_r: %s", strerror(errno));
  size_t n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out + n, size - n, ".%09ldZ", ts.tv_nsec);
}

void WriteRecord(const char* stream, bool partial, const char* data, size_t len) {
  if (gState.logFd < 0) return;
  char ts[64];
  Timestamp(ts, sizeof ts);
  std::string rec;
  rec.reserve(len + 64);
  rec += ts;
  rec += ' ';
  rec += stream;
  rec += partial ? " P " : " F ";
  rec.append(data, len);
  rec += '\n';
  if (!WriteAll(gState.logFd, rec.data(), rec.size())) Diag("write log: %s", strerror(errno));
}

struct Stream {
  const char* name;
  int fd;
  std::string buf;

  // Emit every complete line; a line over the limit goes out in P chunks.
  void Consume() {
    size_t pos = 0;
    while (pos < buf.size()) {
      size_t nl = buf.find('\n', pos);
      size_t avail = (nl == std::string::npos ? buf.size() : nl) - pos;
      if (avail > kMaxLogLine) {
        WriteRecord(name, true, buf.data() + pos, kMaxLogLine);
        pos += kMaxLogLine;
        continue;
      }
      if (nl == std::string::npos) break;
      size_t len = nl - pos;
      if (len > 0 && buf[nl - 1] == '\r') len--;
      WriteRecord(name, false, buf.data() + pos, len);
      pos = nl + 1;
    }
    buf.erase(0, pos);
  }

  void Flush() {
    if (!buf.empty()) WriteRecord(name, true, buf.data(), buf.size());
    buf.clear();
  }
};

void ReopenLog() {
  if (gState.logDirFd < 0) return;
  int fd = OpenLog();
  if (fd < 0) {
    Diag("reopen log %s: %s", gState.logPath.c_str(), strerror(errno));
    return;
  }
  // Every record was written with a checked write(); O_APPEND on a local file has no deferred errors.
  CloseQuietly(gState.logFd);
  gState.logFd = fd;
}

// ---------------------------------------------------------------------------
// Status file

void WriteStatus(int status) {
  if (gState.rundirFd < 0) return;
  struct timespec ts = Now(CLOCK_REALTIME);
  char buf[64];
  int n = snprintf(buf, sizeof buf, "%d %lld\n", status, (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
  int fd = openat(gState.rundirFd, gState.statusTmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    Diag("status: %s", strerror(errno));
    return;
  }
  if (!WriteAll(fd, buf, (size_t)n) || fsync(fd) < 0) Diag("status: write: %s", strerror(errno));
  if (close(fd) < 0) Diag("status: close: %s", strerror(errno));
  if (renameat(gState.rundirFd, gState.statusTmp.c_str(), gState.rundirFd, gState.status.c_str()) < 0)
    Diag("status: rename: %s", strerror(errno));
  if (fsync(gState.rundirFd) < 0) Diag("status: fsync the runtime dir: %s", strerror(errno));
}

// ---------------------------------------------------------------------------
// Signals: everything catchable is blocked and read from a signalfd, which also
// works for a PID-namespace init (blocked signals are queued, not dropped).

sigset_t gHandled;

int SetupSignals() {
  sigfillset(&gHandled);
  for (int sig : {SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS}) sigdelset(&gHandled, sig);
  if (sigprocmask(SIG_BLOCK, &gHandled, nullptr) < 0) SetupFail(ErrStr("sigprocmask", errno));
  int fd = signalfd(-1, &gHandled, SFD_CLOEXEC | SFD_NONBLOCK);
  if (fd < 0) SetupFail(ErrStr("signalfd", errno));
  return fd;
}

int64_t NowMs() {
  struct timespec ts = Now(CLOCK_MONOTONIC);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ReapAll(pid_t mainPid, bool* mainDone, int* mainStatus) {
  while (true) {
    int st;
    pid_t p = waitpid(-1, &st, WNOHANG);
    if (p < 0 && errno == EINTR) continue;
    // 0: children left, none exited; ECHILD: no children. Anything else would be a bug here.
    if (p < 0 && errno != ECHILD) Diag("waitpid: %s", strerror(errno));
    if (p <= 0) return;
    if (p == mainPid && mainDone && !*mainDone) {
      *mainDone = true;
      *mainStatus = st;
    }
  }
}

[[noreturn]] void PauseLoop(int sigfd) {
  while (true) {
    struct pollfd pfd = {sigfd, POLLIN, 0};
    if (poll(&pfd, 1, -1) < 0 && errno != EINTR) {
      Diag("poll: %s", strerror(errno));
      _exit(1);
    }
    struct signalfd_siginfo si;
    while (read(sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
      if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) _exit(0);
      if (si.ssi_signo == SIGCHLD) ReapAll(-1, nullptr, nullptr);
    }
  }
}

// The command's process (the container's init) is forked before setup, so that
// with a PID namespace of its own it is PID 1 there and mounts that
// namespace's /proc, while the helper stays outside as its parent and
// subreaper, holds the pipes, writes the logs and the status. These ops are
// the helper's own; the settings ops are only recorded; every other setup op
// runs in the init.
bool IsHelperOp(const std::string& op) {
  return op == "rundir" || op == "log" || op == "new-pid-ns" || op == "stdio" || op == "userns";
}

bool IsSettingOp(const std::string& op) {
  return op == "cwd" || op == "user" || op == "groups" || op == "env" || op == "argv" || op == "no-new-privs" ||
         op == "capabilities" || op == "ambient" || op == "seccomp" || op == "apparmor";
}

struct Child {
  pid_t pid = -1;
  bool done = false;
  int status = 0;
};

void ReapChild(Child& c) { ReapAll(c.pid, &c.done, &c.status); }

// Wait for StartContainer: one byte on exec.fifo. Opened non-blocking so
// SIGTERM still works while waiting; poll only reports POLLHUP once a writer
// has come and gone, so "opened and closed without a byte" means give up.
// Returns false when the init died first (its status is in `init`).
// A SIGTERM or SIGINT before the start byte ends the container unstarted. One that comes with
// the byte already in the FIFO (StartContainer answered, then StopContainer at once) is a stop
// of a started container: it is left in *stopSig, to be forwarded once the command runs.
bool WaitForStart(int sigfd, int fd, Child& init, int* stopSig) {
  while (true) {
    struct pollfd pfds[2] = {{sigfd, POLLIN, 0}, {fd, POLLIN, 0}};
    if (poll(pfds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      Diag("poll: %s", strerror(errno));
      KillChild(init.pid, SIGKILL);
      _exit(1);
    }
    if (pfds[0].revents) {
      struct signalfd_siginfo si;
      while (read(sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) *stopSig = (int)si.ssi_signo;
        if (si.ssi_signo == SIGCHLD) ReapChild(init);
      }
      if (*stopSig) {
        char b;
        ssize_t r;
        do r = read(fd, &b, 1);
        while (r < 0 && errno == EINTR);
        if (r == 1) break;
        Diag("signal %d before start; exiting", *stopSig);
        KillChild(init.pid, SIGKILL);
        _exit(128 + *stopSig);
      }
      if (init.done) {
        Diag("the container's init ended before start");
        CloseQuietly(fd);
        return false;
      }
    }
    if (pfds[1].revents) {
      char b;
      ssize_t r = read(fd, &b, 1);
      if (r == 1) break;
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      Diag("exec.fifo closed without a start byte; not running the command");
      KillChild(init.pid, SIGKILL);
      _exit(1);
    }
  }
  CloseQuietly(fd);
  return true;
}

using fdpass::SendFd;

// The console op, as runc's /dev/console: the slave (/dev/pts/<n> of the container's devpts)
// bind-mounted on `path`, created as an empty file first.
void BindConsole(int master, const std::string& path) {
  int n;
  if (ioctl(master, TIOCGPTN, &n) < 0) SetupFail(ErrStr("the pty number (TIOCGPTN)", errno));
  std::string slavePath = "/dev/pts/" + std::to_string(n);
  if (mknod(path.c_str(), S_IFREG | 0666, 0) < 0 && errno != EEXIST) SetupFail(ErrStr("create " + path, errno));
  if (mount(slavePath.c_str(), path.c_str(), nullptr, MS_BIND, nullptr) < 0)
    SetupFail(ErrStr("bind " + slavePath + " on " + path, errno));
}

// A terminal from the container's own devpts (mounted by the setup ops; after pivot_root
// /dev/ptmx is the container's): the master goes to the helper over ptySock, the slave is
// returned for the command. TIOCGPTPEER opens the slave without a path lookup.
int OpenContainerPty(int ptySock) {
  int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) SetupFail(ErrStr("open /dev/ptmx", errno));
  int unlock = 0;
  if (ioctl(master, TIOCSPTLCK, &unlock) < 0) SetupFail(ErrStr("unlock the pty (TIOCSPTLCK)", errno));
  int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0) SetupFail(ErrStr("open the pty slave (TIOCGPTPEER)", errno));
  if (!gState.consolePath.empty()) BindConsole(master, gState.consolePath);
  if (!SendFd(ptySock, master)) SetupFail(ErrStr("pass the pty master to the helper", errno));
  CloseQuietly(master);  // the helper holds it now
  CloseQuietly(ptySock);
  return slave;
}

// The init enters the pod's user namespace (the userns op): it joins it (unless it was cloned
// there), becomes its root with no supplementary groups (the daemon checked that 0 is mapped),
// and unshares a mount and a cgroup namespace owned by it, so that it may mount /proc, sysfs,
// devpts, mqueue and the rest as runc's init does in a user namespace. The helper stays in the
// host's user namespace: it keeps writing the log, the status and the runtime dir.
void JoinUserns() {
  if (!gState.usernsJoined && setns(gState.usernsFd, CLONE_NEWUSER) < 0)
    SetupFail(ErrStr("join the pod's user namespace", errno));
  if (setgroups(0, nullptr) < 0) SetupFail(ErrStr("setgroups in the pod's user namespace", errno));
  if (setresgid(0, 0, 0) < 0) SetupFail(ErrStr("setgid 0 in the pod's user namespace", errno));
  if (setresuid(0, 0, 0) < 0) SetupFail(ErrStr("setuid 0 in the pod's user namespace", errno));
  if (unshare(CLONE_NEWNS | CLONE_NEWCGROUP) < 0)
    SetupFail(ErrStr("unshare a mount and a cgroup namespace in the pod's user namespace", errno));
  CloseQuietly(gState.usernsFd);
  gState.usernsFd = -1;
}

// The init, as PID 1 of a new PID namespace owned by the pod's user namespace while its parent
// is still the helper: a short-lived child joins the user namespace, unshares the PID namespace
// (only a process in the user namespace can make one owned by it) and clones the init with
// CLONE_PARENT, reports the init's pid and exits. Returns 0 in the init (as fork does), the
// init's pid in the helper.
pid_t ForkInitInUserns() {
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) SetupFail(ErrStr("pipe", errno));
  pid_t x = fork();
  if (x < 0) SetupFail(ErrStr("fork", errno));
  if (x == 0) {
    CloseQuietly(p[0]);
    int32_t rep[3] = {0, 0, 0};  // init pid, stage, errno
    if (setns(gState.usernsFd, CLONE_NEWUSER) < 0) {
      rep[1] = 1;
      rep[2] = errno;
    } else if (unshare(CLONE_NEWPID) < 0) {
      rep[1] = 2;
      rep[2] = errno;
    } else {
      long c = syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0);
      if (c == 0) {
        CloseQuietly(p[1]);
        gState.usernsJoined = true;
        return 0;
      }
      if (c < 0) {
        rep[1] = 3;
        rep[2] = errno;
      } else {
        rep[0] = (int32_t)c;
      }
    }
    _exit(WriteAll(p[1], reinterpret_cast<const char*>(rep), sizeof rep) ? 0 : 1);
  }
  CloseQuietly(p[1]);
  int32_t rep[3] = {0, 0, 0};
  size_t got = 0;
  while (got < sizeof rep) {
    ssize_t r = read(p[0], reinterpret_cast<char*>(rep) + got, sizeof rep - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (size_t)r;
  }
  CloseQuietly(p[0]);
  int st;
  while (waitpid(x, &st, 0) < 0 && errno == EINTR) {
  }
  static const char* const stages[] = {"", "join the pod's user namespace", "unshare(CLONE_NEWPID) in the pod's user namespace",
                                       "clone the init"};
  if (got != sizeof rep) SetupFail("the child that makes the init's PID namespace ended without a report");
  if (rep[0] <= 0) SetupFail(ErrStr(rep[1] >= 1 && rep[1] <= 3 ? stages[rep[1]] : "make the init's PID namespace", rep[2]));
  return (pid_t)rep[0];
}

// The init: carries out the setup ops (mounts, pivot_root, ...), reports on
// readyW, waits for the start byte on startR, then becomes the command.
// stdinR: the read end of the stdin pipe (-1: /dev/null); ptySock >= 0: run on a terminal.
[[noreturn]] void InitMain(const std::vector<const std::vector<std::string>*>& setup, int outW, int errW, int stdinR,
                           int ptySock, int startR, int readyW) {
  // Without the helper nobody would log or record the exit: go with it.
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) SetupFail(ErrStr("prctl(PR_SET_PDEATHSIG)", errno));
  CloseQuietly(gSyncFd);  // the helper's end to the daemon: only the helper answers there
  gSyncFd = readyW;  // SetupFail now reports to the helper, which answers the daemon
  const bool userns = gState.usernsFd >= 0;
  if (userns) {
    // What needs the host's root comes first: our oom_score_adj (once in the user namespace,
    // /proc/self is not ours to write).
    for (const auto* op : setup) {
      if ((*op)[0] == "oom-score-adj") RunOp(*op);
    }
    JoinUserns();
    // The credentials changed, which cleared the parent-death signal: again.
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) SetupFail(ErrStr("prctl(PR_SET_PDEATHSIG)", errno));
  }
  for (const auto* op : setup) {
    if (!(userns && (*op)[0] == "oom-score-adj")) RunOp(*op);
  }
  int slave = ptySock >= 0 ? OpenContainerPty(ptySock) : -1;
  if (!WriteAll(readyW, "ok\n", 3)) _exit(1);  // the helper is gone
  CloseQuietly(readyW);
  gSyncFd = -1;
  char b;
  ssize_t r;
  do {
    r = read(startR, &b, 1);
  } while (r < 0 && errno == EINTR);
  if (r != 1) _exit(1);  // the helper gave up before start
  CloseQuietly(startR);
  CommandStdio io;
  if (slave >= 0) {
    io.in = io.out = io.err = slave;
    io.ctty = true;
  } else {
    // After pivot_root this is the container's own /dev/null.
    int devnull = stdinR >= 0 ? stdinR : open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0) devnull = 0;  // the helper was started with /dev/null on fd 0
    io.in = devnull;
    io.out = outW;
    io.err = errW;
  }
  RunCommand(io);
}

std::string ReadLine(int fd) {
  std::string line;
  char c;
  while (true) {
    ssize_t r = read(fd, &c, 1);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0 || c == '\n') break;
    line += c;
  }
  return line;
}

[[noreturn]] void ExitLike(int status) {
  if (WIFEXITED(status)) _exit(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) _exit(128 + WTERMSIG(status));
  _exit(1);
}

// Whether `pid` has a handler for `sig` (SigCgt in its /proc status).
bool Catches(pid_t pid, int sig) {
  std::string path = std::to_string(pid) + "/status";
  int fd = openat(gState.procFd, path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return true;  // gone: nothing to hold the signal for
  char buf[4096];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  CloseQuietly(fd);
  if (n <= 0) return true;
  buf[n] = 0;
  const char* p = strstr(buf, "SigCgt:");
  if (!p) return true;
  unsigned long long mask = strtoull(p + 7, nullptr, 16);
  return (mask >> (sig - 1)) & 1;
}

// Signals for the command: a catchable one reaches a PID 1 of its own namespace only if it
// handles it, or the kernel drops it. A stop right after start would then be lost while the
// command is still starting (before exec, or before it installs its handler), and
// StopContainer would wait out its grace period. Such a signal is held and sent once the
// command handles it; one that it never handles stays held, as runc's would be dropped.
struct Forwarder {
  uint64_t held = 0;

  void Send(const Child& init, int sig) {
    if (init.done) return;
    if (gState.newPidNs && !Catches(init.pid, sig)) {
      held |= 1ULL << (sig - 1);
      return;
    }
    KillChild(init.pid, sig);
  }

  void Retry(const Child& init) {
    for (int sig = 1; held && sig < 64; sig++) {
      if (!(held & (1ULL << (sig - 1)))) continue;
      if (init.done) {
        held = 0;
      } else if (Catches(init.pid, sig)) {
        held &= ~(1ULL << (sig - 1));
        KillChild(init.pid, sig);
      }
    }
  }
};

constexpr int kHeldSignalPollMs = 5;

// ---------------------------------------------------------------------------
// Attach: a unix stream socket in the runtime dir (its name comes from the rundir op).
// Every frame is 1 byte type + 4 bytes big-endian length + payload (src/containerizer/
// mesos/attach.ts is the other end and documents the protocol). Output is fanned out to
// every client; a client that does not read is never waited for: its frames are dropped
// once kMaxClientQueue bytes wait for it, so the log and the container never stall.

constexpr uint8_t kFrameStdin = 0, kFrameStdout = 1, kFrameStderr = 2, kFrameExit = 3, kFrameResize = 4,
                  kFrameStdinClose = 5;
constexpr size_t kMaxFrame = 1 << 20;
constexpr size_t kMaxClientQueue = 1 << 20;
constexpr size_t kMaxStdinQueue = 1 << 20;
constexpr size_t kMaxClients = 64;

struct AttachClient {
  int fd = -1;
  std::string in, out;
  bool wroteStdin = false;
  size_t dropped = 0;
};

struct Attach {
  int listenFd = -1;
  std::vector<AttachClient> clients;
  int stdinFd = -1;  // the stdin pipe's write end, or the pty master (also the output then)
  bool stdinIsPty = false;
  bool stdinClosing = false;  // close once stdinBuf is written
  std::string stdinBuf;
  int masterFd = -1;
  bool lastStdinWasNewline = true;
};

Attach gAttach;

// Creates the listening socket as <rundir>/<name>. bind() takes a path, and runtime dirs can be
// longer than sun_path; the helper is single-threaded, so it binds relative to the runtime dir.
int ListenAttach() {
  if (gState.attachSock.empty()) return -1;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) SetupFail(ErrStr("attach socket", errno));
  int cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (cwd < 0) SetupFail(ErrStr("open the current directory", errno));
  if (fchdir(gState.rundirFd) < 0) SetupFail(ErrStr("fchdir to the runtime dir", errno));
  if (unlink(gState.attachSock.c_str()) < 0 && errno != ENOENT) SetupFail(ErrStr("remove stale " + gState.attachSock, errno));
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  if (gState.attachSock.size() >= sizeof addr.sun_path) SetupFail("attach socket name too long: " + gState.attachSock);
  memcpy(addr.sun_path, gState.attachSock.c_str(), gState.attachSock.size());
  if (bind(fd, (struct sockaddr*)&addr, sizeof addr) < 0) SetupFail(ErrStr("bind " + gState.attachSock, errno));
  if (fchmodat(gState.rundirFd, gState.attachSock.c_str(), 0600, 0) < 0) SetupFail(ErrStr("chmod " + gState.attachSock, errno));
  if (fchdir(cwd) < 0) SetupFail(ErrStr("fchdir back", errno));
  CloseQuietly(cwd);
  if (listen(fd, 16) < 0) SetupFail(ErrStr("listen " + gState.attachSock, errno));
  return fd;
}

void FrameHeader(char* h, uint8_t type, size_t len) {
  h[0] = (char)type;
  h[1] = (char)(len >> 24);
  h[2] = (char)(len >> 16);
  h[3] = (char)(len >> 8);
  h[4] = (char)len;
}

void CloseClient(AttachClient& c) {
  CloseQuietly(c.fd);
  c.fd = -1;
  // stdin_once: stdin ends with the first attach that wrote to it.
  if (c.wroteStdin && gState.stdinOnce) gAttach.stdinClosing = true;
}

// Writes what waits for a client, as far as it goes without blocking.
void FlushClient(AttachClient& c) {
  while (c.fd >= 0 && !c.out.empty()) {
    ssize_t w = send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return;
      CloseClient(c);  // EPIPE, ECONNRESET: the client went away
      return;
    }
    c.out.erase(0, (size_t)w);
  }
}

void SendFrame(AttachClient& c, uint8_t type, const char* data, size_t len) {
  if (c.fd < 0) return;
  if (c.out.size() + len + 5 > kMaxClientQueue) {
    if (c.dropped++ == 0) Diag("attach client too slow; dropping output for it");
    return;
  }
  char h[5];
  FrameHeader(h, type, len);
  c.out.append(h, 5);
  c.out.append(data, len);
  FlushClient(c);
}

void Broadcast(uint8_t type, const char* data, size_t len) {
  for (auto& c : gAttach.clients) SendFrame(c, type, data, len);
}

void SetWinsize(const char* p) {
  if (gAttach.masterFd < 0) return;
  struct winsize ws;
  memset(&ws, 0, sizeof ws);
  ws.ws_col = (unsigned short)(((uint8_t)p[0] << 8) | (uint8_t)p[1]);
  ws.ws_row = (unsigned short)(((uint8_t)p[2] << 8) | (uint8_t)p[3]);
  if (ioctl(gAttach.masterFd, TIOCSWINSZ, &ws) < 0) Diag("resize the terminal: %s", strerror(errno));
}

// Handles the complete frames a client sent; false on a protocol error.
bool HandleClientInput(AttachClient& c) {
  size_t pos = 0;
  while (c.in.size() - pos >= 5) {
    const char* h = c.in.data() + pos;
    size_t len = ((size_t)(uint8_t)h[1] << 24) | ((size_t)(uint8_t)h[2] << 16) | ((size_t)(uint8_t)h[3] << 8) | (uint8_t)h[4];
    if (len > kMaxFrame) return false;
    if (c.in.size() - pos < 5 + len) break;
    const char* p = h + 5;
    switch ((uint8_t)h[0]) {
      case kFrameStdin:
        if (gAttach.stdinFd >= 0 && !gAttach.stdinClosing) {
          gAttach.stdinBuf.append(p, len);
          c.wroteStdin = true;
        }
        break;
      case kFrameResize:
        if (len != 4) return false;
        SetWinsize(p);
        break;
      case kFrameStdinClose:
        // Only stdin_once ends the container's stdin; otherwise later attaches may still write.
        if (gState.stdinOnce) gAttach.stdinClosing = true;
        break;
      default:
        return false;
    }
    pos += 5 + len;
  }
  c.in.erase(0, pos);
  return true;
}

void ReadClient(AttachClient& c, char* buf, size_t size) {
  ssize_t n = recv(c.fd, buf, size, MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) {
    CloseClient(c);
    return;
  }
  c.in.append(buf, (size_t)n);
  if (!HandleClientInput(c)) {
    Diag("attach client sent a bad frame; disconnected");
    CloseClient(c);
  }
}

void AcceptClients() {
  while (true) {
    int fd = accept4(gAttach.listenFd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno == EINTR) continue;
      // EAGAIN: no more; ECONNABORTED and the like concern that one client only.
      if (errno != EAGAIN && errno != ECONNABORTED) Diag("accept an attach client: %s", strerror(errno));
      return;
    }
    if (gAttach.clients.size() >= kMaxClients) {
      Diag("too many attach clients; refusing one");
      CloseQuietly(fd);
      continue;
    }
    AttachClient c;
    c.fd = fd;
    gAttach.clients.push_back(std::move(c));
  }
}

// The end of the container's stdin. A pipe is closed; a terminal cannot be half-closed (its
// master is also the output), so it gets the VEOF character as a user's ^D: a reader in
// canonical mode then reads 0 bytes (EOF). VEOF ends a pending line first, so after a
// partial line it is sent twice.
void EndStdin() {
  gAttach.stdinClosing = false;
  if (gAttach.stdinFd < 0) return;
  if (gAttach.stdinIsPty) {
    struct termios t;
    char eof = 4;  // ^D
    if (tcgetattr(gAttach.masterFd, &t) == 0) eof = (char)t.c_cc[VEOF];
    else Diag("tcgetattr: %s (sending ^D)", strerror(errno));
    char two[2] = {eof, eof};
    size_t n = gAttach.lastStdinWasNewline ? 1 : 2;
    if (write(gAttach.masterFd, two, n) < 0) Diag("send EOF to the terminal: %s", strerror(errno));
  } else {
    CloseQuietly(gAttach.stdinFd);
  }
  gAttach.stdinFd = -1;
  gAttach.stdinBuf.clear();
}

void WriteStdin() {
  while (!gAttach.stdinBuf.empty() && gAttach.stdinFd >= 0) {
    ssize_t w = write(gAttach.stdinFd, gAttach.stdinBuf.data(), gAttach.stdinBuf.size());
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return;
      // EPIPE: the command closed its stdin. Its SIGPIPE is ours, not the command's (see the loop).
      if (errno != EPIPE) Diag("write stdin: %s", strerror(errno));
      gAttach.stdinBuf.clear();
      if (!gAttach.stdinIsPty) CloseQuietly(gAttach.stdinFd);
      gAttach.stdinFd = -1;
      return;
    }
    char last = gAttach.stdinBuf[(size_t)w - 1];
    gAttach.lastStdinWasNewline = last == '\n' || last == '\r';
    gAttach.stdinBuf.erase(0, (size_t)w);
  }
  if (gAttach.stdinBuf.empty() && gAttach.stdinClosing) EndStdin();
}

void DropClosedClients() {
  std::vector<AttachClient> live;
  for (auto& c : gAttach.clients) {
    if (c.fd >= 0) live.push_back(std::move(c));
  }
  gAttach.clients.swap(live);
}

// The command has ended: its exit frame to every client, a last flush, and goodbye.
void FinishAttach(int status) {
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 1;
  char p[4] = {(char)(code >> 24), (char)(code >> 16), (char)(code >> 8), (char)code};
  for (auto& c : gAttach.clients) {
    // Past the queue limit the exit frame still goes: it is what tells the client the end.
    char h[5];
    FrameHeader(h, kFrameExit, 4);
    c.out.append(h, 5);
    c.out.append(p, 4);
    FlushClient(c);
    CloseQuietly(c.fd);
    c.fd = -1;
  }
  gAttach.clients.clear();
  CloseQuietly(gAttach.listenFd);
  gAttach.listenFd = -1;
  if (gState.rundirFd >= 0 && !gState.attachSock.empty() && unlinkat(gState.rundirFd, gState.attachSock.c_str(), 0) < 0 &&
      errno != ENOENT)
    Diag("remove %s: %s", gState.attachSock.c_str(), strerror(errno));
}

[[noreturn]] void ContainerMain(const std::vector<std::vector<std::string>>& ops, int sigfd) {
  std::vector<const std::vector<std::string>*> setup;
  for (const auto& op : ops) {
    if (IsHelperOp(op[0]) || IsSettingOp(op[0])) {
      RunOp(op);
    } else {
      setup.push_back(&op);
    }
  }
  if (gState.settings.argv.empty()) SetupFail("container mode without argv");
  if (gState.rundirFd < 0) SetupFail("container mode needs a rundir");

  // Output: a terminal's master (tty), or a pipe per stream. Input: the terminal, a pipe
  // (stdin), or /dev/null.
  int outP[2] = {-1, -1}, errP[2] = {-1, -1}, inP[2] = {-1, -1}, ptyP[2] = {-1, -1}, startP[2], readyP[2];
  if (gState.tty) {
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ptyP) < 0) SetupFail(ErrStr("socketpair", errno));
  } else if (pipe2(outP, O_CLOEXEC) < 0 || pipe2(errP, O_CLOEXEC) < 0) {
    SetupFail(ErrStr("pipe", errno));
  }
  if (!gState.tty && gState.openStdin && pipe2(inP, O_CLOEXEC) < 0) SetupFail(ErrStr("pipe", errno));
  if (pipe2(startP, O_CLOEXEC) < 0 || pipe2(readyP, O_CLOEXEC) < 0) SetupFail(ErrStr("pipe", errno));
  gAttach.listenFd = ListenAttach();
  // A PID namespace of the container's own: made here, or, owned by the pod's user namespace,
  // on the way to the init (ForkInitInUserns).
  const bool initInUserns = gState.usernsFd >= 0 && gState.newPidNs;
  if (gState.newPidNs && !initInUserns && unshare(CLONE_NEWPID) < 0) SetupFail(ErrStr("unshare(CLONE_NEWPID)", errno));
  Child init;
  init.pid = initInUserns ? ForkInitInUserns() : fork();
  if (init.pid < 0) SetupFail(ErrStr("fork the container's init", errno));
  if (init.pid == 0) {
    CloseQuietly(gAttach.listenFd);
    InitMain(setup, outP[1], errP[1], inP[0], ptyP[1], startP[0], readyP[1]);
  }
  // The init has its copies of the namespace and of the mount trees the daemon passed.
  CloseQuietly(gState.usernsFd);
  gState.usernsFd = -1;
  for (const auto* op : setup) {
    unsigned long long fd;
    if ((*op)[0] == "tree-fd" && op->size() == 3 && ParseNum((*op)[2], 10, &fd)) CloseQuietly((int)fd);
  }
  // The init's ends: ours must go, or we would never see EOF on the pipes.
  for (int fd : {outP[1], errP[1], inP[0], ptyP[1], startP[0], readyP[1]}) CloseQuietly(fd);

  std::string answer = ReadLine(readyP[0]);
  CloseQuietly(readyP[0]);
  if (answer != "ok") {
    KillChild(init.pid, SIGKILL);
    SetupFail(answer.compare(0, 6, "error ") == 0 ? answer.substr(6) : "the container's init ended during setup");
  }
  if (gState.tty) {
    // Sent before the init said "ok", so it is already queued.
    gAttach.masterFd = fdpass::RecvFd(ptyP[0], 0);
    if (gAttach.masterFd < 0) {
      KillChild(init.pid, SIGKILL);
      SetupFail(ErrStr("receive the pty master", errno));
    }
    CloseQuietly(ptyP[0]);
    outP[0] = gAttach.masterFd;
    if (gState.openStdin) {
      gAttach.stdinFd = gAttach.masterFd;
      gAttach.stdinIsPty = true;
    }
  } else if (gState.openStdin) {
    gAttach.stdinFd = inP[1];
  }
  // Open for reading before answering "ok": StartContainer's non-blocking open for writing
  // fails with ENXIO while nobody has the FIFO open for reading.
  int execFd = openat(gState.rundirFd, gState.execFifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (execFd < 0) {
    KillChild(init.pid, SIGKILL);
    SetupFail(ErrStr("open " + gState.execFifo, errno));
  }
  AnswerOk();

  int stopSig = 0;
  if (!WaitForStart(sigfd, execFd, init, &stopSig)) {
    WriteStatus(init.status);
    ExitLike(init.status);
  }
  if (!WriteAll(startP[1], "x", 1)) Diag("start the init: %s", strerror(errno));
  CloseQuietly(startP[1]);

  int ctl = openat(gState.rundirFd, gState.ctlFifo.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (ctl < 0) Diag("open ctl.fifo: %s (log reopen disabled)", strerror(errno));
  // Blocking reads or writes would stall the loop (and the signal forwarding) on one quiet fd.
  for (int fd : {outP[0], errP[0], gAttach.stdinFd}) {
    if (fd >= 0 && fcntl(fd, F_SETFL, O_NONBLOCK) < 0) {
      Diag("make the container's stdio non-blocking: %s", strerror(errno));
      KillChild(init.pid, SIGKILL);
    }
  }

  Stream streams[2] = {{"stdout", outP[0], {}}, {"stderr", errP[0], {}}};
  Forwarder forward;
  if (stopSig) forward.Send(init, stopSig);
  std::string ctlBuf;
  int64_t lastData = 0;
  char buf[65536];
  bool wasDone = init.done;
  if (wasDone) lastData = NowMs();
  const pid_t self = getpid();
  std::vector<struct pollfd> pfds;

  while (true) {
    bool pipesOpen = streams[0].fd >= 0 || streams[1].fd >= 0;
    if (init.done && (!pipesOpen || NowMs() - lastData >= kDrainIdleMs)) break;
    if (gAttach.stdinClosing && gAttach.stdinBuf.empty()) EndStdin();
    DropClosedClients();
    // Fixed slots first: signals, stdout, stderr, ctl, listen, stdin; then one per client.
    pfds.clear();
    pfds.push_back({sigfd, POLLIN, 0});
    pfds.push_back({streams[0].fd, POLLIN, 0});
    pfds.push_back({streams[1].fd, POLLIN, 0});
    pfds.push_back({ctl, POLLIN, 0});
    pfds.push_back({gAttach.listenFd, POLLIN, 0});
    pfds.push_back({gAttach.stdinBuf.empty() ? -1 : gAttach.stdinFd, POLLOUT, 0});
    // A full stdin queue stops reading clients (their frames wait in the socket), never the loop.
    bool readClients = gAttach.stdinBuf.size() < kMaxStdinQueue;
    for (auto& c : gAttach.clients) {
      short ev = (short)((readClients ? POLLIN : 0) | (c.out.empty() ? 0 : POLLOUT));
      pfds.push_back({c.fd, ev, 0});
    }
    int timeout = -1;
    if (init.done) timeout = (int)std::max<int64_t>(0, kDrainIdleMs - (NowMs() - lastData));
    else if (forward.held) timeout = kHeldSignalPollMs;
    int r = poll(pfds.data(), pfds.size(), timeout);
    if (r < 0) {
      if (errno == EINTR) continue;
      Diag("poll: %s", strerror(errno));
      break;
    }
    if (pfds[0].revents) {
      struct signalfd_siginfo si;
      while (read(sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGCHLD) {
          ReapChild(init);
          if (init.done && !wasDone) {
            wasDone = true;
            lastData = NowMs();
          }
        } else if (si.ssi_signo == SIGPIPE && (pid_t)si.ssi_pid == self) {
          // Our own write to a stdin whose reader is gone: the EPIPE is handled, not forwarded.
        } else {
          forward.Send(init, (int)si.ssi_signo);
        }
      }
    }
    forward.Retry(init);
    for (int i = 0; i < 2; i++) {
      Stream& s = streams[i];
      if (s.fd < 0 || !pfds[1 + i].revents) continue;
      ssize_t n = read(s.fd, buf, sizeof buf);
      if (n > 0) {
        s.buf.append(buf, (size_t)n);
        s.Consume();
        Broadcast(i == 0 ? kFrameStdout : kFrameStderr, buf, (size_t)n);
        lastData = NowMs();
      } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        // EIO: a terminal's master once every slave is closed, its end of file.
        if (n < 0 && !(errno == EIO && s.fd == gAttach.masterFd)) Diag("read %s: %s", s.name, strerror(errno));
        s.Flush();
        if (s.fd == gAttach.masterFd) {
          gAttach.stdinFd = gAttach.stdinIsPty ? -1 : gAttach.stdinFd;
          gAttach.masterFd = -1;
        }
        CloseQuietly(s.fd);
        s.fd = -1;
      }
    }
    if (ctl >= 0 && pfds[3].revents) {
      ssize_t n = read(ctl, buf, sizeof buf);
      if (n > 0) {
        ctlBuf.append(buf, (size_t)n);
        size_t nl;
        while ((nl = ctlBuf.find('\n')) != std::string::npos) {
          std::string cmd = ctlBuf.substr(0, nl);
          ctlBuf.erase(0, nl + 1);
          if (cmd == "reopen") {
            ReopenLog();
          } else {
            Diag("unknown control command: %s", cmd.c_str());
          }
        }
      } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        Diag("read ctl.fifo: %s", strerror(errno));
      }
    }
    if (pfds[5].revents) WriteStdin();
    for (size_t i = 0; i < gAttach.clients.size(); i++) {
      AttachClient& c = gAttach.clients[i];
      short rev = pfds[6 + i].revents;
      if (rev & POLLOUT) FlushClient(c);
      if (c.fd >= 0 && (rev & (POLLIN | POLLHUP | POLLERR))) ReadClient(c, buf, sizeof buf);
    }
    if (!gAttach.stdinBuf.empty()) WriteStdin();
    if (pfds[4].revents) AcceptClients();
  }
  for (int i = 0; i < 2; i++) {
    Stream& s = streams[i];
    // Drain whatever is already buffered in the pipe, then emit partial lines.
    while (s.fd >= 0) {
      ssize_t n = read(s.fd, buf, sizeof buf);
      if (n <= 0) break;
      s.buf.append(buf, (size_t)n);
      s.Consume();
      Broadcast(i == 0 ? kFrameStdout : kFrameStderr, buf, (size_t)n);
    }
    s.Flush();
  }
  FinishAttach(init.status);
  WriteStatus(init.status);
  ExitLike(init.status);
}

int ReadCapLast() {
  int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 40;
  char buf[16] = {0};
  ssize_t n = read(fd, buf, sizeof buf - 1);
  CloseQuietly(fd);
  if (n <= 0) return 40;
  int v = atoi(buf);
  return v > 0 && v < 64 ? v : 40;
}

}  // namespace

int main(int argc, char** argv) {
  // No fd 3 (EBADF): run by hand, nobody to answer.
  if (fcntl(gSyncFd, F_GETFD) < 0) gSyncFd = -1;
  else if (fcntl(gSyncFd, F_SETFD, FD_CLOEXEC) < 0) SetupFail(ErrStr("fcntl(FD_CLOEXEC) on the sync pipe", errno));
  if (argc != 3) SetupFail("usage: cri-mesos-launch <pause|container> <plan path>");
  std::string mode = argv[1];
  if (mode != "pause" && mode != "container") SetupFail("unknown mode: " + mode);

  int sigfd = SetupSignals();
  // Orphans of the command must come to us to be reaped (and not outlive the container's end).
  if (getpid() != 1 && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) SetupFail(ErrStr("prctl(PR_SET_CHILD_SUBREAPER)", errno));
  gState.capLast = ReadCapLast();
  umask(0);  // cannot fail; returns the previous mask

  std::vector<std::vector<std::string>> ops = ParsePlan(ReadFile(argv[2]));
  // A plan on fd 0 ends with "end": a daemon that died while writing it (or before, for a pooled
  // helper still waiting for its pod) leaves a plan without it, which must not run in part.
  if (strcmp(argv[2], "-") == 0) {
    if (ops.empty() || ops.back().size() != 1 || ops.back()[0] != "end") SetupFail("plan on fd 0 cut short (no end)");
    ops.pop_back();
  }
  if (mode == "container") ContainerMain(ops, sigfd);

  for (const auto& op : ops) RunOp(op);
  // The pod's profile confines the pause helper too (root with CAP_SYS_ADMIN: no no_new_privs needed).
  const Settings& set = gState.settings;
  if (set.hasSeccomp && seccompf::Install(set.seccomp) < 0) SetupFail(ErrStr("seccomp", errno));
  // The pod's user (run_as_user, run_as_group, supplemental_groups), as containerd runs the pause
  // container: taken once the setup that needs root is done. Reaping and signals need nothing more.
  if (set.hasUser) {
    int n = set.hasGroups ? (int)set.groups.size() : 0;
    if (setgroups((size_t)n, n ? set.groups.data() : nullptr) < 0) SetupFail(ErrStr("setgroups", errno));
    if (setresgid(set.gid, set.gid, set.gid) < 0) SetupFail(ErrStr("setgid " + std::to_string(set.gid), errno));
    if (setresuid(set.uid, set.uid, set.uid) < 0) SetupFail(ErrStr("setuid " + std::to_string(set.uid), errno));
  }
  AnswerOk();
  PauseLoop(sigfd);
}
