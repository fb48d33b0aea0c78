// cri-mesos native addon: clone3/setns/pidfd/mount for the daemon.
//
// Rules (see DESIGN.md §4): never setns/unshare/chroot on a Node thread; after
// clone3 only async-signal-safe calls (everything is marshalled before);
// every fd opened here is O_CLOEXEC.
#include <napi.h>
#include <uv.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <linux/capability.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <termios.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <mutex>
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "../common/bpf_device_filter.h"
#include "../common/fd_passing.h"
#include "../common/seccomp_filter.h"
#include "../common/apparmor_exec.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace {

constexpr uint64_t kCloneIntoCgroup = 0x200000000ULL;
constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// Our own copy of struct clone_args: <linux/sched.h> fights with glibc headers.
struct CloneArgs {
  uint64_t flags;
  uint64_t pidfd;
  uint64_t child_tid;
  uint64_t parent_tid;
  uint64_t exit_signal;
  uint64_t stack;
  uint64_t stack_size;
  uint64_t tls;
  uint64_t set_tid;
  uint64_t set_tid_size;
  uint64_t cgroup;
};

std::string ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return name ? name : ("E" + std::to_string(err));
}

// Throws a Node-style error: "ENOENT: No such file or directory, mount '/x'"
// with .code/.errno/.syscall/.path so TS can test it.
Napi::Error ErrnoError(Napi::Env env, int err, const char* syscallName, const std::string& path = "") {
  std::string msg = ErrnoName(err) + ": " + strerror(err) + ", " + syscallName;
  if (!path.empty()) msg += " '" + path + "'";
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, ErrnoName(err)));
  e.Set("errno", Napi::Number::New(env, -err));
  e.Set("syscall", Napi::String::New(env, syscallName));
  if (!path.empty()) e.Set("path", Napi::String::New(env, path));
  return e;
}

void ThrowErrno(Napi::Env env, int err, const char* syscallName, const std::string& path = "") {
  ErrnoError(env, err, syscallName, path).ThrowAsJavaScriptException();
}

// close() in cleanup paths: Linux releases the fd even when close reports an
// error, and none of the fds closed here (pipes, namespace files, /dev/null,
// pidfds, directories) carries written data whose loss close could report.
void CloseQuietly(int fd) {
  if (fd >= 0 && close(fd) < 0) return;
}

void CloseFd(int& fd) {
  CloseQuietly(fd);
  fd = -1;
}

// ---------------------------------------------------------------------------
// spawnHeld / release / abort
//
// posix_spawn-style: no page tables are copied. Every spawn gets its own
// thread T (never the libuv threadpool: the daemon does async fs work, e.g.
// cgroup writes, while children are held, and parked pool threads would
// deadlock it). T blocks all signals and clones the intermediate I with
// CLONE_VM|CLONE_VFORK on a preallocated stack; T stays suspended in clone3
// until I is gone, while the Node main thread runs on. I reports its pid on
// the event pipe and waits on the sync pipe. After release it joins the
// namespaces and clones the final child F with CLONE_VM|CLONE_VFORK|
// CLONE_PARENT on a second stack, and is suspended until F execs or dies.
// T, I and F share T's TLS (errno), which is safe because only one of them
// runs at a time. I and F report into the shared Spawn (F's pid through
// CLONE_PARENT_SETTID, failures as stage + errno). When I is gone T reaps it,
// pidfd_opens F and posts "done" on the event pipe, which the main thread
// watches with a uv_poll.

struct NsJoin {
  int rank;
  int nstype;
  int fd;
  std::string type;
  std::string path;
};

enum class HeldState { Starting, Held, Releasing, Done };

constexpr size_t kChildStack = 128 * 1024;
constexpr size_t kThreadStack = 256 * 1024;

struct Spawn {
  // Marshalled before the clone; I and F read them in the shared memory.
  std::string file;
  std::vector<std::string> argvStore, envStore, candStore;
  std::vector<char*> argv, envp;
  std::vector<const char*> candidates;
  std::string cwd;
  bool hasCwd = false;
  std::vector<NsJoin> joins;
  // One of the joins is a user namespace: I becomes its root (uid and gid 0, no groups) after the
  // joins, so that F and what it execs hold their capabilities there (exec drops them from a uid
  // the namespace does not map, and the daemon's root is not mapped in a pod's namespace).
  bool joinsUser = false;
  uint64_t cloneFlags = 0;
  int stdio[3] = {-1, -1, -1};
  std::vector<int> extraFds;
  int cgroupFd = -1;
  bool hasUid = false, hasGid = false, hasGroups = false;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
  // Capabilities kept in every set (DEBUG containers get their container's).
  bool hasCaps = false;
  uint64_t caps = 0;
  uint64_t ambient = 0;  // raised after capset (each must be in caps)
  int capLast = 40;
  bool noNewPrivs = false;
  // Compiled on the calling thread before the clone (libseccomp allocates); F only installs it.
  bool hasSeccomp = false;
  std::vector<sock_filter> seccomp;
  // "exec <profile>", built before the clone; F writes it to its AppArmor exec attribute.
  bool hasAppArmor = false;
  std::string appArmorMsg;
  bool doSetsid = true;
  int devnull = -1;
  // >= 0: F opens a terminal in its (joined) mount namespace's /dev/ptmx, makes the slave
  // its controlling terminal and stdio, and sends the master over this socket (SCM_RIGHTS).
  int ptySock = -1;
  int syncR = -1, syncW = -1;  // release: one byte from the daemon to I
  int evR = -1, evW = -1;      // events to the main thread: I's pid (>0), clone error (<0), T done (0)
  int base = 0;                // first fd number above every fd we know of
  // The fds I and F use, sorted: I closes every other one before it is held. Its fd table is a
  // copy of the daemon's, and a held I must not keep, say, the write end of a CNI plugin's
  // stdin open (the plugin would wait for EOF, and the pod's isolate step for the plugin).
  std::vector<int> keepFds;
  pid_t parentPid = 0;
  char* stackI = nullptr;  // tops of the children's stacks (set by T)
  char* stackF = nullptr;

  // Written by I and F (shared memory), read by T and then the main thread.
  pid_t finalPid = 0;  // CLONE_PARENT_SETTID: set by the kernel before F runs
  char failStage[32] = {0};
  int failErr = 0;

  // Written by T before it posts "done".
  int cloneErr = 0;  // creating I failed
  const char* cloneWhat = "clone3";
  int istatus = 0;
  // T reaps I under reapMu, so the main thread never kills a reaped (reusable) pid.
  pthread_mutex_t reapMu = PTHREAD_MUTEX_INITIALIZER;
  bool iReaped = false;
  bool ok = false;  // F exec'd and pidfd is open
  int pidfd = -1;
  int pidfdErr = 0;

  // Main thread only.
  napi_env env = nullptr;
  pthread_t thread{};
  bool threadRunning = false;
  bool threadDone = false;
  uv_poll_t* poll = nullptr;
  napi_deferred spawnDeferred = nullptr;
  napi_deferred releaseDeferred = nullptr;
  Napi::Reference<Napi::Value> handleRef;  // keeps the handle alive while releasing
  pid_t pid = -1;                          // the intermediate
  int writeErr = 0;
  HeldState state = HeldState::Starting;

  // The daemon's copies of what only I and F use (I has its own copies).
  // The fields keep their values: I and F read them in the shared memory.
  bool childFdsOpen = true;
  void CloseChildFds() {
    if (!childFdsOpen) return;
    childFdsOpen = false;
    for (auto& j : joins) CloseQuietly(j.fd);
    CloseQuietly(devnull);
    CloseQuietly(syncR);
  }
  void CloseAll() {
    CloseChildFds();
    CloseFd(syncW);
    CloseFd(evR);
    CloseFd(evW);
  }
};

// clone3 with a new stack: the child calls fn(arg) on it and never returns
// into this frame (the syscall() wrapper cannot be used for that: the child
// would return through a frame it does not own).
#if defined(__x86_64__)
__attribute__((noinline)) long Clone3Run(CloneArgs* args, void (*fn)(void*), void* arg) {
  long ret;
  register void (*r12)(void*) asm("r12") = fn;
  register void* r13 asm("r13") = arg;
  asm volatile(
      "syscall\n\t"
      "test %%rax, %%rax\n\t"
      "jnz 1f\n\t"
      "xor %%ebp, %%ebp\n\t"
      "mov %%r13, %%rdi\n\t"
      "call *%%r12\n\t"
      "mov $231, %%eax\n\t"  // exit_group(127): fn never returns
      "mov $127, %%edi\n\t"
      "syscall\n\t"
      "hlt\n\t"
      "1:\n\t"
      : "=a"(ret)
      : "a"((long)SYS_clone3), "D"(args), "S"(sizeof(CloneArgs)), "r"(r12), "r"(r13)
      : "rcx", "r11", "memory");
  return ret;
}
#elif defined(__aarch64__)
__attribute__((noinline)) long Clone3Run(CloneArgs* args, void (*fn)(void*), void* arg) {
  register long x0 asm("x0") = (long)args;
  register long x1 asm("x1") = (long)sizeof(CloneArgs);
  register long x8 asm("x8") = SYS_clone3;
  register void (*x19)(void*) asm("x19") = fn;
  register void* x20 asm("x20") = arg;
  asm volatile(
      "svc #0\n\t"
      "cbnz x0, 1f\n\t"
      "mov x29, xzr\n\t"
      "mov x30, xzr\n\t"
      "mov x0, x20\n\t"
      "blr x19\n\t"
      "mov x0, #127\n\t"
      "mov x8, #94\n\t"  // exit_group
      "svc #0\n\t"
      "1:\n\t"
      : "+r"(x0)
      : "r"(x1), "r"(x8), "r"(x19), "r"(x20)
      : "memory", "x30");
  return x0;
}
#else
#error "Clone3Run: unsupported architecture"
#endif

// --- code run in I and F: async-signal-safe only, no allocation -------------

size_t StrLen(const char* s) {
  size_t n = 0;
  while (s[n]) n++;
  return n;
}

[[noreturn]] void ChildFail(Spawn* s, const char* stage, int err) {
  size_t n = 0;
  for (const char* p = stage; *p && n < sizeof s->failStage - 1; p++) s->failStage[n++] = *p;
  s->failStage[n] = 0;
  s->failErr = err;
  _exit(127);
}

// One small write to a pipe (at most PIPE_BUF, so never partial); false on failure.
bool WriteSmall(int fd, const void* buf, size_t len) {
  ssize_t w;
  do {
    w = write(fd, buf, len);
  } while (w < 0 && errno == EINTR);
  return w == (ssize_t)len;
}

using fdpass::SendFd;

// The terminal of a tty exec, from the devpts of the mount namespace F is in (the container's:
// I joined it, and setns put F's root there). Returns the slave, already F's controlling
// terminal, moved to fd `high` (above every fd the stdio shuffle touches).
int OpenPty(Spawn* s, int high) {
  int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) ChildFail(s, "open-ptmx", errno);
  int unlock = 0;
  if (ioctl(master, TIOCSPTLCK, &unlock) < 0) ChildFail(s, "unlock-pty", errno);
  // TIOCGPTPEER: the slave of this very master, without a path lookup in the container.
  int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0) ChildFail(s, "open-pty-slave", errno);
  if (!SendFd(s->ptySock, master)) ChildFail(s, "send-pty-master", errno);
  CloseQuietly(master);  // in flight to the daemon, which holds it from now on
  if (ioctl(slave, TIOCSCTTY, 0) < 0) ChildFail(s, "tiocsctty", errno);
  if (slave != high) {
    if (dup3(slave, high, O_CLOEXEC) < 0) ChildFail(s, "dup-fd", errno);
    CloseQuietly(slave);
  }
  return high;
}

