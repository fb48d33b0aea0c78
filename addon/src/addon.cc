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
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

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

long Clone3(CloneArgs* args) { return syscall(SYS_clone3, args, sizeof(CloneArgs)); }

std::string ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return name ? name : ("E" + std::to_string(err));
}

// Throws a Node-style error: "ENOENT: No such file or directory, mount '/x'"
// with .code/.errno/.syscall/.path so TS can test it.
void ThrowErrno(Napi::Env env, int err, const char* syscallName, const std::string& path = "") {
  std::string msg = ErrnoName(err) + ": " + strerror(err) + ", " + syscallName;
  if (!path.empty()) msg += " '" + path + "'";
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, ErrnoName(err)));
  e.Set("errno", Napi::Number::New(env, -err));
  e.Set("syscall", Napi::String::New(env, syscallName));
  if (!path.empty()) e.Set("path", Napi::String::New(env, path));
  e.ThrowAsJavaScriptException();
}

void CloseFd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

// ---------------------------------------------------------------------------
// spawnHeld / release / abort

struct NsJoin {
  int rank;
  int nstype;
  int fd;
  std::string type;
  std::string path;
};

enum class HeldState { Held, Releasing, Done };

struct Spawn {
  // Marshalled before clone3; the children read their copy-on-write copies.
  std::string file;
  std::vector<std::string> argvStore, envStore, candStore;
  std::vector<char*> argv, envp;
  std::vector<const char*> candidates;
  std::string cwd;
  bool hasCwd = false;
  std::vector<NsJoin> joins;
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
  int capLast = 40;
  bool noNewPrivs = false;
  bool doSetsid = true;
  int devnull = -1;
  int syncR = -1, syncW = -1, repR = -1, repW = -1, errR = -1, errW = -1;
  int base = 0;  // first fd number above every fd we know of
  pid_t parentPid = 0;

  pid_t pid = -1;  // the intermediate
  HeldState state = HeldState::Held;

  void CloseAll() {
    for (auto& j : joins) CloseFd(j.fd);
    CloseFd(devnull);
    CloseFd(syncR);
    CloseFd(syncW);
    CloseFd(repR);
    CloseFd(repW);
    CloseFd(errR);
    CloseFd(errW);
  }
};

// --- code run in the cloned children: async-signal-safe only ---------------

size_t StrLen(const char* s) {
  size_t n = 0;
  while (s[n]) n++;
  return n;
}

[[noreturn]] void ChildFail(int fd, const char* stage, int err) {
  char buf[96];
  size_t n = 0;
  for (const char* p = stage; *p && n < 60; p++) buf[n++] = *p;
  buf[n++] = ':';
  char digits[16];
  int d = 0;
  unsigned v = (unsigned)err;
  do {
    digits[d++] = (char)('0' + v % 10);
    v /= 10;
  } while (v && d < 15);
  while (d) buf[n++] = digits[--d];
  ssize_t w;
  do {
    w = write(fd, buf, n);
  } while (w < 0 && errno == EINTR);
  _exit(127);
}

