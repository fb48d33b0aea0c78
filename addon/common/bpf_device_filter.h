// The cgroup2 device controller, as runc's devicefilter does it: a BPF_PROG_TYPE_CGROUP_DEVICE
// program loaded with bpf(BPF_PROG_LOAD) and attached to a cgroup directory with
// BPF_PROG_ATTACH(BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI). The program itself is built in
// TypeScript (src/cgroups/devices.ts); this only loads and attaches it.
//
// Replacing: the new program is attached first, then the ones attached to the cgroup before it
// are detached. In between both run and both must allow, so access only ever narrows.
// A program stays attached (the cgroup holds it) after our fds are closed, until the cgroup goes.
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace bpfdev {

inline long Bpf(int cmd, union bpf_attr* attr) {
  return syscall(SYS_bpf, cmd, attr, sizeof(*attr));
}

inline void CloseChecked(int fd) {
  // Nothing written through these fds (programs, a directory): close cannot lose data.
  if (fd >= 0 && close(fd) < 0) return;
}

// bpf() program fds are close-on-exec by the kernel's own choice (anon inodes with O_CLOEXEC).
inline int LoadProgram(const struct bpf_insn* insns, uint32_t count, std::string* log) {
  static const char kLicense[] = "Apache";
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  attr.insns = (uint64_t)(uintptr_t)insns;
  attr.insn_cnt = count;
  attr.license = (uint64_t)(uintptr_t)kLicense;
  int fd = (int)Bpf(BPF_PROG_LOAD, &attr);
  if (fd >= 0 || (errno != EACCES && errno != EINVAL)) return fd;
  // Rejected by the verifier: load again with its log, to say why.
  int err = errno;
  std::vector<char> buf(64 * 1024);
  attr.log_level = 1;
  attr.log_buf = (uint64_t)(uintptr_t)buf.data();
  attr.log_size = (uint32_t)buf.size();
  fd = (int)Bpf(BPF_PROG_LOAD, &attr);
  if (fd >= 0) return fd;  // accepted this time: fine
  buf.back() = 0;
  *log = buf.data();
  errno = err;
  return -1;
}

// Ids of the device programs attached to the cgroup `dirFd` itself (not inherited ones).
inline bool QueryPrograms(int dirFd, std::vector<uint32_t>* ids) {
  ids->assign(16, 0);
  while (true) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.query.target_fd = (uint32_t)dirFd;
    attr.query.attach_type = BPF_CGROUP_DEVICE;
    attr.query.prog_ids = (uint64_t)(uintptr_t)ids->data();
    attr.query.prog_cnt = (uint32_t)ids->size();
    if (Bpf(BPF_PROG_QUERY, &attr) == 0) {
      ids->resize(attr.query.prog_cnt);
      return true;
    }
    // More attached than we had room for: prog_cnt says how many.
    if (errno != ENOSPC || attr.query.prog_cnt <= ids->size()) return false;
    ids->assign(attr.query.prog_cnt, 0);
  }
}

// Loads `insns` and attaches the program to the cgroup directory `dir`, replacing the device
// programs attached there before. Returns 0, or an errno with *what naming the step that failed
// (and *log holding the verifier's words when the load was refused).
inline int AttachDeviceFilter(const char* dir, const struct bpf_insn* insns, uint32_t count, std::string* what,
                              std::string* log) {
  int progFd = LoadProgram(insns, count, log);
  if (progFd < 0) {
    *what = "bpf(BPF_PROG_LOAD)";
    return errno;
  }
  int dirFd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirFd < 0) {
    int err = errno;
    *what = "open";
    CloseChecked(progFd);
    return err;
  }
  int err = 0;
  std::vector<uint32_t> old;
  if (!QueryPrograms(dirFd, &old)) {
    err = errno;
    *what = "bpf(BPF_PROG_QUERY)";
  }
  if (err == 0) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.target_fd = (uint32_t)dirFd;
    attr.attach_bpf_fd = (uint32_t)progFd;
    attr.attach_type = BPF_CGROUP_DEVICE;
    attr.attach_flags = BPF_F_ALLOW_MULTI;
    if (Bpf(BPF_PROG_ATTACH, &attr) < 0) {
      err = errno;
      *what = "bpf(BPF_PROG_ATTACH)";
    }
  }
  for (size_t i = 0; err == 0 && i < old.size(); i++) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.prog_id = old[i];
    int oldFd = (int)Bpf(BPF_PROG_GET_FD_BY_ID, &attr);
    if (oldFd < 0) {
      if (errno == ENOENT) continue;  // detached meanwhile
      err = errno;
      *what = "bpf(BPF_PROG_GET_FD_BY_ID)";
      break;
    }
    memset(&attr, 0, sizeof attr);
    attr.target_fd = (uint32_t)dirFd;
    attr.attach_bpf_fd = (uint32_t)oldFd;
    attr.attach_type = BPF_CGROUP_DEVICE;
    if (Bpf(BPF_PROG_DETACH, &attr) < 0 && errno != ENOENT) {
      err = errno;
      *what = "bpf(BPF_PROG_DETACH)";
    }
    CloseChecked(oldFd);
  }
  CloseChecked(dirFd);
  CloseChecked(progFd);
  return err;
}

}  // namespace bpfdev