[[noreturn]] void FinalChild(void* arg) {
  Spawn* s = static_cast<Spawn*>(arg);
  if (s->doSetsid && setsid() < 0) ChildFail(s, "setsid", errno);

  // Move every wanted fd far above all known fds first, so that moving them
  // down to 0,1,2,3... never clobbers a source that is still needed.
  const int n = 3 + (int)s->extraFds.size();
  const int slave = s->ptySock >= 0 ? OpenPty(s, s->base + n) : -1;
  for (int k = 0; k < n; k++) {
    int src = k < 3 ? (slave >= 0 ? slave : s->stdio[k] < 0 ? s->devnull : s->stdio[k]) : s->extraFds[k - 3];
    if (dup3(src, s->base + k, O_CLOEXEC) < 0) ChildFail(s, "dup-fd", errno);
  }
  for (int k = 0; k < n; k++) {
    if (dup2(s->base + k, k) < 0) ChildFail(s, "dup-fd", errno);
  }
  if (syscall(SYS_close_range, (unsigned)n, ~0u, 0u) < 0) ChildFail(s, "close-range", errno);

  if (s->hasCwd && chdir(s->cwd.c_str()) < 0) ChildFail(s, "chdir", errno);
  // The AppArmor profile of the execve below, while F still holds its privileges (runc's order).
  if (s->hasAppArmor) {
    const char* stage;
    if (apparmorf::SetExecProfile(s->appArmorMsg, &stage) < 0) ChildFail(s, "apparmor", errno);
  }
  // Without no_new_privs installing a filter needs CAP_SYS_ADMIN: before the credentials change.
  if (s->hasSeccomp && !s->noNewPrivs && seccompf::Install(s->seccomp) < 0) ChildFail(s, "seccomp", errno);
  // Raw syscalls: glibc's set*id would try to broadcast to the daemon's threads.
  if (s->hasGroups) {
    if (syscall(SYS_setgroups, s->groups.size(), s->groups.data()) < 0) ChildFail(s, "setgroups", errno);
  } else if (s->hasUid || s->hasGid) {
    if (syscall(SYS_setgroups, 0, nullptr) < 0) ChildFail(s, "setgroups", errno);
  }
  if (s->hasGid && syscall(SYS_setresgid, s->gid, s->gid, s->gid) < 0) ChildFail(s, "setgid", errno);
  // The bounding set needs CAP_SETPCAP, so it is cut before setuid drops it.
  if (s->hasCaps) {
    for (int c = 0; c <= s->capLast; c++) {
      if (c < 64 && ((s->caps >> c) & 1)) continue;
      if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL) ChildFail(s, "capbset-drop", errno);
    }
  }
  // Ambient capabilities for a non-root uid: the mask must survive setuid to be raised.
  const bool keepCaps = s->ambient != 0 && s->hasUid && s->uid != 0;
  if (keepCaps && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) ChildFail(s, "keepcaps", errno);
  if (s->hasUid && syscall(SYS_setresuid, s->uid, s->uid, s->uid) < 0) ChildFail(s, "setuid", errno);
  if (keepCaps && prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0) ChildFail(s, "keepcaps", errno);
  // Otherwise a non-root uid already lost every capability in setuid; root keeps exactly the mask.
  if (s->hasCaps && (!s->hasUid || s->uid == 0 || keepCaps)) {
    struct __user_cap_header_struct hdr;
    struct __user_cap_data_struct data[2];
    memset(&hdr, 0, sizeof hdr);
    memset(data, 0, sizeof data);
    hdr.version = _LINUX_CAPABILITY_VERSION_3;
    for (int i = 0; i < 2; i++) {
      uint32_t part = (uint32_t)(s->caps >> (32 * i));
      data[i].effective = data[i].permitted = data[i].inheritable = part;
    }
    if (syscall(SYS_capset, &hdr, data) < 0) ChildFail(s, "capset", errno);
  }
  for (int c = 0; c < 64; c++) {
    if (((s->ambient >> c) & 1) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0) ChildFail(s, "ambient-raise", errno);
  }
  if (s->noNewPrivs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) ChildFail(s, "no-new-privs", errno);
  // With no_new_privs, the last step before exec (after it: sigprocmask and execve only).
  if (s->hasSeccomp && s->noNewPrivs && seccompf::Install(s->seccomp) < 0) ChildFail(s, "seccomp", errno);

  sigset_t none;
  sigemptyset(&none);
  if (sigprocmask(SIG_SETMASK, &none, nullptr) < 0) ChildFail(s, "sigprocmask", errno);

  int lastErr = ENOENT;
  bool sawEacces = false;
  for (const char* cand : s->candidates) {
    execve(cand, s->argv.data(), s->envp.data());
    int e = errno;
    if (e == EACCES) sawEacces = true;
    lastErr = e;
    if (e != ENOENT && e != ENOTDIR && e != EACCES) break;
  }
  if (sawEacces && (lastErr == ENOENT || lastErr == ENOTDIR)) lastErr = EACCES;
  ChildFail(s, "exec", lastErr);
}

[[noreturn]] void Intermediate(void* arg) {
  Spawn* s = static_cast<Spawn*>(arg);
  // Node's handlers must never run here; reset them while all signals are
  // blocked (the handler table is I's own copy: no CLONE_SIGHAND).
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; sig++) {
    // EINVAL: a signal glibc keeps for itself (32, 33); it has no handler of Node's.
    if (sig != SIGKILL && sig != SIGSTOP && sigaction(sig, &dfl, nullptr) < 0 && errno != EINVAL)
      ChildFail(s, "sigaction", errno);
  }
  // Die with the daemon while held (the parent is T, which outlives I); F
  // does not inherit this.
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) ChildFail(s, "pdeathsig", errno);
  if (getppid() != s->parentPid) _exit(127);

  // I's own copies (no CLONE_FILES): closing them cannot affect the daemon's. Everything but
  // what I and F use goes (syncW and evR too), in the gaps between the sorted keepFds.
  unsigned from = 3;
  for (int fd : s->keepFds) {
    if ((unsigned)fd > from && syscall(SYS_close_range, from, (unsigned)fd - 1, 0u) < 0) ChildFail(s, "close-range", errno);
    if ((unsigned)fd + 1 > from) from = (unsigned)fd + 1;
  }
  if (syscall(SYS_close_range, from, ~0u, 0u) < 0) ChildFail(s, "close-range", errno);
  int32_t me = (int32_t)getpid();
  // Without its pid the daemon cannot place I: give up, T reports "ended before reporting".
  if (!WriteSmall(s->evW, &me, sizeof me)) ChildFail(s, "report-pid", errno);
  CloseQuietly(s->evW);

  char b;
  ssize_t r;
  do {
    r = read(s->syncR, &b, 1);
  } while (r < 0 && errno == EINTR);
  if (r != 1) _exit(126);  // aborted or the daemon went away
  CloseQuietly(s->syncR);

  for (const NsJoin& j : s->joins) {
    if (setns(j.fd, j.nstype) < 0) {
      // stage carries the namespace type: "setns-net"
      char stage[24] = "setns-";
      size_t n = StrLen(stage);
      for (size_t i = 0; i < j.type.size() && n < sizeof stage - 1; i++) stage[n++] = j.type[i];
      stage[n] = 0;
      ChildFail(s, stage, errno);
    }
    CloseQuietly(j.fd);
  }
  // Raw syscalls: glibc's would try to broadcast to the daemon's threads (I shares its memory).
  if (s->joinsUser) {
    if (syscall(SYS_setgroups, 0, nullptr) < 0) ChildFail(s, "setgroups", errno);
    if (syscall(SYS_setresgid, 0, 0, 0) < 0) ChildFail(s, "setgid", errno);
    if (syscall(SYS_setresuid, 0, 0, 0) < 0) ChildFail(s, "setuid", errno);
  }

  CloneArgs args;
  memset(&args, 0, sizeof args);
  // CLONE_PARENT: the final child is the daemon's child, and lands in a
  // joined PID namespace (setns(pid) only affects children). CLONE_VFORK:
  // I sleeps until F has exec'd or died, so F may use the shared memory.
  args.flags = s->cloneFlags | CLONE_PARENT | CLONE_VM | CLONE_VFORK | CLONE_PARENT_SETTID;
  args.parent_tid = (uint64_t)(uintptr_t)&s->finalPid;
  args.exit_signal = 0;  // CLONE_PARENT: F gets I's exit signal (SIGCHLD)
  args.stack = (uint64_t)(uintptr_t)(s->stackF - kChildStack);
  args.stack_size = kChildStack;
  long pid = Clone3Run(&args, FinalChild, s);
  if (pid < 0) ChildFail(s, "clone", (int)-pid);
  _exit(0);
}

// --- T: the per-spawn thread --------------------------------------------------

// Reap our own child. Only EINTR is retried: ECHILD cannot happen for a child
// this thread cloned and nobody else waits for (the status then reads 0).
void Reap(pid_t pid, int* status) {
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (status) *status = st;
}

// An event for the main thread: a 4-byte write to a pipe whose read end the
// main thread keeps open until it has read "done" (0), so it cannot fail but by
// a bug; there is no one else to tell, so it aborts loudly rather than leaving
// the main thread waiting forever.
void Post(Spawn* s, int32_t v) {
  if (!WriteSmall(s->evW, &v, sizeof v)) abort();
}

void* SpawnThread(void* arg) {
  Spawn* s = static_cast<Spawn*>(arg);
  // Blocked across both clones: no handler may run in I or F before they
  // reset the dispositions.
  sigset_t all;
  sigfillset(&all);
  int err = pthread_sigmask(SIG_SETMASK, &all, nullptr);
  if (err != 0) {
    s->cloneErr = err;
    s->cloneWhat = "pthread_sigmask";
    Post(s, -err);
    Post(s, 0);
    return nullptr;
  }

  const size_t page = (size_t)sysconf(_SC_PAGESIZE);
  const size_t one = page + kChildStack;  // guard page below each stack
  char* mem = (char*)mmap(nullptr, 2 * one, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE,
                          -1, 0);
  if (mem == MAP_FAILED) {
    s->cloneErr = errno;
    s->cloneWhat = "mmap";
    Post(s, -s->cloneErr);
    Post(s, 0);
    return nullptr;
  }
  // Guard pages: a child overflowing its stack must fault, never write into the other's.
  if (mprotect(mem, page, PROT_NONE) < 0 || mprotect(mem + one, page, PROT_NONE) < 0) {
    s->cloneErr = errno;
    s->cloneWhat = "mprotect";
    if (munmap(mem, 2 * one) < 0) s->cloneWhat = "mprotect (and munmap)";
    Post(s, -s->cloneErr);
    Post(s, 0);
    return nullptr;
  }
  s->stackI = mem + one;
  s->stackF = mem + 2 * one;

  CloneArgs args;
  memset(&args, 0, sizeof args);
  args.flags = CLONE_VM | CLONE_VFORK;
  args.exit_signal = SIGCHLD;
  args.stack = (uint64_t)(uintptr_t)(s->stackI - kChildStack);
  args.stack_size = kChildStack;
  if (s->cgroupFd >= 0) {
    args.flags |= kCloneIntoCgroup;
    args.cgroup = (uint64_t)s->cgroupFd;
  }
  long pid = Clone3Run(&args, Intermediate, s);
  if (pid < 0) {
    s->cloneErr = (int)-pid;
    Post(s, -s->cloneErr);
  } else {
    // I is gone (CLONE_VFORK): it has exited or was killed.
    // Waits without reaping (WNOWAIT), so the main thread can check iReaped before a kill.
    // Only EINTR is retried; ECHILD cannot happen (I is ours), and Reap below waits anyway.
    siginfo_t si;
    while (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) < 0 && errno == EINTR) {
    }
    pthread_mutex_lock(&s->reapMu);
    Reap((pid_t)pid, &s->istatus);
    s->iReaped = true;
    pthread_mutex_unlock(&s->reapMu);
    pid_t f = s->finalPid;
    bool iOk = WIFEXITED(s->istatus) && WEXITSTATUS(s->istatus) == 0;
    if (f > 0) {
      if (iOk && !s->failStage[0]) {
        long fd = syscall(SYS_pidfd_open, f, 0);
        if (fd >= 0) {
          s->pidfd = (int)fd;
          s->ok = true;
        } else {
          s->pidfdErr = errno;
        }
      }
      // F failed, or I died while F may still run on its stack: F goes too. F is our
      // unreaped child (CLONE_PARENT), so its pid cannot be reused before Reap: kill cannot fail.
      if (!s->ok) {
        if (kill(f, SIGKILL) < 0) s->pidfdErr = s->pidfdErr ? s->pidfdErr : errno;
        Reap(f, nullptr);
      }
    }
  }
  // Both children are gone; munmap of our own mapping fails only on bad arguments.
  if (munmap(mem, 2 * one) < 0) abort();
  Post(s, 0);
  return nullptr;
}

