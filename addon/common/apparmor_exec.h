// AppArmor for the addon's spawned processes and cri-mesos-launch's containers: the profile the
// next execve of the calling thread runs under, as runc applies a container's profile. The
// message ("exec <profile>") is built before any fork or clone; SetExecProfile() only opens,
// writes and closes, so it is async-signal-safe and may run in a child after clone.
// TypeScript decides whether a profile is applied at all (src/security/apparmor.ts: only where
// /sys/module/apparmor/parameters/enabled is Y).
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <string>

namespace apparmorf {

inline std::string ExecMessage(const std::string& profile) { return "exec " + profile; }

// Writes `msg` (ExecMessage) in one write to the thread's AppArmor exec attribute: the per-LSM
// file of Linux 5.8+, else the shared attr/exec. 0, or -1 with errno and *stage naming the step.
inline int SetExecProfile(const std::string& msg, const char** stage) {
  *stage = "open /proc/thread-self/attr/apparmor/exec";
  int fd = open("/proc/thread-self/attr/apparmor/exec", O_WRONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    *stage = "open /proc/thread-self/attr/exec";
    fd = open("/proc/thread-self/attr/exec", O_WRONLY | O_CLOEXEC);
  }
  if (fd < 0) return -1;
  *stage = "write the AppArmor exec attribute";
  ssize_t w;
  do {
    w = write(fd, msg.data(), msg.size());
  } while (w < 0 && errno == EINTR);
  // The kernel takes the attribute in one write: a short one is refused, as an error would be.
  if (w != (ssize_t)msg.size()) {
    int err = w < 0 ? errno : EIO;
    close(fd);  // the write already failed; its error is the one reported
    errno = err;
    return -1;
  }
  *stage = "close the AppArmor exec attribute";
  if (close(fd) < 0) return -1;
  return 0;
}

}  // namespace apparmorf