[[noreturn]] void FinalChild(Spawn* s) {
  int errfd = s->errW;
  if (s->doSetsid && setsid() < 0) ChildFail(errfd, "setsid", errno);

  // Move every wanted fd far above all known fds first, so that moving them
  // down to 0,1,2,3... never clobbers a source that is still needed.
  const int n = 3 + (int)s->extraFds.size();
  for (int k = 0; k < n; k++) {
    int src = k < 3 ? (s->stdio[k] < 0 ? s->devnull : s->stdio[k]) : s->extraFds[k - 3];
    if (dup3(src, s->base + k, O_CLOEXEC) < 0) ChildFail(errfd, "dup-fd", errno);
  }
  const int highErr = s->base + n;
  if (dup3(errfd, highErr, O_CLOEXEC) < 0) ChildFail(errfd, "dup-fd", errno);
  errfd = highErr;
  for (int k = 0; k < n; k++) {
    if (dup2(s->base + k, k) < 0) ChildFail(errfd, "dup-fd", errno);
  }
  if (highErr - 1 >= n) syscall(SYS_close_range, (unsigned)n, (unsigned)(highErr - 1), 0u);
  syscall(SYS_close_range, (unsigned)(highErr + 1), ~0u, 0u);

  if (s->hasCwd && chdir(s->cwd.c_str()) < 0) ChildFail(errfd, "chdir", errno);
  // Raw syscalls: glibc's set*id would try to broadcast to the parent's threads.
  if (s->hasGroups) {
    if (syscall(SYS_setgroups, s->groups.size(), s->groups.data()) < 0) ChildFail(errfd, "setgroups", errno);
  } else if (s->hasUid || s->hasGid) {
    if (syscall(SYS_setgroups, 0, nullptr) < 0) ChildFail(errfd, "setgroups", errno);
  }
  if (s->hasGid && syscall(SYS_setresgid, s->gid, s->gid, s->gid) < 0) ChildFail(errfd, "setgid", errno);
  // The bounding set needs CAP_SETPCAP, so it is cut before setuid drops it.
  if (s->hasCaps) {
    for (int c = 0; c <= s->capLast; c++) {
      if (c < 64 && ((s->caps >> c) & 1)) continue;
      if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL) ChildFail(errfd, "capbset-drop", errno);
    }
  }
  if (s->hasUid && syscall(SYS_setresuid, s->uid, s->uid, s->uid) < 0) ChildFail(errfd, "setuid", errno);
  // A non-root uid already lost every capability in setuid; root keeps exactly the mask.
  if (s->hasCaps && (!s->hasUid || s->uid == 0)) {
    struct __user_cap_header_struct hdr;
    struct __user_cap_data_struct data[2];
    memset(&hdr, 0, sizeof hdr);
    memset(data, 0, sizeof data);
    hdr.version = _LINUX_CAPABILITY_VERSION_3;
    for (int i = 0; i < 2; i++) {
      uint32_t part = (uint32_t)(s->caps >> (32 * i));
      data[i].effective = data[i].permitted = data[i].inheritable = part;
    }
    if (syscall(SYS_capset, &hdr, data) < 0) ChildFail(errfd, "capset", errno);
  }
  if (s->noNewPrivs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) ChildFail(errfd, "no-new-privs", errno);

  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);

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
  ChildFail(errfd, "exec", lastErr);
}

[[noreturn]] void Intermediate(Spawn* s) {
  // Node's handlers must never run here; reset them while all signals are blocked.
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; sig++) {
    if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, nullptr);
  }
  // Die with the daemon while held; the final child does not inherit this.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != s->parentPid) _exit(127);

  close(s->syncW);
  close(s->repR);
  close(s->errR);

  char b;
  ssize_t r;
  do {
    r = read(s->syncR, &b, 1);
  } while (r < 0 && errno == EINTR);
  if (r != 1) _exit(126);  // aborted or the daemon went away
  close(s->syncR);

  for (const NsJoin& j : s->joins) {
    if (setns(j.fd, j.nstype) < 0) {
      // stage carries the namespace type: "setns-net"
      char stage[24] = "setns-";
      size_t n = StrLen(stage);
      for (size_t i = 0; i < j.type.size() && n < sizeof stage - 1; i++) stage[n++] = j.type[i];
      stage[n] = 0;
      ChildFail(s->errW, stage, errno);
    }
    close(j.fd);
  }

  CloneArgs args;
  memset(&args, 0, sizeof args);
  // CLONE_PARENT: the final child is the daemon's child, and lands in a
  // joined PID namespace (setns(pid) only affects children).
  args.flags = s->cloneFlags | CLONE_PARENT;
  args.exit_signal = 0;
  long pid = Clone3(&args);
  if (pid < 0) ChildFail(s->errW, "clone", errno);
  if (pid == 0) FinalChild(s);
  pid_t p = (pid_t)pid;
  ssize_t w;
  do {
    w = write(s->repW, &p, sizeof p);
  } while (w < 0 && errno == EINTR);
  _exit(0);
}