// --- main thread ---------------------------------------------------------------

int NsRank(const std::string& t, int* nstype) {
  static const struct {
    const char* name;
    int flag;
  } order[] = {{"user", CLONE_NEWUSER}, {"cgroup", CLONE_NEWCGROUP}, {"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS},
               {"net", CLONE_NEWNET},   {"pid", CLONE_NEWPID},       {"mnt", CLONE_NEWNS}};
  for (int i = 0; i < 7; i++) {
    if (t == order[i].name) {
      *nstype = order[i].flag;
      return i;
    }
  }
  return -1;
}

struct AddonData {
  napi_async_context ctx = nullptr;
};

void ClosePoll(Spawn* s) {
  if (!s->poll) return;
  uv_poll_stop(s->poll);  // always 0 for an initialised handle
  uv_close(reinterpret_cast<uv_handle_t*>(s->poll), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
  s->poll = nullptr;
}

void JoinThread(Spawn* s) {
  if (!s->threadRunning) return;
  // Fails only for a thread that is not joinable (a bug): the state below would be a lie.
  if (pthread_join(s->thread, nullptr) != 0) abort();
  s->threadRunning = false;
  s->threadDone = true;
}

// Kill a held (or releasing) intermediate and wait for T: T reaps I, and F if any.
void KillAndJoin(Spawn* s) {
  if (s->threadRunning && s->pid > 0) {
    pthread_mutex_lock(&s->reapMu);
    // Unreaped, so the pid is still I's: ESRCH cannot happen, and T wakes when I dies.
    if (!s->iReaped && kill(s->pid, SIGKILL) < 0) abort();
    pthread_mutex_unlock(&s->reapMu);
  }
  JoinThread(s);
}

void FinalizeSpawn(Napi::Env, Spawn* s) {
  // Garbage collected without release()/abort(): do not leave a held process.
  if (s->state == HeldState::Held || s->state == HeldState::Releasing) KillAndJoin(s);
  if (s->ok && s->state != HeldState::Done) CloseFd(s->pidfd);
  ClosePoll(s);
  s->CloseAll();
  delete s;
}

std::string DescribeStatus(int st) {
  if (WIFEXITED(st)) return "exit code " + std::to_string(WEXITSTATUS(st));
  if (WIFSIGNALED(st)) return std::string("signal ") + strsignal(WTERMSIG(st));
  return "status " + std::to_string(st);
}

void OnHeldReady(Napi::Env env, Spawn* s, pid_t pid) {
  if (s->state != HeldState::Starting) return;
  s->pid = pid;
  s->state = HeldState::Held;
  // I has its own copies now.
  s->CloseChildFds();
  // A held child alone must not keep the event loop alive.
  uv_unref(reinterpret_cast<uv_handle_t*>(s->poll));
  Napi::Object held = Napi::Object::New(env);
  held.Set("pid", Napi::Number::New(env, pid));
  held.Set("handle", Napi::External<Spawn>::New(env, s, FinalizeSpawn));
  napi_deferred d = s->spawnDeferred;
  s->spawnDeferred = nullptr;
  napi_resolve_deferred(env, d, held);
}

// Settles release() from T's results. The handle (and so s) stays alive.
void SettleRelease(Napi::Env env, Spawn* s) {
  napi_deferred d = s->releaseDeferred;
  s->releaseDeferred = nullptr;
  s->state = HeldState::Done;
  ClosePoll(s);
  s->CloseAll();
  if (s->ok) {
    Napi::Object res = Napi::Object::New(env);
    res.Set("pid", Napi::Number::New(env, s->finalPid));
    res.Set("pidfd", Napi::Number::New(env, s->pidfd));
    s->handleRef.Reset();
    napi_resolve_deferred(env, d, res);
    return;
  }
  std::string code, stage, msg;
  if (s->failStage[0]) {
    stage = s->failStage;
    int err = s->failErr;
    code = err ? ErrnoName(err) : "";
    std::string what = stage == "exec" ? "exec '" + s->file + "'" : stage;
    if (stage == "chdir") what += " '" + s->cwd + "'";
    if (stage == "apparmor") what += " '" + s->appArmorMsg.substr(5) + "'";
    msg = "spawn failed: " + what + ": " + (err ? strerror(err) : "unknown error");
  } else if (s->pidfdErr) {
    code = ErrnoName(s->pidfdErr);
    stage = "pidfd_open";
    msg = std::string("spawn failed: pidfd_open: ") + strerror(s->pidfdErr);
  } else {
    stage = "intermediate";
    msg = std::string("spawn failed: the held intermediate process ended (") + DescribeStatus(s->istatus) + ")" +
          (s->writeErr ? std::string(" before release: ") + strerror(s->writeErr) : "");
  }
  Napi::Error e = Napi::Error::New(env, msg);
  if (!code.empty()) e.Set("code", Napi::String::New(env, code));
  e.Set("stage", Napi::String::New(env, stage));
  s->handleRef.Reset();
  napi_reject_deferred(env, d, e.Value());
}

void OnThreadDone(Napi::Env env, Spawn* s) {
  JoinThread(s);
  switch (s->state) {
    case HeldState::Starting: {
      // No handle was ever given out: s is ours to free.
      Napi::Error e = s->cloneErr ? ErrnoError(env, s->cloneErr, s->cloneWhat)
                                  : Napi::Error::New(env, "spawn failed: the intermediate process ended before reporting (" +
                                                              DescribeStatus(s->istatus) + ")");
      napi_deferred d = s->spawnDeferred;
      ClosePoll(s);
      s->CloseAll();
      delete s;
      napi_reject_deferred(env, d, e.Value());
      return;
    }
    case HeldState::Held:
      // I ended on its own while held; release() reports it.
      ClosePoll(s);
      return;
    case HeldState::Releasing:
      SettleRelease(env, s);
      return;
    case HeldState::Done:
      ClosePoll(s);
      return;
  }
}

void OnEvent(uv_poll_t* h, int status, int events) {
  Spawn* s = static_cast<Spawn*>(h->data);
  Napi::Env env(s->env);
  Napi::HandleScope scope(env);
  // Promise reactions run when this scope closes, not at some later tick.
  AddonData* data = env.GetInstanceData<AddonData>();
  Napi::CallbackScope cbScope(env, data->ctx);
  while (true) {
    int32_t v;
    ssize_t r = read(s->evR, &v, sizeof v);
    if (r < 0 && errno == EINTR) continue;
    if (r != (ssize_t)sizeof v) break;  // EAGAIN: nothing more for now
    if (v > 0) {
      OnHeldReady(env, s, (pid_t)v);
    } else if (v == 0) {
      OnThreadDone(env, s);  // may free s
      return;
    }
    // v < 0: creating I failed; s->cloneErr has it, "done" follows.
  }
}

bool GetStringArray(Napi::Env env, Napi::Value v, const char* what, std::vector<std::string>& out) {
  if (!v.IsArray()) {
    Napi::TypeError::New(env, std::string(what) + " must be an array of strings").ThrowAsJavaScriptException();
    return false;
  }
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value e = a.Get(i);
    if (!e.IsString()) {
      Napi::TypeError::New(env, std::string(what) + " must be an array of strings").ThrowAsJavaScriptException();
      return false;
    }
    std::string str = e.As<Napi::String>().Utf8Value();
    if (str.find('\0') != std::string::npos) {
      Napi::TypeError::New(env, std::string(what) + " must not contain NUL").ThrowAsJavaScriptException();
      return false;
    }
    out.push_back(std::move(str));
  }
  return true;
}

bool OptInt(Napi::Env env, Napi::Object o, const char* key, bool* has, int64_t* out) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) {
    *has = false;
    return true;
  }
  if (!v.IsNumber()) {
    Napi::TypeError::New(env, std::string(key) + " must be a number").ThrowAsJavaScriptException();
    return false;
  }
  *has = true;
  *out = v.As<Napi::Number>().Int64Value();
  return true;
}

// Marshals opts into s and opens every fd the children need. On failure a
// JS exception is pending.
// Compiled seccomp programs by filter text. libseccomp takes 12-30 ms for RuntimeDefault on this
// VM (three architectures, ~400 syscalls), on the calling thread: each distinct filter (profile x
// capability set) is compiled once. Bounded: a flood of distinct Localhost profiles only recompiles.
const std::vector<sock_filter>* CompiledSeccomp(const std::string& text, std::string* err) {
  static std::mutex mu;
  static std::map<std::string, std::vector<sock_filter>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(text);
  if (it != cache.end()) return &it->second;
  std::vector<sock_filter> prog;
  *err = seccompf::Compile(text, &prog);
  if (!err->empty()) return nullptr;
  if (cache.size() >= 64) cache.clear();
  return &cache.emplace(text, std::move(prog)).first->second;
}

