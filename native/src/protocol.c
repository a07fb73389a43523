#include "protocol.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

static int write_all(int fd, const void *buf, size_t n) {
  const char *p = buf;
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == ENOTSOCK) w = write(fd, p, n);
    if (w < 0) { if (errno == EINTR) continue; return -1; }
    p += w; n -= (size_t)w;
  }
  return 0;
}

static int read_all(int fd, void *buf, size_t n) {
  char *p = buf;
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, p + got, n - got);
    if (r < 0) { if (errno == EINTR) continue; return -1; }
    if (r == 0) return got == 0 ? 0 : (errno = EPROTO, -1);
    got += (size_t)r;
  }
  return 1;
}

int proto_send(int fd, const char *json, size_t len) {
  unsigned char hdr[4] = { (unsigned char)len, (unsigned char)(len >> 8), (unsigned char)(len >> 16), (unsigned char)(len >> 24) };
  char *frame = malloc(len + 4);
  if (!frame) return -1;
  memcpy(frame, hdr, 4);
  memcpy(frame + 4, json, len);
  int rc = write_all(fd, frame, len + 4);
  free(frame);
  return rc;
}

int proto_send_fd(int fd, const char *json, size_t len, int passfd) {
  unsigned char hdr[4] = { (unsigned char)len, (unsigned char)(len >> 8), (unsigned char)(len >> 16), (unsigned char)(len >> 24) };
  struct iovec iov[2] = { { hdr, 4 }, { (void *)json, len } };
  union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } ctl;
  memset(&ctl, 0, sizeof ctl);
  struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf };
  struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cm), &passfd, sizeof(int));
  ssize_t w;
  do w = sendmsg(fd, &mh, MSG_NOSIGNAL); while (w < 0 && errno == EINTR);
  if (w < 0) return -1;
  if ((size_t)w < len + 4) { /* rest without the fd */
    size_t done = (size_t)w;
    if (done < 4) { if (write_all(fd, hdr + done, 4 - done) < 0) return -1; done = 4; }
    return write_all(fd, json + (done - 4), len - (done - 4));
  }
  return 0;
}

/* Reads the 4-byte header with recvmsg so an attached fd is not lost. */
static int read_header(int fd, unsigned char hdr[4], int *passed) {
  union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } ctl;
  struct iovec iov = { hdr, 4 };
  struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf };
  ssize_t r;
  do r = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC); while (r < 0 && errno == EINTR);
  if (r < 0 && errno == ENOTSOCK) return read_all(fd, hdr, 4);
  if (r < 0) return -1;
  if (r == 0) return 0;
  for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
    if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
      int got;
      memcpy(&got, CMSG_DATA(cm), sizeof got);
      if (passed) *passed = got; else close(got);
    }
  if (r < 4 && read_all(fd, hdr + r, 4 - (size_t)r) <= 0) { errno = EPROTO; return -1; }
  return 1;
}

int proto_recv(int fd, char **out, size_t *len) { return proto_recv_fd(fd, out, len, NULL); }

int proto_recv_fd(int fd, char **out, size_t *len, int *passed) {
  unsigned char hdr[4];
  if (passed) *passed = -1;
  int rc = read_header(fd, hdr, passed);
  if (rc <= 0) return rc;
  uint32_t n = (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 24;
  if (n == 0 || n > PROTO_MAX_MESSAGE) { errno = EPROTO; return -1; }
  char *buf = malloc(n + 1);
  if (!buf) return -1;
  rc = read_all(fd, buf, n);
  if (rc <= 0) { free(buf); if (rc == 0) errno = EPROTO; return -1; }
  buf[n] = 0;
  *out = buf;
  *len = n;
  return 1;
}

int proto_send_error(int fd, const char *step, int errnum, const char *message) {
  struct sbuf b = {0};
  sb_puts(&b, "{\"kind\":\"error\",\"step\":");
  sb_json_str(&b, step);
  sb_printf(&b, ",\"errno\":%d,\"message\":", errnum);
  sb_json_str(&b, message);
  sb_puts(&b, "}");
  int rc = proto_send(fd, b.buf, b.len);
  sb_free(&b);
  return rc;
}