// --- daemon side -------------------------------------------------------------

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

void FinalizeSpawn(Napi::Env, Spawn* s) {
  // Garbage collected without release()/abort(): do not leave a held process.
  if (s->state == HeldState::Held && s->pid > 0) {
    kill(s->pid, SIGKILL);
    while (waitpid(s->pid, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  s->CloseAll();
  delete s;
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

Napi::Value SpawnHeld(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) {
    Napi::TypeError::New(env, "spawnHeld(opts): opts must be an object").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object o = info[0].As<Napi::Object>();
  auto s = new Spawn();
  auto bail = [&]() -> Napi::Value {
    s->CloseAll();
    delete s;
    return env.Undefined();
  };

  if (!o.Get("file").IsString()) {
    Napi::TypeError::New(env, "file must be a string").ThrowAsJavaScriptException();
    return bail();
  }
  s->file = o.Get("file").As<Napi::String>().Utf8Value();
  if (s->file.empty()) {
    Napi::TypeError::New(env, "file must not be empty").ThrowAsJavaScriptException();
    return bail();
  }
  if (!GetStringArray(env, o.Get("argv"), "argv", s->argvStore)) return bail();
  if (!GetStringArray(env, o.Get("env"), "env", s->envStore)) return bail();
  for (auto& a : s->argvStore) s->argv.push_back(const_cast<char*>(a.c_str()));
  s->argv.push_back(nullptr);
  for (auto& e : s->envStore) s->envp.push_back(const_cast<char*>(e.c_str()));
  s->envp.push_back(nullptr);

  std::vector<std::string> cloneNs;
  if (!GetStringArray(env, o.Get("cloneNamespaces"), "cloneNamespaces", cloneNs)) return bail();
  for (auto& t : cloneNs) {
    int flag;
    if (NsRank(t, &flag) < 0) {
      Napi::TypeError::New(env, "unknown namespace type: " + t).ThrowAsJavaScriptException();
      return bail();
    }
    s->cloneFlags |= (uint64_t)flag;
  }

  Napi::Value joins = o.Get("joinNamespaces");
  if (!joins.IsArray()) {
    Napi::TypeError::New(env, "joinNamespaces must be an array").ThrowAsJavaScriptException();
    return bail();
  }
  Napi::Array ja = joins.As<Napi::Array>();
  for (uint32_t i = 0; i < ja.Length(); i++) {
    Napi::Value jv = ja.Get(i);
    if (!jv.IsObject()) {
      Napi::TypeError::New(env, "joinNamespaces entries must be {type, path}").ThrowAsJavaScriptException();
      return bail();
    }
    Napi::Object jo = jv.As<Napi::Object>();
    if (!jo.Get("type").IsString() || !jo.Get("path").IsString()) {
      Napi::TypeError::New(env, "joinNamespaces entries must be {type, path}").ThrowAsJavaScriptException();
      return bail();
    }
    NsJoin j;
    j.type = jo.Get("type").As<Napi::String>().Utf8Value();
    j.path = jo.Get("path").As<Napi::String>().Utf8Value();
    j.rank = NsRank(j.type, &j.nstype);
    j.fd = -1;
    if (j.rank < 0) {
      Napi::TypeError::New(env, "unknown namespace type: " + j.type).ThrowAsJavaScriptException();
      return bail();
    }
    s->joins.push_back(j);
  }
  std::stable_sort(s->joins.begin(), s->joins.end(), [](const NsJoin& a, const NsJoin& b) { return a.rank < b.rank; });

  Napi::Value stdio = o.Get("stdio");
  if (!stdio.IsArray() || stdio.As<Napi::Array>().Length() != 3) {
    Napi::TypeError::New(env, "stdio must be [in, out, err]").ThrowAsJavaScriptException();
    return bail();
  }
  for (uint32_t i = 0; i < 3; i++) {
    Napi::Value v = stdio.As<Napi::Array>().Get(i);
    if (!v.IsNumber()) {
      Napi::TypeError::New(env, "stdio entries must be numbers").ThrowAsJavaScriptException();
      return bail();
    }
    s->stdio[i] = v.As<Napi::Number>().Int32Value();
  }
  Napi::Value extra = o.Get("extraFds");
  if (!extra.IsUndefined() && !extra.IsNull()) {
    if (!extra.IsArray()) {
      Napi::TypeError::New(env, "extraFds must be an array of fds").ThrowAsJavaScriptException();
      return bail();
    }
    Napi::Array ea = extra.As<Napi::Array>();
    for (uint32_t i = 0; i < ea.Length(); i++) {
      Napi::Value v = ea.Get(i);
      if (!v.IsNumber() || v.As<Napi::Number>().Int32Value() < 0) {
        Napi::TypeError::New(env, "extraFds entries must be fds").ThrowAsJavaScriptException();
        return bail();
      }
      s->extraFds.push_back(v.As<Napi::Number>().Int32Value());
    }
  }

  bool has;
  int64_t num;
  if (!OptInt(env, o, "cgroupFd", &has, &num)) return bail();
  if (has) s->cgroupFd = (int)num;
  if (!OptInt(env, o, "uid", &has, &num)) return bail();
  s->hasUid = has;
  s->uid = (uid_t)num;
  if (!OptInt(env, o, "gid", &has, &num)) return bail();
  s->hasGid = has;
  s->gid = (gid_t)num;
  Napi::Value groups = o.Get("groups");
  if (!groups.IsUndefined() && !groups.IsNull()) {
    if (!groups.IsArray()) {
      Napi::TypeError::New(env, "groups must be an array of gids").ThrowAsJavaScriptException();
      return bail();
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
  Napi::Value capsV = o.Get("capabilities");
  if (capsV.IsString()) {
    std::string hex = capsV.As<Napi::String>().Utf8Value();
    char* end = nullptr;
    errno = 0;
    unsigned long long v = strtoull(hex.c_str(), &end, 16);
    if (hex.empty() || errno != 0 || *end != '\0') {
      Napi::TypeError::New(env, "capabilities must be a hex mask string").ThrowAsJavaScriptException();
      return bail();
    }
    s->hasCaps = true;
    s->caps = v;
    // Read here: the child may only make syscalls.
    int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      char buf[16] = {0};
      if (read(fd, buf, sizeof buf - 1) > 0) s->capLast = atoi(buf);
      close(fd);
    }
  }
  Napi::Value nnp = o.Get("noNewPrivs");
  if (nnp.IsBoolean()) s->noNewPrivs = nnp.As<Napi::Boolean>().Value();
  Napi::Value setsidV = o.Get("setsid");
  if (setsidV.IsBoolean()) s->doSetsid = setsidV.As<Napi::Boolean>().Value();

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
      return bail();
    }
  }
  s->devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (s->devnull < 0) {
    ThrowErrno(env, errno, "open", "/dev/null");
    return bail();
  }
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) {
    ThrowErrno(env, errno, "pipe2");
    return bail();
  }
  s->syncR = p[0];
  s->syncW = p[1];
  if (pipe2(p, O_CLOEXEC) < 0) {
    ThrowErrno(env, errno, "pipe2");
    return bail();
  }
  s->repR = p[0];
  s->repW = p[1];
  if (pipe2(p, O_CLOEXEC) < 0) {
    ThrowErrno(env, errno, "pipe2");
    return bail();
  }
  s->errR = p[0];
  s->errW = p[1];

  int maxFd = std::max({s->devnull, s->syncR, s->syncW, s->repR, s->repW, s->errR, s->errW, s->cgroupFd, s->stdio[0],
                        s->stdio[1], s->stdio[2]});
  for (int fd : s->extraFds) maxFd = std::max(maxFd, fd);
  for (auto& j : s->joins) maxFd = std::max(maxFd, j.fd);
  s->base = std::max(maxFd + 1, 10 + (int)s->extraFds.size());
  s->parentPid = getpid();

  CloneArgs args;
  memset(&args, 0, sizeof args);
  args.exit_signal = SIGCHLD;
  if (s->cgroupFd >= 0) {
    args.flags |= kCloneIntoCgroup;
    args.cgroup = (uint64_t)s->cgroupFd;
  }
  // Block every signal across the clone so no Node handler runs in the child
  // before it has reset the dispositions.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  long pid = Clone3(&args);
  if (pid == 0) Intermediate(s);
  int cloneErr = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) {
    ThrowErrno(env, cloneErr, "clone3");
    return bail();
  }
  s->pid = (pid_t)pid;
  // The child has its own copies of these.
  for (auto& j : s->joins) CloseFd(j.fd);
  CloseFd(s->devnull);
  CloseFd(s->syncR);
  CloseFd(s->repW);
  CloseFd(s->errW);

  Napi::Object held = Napi::Object::New(env);
  held.Set("pid", Napi::Number::New(env, s->pid));
  held.Set("handle", Napi::External<Spawn>::New(env, s, FinalizeSpawn));
  return held;
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

ssize_t ReadFull(int fd, void* buf, size_t len) {
  size_t got = 0;
  while (got < len) {
    ssize_t r = read(fd, (char*)buf + got, len - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    if (r == 0) break;
    got += (size_t)r;
  }
  return (ssize_t)got;
}

void Reap(pid_t pid, int* status) {
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (status) *status = st;
}

std::string DescribeStatus(int st) {
  if (WIFEXITED(st)) return "exit code " + std::to_string(WEXITSTATUS(st));
  if (WIFSIGNALED(st)) return std::string("signal ") + strsignal(WTERMSIG(st));
  return "status " + std::to_string(st);
}

class ReleaseWorker : public Napi::AsyncWorker {
 public:
  ReleaseWorker(Napi::Env env, Spawn* s, Napi::Value handle)
      : Napi::AsyncWorker(env, "cri-mesos:release"), s_(s), deferred_(Napi::Promise::Deferred::New(env)) {
    handleRef_ = Napi::Persistent(handle);
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    char b = 'x';
    ssize_t w;
    do {
      w = write(s_->syncW, &b, 1);
    } while (w < 0 && errno == EINTR);
    int writeErr = w == 1 ? 0 : errno;
    CloseFd(s_->syncW);

    pid_t fpid = -1;
    ssize_t r = ReadFull(s_->repR, &fpid, sizeof fpid);
    if (r != (ssize_t)sizeof fpid) fpid = -1;
    char errBuf[128];
    ssize_t en = ReadFull(s_->errR, errBuf, sizeof errBuf - 1);
    if (en < 0) en = 0;
    errBuf[en] = 0;
    int ist = 0;
    Reap(s_->pid, &ist);
    CloseFd(s_->repR);
    CloseFd(s_->errR);

    if (en > 0) {
      std::string text(errBuf);
      std::string stage = text;
      int err = 0;
      size_t colon = text.rfind(':');
      if (colon != std::string::npos) {
        stage = text.substr(0, colon);
        err = atoi(text.c_str() + colon + 1);
      }
      if (fpid > 0) Reap(fpid, nullptr);
      code_ = err ? ErrnoName(err) : "";
      stage_ = stage;
      std::string what = stage == "exec" ? "exec '" + s_->file + "'" : stage;
      if (stage == "chdir") what += " '" + s_->cwd + "'";
      SetError("spawn failed: " + what + ": " + (err ? strerror(err) : "unknown error"));
      return;
    }
    if (fpid <= 0) {
      stage_ = "intermediate";
      SetError(std::string("spawn failed: the held intermediate process ended (") + DescribeStatus(ist) + ")" +
               (writeErr ? std::string(" before release: ") + strerror(writeErr) : ""));
      return;
    }
    long fd = syscall(SYS_pidfd_open, fpid, 0);
    if (fd < 0) {
      int e = errno;
      kill(fpid, SIGKILL);
      Reap(fpid, nullptr);
      code_ = ErrnoName(e);
      stage_ = "pidfd_open";
      SetError(std::string("spawn failed: pidfd_open: ") + strerror(e));
      return;
    }
    pid_ = fpid;
    pidfd_ = (int)fd;
  }

  void OnOK() override {
    Napi::Env env = Env();
    s_->state = HeldState::Done;
    Napi::Object res = Napi::Object::New(env);
    res.Set("pid", Napi::Number::New(env, pid_));
    res.Set("pidfd", Napi::Number::New(env, pidfd_));
    deferred_.Resolve(res);
  }

  void OnError(const Napi::Error& e) override {
    Napi::Env env = Env();
    s_->state = HeldState::Done;
    Napi::Object obj = e.Value();
    if (!code_.empty()) obj.Set("code", Napi::String::New(env, code_));
    obj.Set("stage", Napi::String::New(env, stage_));
    deferred_.Reject(obj);
  }

 private:
  Spawn* s_;
  Napi::Promise::Deferred deferred_;
  Napi::Reference<Napi::Value> handleRef_;
  std::string code_, stage_;
  pid_t pid_ = -1;
  int pidfd_ = -1;
};

Napi::Value Release(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Value handle;
  Spawn* s = GetSpawn(info, &handle);
  if (!s) return env.Undefined();
  auto deferredErr = [&](const std::string& msg) {
    auto d = Napi::Promise::Deferred::New(env);
    d.Reject(Napi::Error::New(env, msg).Value());
    return d.Promise();
  };
  if (s->state != HeldState::Held) return deferredErr("release: this child was already released or aborted");
  s->state = HeldState::Releasing;
  auto* w = new ReleaseWorker(env, s, handle);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
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
    kill(s->pid, SIGKILL);
    Reap(s->pid, nullptr);
    s->state = HeldState::Done;
  }
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
    close(fd);
    Napi::Error::New(env, "waitPidfd: no event loop").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto* w = new PidfdWait(env);
  w->fd = fd;
  int rc = uv_poll_init(loop, &w->poll, fd);
  if (rc < 0) {
    close(fd);
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

Napi::Value Pipe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) {
    ThrowErrno(env, errno, "pipe2");
    return env.Undefined();
  }
  Napi::Array a = Napi::Array::New(env, 2);
  a.Set(0u, Napi::Number::New(env, p[0]));
  a.Set(1u, Napi::Number::New(env, p[1]));
  return a;
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

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("spawnHeld", Napi::Function::New(env, SpawnHeld, "spawnHeld"));
  exports.Set("release", Napi::Function::New(env, Release, "release"));
  exports.Set("abort", Napi::Function::New(env, Abort, "abort"));
  exports.Set("waitPidfd", Napi::Function::New(env, WaitPidfd, "waitPidfd"));
  exports.Set("pidfdOpen", Napi::Function::New(env, PidfdOpen, "pidfdOpen"));
  exports.Set("pidfdSendSignal", Napi::Function::New(env, PidfdSendSignal, "pidfdSendSignal"));
  exports.Set("close", Napi::Function::New(env, Close, "close"));
  exports.Set("pipe", Napi::Function::New(env, Pipe, "pipe"));
  exports.Set("mkfifo", Napi::Function::New(env, Mkfifo, "mkfifo"));
  exports.Set("mount", Napi::Function::New(env, Mount, "mount"));
  exports.Set("umount2", Napi::Function::New(env, Umount2, "umount2"));
  exports.Set("mknod", Napi::Function::New(env, Mknod, "mknod"));
  exports.Set("lsetxattr", Napi::Function::New(env, Lsetxattr, "lsetxattr"));
  exports.Set("lgetxattr", Napi::Function::New(env, Lgetxattr, "lgetxattr"));
  exports.Set("statfs", Napi::Function::New(env, Statfs, "statfs"));
  return exports;
}

}  // namespace

NODE_API_MODULE(cri_mesos_native, Init)