bool PrepareSpawn(Napi::Env env, Napi::Object o, Spawn* s) {
  if (!o.Get("file").IsString()) {
    Napi::TypeError::New(env, "file must be a string").ThrowAsJavaScriptException();
    return false;
  }
  s->file = o.Get("file").As<Napi::String>().Utf8Value();
  if (s->file.empty()) {
    Napi::TypeError::New(env, "file must not be empty").ThrowAsJavaScriptException();
    return false;
  }
  if (!GetStringArray(env, o.Get("argv"), "argv", s->argvStore)) return false;
  if (!GetStringArray(env, o.Get("env"), "env", s->envStore)) return false;
  for (auto& a : s->argvStore) s->argv.push_back(const_cast<char*>(a.c_str()));
  s->argv.push_back(nullptr);
  for (auto& e : s->envStore) s->envp.push_back(const_cast<char*>(e.c_str()));
  s->envp.push_back(nullptr);

  std::vector<std::string> cloneNs;
  if (!GetStringArray(env, o.Get("cloneNamespaces"), "cloneNamespaces", cloneNs)) return false;
  for (auto& t : cloneNs) {
    int flag;
    if (NsRank(t, &flag) < 0) {
      Napi::TypeError::New(env, "unknown namespace type: " + t).ThrowAsJavaScriptException();
      return false;
    }
    s->cloneFlags |= (uint64_t)flag;
  }

  Napi::Value joins = o.Get("joinNamespaces");
  if (!joins.IsArray()) {
    Napi::TypeError::New(env, "joinNamespaces must be an array").ThrowAsJavaScriptException();
    return false;
  }
  Napi::Array ja = joins.As<Napi::Array>();
  for (uint32_t i = 0; i < ja.Length(); i++) {
    Napi::Value jv = ja.Get(i);
    if (!jv.IsObject()) {
      Napi::TypeError::New(env, "joinNamespaces entries must be {type, path}").ThrowAsJavaScriptException();
      return false;
    }
    Napi::Object jo = jv.As<Napi::Object>();
    if (!jo.Get("type").IsString() || !jo.Get("path").IsString()) {
      Napi::TypeError::New(env, "joinNamespaces entries must be {type, path}").ThrowAsJavaScriptException();
      return false;
    }
    NsJoin j;
    j.type = jo.Get("type").As<Napi::String>().Utf8Value();
    j.path = jo.Get("path").As<Napi::String>().Utf8Value();
    j.rank = NsRank(j.type, &j.nstype);
    j.fd = -1;
    if (j.rank < 0) {
      Napi::TypeError::New(env, "unknown namespace type: " + j.type).ThrowAsJavaScriptException();
      return false;
    }
    if (j.nstype == CLONE_NEWUSER) s->joinsUser = true;
    s->joins.push_back(j);
  }
  std::stable_sort(s->joins.begin(), s->joins.end(), [](const NsJoin& a, const NsJoin& b) { return a.rank < b.rank; });

  Napi::Value stdio = o.Get("stdio");
  if (!stdio.IsArray() || stdio.As<Napi::Array>().Length() != 3) {
    Napi::TypeError::New(env, "stdio must be [in, out, err]").ThrowAsJavaScriptException();
    return false;
  }
  for (uint32_t i = 0; i < 3; i++) {
    Napi::Value v = stdio.As<Napi::Array>().Get(i);
    if (!v.IsNumber()) {
      Napi::TypeError::New(env, "stdio entries must be numbers").ThrowAsJavaScriptException();
      return false;
    }
    s->stdio[i] = v.As<Napi::Number>().Int32Value();
  }
  Napi::Value extra = o.Get("extraFds");
  if (!extra.IsUndefined() && !extra.IsNull()) {
    if (!extra.IsArray()) {
      Napi::TypeError::New(env, "extraFds must be an array of fds").ThrowAsJavaScriptException();
      return false;
    }
    Napi::Array ea = extra.As<Napi::Array>();
    for (uint32_t i = 0; i < ea.Length(); i++) {
      Napi::Value v = ea.Get(i);
      if (!v.IsNumber() || v.As<Napi::Number>().Int32Value() < 0) {
        Napi::TypeError::New(env, "extraFds entries must be fds").ThrowAsJavaScriptException();
        return false;
      }
      s->extraFds.push_back(v.As<Napi::Number>().Int32Value());
    }
  }

  bool has;
  int64_t num;
  if (!OptInt(env, o, "cgroupFd", &has, &num)) return false;
  if (has) s->cgroupFd = (int)num;
  if (!OptInt(env, o, "uid", &has, &num)) return false;
  s->hasUid = has;
  s->uid = (uid_t)num;
  if (!OptInt(env, o, "gid", &has, &num)) return false;
  s->hasGid = has;
  s->gid = (gid_t)num;
  Napi::Value groups = o.Get("groups");
  if (!groups.IsUndefined() && !groups.IsNull()) {
    if (!groups.IsArray()) {
      Napi::TypeError::New(env, "groups must be an array of gids").ThrowAsJavaScriptException();
      return false;
    }
    s->hasGroups = true;
    Napi::Array ga = groups.As<Napi::Array>();
    for (uint32_t i = 0; i < ga.Length(); i++) s->groups.push_back((gid_t)ga.Get(i).As<Napi::Number>().Int64Value());
  }
  Napi::Value cwd = o.Get("cwd");
  if (cwd.IsString()) {
    s->cwd = cwd.As<Napi::String>().Utf8Value();
    s->hasCwd = !s->cwd.empty();
  }
  // A capability mask given as a hex string; absent is fine, anything else throws.
  auto hexMask = [&](const char* key, bool* present, uint64_t* out) -> bool {
    Napi::Value v = o.Get(key);
    *present = v.IsString();
    if (!*present) return true;
    std::string hex = v.As<Napi::String>().Utf8Value();
    char* end = nullptr;
    errno = 0;
    unsigned long long n = strtoull(hex.c_str(), &end, 16);
    if (hex.empty() || errno != 0 || *end != '\0') {
      Napi::TypeError::New(env, std::string(key) + " must be a hex mask string").ThrowAsJavaScriptException();
      return false;
    }
    *out = n;
    return true;
  };
  bool hasAmbient = false;
  if (!hexMask("ambient", &hasAmbient, &s->ambient)) return false;
  if (!hexMask("capabilities", &s->hasCaps, &s->caps)) return false;
  if (s->hasCaps) {
    // Read here: the child may only make syscalls.
    int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      ThrowErrno(env, errno, "open", "/proc/sys/kernel/cap_last_cap");
      return false;
    }
    char buf[16] = {0};
    ssize_t n = read(fd, buf, sizeof buf - 1);
    int readErr = errno;
    CloseQuietly(fd);
    if (n <= 0) {
      ThrowErrno(env, n < 0 ? readErr : EIO, "read", "/proc/sys/kernel/cap_last_cap");
      return false;
    }
    s->capLast = atoi(buf);
  }
  Napi::Value nnp = o.Get("noNewPrivs");
  if (nnp.IsBoolean()) s->noNewPrivs = nnp.As<Napi::Boolean>().Value();
  Napi::Value sc = o.Get("seccomp");
  if (sc.IsString()) {
    std::string err;
    const std::vector<sock_filter>* prog = CompiledSeccomp(sc.As<Napi::String>().Utf8Value(), &err);
    if (!prog) {
      Napi::Error::New(env, err).ThrowAsJavaScriptException();
      return false;
    }
    s->seccomp = *prog;  // F reads it from the shared memory; the cache may change meanwhile
    s->hasSeccomp = true;
  } else if (!sc.IsUndefined() && !sc.IsNull()) {
    Napi::TypeError::New(env, "seccomp must be a string").ThrowAsJavaScriptException();
    return false;
  }
  Napi::Value aa = o.Get("apparmor");
  if (aa.IsString()) {
    std::string profile = aa.As<Napi::String>().Utf8Value();
    if (profile.empty() || profile.find('\0') != std::string::npos || profile.find('\n') != std::string::npos) {
      Napi::TypeError::New(env, "apparmor must be a profile name").ThrowAsJavaScriptException();
      return false;
    }
    s->appArmorMsg = apparmorf::ExecMessage(profile);
    s->hasAppArmor = true;
  } else if (!aa.IsUndefined() && !aa.IsNull()) {
    Napi::TypeError::New(env, "apparmor must be a string").ThrowAsJavaScriptException();
    return false;
  }
  Napi::Value setsidV = o.Get("setsid");
  if (setsidV.IsBoolean()) s->doSetsid = setsidV.As<Napi::Boolean>().Value();
  bool hasPty;
  int64_t ptySock;
  if (!OptInt(env, o, "ptySocket", &hasPty, &ptySock)) return false;
  if (hasPty) {
    if (ptySock < 0 || !s->doSetsid) {
      Napi::TypeError::New(env, "ptySocket must be an fd, and needs setsid").ThrowAsJavaScriptException();
      return false;
    }
    s->ptySock = (int)ptySock;
  }

  // Exec candidates, computed here because the child may not allocate.
  if (s->file.find('/') != std::string::npos) {
    s->candStore.push_back(s->file);
  } else {
    std::string path = kDefaultPath;
    Napi::Value sp = o.Get("searchPath");
    if (sp.IsString()) path = sp.As<Napi::String>().Utf8Value();
    size_t start = 0;
    while (true) {
      size_t end = path.find(':', start);
      std::string dir = path.substr(start, end == std::string::npos ? std::string::npos : end - start);
      if (dir.empty()) dir = ".";
      s->candStore.push_back(dir + "/" + s->file);
      if (end == std::string::npos) break;
      start = end + 1;
    }
  }
  for (auto& c : s->candStore) s->candidates.push_back(c.c_str());

  // Everything the children need is opened now, before the clone.
  for (auto& j : s->joins) {
    j.fd = open(j.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (j.fd < 0) {
      ThrowErrno(env, errno, "open", j.path);
      return false;
    }
  }
  s->devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (s->devnull < 0) {
    ThrowErrno(env, errno, "open", "/dev/null");
    return false;
  }
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) {
    ThrowErrno(env, errno, "pipe2");
    return false;
  }
  s->syncR = p[0];
  s->syncW = p[1];
  if (pipe2(p, O_CLOEXEC) < 0) {
    ThrowErrno(env, errno, "pipe2");
    return false;
  }
  s->evR = p[0];
  s->evW = p[1];
  // Only the main thread's end is non-blocking (a separate open file description).
  if (fcntl(s->evR, F_SETFL, O_NONBLOCK) < 0) {
    ThrowErrno(env, errno, "fcntl", "O_NONBLOCK");
    return false;
  }

  int maxFd = std::max({s->devnull, s->syncR, s->syncW, s->evR, s->evW, s->cgroupFd, s->stdio[0], s->stdio[1],
                        s->stdio[2], s->ptySock});
  for (int fd : s->extraFds) maxFd = std::max(maxFd, fd);
  for (auto& j : s->joins) maxFd = std::max(maxFd, j.fd);
  s->base = std::max(maxFd + 1, 10 + (int)s->extraFds.size());
  for (int fd : {s->devnull, s->syncR, s->evW, s->stdio[0], s->stdio[1], s->stdio[2], s->ptySock})
    if (fd >= 3) s->keepFds.push_back(fd);
  for (int fd : s->extraFds)
    if (fd >= 3) s->keepFds.push_back(fd);
  for (auto& j : s->joins)
    if (j.fd >= 3) s->keepFds.push_back(j.fd);
  std::sort(s->keepFds.begin(), s->keepFds.end());
  s->keepFds.erase(std::unique(s->keepFds.begin(), s->keepFds.end()), s->keepFds.end());
  s->parentPid = getpid();
  return true;
}

Napi::Value SpawnHeld(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  napi_deferred d;
  napi_value promise;
  if (napi_create_promise(env, &d, &promise) != napi_ok) return env.Undefined();
  auto reject = [&](Napi::Value err) -> Napi::Value {
    napi_reject_deferred(env, d, err);
    return Napi::Value(env, promise);
  };
  if (info.Length() < 1 || !info[0].IsObject()) {
    return reject(Napi::TypeError::New(env, "spawnHeld(opts): opts must be an object").Value());
  }
  auto s = new Spawn();
  if (!PrepareSpawn(env, info[0].As<Napi::Object>(), s)) {
    Napi::Error e = env.GetAndClearPendingException();
    s->CloseAll();
    delete s;
    return reject(e.Value());
  }
  s->env = env;
  s->spawnDeferred = d;

  uv_loop_t* loop = nullptr;
  int rc = napi_get_uv_event_loop(env, &loop) == napi_ok && loop ? 0 : UV_EINVAL;
  if (rc == 0) {
    s->poll = new uv_poll_t;
    rc = uv_poll_init(loop, s->poll, s->evR);
    if (rc < 0) {
      delete s->poll;
      s->poll = nullptr;
    } else {
      s->poll->data = s;
      rc = uv_poll_start(s->poll, UV_READABLE, OnEvent);
    }
  }
  if (rc < 0) {
    ClosePoll(s);
    s->CloseAll();
    delete s;
    return reject(Napi::Error::New(env, std::string("spawnHeld: uv_poll: ") + uv_strerror(rc)).Value());
  }

  pthread_attr_t attr;
  int err = pthread_attr_init(&attr);
  if (err == 0) {
    err = pthread_attr_setstacksize(&attr, kThreadStack);
    if (err == 0) err = pthread_create(&s->thread, &attr, SpawnThread, s);
    pthread_attr_destroy(&attr);  // always 0 on Linux
  }
  if (err != 0) {
    ClosePoll(s);
    s->CloseAll();
    delete s;
    return reject(ErrnoError(env, err, "pthread_create").Value());
  }
  s->threadRunning = true;
  return Napi::Value(env, promise);
}

Spawn* GetSpawn(const Napi::CallbackInfo& info, Napi::Value* handleOut) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) {
    Napi::TypeError::New(env, "expected a HeldChild from spawnHeld()").ThrowAsJavaScriptException();
    return nullptr;
  }
  Napi::Value h = info[0].As<Napi::Object>().Get("handle");
  if (!h.IsExternal()) {
    Napi::TypeError::New(env, "expected a HeldChild from spawnHeld()").ThrowAsJavaScriptException();
    return nullptr;
  }
  if (handleOut) *handleOut = h;
  return h.As<Napi::External<Spawn>>().Data();
}

