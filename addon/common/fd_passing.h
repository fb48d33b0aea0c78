// Passing one fd over a unix socket (SCM_RIGHTS), shared by the addon and cri-mesos-launch:
// a spawned child sends a pty master it opened inside the container to whoever holds it.
// Both functions are async-signal-safe (they may run in a child after clone).
#pragma once

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

namespace fdpass {

// A message of one data byte with room for one fd; not copyable (it points into itself).
struct OneFdMessage {
  char byte = 'f';
  struct iovec iov;
  struct msghdr msg;
  // Last: cmsghdr ends in a flexible array member.
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  OneFdMessage() {
    iov = {&byte, 1};
    memset(&u, 0, sizeof u);
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = u.buf;
    msg.msg_controllen = sizeof u.buf;
  }
  OneFdMessage(const OneFdMessage&) = delete;
  OneFdMessage& operator=(const OneFdMessage&) = delete;
};

// Sends fd with one byte of data. False with errno on failure.
inline bool SendFd(int sock, int fd) {
  OneFdMessage m;
  struct msghdr& msg = m.msg;
  struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof(int));
  ssize_t w;
  do {
    w = sendmsg(sock, &msg, MSG_NOSIGNAL);
  } while (w < 0 && errno == EINTR);
  return w == 1;
}

// Receives one fd sent by SendFd, O_CLOEXEC. flags: 0 or MSG_DONTWAIT (then EAGAIN when none
// is queued). -1 with errno on failure; EPROTO when the message carries no fd.
inline int RecvFd(int sock, int flags) {
  OneFdMessage m;
  struct msghdr& msg = m.msg;
  ssize_t r;
  do {
    r = recvmsg(sock, &msg, flags | MSG_CMSG_CLOEXEC);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return -1;
  struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
  if (r == 0 || !c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || (msg.msg_flags & MSG_CTRUNC)) {
    errno = EPROTO;
    return -1;
  }
  int fd;
  memcpy(&fd, CMSG_DATA(c), sizeof fd);
  return fd;
}

}  // namespace fdpass
