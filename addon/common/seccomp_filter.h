// Seccomp for the addon's spawned processes and cri-mesos-launch's containers, as runc does it:
// Compile() runs libseccomp (which allocates: not async-signal-safe) BEFORE any fork or clone and
// leaves a plain BPF program in memory; Install() is one raw syscall, safe in a child after clone.
// Only the addon compiles (and caches: addon.cc CompiledSeccomp); the launch helper gets the
// program in its plan and only installs it, so it does not link libseccomp.
//
// The filter comes from TypeScript already resolved (src/security/seccomp/compile.ts writes it),
// one item per line, fields separated by single spaces:
//   default <action>
//   arch <libseccomp arch name>          (x86_64, x86, x32, aarch64, arm, ...; "native" too)
//   rule <action> <syscall> [<index>:<op>:<value>:<valueTwo>]...
// <action>: allow | errno:<n> | kill_thread | kill_process | trap | log | trace:<n>
// <op>: ne lt le eq ge gt masked_eq. A syscall this libseccomp or architecture does not know is
// skipped (as runc does). Conditions on the same argument twice become separate rules.
#pragma once

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace seccompf {

inline std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t end = s.find(sep, start);
    out.push_back(s.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return out;
}

inline bool ParseU64(const std::string& s, uint64_t* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  unsigned long long v = strtoull(s.c_str(), &end, 10);
  if (errno != 0 || *end != '\0') return false;
  *out = v;
  return true;
}

inline bool ParseAction(const std::string& s, uint32_t* out) {
  size_t colon = s.find(':');
  std::string name = s.substr(0, colon);
  uint64_t n = 0;
  if (colon != std::string::npos && (!ParseU64(s.substr(colon + 1), &n) || n > 0xffff)) return false;
  if (name == "allow") *out = SCMP_ACT_ALLOW;
  else if (name == "errno") *out = SCMP_ACT_ERRNO((uint16_t)n);
  else if (name == "kill_thread") *out = SCMP_ACT_KILL_THREAD;
  else if (name == "kill_process") *out = SCMP_ACT_KILL_PROCESS;
  else if (name == "trap") *out = SCMP_ACT_TRAP;
  else if (name == "log") *out = SCMP_ACT_LOG;
  else if (name == "trace") *out = SCMP_ACT_TRACE((uint16_t)n);
  else return false;
  return true;
}

inline bool ParseOp(const std::string& s, scmp_compare* out) {
  static const struct { const char* name; scmp_compare op; } kOps[] = {
      {"ne", SCMP_CMP_NE}, {"lt", SCMP_CMP_LT}, {"le", SCMP_CMP_LE},         {"eq", SCMP_CMP_EQ},
      {"ge", SCMP_CMP_GE}, {"gt", SCMP_CMP_GT}, {"masked_eq", SCMP_CMP_MASKED_EQ},
  };
  for (const auto& o : kOps) {
    if (s == o.name) {
      *out = o.op;
      return true;
    }
  }
  return false;
}

// libseccomp's errors are negative errnos.
inline std::string Err(const std::string& what, int rc) { return what + ": " + strerror(rc < 0 ? -rc : rc); }

// The rules of a line, added to ctx. "" or an error message.
inline std::string AddRule(scmp_filter_ctx ctx, const std::vector<std::string>& f) {
  if (f.size() < 3) return "seccomp: rule needs an action and a syscall";
  uint32_t action;
  if (!ParseAction(f[1], &action)) return "seccomp: bad action " + f[1];
  int nr = seccomp_syscall_resolve_name(f[2].c_str());
  if (nr == __NR_SCMP_ERROR) return "";  // unknown here: skipped, as runc does
  std::vector<scmp_arg_cmp> args;
  bool repeated = false;
  for (size_t i = 3; i < f.size(); i++) {
    std::vector<std::string> a = Split(f[i], ':');
    uint64_t index, value, valueTwo;
    scmp_compare op;
    if (a.size() != 4 || !ParseU64(a[0], &index) || index > 5 || !ParseOp(a[1], &op) || !ParseU64(a[2], &value) ||
        !ParseU64(a[3], &valueTwo))
      return "seccomp: bad argument condition " + f[i] + " for " + f[2];
    scmp_arg_cmp c;
    memset(&c, 0, sizeof c);
    c.arg = (unsigned)index;
    c.op = op;
    c.datum_a = value;
    c.datum_b = valueTwo;
    for (const auto& prev : args) repeated = repeated || prev.arg == c.arg;
    args.push_back(c);
  }
  if (!repeated) {
    int rc = seccomp_rule_add_array(ctx, action, nr, (unsigned)args.size(), args.empty() ? nullptr : args.data());
    return rc < 0 ? Err("seccomp: add rule for " + f[2], rc) : "";
  }
  for (const auto& c : args) {
    int rc = seccomp_rule_add_array(ctx, action, nr, 1, &c);
    if (rc < 0) return Err("seccomp: add rule for " + f[2], rc);
  }
  return "";
}

inline std::string Build(scmp_filter_ctx ctx, const std::vector<std::string>& lines) {
  for (const auto& line : lines) {
    if (line.empty()) continue;
    std::vector<std::string> f = Split(line, ' ');
    if (f[0] == "default") continue;
    if (f[0] == "arch") {
      if (f.size() != 2) return "seccomp: bad arch line";
      uint32_t arch = f[1] == "native" ? seccomp_arch_native() : seccomp_arch_resolve_name(f[1].c_str());
      if (arch == 0) return "seccomp: unknown architecture " + f[1];
      int rc = seccomp_arch_add(ctx, arch);
      if (rc < 0 && rc != -EEXIST) return Err("seccomp: add architecture " + f[1], rc);
    } else if (f[0] == "rule") {
      std::string err = AddRule(ctx, f);
      if (!err.empty()) return err;
    } else {
      return "seccomp: unknown line " + f[0];
    }
  }
  return "";
}

// Reads the BPF program libseccomp exports into a memfd.
inline std::string Export(scmp_filter_ctx ctx, std::vector<sock_filter>* out) {
  int fd = memfd_create("seccomp-bpf", MFD_CLOEXEC);
  if (fd < 0) return Err("seccomp: memfd_create", errno);
  std::string err;
  int rc = seccomp_export_bpf(ctx, fd);
  if (rc < 0) err = Err("seccomp: export the BPF program", rc);
  off_t size = err.empty() ? lseek(fd, 0, SEEK_END) : -1;
  if (err.empty() && size < 0) err = Err("seccomp: lseek", errno);
  if (err.empty() && (size == 0 || size % sizeof(sock_filter) != 0 || size / sizeof(sock_filter) > BPF_MAXINSNS))
    err = "seccomp: the BPF program has a bad size (" + std::to_string((long long)size) + " bytes)";
  if (err.empty()) {
    out->resize((size_t)size / sizeof(sock_filter));
    char* p = reinterpret_cast<char*>(out->data());
    size_t got = 0;
    while (got < (size_t)size) {
      ssize_t n = pread(fd, p + got, (size_t)size - got, (off_t)got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        err = n < 0 ? Err("seccomp: read the BPF program", errno) : "seccomp: short BPF program";
        break;
      }
      got += (size_t)n;
    }
  }
  if (close(fd) < 0 && err.empty()) err = Err("seccomp: close memfd", errno);
  return err;
}

// The filter text to a BPF program. "" or an error message.
inline std::string Compile(const std::string& spec, std::vector<sock_filter>* out) {
  std::vector<std::string> lines = Split(spec, '\n');
  uint32_t defAction = 0;
  bool haveDefault = false;
  for (const auto& line : lines) {
    std::vector<std::string> f = Split(line, ' ');
    if (f[0] == "default") {
      if (f.size() != 2 || !ParseAction(f[1], &defAction)) return "seccomp: bad default action";
      haveDefault = true;
    }
  }
  if (!haveDefault) return "seccomp: no default action";
  scmp_filter_ctx ctx = seccomp_init(defAction);
  if (!ctx) return "seccomp: seccomp_init failed";
  std::string err;
  // We never let libseccomp load the filter, but say so: no_new_privs is the plan's business.
  int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
  if (rc < 0) err = Err("seccomp: clear SCMP_FLTATR_CTL_NNP", rc);
  if (err.empty()) err = Build(ctx, lines);
  if (err.empty()) err = Export(ctx, out);
  seccomp_release(ctx);
  return err;
}

// Installs a compiled program in the calling thread. Async-signal-safe. 0 or -1 with errno.
// Without no_new_privs this needs CAP_SYS_ADMIN: callers install before dropping capabilities.
inline int Install(const std::vector<sock_filter>& prog) {
  struct sock_fprog fprog;
  fprog.len = (unsigned short)prog.size();
  fprog.filter = const_cast<sock_filter*>(prog.data());
  return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog);
}

}  // namespace seccompf