Napi::Value Release(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Value handle;
  Spawn* s = GetSpawn(info, &handle);
  if (!s) return env.Undefined();
  napi_deferred d;
  napi_value promise;
  if (napi_create_promise(env, &d, &promise) != napi_ok) return env.Undefined();
  if (s->state != HeldState::Held) {
    napi_reject_deferred(env, d, Napi::Error::New(env, "release: this child was already released or aborted").Value());
    return Napi::Value(env, promise);
  }
  s->releaseDeferred = d;
  s->state = HeldState::Releasing;
  if (s->threadDone) {
    // I already ended on its own (T reaped it): report that now.
    SettleRelease(env, s);
    return Napi::Value(env, promise);
  }
  char b = 'x';
  ssize_t w;
  do {
    w = write(s->syncW, &b, 1);
  } while (w < 0 && errno == EINTR);
  if (w != 1) s->writeErr = errno;
  CloseFd(s->syncW);
  s->handleRef = Napi::Persistent(handle);
  uv_ref(reinterpret_cast<uv_handle_t*>(s->poll));
  return Napi::Value(env, promise);
}

Napi::Value Abort(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Spawn* s = GetSpawn(info, nullptr);
  if (!s) return env.Undefined();
  if (s->state == HeldState::Releasing) {
    Napi::Error::New(env, "abort: release() is in progress").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (s->state == HeldState::Held) {
    // T wakes when I dies, reaps it and finishes; joining it means I is reaped.
    KillAndJoin(s);
    s->state = HeldState::Done;
  }
  ClosePoll(s);
  s->CloseAll();
  return env.Undefined();
}

// ---------------------------------------------------------------------------
// waitPidfd: uv_poll on a private dup of the pidfd (libuv wants one poll
// handle per fd number; the dup also survives the caller closing its pidfd).

struct PidfdWait {
  uv_poll_t poll;
  int fd;
  napi_env env;
  Napi::Promise::Deferred deferred;
  PidfdWait(napi_env e) : fd(-1), env(e), deferred(Napi::Promise::Deferred::New(e)) {}
};

void OnPollClosed(uv_handle_t* h) {
  auto* w = static_cast<PidfdWait*>(h->data);
  CloseFd(w->fd);
  delete w;
}

void OnPidfdReadable(uv_poll_t* h, int status, int events) {
  auto* w = static_cast<PidfdWait*>(h->data);
  Napi::Env env(w->env);
  Napi::HandleScope scope(env);
  if (status < 0) {
    uv_poll_stop(h);
    w->deferred.Reject(Napi::Error::New(env, std::string("waitPidfd: poll: ") + uv_strerror(status)).Value());
    uv_close(reinterpret_cast<uv_handle_t*>(h), OnPollClosed);
    return;
  }
  siginfo_t si;
  memset(&si, 0, sizeof si);
  int r;
  do {
    r = waitid((idtype_t)P_PIDFD, (id_t)w->fd, &si, WEXITED | WNOHANG);
  } while (r < 0 && errno == EINTR);
  Napi::Object res = Napi::Object::New(env);
  if (r < 0) {
    int e = errno;
    if (e != ECHILD) {
      uv_poll_stop(h);
      w->deferred.Reject(Napi::Error::New(env, std::string("waitPidfd: waitid: ") + strerror(e)).Value());
      uv_close(reinterpret_cast<uv_handle_t*>(h), OnPollClosed);
      return;
    }
    // Not our child (e.g. adopted after a daemon restart): it exited, status unknown.
    res.Set("exitCode", env.Null());
    res.Set("signal", env.Null());
  } else if (si.si_pid == 0) {
    return;  // not exited yet; keep polling
  } else if (si.si_code == CLD_EXITED) {
    res.Set("exitCode", Napi::Number::New(env, si.si_status));
    res.Set("signal", env.Null());
  } else {
    res.Set("exitCode", env.Null());
    res.Set("signal", Napi::Number::New(env, si.si_status));
  }
  uv_poll_stop(h);
  w->deferred.Resolve(res);
  uv_close(reinterpret_cast<uv_handle_t*>(h), OnPollClosed);
}

Napi::Value WaitPidfd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "waitPidfd(pidfd): pidfd must be a number").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int pidfd = info[0].As<Napi::Number>().Int32Value();
  int fd = fcntl(pidfd, F_DUPFD_CLOEXEC, 3);
  if (fd < 0) {
    ThrowErrno(env, errno, "fcntl", "pidfd " + std::to_string(pidfd));
    return env.Undefined();
  }
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || !loop) {
    CloseQuietly(fd);
    Napi::Error::New(env, "waitPidfd: no event loop").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto* w = new PidfdWait(env);
  w->fd = fd;
  int rc = uv_poll_init(loop, &w->poll, fd);
  if (rc < 0) {
    CloseQuietly(fd);
    delete w;
    Napi::Error::New(env, std::string("waitPidfd: uv_poll_init: ") + uv_strerror(rc)).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  w->poll.data = w;
  Napi::Promise p = w->deferred.Promise();
  rc = uv_poll_start(&w->poll, UV_READABLE, OnPidfdReadable);
  if (rc < 0) {
    w->deferred.Reject(Napi::Error::New(env, std::string("waitPidfd: uv_poll_start: ") + uv_strerror(rc)).Value());
    uv_close(reinterpret_cast<uv_handle_t*>(&w->poll), OnPollClosed);
  }
  return p;
}

// ---------------------------------------------------------------------------
// Small synchronous helpers.

bool ArgString(const Napi::CallbackInfo& info, size_t i, const char* name, std::string* out, bool nullable = false,
               bool* isNull = nullptr) {
  Napi::Value v = info.Length() > i ? info[i] : info.Env().Undefined();
  if (nullable && (v.IsNull() || v.IsUndefined())) {
    if (isNull) *isNull = true;
    return true;
  }
  if (isNull) *isNull = false;
  if (!v.IsString()) {
    Napi::TypeError::New(info.Env(), std::string(name) + (nullable ? " must be a string or null" : " must be a string"))
        .ThrowAsJavaScriptException();
    return false;
  }
  *out = v.As<Napi::String>().Utf8Value();
  return true;
}

bool ArgNumber(const Napi::CallbackInfo& info, size_t i, const char* name, double* out) {
  if (info.Length() <= i || !info[i].IsNumber()) {
    Napi::TypeError::New(info.Env(), std::string(name) + " must be a number").ThrowAsJavaScriptException();
    return false;
  }
  *out = info[i].As<Napi::Number>().DoubleValue();
  return true;
}

Napi::Value PidfdOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double pid;
  if (!ArgNumber(info, 0, "pid", &pid)) return env.Undefined();
  long fd = syscall(SYS_pidfd_open, (pid_t)pid, 0);  // pidfds are always O_CLOEXEC
  if (fd < 0) {
    ThrowErrno(env, errno, "pidfd_open", std::to_string((long)pid));
    return env.Undefined();
  }
  return Napi::Number::New(env, (double)fd);
}

Napi::Value PidfdSendSignal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double fd, sig;
  if (!ArgNumber(info, 0, "pidfd", &fd) || !ArgNumber(info, 1, "signal", &sig)) return env.Undefined();
  if (syscall(SYS_pidfd_send_signal, (int)fd, (int)sig, nullptr, 0) < 0) {
    ThrowErrno(env, errno, "pidfd_send_signal");
  }
  return env.Undefined();
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double fd;
  if (!ArgNumber(info, 0, "fd", &fd)) return env.Undefined();
  if (close((int)fd) < 0 && errno != EINTR) ThrowErrno(env, errno, "close");
  return env.Undefined();
}

// [p[0], p[1]] for JS.
Napi::Array FdPair(Napi::Env env, const int p[2]) {
  Napi::Array a = Napi::Array::New(env, 2);
  a.Set(0u, Napi::Number::New(env, p[0]));
  a.Set(1u, Napi::Number::New(env, p[1]));
  return a;
}

Napi::Value Pipe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) {
    ThrowErrno(env, errno, "pipe2");
    return env.Undefined();
  }
  return FdPair(env, p);
}

// seccompCompile(text): the BPF program (struct sock_filter[]) for cri-mesos-launch's seccomp op.
Napi::Value SeccompCompile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string text;
  if (!ArgString(info, 0, "text", &text)) return env.Undefined();
  std::string err;
  const std::vector<sock_filter>* prog = CompiledSeccomp(text, &err);
  if (!prog) {
    Napi::Error::New(env, err).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Buffer<char>::Copy(env, reinterpret_cast<const char*>(prog->data()), prog->size() * sizeof(sock_filter));
}

Napi::Value Mkfifo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  double mode;
  if (!ArgString(info, 0, "path", &path) || !ArgNumber(info, 1, "mode", &mode)) return env.Undefined();
  if (mkfifo(path.c_str(), (mode_t)mode) < 0) {
    ThrowErrno(env, errno, "mkfifo", path);
    return env.Undefined();
  }
  // Exact mode regardless of the daemon's umask.
  if (chmod(path.c_str(), (mode_t)mode) < 0) ThrowErrno(env, errno, "chmod", path);
  return env.Undefined();
}

Napi::Value Mount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string source, target, fstype, data;
  bool noSource, noFstype, noData;
  double flags;
  if (!ArgString(info, 0, "source", &source, true, &noSource) || !ArgString(info, 1, "target", &target) ||
      !ArgString(info, 2, "fstype", &fstype, true, &noFstype) || !ArgNumber(info, 3, "flags", &flags) ||
      !ArgString(info, 4, "data", &data, true, &noData))
    return env.Undefined();
  if (mount(noSource ? nullptr : source.c_str(), target.c_str(), noFstype ? nullptr : fstype.c_str(),
            (unsigned long)flags, noData ? nullptr : data.c_str()) < 0) {
    ThrowErrno(env, errno, "mount", target);
  }
  return env.Undefined();
}

Napi::Value Umount2(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string target;
  double flags;
  if (!ArgString(info, 0, "target", &target) || !ArgNumber(info, 1, "flags", &flags)) return env.Undefined();
  if (umount2(target.c_str(), (int)flags) < 0) ThrowErrno(env, errno, "umount2", target);
  return env.Undefined();
}

// umount2Async(target, flags): umount2 on a libuv pool thread. Unmounting an overlay syncs its
// upper filesystem (5.8 ms on this VM's ext4), which would hold the event loop that long.
class Umount2Worker : public Napi::AsyncWorker {
 public:
  Umount2Worker(Napi::Env env, std::string target, int flags)
      : Napi::AsyncWorker(env), target_(std::move(target)), flags_(flags), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    if (umount2(target_.c_str(), flags_) < 0) err_ = errno;
  }
  void OnOK() override {
    if (err_ != 0) {
      deferred_.Reject(ErrnoError(Env(), err_, "umount2", target_).Value());
    } else {
      deferred_.Resolve(Env().Undefined());
    }
  }

 private:
  std::string target_;
  int flags_;
  int err_ = 0;
  Napi::Promise::Deferred deferred_;
};

Napi::Value Umount2Async(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string target;
  double flags;
  if (!ArgString(info, 0, "target", &target) || !ArgNumber(info, 1, "flags", &flags)) return env.Undefined();
  auto* w = new Umount2Worker(env, target, (int)flags);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

Napi::Value Mknod(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  double mode, major, minor;
  if (!ArgString(info, 0, "path", &path) || !ArgNumber(info, 1, "mode", &mode) ||
      !ArgNumber(info, 2, "major", &major) || !ArgNumber(info, 3, "minor", &minor))
    return env.Undefined();
  if (mknod(path.c_str(), (mode_t)mode, makedev((unsigned)major, (unsigned)minor)) < 0) {
    ThrowErrno(env, errno, "mknod", path);
  }
  return env.Undefined();
}

// attachDeviceFilter(dir, insns): a cgroup2 device program (struct bpf_insn[], built by
// src/cgroups/devices.ts) loaded and attached to the cgroup directory, replacing its old ones.
Napi::Value AttachDeviceFilter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string dir;
  if (!ArgString(info, 0, "dir", &dir)) return env.Undefined();
  if (info.Length() < 2 || !info[1].IsBuffer()) {
    Napi::TypeError::New(env, "insns must be a Buffer").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Buffer<char> buf = info[1].As<Napi::Buffer<char>>();
  if (buf.Length() == 0 || buf.Length() % sizeof(struct bpf_insn) != 0) {
    Napi::TypeError::New(env, "insns must hold whole struct bpf_insn records").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  // Copied: a Buffer's memory need not be aligned for struct bpf_insn.
  std::vector<struct bpf_insn> insns(buf.Length() / sizeof(struct bpf_insn));
  memcpy(insns.data(), buf.Data(), buf.Length());
  std::string what, log;
  int err = bpfdev::AttachDeviceFilter(dir.c_str(), insns.data(), (uint32_t)insns.size(), &what, &log);
  if (err != 0) {
    Napi::Error e = ErrnoError(env, err, what.c_str(), dir);
    if (!log.empty()) e.Set("verifierLog", Napi::String::New(env, log));
    e.ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

Napi::Value Lsetxattr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path, name;
  double flags;
  if (!ArgString(info, 0, "path", &path) || !ArgString(info, 1, "name", &name)) return env.Undefined();
  if (info.Length() < 3 || !info[2].IsBuffer()) {
    Napi::TypeError::New(env, "value must be a Buffer").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (!ArgNumber(info, 3, "flags", &flags)) return env.Undefined();
  Napi::Buffer<char> buf = info[2].As<Napi::Buffer<char>>();
  if (lsetxattr(path.c_str(), name.c_str(), buf.Data(), buf.Length(), (int)flags) < 0) {
    ThrowErrno(env, errno, "lsetxattr", path);
  }
  return env.Undefined();
}

Napi::Value Lgetxattr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path, name;
  if (!ArgString(info, 0, "path", &path) || !ArgString(info, 1, "name", &name)) return env.Undefined();
  std::vector<char> buf(256);
  while (true) {
    ssize_t n = lgetxattr(path.c_str(), name.c_str(), buf.data(), buf.size());
    if (n >= 0) return Napi::Buffer<char>::Copy(env, buf.data(), (size_t)n);
    if (errno == ENODATA) return env.Null();
    if (errno != ERANGE) {
      ThrowErrno(env, errno, "lgetxattr", path);
      return env.Undefined();
    }
    ssize_t need = lgetxattr(path.c_str(), name.c_str(), nullptr, 0);
    if (need < 0) {
      if (errno == ENODATA) return env.Null();
      ThrowErrno(env, errno, "lgetxattr", path);
      return env.Undefined();
    }
    buf.resize((size_t)need + 1);
  }
}

// Whether the kernel has mount_setattr (Linux 5.12+), which recursive read-only
// mounts need. Called with a bad fd: ENOSYS means absent, anything else present.
Napi::Value HasMountSetattr(const Napi::CallbackInfo& info) {
  long r = syscall(SYS_mount_setattr, -1, "", 0, nullptr, 0);
  return Napi::Boolean::New(info.Env(), !(r < 0 && errno == ENOSYS));
}

Napi::Value Statfs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  if (!ArgString(info, 0, "path", &path)) return env.Undefined();
  struct statfs st;
  if (statfs(path.c_str(), &st) < 0) {
    ThrowErrno(env, errno, "statfs", path);
    return env.Undefined();
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("bsize", Napi::Number::New(env, (double)st.f_bsize));
  o.Set("blocks", Napi::Number::New(env, (double)st.f_blocks));
  o.Set("bfree", Napi::Number::New(env, (double)st.f_bfree));
  o.Set("bavail", Napi::Number::New(env, (double)st.f_bavail));
  o.Set("files", Napi::Number::New(env, (double)st.f_files));
  o.Set("ffree", Napi::Number::New(env, (double)st.f_ffree));
  return o;
}

// ---------------------------------------------------------------------------
// Terminals and fd passing.

// socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC): carries an fd from a child (SCM_RIGHTS).
Napi::Value SocketPair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int p[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, p) < 0) {
    ThrowErrno(env, errno, "socketpair");
    return env.Undefined();
  }
  return FdPair(env, p);
}

// One fd sent with SendFd, without blocking: EAGAIN when none is queued.
Napi::Value RecvFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double sock;
  if (!ArgNumber(info, 0, "socket", &sock)) return env.Undefined();
  int fd = fdpass::RecvFd((int)sock, MSG_DONTWAIT);
  if (fd < 0) {
    ThrowErrno(env, errno, "recvmsg", errno == EPROTO ? "no fd in the message" : "");
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

// TIOCSWINSZ on a terminal (a pty master): the size the process on its slave sees.
Napi::Value SetWinsize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double fd, cols, rows;
  if (!ArgNumber(info, 0, "fd", &fd) || !ArgNumber(info, 1, "cols", &cols) || !ArgNumber(info, 2, "rows", &rows))
    return env.Undefined();
  if (cols < 0 || rows < 0 || cols > 65535 || rows > 65535) {
    Napi::RangeError::New(env, "cols and rows must be 0..65535").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  struct winsize ws;
  memset(&ws, 0, sizeof ws);
  ws.ws_col = (unsigned short)cols;
  ws.ws_row = (unsigned short)rows;
  if (ioctl((int)fd, TIOCSWINSZ, &ws) < 0) ThrowErrno(env, errno, "ioctl", "TIOCSWINSZ");
  return env.Undefined();
}

// The terminal's VEOF character (what ^D is): a pty master reports its slave's termios.
Napi::Value TtyEofChar(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double fd;
  if (!ArgNumber(info, 0, "fd", &fd)) return env.Undefined();
  struct termios t;
  if (tcgetattr((int)fd, &t) < 0) {
    ThrowErrno(env, errno, "tcgetattr");
    return env.Undefined();
  }
  return Napi::Number::New(env, (unsigned char)t.c_cc[VEOF]);
}

// fcntl(F_DUPFD_CLOEXEC): a second fd on the same open file, owned separately.
Napi::Value Dup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double fd;
  if (!ArgNumber(info, 0, "fd", &fd)) return env.Undefined();
  int d = fcntl((int)fd, F_DUPFD_CLOEXEC, 3);
  if (d < 0) {
    ThrowErrno(env, errno, "fcntl", "F_DUPFD_CLOEXEC");
    return env.Undefined();
  }
  return Napi::Number::New(env, d);
}

Napi::Value SetNonblocking(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double fd;
  if (!ArgNumber(info, 0, "fd", &fd)) return env.Undefined();
  int fl = fcntl((int)fd, F_GETFL);
  if (fl < 0 || fcntl((int)fd, F_SETFL, fl | O_NONBLOCK) < 0) ThrowErrno(env, errno, "fcntl", "O_NONBLOCK");
  return env.Undefined();
}

// ---------------------------------------------------------------------------
// connectInNetns: a TCP connection to localhost:port inside a network namespace, for
// PortForward. setns(CLONE_NEWNET) changes the calling thread only, so it runs on a fresh
// std::thread that ends right after (never the Node thread, never a libuv pool thread that
// would go on serving other work in the pod's namespace). As containerd does, 127.0.0.1
// first, then [::1], serially. The socket keeps its namespace after the thread is gone.

// Runs work(job) on a pthread of its own, which ends afterwards (a thread that setns'd never
// serves anything else); the job's uv_async (done) settles the promise on the loop. Job has
// env, deferred, async and tid members; on failure here the job is freed and the promise rejected.
// The loop side of a job on its own thread: join it (its last act was uv_async_send, so the
// join is immediate; it fails only on a bug), settle the promise, free the job.
template <typename Job, void (*Settle)(Napi::Env, Job*)>
void OwnThreadDone(uv_async_t* h) {
  auto* c = static_cast<Job*>(h->data);
  if (pthread_join(c->tid, nullptr) != 0) abort();
  {
    Napi::Env env(c->env);
    Napi::HandleScope scope(env);
    AddonData* data = env.GetInstanceData<AddonData>();
    Napi::CallbackScope cbScope(env, data->ctx);
    Settle(env, c);
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&c->async), [](uv_handle_t* u) { delete static_cast<Job*>(u->data); });
}

template <typename Job>
Napi::Value StartOwnThread(Napi::Env env, napi_deferred d, napi_value promise, Job* c, const char* what, uv_async_cb done, void (*work)(Job*)) {
  c->env = env;
  c->deferred = d;
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || !loop) {
    delete c;
    napi_reject_deferred(env, d, Napi::Error::New(env, std::string(what) + ": no event loop").Value());
    return Napi::Value(env, promise);
  }
  int rc = uv_async_init(loop, &c->async, done);
  if (rc < 0) {
    delete c;
    napi_reject_deferred(env, d, Napi::Error::New(env, std::string(what) + ": uv_async_init: " + uv_strerror(rc)).Value());
    return Napi::Value(env, promise);
  }
  c->async.data = c;
  struct Start {
    Job* job;
    void (*work)(Job*);
  };
  auto* start = new Start{c, work};
  // std::thread reports a failed pthread_create by throwing, which this build cannot catch:
  // create it through pthreads' own error path instead.
  pthread_attr_t attr;
  int err = pthread_attr_init(&attr);
  if (err == 0) {
    err = pthread_create(
        &c->tid, &attr,
        [](void* arg) -> void* {
          auto* st = static_cast<Start*>(arg);
          Job* job = st->job;
          void (*fn)(Job*) = st->work;
          delete st;
          fn(job);
          return nullptr;
        },
        start);
    pthread_attr_destroy(&attr);
  }
  if (err != 0) {
    delete start;
    uv_close(reinterpret_cast<uv_handle_t*>(&c->async), [](uv_handle_t* h) { delete static_cast<Job*>(h->data); });
    napi_reject_deferred(env, d, ErrnoError(env, err, "pthread_create").Value());
  }
  return Napi::Value(env, promise);
}

struct NetnsConnect {
  std::string path;
  int port = 0;
  // Written by the thread before uv_async_send, read on the main thread after.
  int fd = -1;
  int err = 0;
  const char* syscallName = "connect";
  int err6 = 0;
  napi_env env = nullptr;
  napi_deferred deferred = nullptr;
  uv_async_t async;
  pthread_t tid{};
};

int ConnectLoopback(int family, int port, int* fdOut) {
  int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  int r;
  if (family == AF_INET) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    do {
      r = connect(fd, (struct sockaddr*)&a, sizeof a);
    } while (r < 0 && errno == EINTR);
  } else {
    struct sockaddr_in6 a;
    memset(&a, 0, sizeof a);
    a.sin6_family = AF_INET6;
    a.sin6_port = htons((uint16_t)port);
    a.sin6_addr = in6addr_loopback;
    do {
      r = connect(fd, (struct sockaddr*)&a, sizeof a);
    } while (r < 0 && errno == EINTR);
  }
  if (r < 0) {
    int e = errno;
    CloseQuietly(fd);
    return e;
  }
  *fdOut = fd;
  return 0;
}

void NetnsConnectThread(NetnsConnect* c) {
  // Process-directed signals must not pick this thread: Node's handlers expect its own threads.
  sigset_t all;
  sigfillset(&all);
  int e = pthread_sigmask(SIG_SETMASK, &all, nullptr);
  int ns = -1;
  if (e != 0) {
    c->err = e;
    c->syscallName = "pthread_sigmask";
  } else if ((ns = open(c->path.c_str(), O_RDONLY | O_CLOEXEC)) < 0) {
    c->err = errno;
    c->syscallName = "open";
  } else if (setns(ns, CLONE_NEWNET) < 0) {
    c->err = errno;
    c->syscallName = "setns";
  } else {
    c->err = ConnectLoopback(AF_INET, c->port, &c->fd);
    if (c->err != 0) c->err6 = ConnectLoopback(AF_INET6, c->port, &c->fd);
    if (c->err6 == 0 && c->fd >= 0) c->err = 0;
  }
  CloseQuietly(ns);
  // The last thing this thread does; the main thread joins it.
  if (uv_async_send(&c->async) != 0) abort();
}

void SettleNetnsConnect(Napi::Env env, NetnsConnect* c) {
  if (c->err == 0) {
    napi_resolve_deferred(env, c->deferred, Napi::Number::New(env, c->fd));
  } else {
    std::string where = c->path;
    if (std::string(c->syscallName) == "connect") {
      where = "127.0.0.1:" + std::to_string(c->port) + " in " + c->path;
      if (c->err6) where += " ([::1]: " + ErrnoName(c->err6) + ")";
    }
    napi_reject_deferred(env, c->deferred, ErrnoError(env, c->err, c->syscallName, where).Value());
  }
}

Napi::Value ConnectInNetns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  napi_deferred d;
  napi_value promise;
  if (napi_create_promise(env, &d, &promise) != napi_ok) return env.Undefined();
  std::string path;
  double port;
  if (!ArgString(info, 0, "nsPath", &path) || !ArgNumber(info, 1, "port", &port)) {
    Napi::Error e = env.GetAndClearPendingException();
    napi_reject_deferred(env, d, e.Value());
    return Napi::Value(env, promise);
  }
  if (port < 1 || port > 65535 || port != (double)(int)port) {
    napi_reject_deferred(env, d, Napi::RangeError::New(env, "port must be 1..65535").Value());
    return Napi::Value(env, promise);
  }
  auto* c = new NetnsConnect();
  c->path = path;
  c->port = (int)port;
  return StartOwnThread(env, d, promise, c, "connectInNetns", OwnThreadDone<NetnsConnect, SettleNetnsConnect>, NetnsConnectThread);
}

// ---------------------------------------------------------------------------
// pinNetns: a new network namespace, pinned by a bind mount of the namespace file onto
// `path` (created here if missing, as an empty file), for the network/cni isolator. As
// connectInNetns: unshare(CLONE_NEWNET) affects the calling thread only, so it runs on a fresh
// pthread that ends right after; the bind mount keeps the namespace alive without it.

struct NetnsPin {
  std::string path;
  int err = 0;
  const char* syscallName = "unshare";
  napi_env env = nullptr;
  napi_deferred deferred = nullptr;
  uv_async_t async;
  pthread_t tid{};
};

void NetnsPinThread(NetnsPin* c) {
  sigset_t all;
  sigfillset(&all);
  int e = pthread_sigmask(SIG_SETMASK, &all, nullptr);
  int fd = -1;
  if (e != 0) {
    c->err = e;
    c->syscallName = "pthread_sigmask";
  } else if ((fd = open(c->path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0444)) < 0) {
    c->err = errno;
    c->syscallName = "open";
  } else if (close(fd) < 0 && errno != EINTR) {
    c->err = errno;
    c->syscallName = "close";
  } else if (unshare(CLONE_NEWNET) < 0) {
    c->err = errno;
    c->syscallName = "unshare";
  } else if (mount("/proc/thread-self/ns/net", c->path.c_str(), nullptr, MS_BIND, nullptr) < 0) {
    c->err = errno;
    c->syscallName = "mount";
  }
  if (uv_async_send(&c->async) != 0) abort();
}

void SettleNetnsPin(Napi::Env env, NetnsPin* c) {
  if (c->err == 0) {
    napi_resolve_deferred(env, c->deferred, env.Undefined());
  } else {
    napi_reject_deferred(env, c->deferred, ErrnoError(env, c->err, c->syscallName, c->path).Value());
  }
}

Napi::Value PinNetns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  napi_deferred d;
  napi_value promise;
  if (napi_create_promise(env, &d, &promise) != napi_ok) return env.Undefined();
  std::string path;
  if (!ArgString(info, 0, "path", &path)) {
    Napi::Error e = env.GetAndClearPendingException();
    napi_reject_deferred(env, d, e.Value());
    return Napi::Value(env, promise);
  }
  auto* c = new NetnsPin();
  c->path = path;
  return StartOwnThread(env, d, promise, c, "pinNetns", OwnThreadDone<NetnsPin, SettleNetnsPin>, NetnsPinThread);
}

// ---------------------------------------------------------------------------
// nsPin: namespaces made by a short-lived child process and pinned by bind mounts of its
// namespace files, for the namespaces/user and network/cni isolators. A user namespace (and a
// namespace owned by one) cannot be made on a thread of a multithreaded process: setns into a
// user namespace and unshare(CLONE_NEWUSER) refuse one. So a fresh pthread clones a child
// (fork-like: no CLONE_VM, so the child's errno and stack are its own) that, optionally created
// in a new user namespace, joins a pinned user namespace and unshares the namespaces asked for,
// reports, and waits to be killed. The thread writes the new namespace's uid_map and gid_map
// (setgroups stays "allow", as runc leaves it for a privileged runtime), bind-mounts the child's
// /proc/<pid>/ns/<type> files on the pin paths, kills and reaps the child. The pins keep the
// namespaces alive without any process.

struct NsPinJob {
  bool newUser = false;
  std::string uidMap, gidMap;
  std::string joinUser;  // a user namespace file to join first ("" = none)
  int unshareFlags = 0;
  std::vector<std::pair<std::string, std::string>> pins;  // namespace file name, pin path
  // Written by the thread before uv_async_send, read on the main thread after.
  int err = 0;
  std::string what, where;
  napi_env env = nullptr;
  napi_deferred deferred = nullptr;
  uv_async_t async;
  pthread_t tid{};
};

// Writes `text` to `path` in one write(2): a uid_map or gid_map takes exactly one.
int WriteWhole(const std::string& path, const std::string& text) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  ssize_t w;
  do {
    w = write(fd, text.data(), text.size());
  } while (w < 0 && errno == EINTR);
  int e = w == (ssize_t)text.size() ? 0 : (w < 0 ? errno : EIO);
  if (close(fd) < 0 && e == 0 && errno != EINTR) e = errno;
  return e;
}

void NsPinThread(NsPinJob* c) {
  auto fail = [c](int err, const char* what, const std::string& where = "") {
    if (c->err) return;
    c->err = err;
    c->what = what;
    c->where = where;
  };
  sigset_t all;
  sigfillset(&all);
  int joinFd = -1;
  int p[2] = {-1, -1};
  int e = pthread_sigmask(SIG_SETMASK, &all, nullptr);
  if (e != 0) fail(e, "pthread_sigmask");
  if (!c->err && !c->joinUser.empty() && (joinFd = open(c->joinUser.c_str(), O_RDONLY | O_CLOEXEC)) < 0) fail(errno, "open", c->joinUser);
  if (!c->err && pipe2(p, O_CLOEXEC) < 0) fail(errno, "pipe2");
  long pid = -1;
  if (!c->err) {
    CloneArgs args;
    memset(&args, 0, sizeof args);
    args.flags = c->newUser ? CLONE_NEWUSER : 0;
    args.exit_signal = SIGCHLD;
    pid = syscall(SYS_clone3, &args, sizeof args);
    if (pid == 0) {
      // The child: its own copy of memory; syscalls only. Killed by the thread once pinned, or
      // with the thread (the daemon) if that dies first.
      int32_t rep[2] = {0, 0};
      if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) {
        rep[0] = 1;
        rep[1] = errno;
      } else if (joinFd >= 0 && setns(joinFd, CLONE_NEWUSER) < 0) {
        rep[0] = 2;
        rep[1] = errno;
      } else if (c->unshareFlags && unshare(c->unshareFlags) < 0) {
        rep[0] = 3;
        rep[1] = errno;
      }
      if (!WriteSmall(p[1], rep, sizeof rep)) _exit(1);
      for (;;) pause();
    }
    if (pid < 0) fail(errno, "clone3");
  }
  CloseQuietly(p[1]);
  std::vector<std::string> pinned;
  if (pid > 0) {
    int32_t rep[2] = {0, 0};
    ssize_t r;
    do {
      r = read(p[0], rep, sizeof rep);
    } while (r < 0 && errno == EINTR);
    static const char* const stages[] = {"", "prctl", "setns", "unshare"};
    if (r != (ssize_t)sizeof rep) fail(r < 0 ? errno : EIO, "read", "the namespace child's report");
    else if (rep[0] >= 1 && rep[0] <= 3) fail(rep[1], stages[rep[0]], rep[0] == 2 ? c->joinUser : "");
    const std::string proc = "/proc/" + std::to_string(pid);
    if (!c->err && c->newUser) {
      if ((e = WriteWhole(proc + "/uid_map", c->uidMap)) != 0) fail(e, "write", proc + "/uid_map");
      else if ((e = WriteWhole(proc + "/gid_map", c->gidMap)) != 0) fail(e, "write", proc + "/gid_map");
    }
    for (size_t i = 0; !c->err && i < c->pins.size(); i++) {
      const std::string& path = c->pins[i].second;
      int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0444);
      if (fd < 0) {
        fail(errno, "open", path);
        break;
      }
      CloseQuietly(fd);
      std::string src = proc + "/ns/" + c->pins[i].first;
      if (mount(src.c_str(), path.c_str(), nullptr, MS_BIND, nullptr) < 0) {
        fail(errno, "mount", path);
        break;
      }
      pinned.push_back(path);
    }
    // Our unreaped child: the pid cannot be anyone else's, so kill cannot fail.
    if (kill((pid_t)pid, SIGKILL) < 0) abort();
    int st;
    while (waitpid((pid_t)pid, &st, 0) < 0 && errno == EINTR) {
    }
  }
  // A half-made set is undone (the pin files are the caller's to remove).
  if (c->err) {
    for (const std::string& path : pinned) {
      if (umount2(path.c_str(), MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT) fail(errno, "umount2", path);
    }
  }
  CloseQuietly(p[0]);
  CloseQuietly(joinFd);
  if (uv_async_send(&c->async) != 0) abort();
}

void SettleNsPin(Napi::Env env, NsPinJob* c) {
  if (c->err == 0) {
    napi_resolve_deferred(env, c->deferred, env.Undefined());
  } else {
    napi_reject_deferred(env, c->deferred, ErrnoError(env, c->err, c->what.c_str(), c->where).Value());
  }
}

// The proc ns file name of a namespace type.
bool NsFileFlag(const std::string& t, int* flag) { return NsRank(t, flag) >= 0; }

Napi::Value NsPin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  napi_deferred d;
  napi_value promise;
  if (napi_create_promise(env, &d, &promise) != napi_ok) return env.Undefined();
  auto reject = [&](const std::string& msg) {
    napi_reject_deferred(env, d, Napi::TypeError::New(env, "nsPin: " + msg).Value());
    return Napi::Value(env, promise);
  };
  if (info.Length() < 1 || !info[0].IsObject()) return reject("opts must be an object");
  Napi::Object o = info[0].As<Napi::Object>();
  auto* c = new NsPinJob();
  std::unique_ptr<NsPinJob> owner(c);
  Napi::Value user = o.Get("user");
  if (user.IsObject()) {
    Napi::Object u = user.As<Napi::Object>();
    if (!u.Get("uidMap").IsString() || !u.Get("gidMap").IsString()) return reject("user must be {uidMap, gidMap}");
    c->newUser = true;
    c->uidMap = u.Get("uidMap").As<Napi::String>().Utf8Value();
    c->gidMap = u.Get("gidMap").As<Napi::String>().Utf8Value();
    if (c->uidMap.empty() || c->gidMap.empty()) return reject("uidMap and gidMap must not be empty");
  } else if (!user.IsUndefined() && !user.IsNull()) {
    return reject("user must be {uidMap, gidMap}");
  }
  Napi::Value join = o.Get("joinUser");
  if (join.IsString()) c->joinUser = join.As<Napi::String>().Utf8Value();
  else if (!join.IsUndefined() && !join.IsNull()) return reject("joinUser must be a path");
  if (c->newUser && !c->joinUser.empty()) return reject("user and joinUser exclude each other");
  Napi::Value un = o.Get("unshare");
  if (!un.IsUndefined() && !un.IsNull()) {
    std::vector<std::string> types;
    if (!GetStringArray(env, un, "unshare", types)) {
      Napi::Error e = env.GetAndClearPendingException();
      napi_reject_deferred(env, d, e.Value());
      return Napi::Value(env, promise);
    }
    for (auto& t : types) {
      int flag;
      if (!NsFileFlag(t, &flag) || flag == CLONE_NEWUSER || flag == CLONE_NEWPID) return reject("cannot unshare " + t);
      c->unshareFlags |= flag;
    }
  }
  Napi::Value pins = o.Get("pins");
  if (!pins.IsArray()) return reject("pins must be an array of {type, path}");
  Napi::Array pa = pins.As<Napi::Array>();
  for (uint32_t i = 0; i < pa.Length(); i++) {
    Napi::Value pv = pa.Get(i);
    if (!pv.IsObject()) return reject("pins must be an array of {type, path}");
    Napi::Object po = pv.As<Napi::Object>();
    if (!po.Get("type").IsString() || !po.Get("path").IsString()) return reject("pins must be an array of {type, path}");
    std::string type = po.Get("type").As<Napi::String>().Utf8Value();
    int flag;
    if (!NsFileFlag(type, &flag)) return reject("unknown namespace type: " + type);
    c->pins.emplace_back(type, po.Get("path").As<Napi::String>().Utf8Value());
  }
  owner.release();
  return StartOwnThread(env, d, promise, c, "nsPin", OwnThreadDone<NsPinJob, SettleNsPin>, NsPinThread);
}

// ---------------------------------------------------------------------------
// idmappedTree: a detached copy of the mount at `path` (open_tree(OPEN_TREE_CLONE), recursive or
// not) idmapped with the user namespace at `userns` (mount_setattr(MOUNT_ATTR_IDMAP)): what the
// owner of a file is on disk shows through the namespace's mapping (root's files are the
// namespace root's). Attached later with move_mount (the launch helper's tree-fd and bind ops,
// or moveMount here). Its own thread, as path lookups may block on a slow filesystem.

struct IdmapTreeJob {
  std::string path, userns;
  bool recursive = true;
  int fd = -1;
  int err = 0;
  const char* what = "";
  std::string where;
  napi_env env = nullptr;
  napi_deferred deferred = nullptr;
  uv_async_t async;
  pthread_t tid{};
};

void IdmapTreeThread(IdmapTreeJob* c) {
  sigset_t all;
  sigfillset(&all);
  int e = pthread_sigmask(SIG_SETMASK, &all, nullptr);
  int ns = -1;
  const unsigned rec = c->recursive ? AT_RECURSIVE : 0;
  if (e != 0) {
    c->err = e;
    c->what = "pthread_sigmask";
  } else if ((ns = open(c->userns.c_str(), O_RDONLY | O_CLOEXEC)) < 0) {
    c->err = errno;
    c->what = "open";
    c->where = c->userns;
  } else {
    long t = syscall(SYS_open_tree, AT_FDCWD, c->path.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | rec);
    if (t < 0) {
      c->err = errno;
      c->what = "open_tree";
      c->where = c->path;
    } else {
      struct mount_attr attr;
      memset(&attr, 0, sizeof attr);
      attr.attr_set = MOUNT_ATTR_IDMAP;
      attr.userns_fd = (uint64_t)ns;
      if (syscall(SYS_mount_setattr, (int)t, "", AT_EMPTY_PATH | rec, &attr, sizeof attr) < 0) {
        c->err = errno;
        c->what = "mount_setattr";
        c->where = c->path;
        CloseQuietly((int)t);
      } else {
        c->fd = (int)t;
      }
    }
  }
  CloseQuietly(ns);
  if (uv_async_send(&c->async) != 0) abort();
}

void SettleIdmapTree(Napi::Env env, IdmapTreeJob* c) {
  if (c->err == 0) {
    napi_resolve_deferred(env, c->deferred, Napi::Number::New(env, c->fd));
  } else {
    napi_reject_deferred(env, c->deferred, ErrnoError(env, c->err, c->what, c->where).Value());
  }
}

Napi::Value IdmappedTree(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  napi_deferred d;
  napi_value promise;
  if (napi_create_promise(env, &d, &promise) != napi_ok) return env.Undefined();
  std::string path, userns;
  if (!ArgString(info, 0, "path", &path) || !ArgString(info, 1, "userns", &userns)) {
    Napi::Error e = env.GetAndClearPendingException();
    napi_reject_deferred(env, d, e.Value());
    return Napi::Value(env, promise);
  }
  auto* c = new IdmapTreeJob();
  c->path = path;
  c->userns = userns;
  c->recursive = !(info.Length() > 2 && info[2].IsBoolean() && !info[2].As<Napi::Boolean>().Value());
  return StartOwnThread(env, d, promise, c, "idmappedTree", OwnThreadDone<IdmapTreeJob, SettleIdmapTree>, IdmapTreeThread);
}

// moveMount(fd, target): attach a detached mount tree (an idmappedTree) on `target`.
Napi::Value MoveMount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double fd;
  std::string target;
  if (!ArgNumber(info, 0, "fd", &fd) || !ArgString(info, 1, "target", &target)) return env.Undefined();
  if (syscall(SYS_move_mount, (int)fd, "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) < 0) {
    ThrowErrno(env, errno, "move_mount", target);
  }
  return env.Undefined();
}

// ---------------------------------------------------------------------------
// sd_notify: one datagram to the service manager's notification socket.
//
// sdNotify(socket, message): `socket` is $NOTIFY_SOCKET, a path or, with a leading '@', a name
// in the abstract namespace. Runs on the Node thread: it never blocks (MSG_DONTWAIT: with the
// manager's queue full the message is dropped with EAGAIN, as libsystemd's sd_notify would drop
// it) and a peer that went away is an error, not SIGPIPE (MSG_NOSIGNAL). The kernel attaches our
// pid, which NotifyAccess=main compares with the unit's main pid.
Napi::Value SdNotify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string socketPath, message;
  if (!ArgString(info, 0, "socket", &socketPath) || !ArgString(info, 1, "message", &message)) return env.Undefined();
  if (message.empty()) {
    Napi::TypeError::New(env, "message must not be empty").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  sockaddr_un addr;
  memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  socklen_t len;
  if (socketPath.size() >= 2 && socketPath[0] == '@') {
    // Abstract: sun_path starts with NUL and the name is exactly the bytes after it (no terminator).
    if (socketPath.size() > sizeof(addr.sun_path)) {
      ThrowErrno(env, ENAMETOOLONG, "sendto", socketPath);
      return env.Undefined();
    }
    memcpy(addr.sun_path + 1, socketPath.data() + 1, socketPath.size() - 1);
    len = offsetof(sockaddr_un, sun_path) + socketPath.size();
  } else if (socketPath.size() >= 2 && socketPath[0] == '/') {
    if (socketPath.size() >= sizeof(addr.sun_path) || socketPath.find('\0') != std::string::npos) {
      ThrowErrno(env, ENAMETOOLONG, "sendto", socketPath);
      return env.Undefined();
    }
    memcpy(addr.sun_path, socketPath.data(), socketPath.size());
    len = offsetof(sockaddr_un, sun_path) + socketPath.size() + 1;
  } else {
    Napi::TypeError::New(env, "socket must be an absolute path or an abstract name (@name)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ThrowErrno(env, errno, "socket");
    return env.Undefined();
  }
  ssize_t n;
  do {
    n = sendto(fd, message.data(), message.size(), MSG_DONTWAIT | MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr), len);
  } while (n < 0 && errno == EINTR);
  int sendErr = n < 0 ? errno : ((size_t)n != message.size() ? EMSGSIZE : 0);
  // Nothing is buffered on our side of a datagram socket: close cannot lose data, but report it.
  int closeErr = close(fd) < 0 && errno != EINTR ? errno : 0;
  if (sendErr) {
    ThrowErrno(env, sendErr, "sendto", socketPath);
    return env.Undefined();
  }
  if (closeErr) ThrowErrno(env, closeErr, "close", socketPath);
  return env.Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  napi_async_init(env, Napi::Object::New(env), Napi::String::New(env, "cri-mesos:spawn"), &data->ctx);
  env.SetInstanceData<AddonData>(data);
  exports.Set("spawnHeld", Napi::Function::New(env, SpawnHeld, "spawnHeld"));
  exports.Set("release", Napi::Function::New(env, Release, "release"));
  exports.Set("abort", Napi::Function::New(env, Abort, "abort"));
  exports.Set("waitPidfd", Napi::Function::New(env, WaitPidfd, "waitPidfd"));
  exports.Set("pidfdOpen", Napi::Function::New(env, PidfdOpen, "pidfdOpen"));
  exports.Set("pidfdSendSignal", Napi::Function::New(env, PidfdSendSignal, "pidfdSendSignal"));
  exports.Set("close", Napi::Function::New(env, Close, "close"));
  exports.Set("pipe", Napi::Function::New(env, Pipe, "pipe"));
  exports.Set("mkfifo", Napi::Function::New(env, Mkfifo, "mkfifo"));
  exports.Set("seccompCompile", Napi::Function::New(env, SeccompCompile, "seccompCompile"));
  exports.Set("mount", Napi::Function::New(env, Mount, "mount"));
  exports.Set("umount2", Napi::Function::New(env, Umount2, "umount2"));
  exports.Set("umount2Async", Napi::Function::New(env, Umount2Async, "umount2Async"));
  exports.Set("mknod", Napi::Function::New(env, Mknod, "mknod"));
  exports.Set("attachDeviceFilter", Napi::Function::New(env, AttachDeviceFilter, "attachDeviceFilter"));
  exports.Set("lsetxattr", Napi::Function::New(env, Lsetxattr, "lsetxattr"));
  exports.Set("lgetxattr", Napi::Function::New(env, Lgetxattr, "lgetxattr"));
  exports.Set("statfs", Napi::Function::New(env, Statfs, "statfs"));
  exports.Set("hasMountSetattr", Napi::Function::New(env, HasMountSetattr, "hasMountSetattr"));
  exports.Set("socketPair", Napi::Function::New(env, SocketPair, "socketPair"));
  exports.Set("recvFd", Napi::Function::New(env, RecvFd, "recvFd"));
  exports.Set("setWinsize", Napi::Function::New(env, SetWinsize, "setWinsize"));
  exports.Set("ttyEofChar", Napi::Function::New(env, TtyEofChar, "ttyEofChar"));
  exports.Set("dup", Napi::Function::New(env, Dup, "dup"));
  exports.Set("setNonblocking", Napi::Function::New(env, SetNonblocking, "setNonblocking"));
  exports.Set("connectInNetns", Napi::Function::New(env, ConnectInNetns, "connectInNetns"));
  exports.Set("pinNetns", Napi::Function::New(env, PinNetns, "pinNetns"));
  exports.Set("nsPin", Napi::Function::New(env, NsPin, "nsPin"));
  exports.Set("idmappedTree", Napi::Function::New(env, IdmappedTree, "idmappedTree"));
  exports.Set("moveMount", Napi::Function::New(env, MoveMount, "moveMount"));
  exports.Set("sdNotify", Napi::Function::New(env, SdNotify, "sdNotify"));
  return exports;
}

}  // namespace

NODE_API_MODULE(cri_mesos_native, Init)
