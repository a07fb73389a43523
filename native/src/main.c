/*
 * tsbuild-helper: the part of tsbuild's OCI runtime that must run in a single-threaded process.
 * Started by runtime/helper/spawn.ts with a unix socket on fd 3 (protocol.h). The process
 * becomes the container's monitor: it clones the container's first process (init.c), relays
 * its setup messages, forwards signals to it and reports its exit status.
 */
#include "helper.h"
#include "protocol.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int fail(struct herr *err, const char *step, int errnum, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->message, sizeof err->message, fmt, ap);
  va_end(ap);
  err->step = step;
  err->errnum = errnum;
  return -1;
}

const char *signal_name(int sig) {
  static char buf[32];
  const char *abbrev = sigabbrev_np(sig);
  if (!abbrev) { snprintf(buf, sizeof buf, "SIG%d", sig); return buf; }
  snprintf(buf, sizeof buf, "SIG%s", abbrev);
  return buf;
}

static void report(struct herr *err) { proto_send_error(PROTO_FD, err->step, err->errnum, err->message); }

#define SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

/* CVE-2019-5736: a container process must never be able to write the binary that enters it.
 * Run from a sealed memfd copy of ourselves; /proc/self/exe then names that copy. */
static int ensure_sealed_self(char **argv, struct herr *err) {
  int self = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  if (self < 0) return fail(err, "reexec", errno, "opening /proc/self/exe");
  int seals = fcntl(self, F_GET_SEALS);
  if (seals >= 0 && (seals & SEALS) == SEALS) { close(self); return 0; }
  int mfd = memfd_create("tsbuild-helper", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (mfd < 0) { close(self); return fail(err, "reexec", errno, "memfd_create"); }
  struct stat st;
  if (fstat(self, &st) < 0) { close(self); return fail(err, "reexec", errno, "fstat /proc/self/exe"); }
  for (off_t left = st.st_size; left > 0; ) {
    ssize_t n = sendfile(mfd, self, NULL, (size_t)left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) { close(self); return fail(err, "reexec", n < 0 ? errno : EIO, "copying the helper into a memfd"); }
    left -= n;
  }
  close(self);
  if (fcntl(mfd, F_ADD_SEALS, SEALS) < 0) return fail(err, "reexec", errno, "sealing the memfd");
  fexecve(mfd, argv, environ);
  return fail(err, "reexec", errno, "re-executing from the sealed memfd");
}

static int load_config(struct ctx *c, struct herr *err) {
  char *raw = NULL;
  size_t len = 0;
  int rc = proto_recv(PROTO_FD, &raw, &len);
  if (rc <= 0) return fail(err, "config", rc == 0 ? EPIPE : errno, "reading the config message");
  char perr[256];
  c->msg = json_parse(raw, len, perr, sizeof perr);
  free(raw);
  if (!c->msg || strcmp(json_str(c->msg, "kind", ""), "config")) return fail(err, "config", EPROTO, "bad config message: %s", c->msg ? "kind is not config" : perr);
  c->bundle = json_str(c->msg, "bundle", NULL);
  c->exec_mode = json_bool(c->msg, "exec", false);
  c->wait_start = json_bool(c->msg, "waitStart", false);
  c->init = json_bool(c->msg, "init", false);
  c->exec_fifo = json_str(c->msg, "execFifo", NULL);
  c->exit_file = json_str(c->msg, "exitFile", NULL);
  c->preserve_fds = (int)json_int(c->msg, "preserveFds", 0);
  c->console_socket = json_str(c->msg, "consoleSocket", NULL);
  if (!c->bundle) return fail(err, "config", EINVAL, "the config message has no bundle");
  c->fifo_fd = -1;
  c->ns_fds[0] = -1;
  if (c->exec_fifo) {
    if (mkfifo(c->exec_fifo, 0622) < 0 && errno != EEXIST) return fail(err, "wait-start", errno, "creating the exec fifo %s", c->exec_fifo);
    c->fifo_fd = open(c->exec_fifo, O_PATH | O_CLOEXEC);
    if (c->fifo_fd < 0) return fail(err, "wait-start", errno, "opening the exec fifo %s", c->exec_fifo);
  }
  if (chdir(c->bundle) < 0) return fail(err, "config", errno, "entering the bundle %s", c->bundle);
  const char *path = json_str(c->msg, "configPath", NULL);
  if (path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail(err, "config", errno, "opening %s", path);
    struct sbuf b = {0};
    char chunk[65536];
    ssize_t n;
    while ((n = read(fd, chunk, sizeof chunk)) > 0) {
      chunk[n] = 0;
      if (memchr(chunk, 0, (size_t)n)) { close(fd); sb_free(&b); return fail(err, "config", EINVAL, "%s contains a NUL byte", path); }
      sb_puts(&b, chunk);
      if (b.len > PROTO_MAX_MESSAGE) { close(fd); sb_free(&b); return fail(err, "config", EFBIG, "%s is too large", path); }
    }
    close(fd);
    c->spec_owned = json_parse(b.buf ? b.buf : "", b.len, perr, sizeof perr);
    sb_free(&b);
    if (!c->spec_owned) return fail(err, "config", EINVAL, "parsing %s: %s", path, perr);
    c->spec = c->spec_owned;
  } else c->spec = json_get(c->msg, "config");
  if (!c->spec || c->spec->type != JSON_OBJECT) return fail(err, "config", EINVAL, "the runtime spec is not a JSON object");
  struct json *process = json_get(c->spec, "process");
  if (!process) return fail(err, "config", EINVAL, "the runtime spec has no process");
  if (!json_arr(process, "args") || json_arr(process, "args")->len == 0) return fail(err, "config", EINVAL, "process.args is empty");
  /* invalid capability names fail create, not the process after start (runtime-spec: an error
   * for any value that cannot be mapped to a kernel interface) */
  static const char *const CAP_SETS[] = { "bounding", "effective", "inheritable", "permitted", "ambient" };
  for (size_t i = 0; i < sizeof CAP_SETS / sizeof CAP_SETS[0]; i++) {
    uint64_t ignored;
    if (caps_from_spec(json_get(process, "capabilities"), CAP_SETS[i], &ignored, err)) return -1;
  }

  // === namespaces: clone flags, and the pid namespace to join before clone
  struct json *nss = json_arr(json_get(c->spec, "linux"), "namespaces");
  bool has_mnt = false;
  for (size_t i = 0; nss && i < nss->len; i++) {
    const char *type = json_str(nss->items[i], "type", "");
    const char *p = json_str(nss->items[i], "path", NULL);
    int flag = !strcmp(type, "pid") ? CLONE_NEWPID : !strcmp(type, "network") ? CLONE_NEWNET : !strcmp(type, "mount") ? CLONE_NEWNS
             : !strcmp(type, "ipc") ? CLONE_NEWIPC : !strcmp(type, "uts") ? CLONE_NEWUTS : !strcmp(type, "user") ? CLONE_NEWUSER
             : !strcmp(type, "cgroup") ? CLONE_NEWCGROUP : 0;
    if (!flag) return fail(err, "config", EINVAL, "unsupported namespace type %s", type);
    if (flag == CLONE_NEWNS) has_mnt = true;
    if (!p) { c->clone_flags |= flag; continue; }
    if (flag != CLONE_NEWPID) {
      /* opened here, on the host: after joining a mount namespace the paths would not resolve */
      size_t k = 0;
      while (c->ns_fds[k] >= 0) k++;
      if (k >= 7) return fail(err, "namespace", EINVAL, "too many namespaces to join");
      c->ns_fds[k] = open(p, O_RDONLY | O_CLOEXEC);
      if (c->ns_fds[k] < 0) return fail(err, "namespace", errno, "opening the %s namespace %s", type, p);
      c->ns_types[k] = flag;
      c->ns_fds[k + 1] = -1;
      continue;
    }
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail(err, "namespace", errno, "opening the pid namespace %s", p);
    if (setns(fd, CLONE_NEWPID) < 0) { int e = errno; close(fd); return fail(err, "namespace", e, "joining the pid namespace %s", p); }
    close(fd);
  }
  if (!has_mnt) return fail(err, "config", EINVAL, c->exec_mode ? "exec needs the container's mount namespace" : "linux.namespaces must include mount");
  if (!c->exec_mode) {
    const char *root = json_str(json_get(c->spec, "root"), "path", NULL);
    if (!root) return fail(err, "config", EINVAL, "root.path is missing");
    c->rootfs = realpath(root, NULL);
    if (!c->rootfs) return fail(err, "rootfs", errno, "resolving root.path %s", root);
  }
  if (c->fifo_fd >= 0 && (c->clone_flags & CLONE_NEWUSER)) {
    /* the container's root must be able to open the fifo for writing (runc chowns it too) */
    uid_t uid = 0;
    gid_t gid = 0;
    struct json *um = json_arr(json_get(c->spec, "linux"), "uidMappings"), *gm = json_arr(json_get(c->spec, "linux"), "gidMappings");
    for (size_t i = 0; um && i < um->len; i++) if (json_uint(um->items[i], "containerID", 1) == 0) uid = (uid_t)json_uint(um->items[i], "hostID", 0);
    for (size_t i = 0; gm && i < gm->len; i++) if (json_uint(gm->items[i], "containerID", 1) == 0) gid = (gid_t)json_uint(gm->items[i], "hostID", 0);
    if (chown(c->exec_fifo, uid, gid) < 0) return fail(err, "wait-start", errno, "handing the exec fifo to the container's root");
  }
  // === cgroup.procs files the child joins, opened now on the host
  struct json *procs = json_arr(c->msg, "cgroupProcs");
  size_t n = 0;
  for (size_t i = 0; procs && i < procs->len && n < 31; i++) {
    const char *p = procs->items[i]->type == JSON_STRING ? procs->items[i]->string : "";
    int fd = open(p, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return fail(err, "cgroup", errno, "opening %s", p);
    c->cgroup_fds[n++] = fd;
  }
  c->cgroup_fds[n] = -1;
  return 0;
}

static void write_exit_file(const char *path, int code, int sig) {
  char tmp[PATH_MAX], body[128];
  if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) return;
  int n = sig ? snprintf(body, sizeof body, "{\"exitCode\":%d,\"signal\":\"%s\"}\n", code, signal_name(sig))
              : snprintf(body, sizeof body, "{\"exitCode\":%d}\n", code);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  /* no fsync: rename makes the record appear whole to readers, and a container does not outlive a
   * crash of the host, so durability would only slow every exit (an fsync waits for the journal) */
  if (write(fd, body, (size_t)n) == n) { close(fd); rename(tmp, path); return; }
  close(fd);
  unlink(tmp);
}

/* runc --console-socket: the pty master goes to whoever listens on `path` (SCM_RIGHTS, with the
 * pty's name as the data, like runc's utils.SendFd); the monitor then keeps no copy of it. */
static int send_console(const char *path, int master) {
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -1;
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  if (strlen(path) >= sizeof sa.sun_path) { close(s); errno = ENAMETOOLONG; return -1; }
  strcpy(sa.sun_path, path);
  if (connect(s, (struct sockaddr *)&sa, sizeof sa) < 0) { int e = errno; close(s); errno = e; return -1; }
  char name[128] = "/dev/ptmx";
  if (ptsname_r(master, name, sizeof name) != 0) strcpy(name, "/dev/ptmx");
  struct iovec iov = { name, strlen(name) };
  union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } ctl;
  memset(&ctl, 0, sizeof ctl);
  struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf };
  struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cm), &master, sizeof(int));
  ssize_t w;
  do w = sendmsg(s, &mh, MSG_NOSIGNAL); while (w < 0 && errno == EINTR);
  int e = errno;
  close(s);
  errno = e;
  return w < 0 ? -1 : 0;
}

static const int FORWARDED[] = { SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT, SIGALRM };

/* The monitor: relays child messages, answers control messages, forwards signals, reports exit. */
/* Copies what is readable on `from` to `to` (blocking writes). Returns 0 at EOF/EIO. */
static int relay(int from, int to) {
  char buf[16384];
  ssize_t n = read(from, buf, sizeof buf);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return 1;
  if (n <= 0) return 0;
  for (ssize_t off = 0; off < n; ) {
    ssize_t w = write(to, buf + off, (size_t)(n - off));
    if (w < 0 && errno == EAGAIN) { struct pollfd p = { to, POLLOUT, 0 }; poll(&p, 1, 100); continue; }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return 1; /* nobody reads our side: drop the output, keep the container going */
    off += w;
  }
  return 1;
}

static int monitor(struct ctx *c, pid_t pid, int sync_fd, int sigfd) {
  struct sbuf b = {0};
  sb_printf(&b, "{\"kind\":\"pid\",\"pid\":%d}", pid);
  proto_send(PROTO_FD, b.buf, b.len);
  sb_free(&b);
  bool ctl_open = true, had_error = false, stdin_open = true;
  int status = 0, master = -1;
  for (;;) {
    struct pollfd pfd[5] = {
      { sigfd, POLLIN, 0 }, { sync_fd, POLLIN, 0 }, { ctl_open ? PROTO_FD : -1, POLLIN, 0 },
      { master, POLLIN, 0 }, { master >= 0 && stdin_open ? 0 : -1, POLLIN, 0 },
    };
    if (poll(pfd, 5, -1) < 0) { if (errno == EINTR) continue; break; }
    /* the terminal: container output to our stdout, our stdin to the container */
    if (pfd[3].revents && !relay(master, 1)) { close(master); master = -1; }
    if (master >= 0 && pfd[4].revents && !relay(0, master)) stdin_open = false;
    if (pfd[1].revents) {
      char *raw = NULL;
      size_t len = 0;
      int passed = -1;
      int rc = proto_recv_fd(sync_fd, &raw, &len, &passed);
      if (rc > 0 && passed >= 0 && strstr(raw, "\"kind\":\"terminal\"") && c->console_socket) {
        if (send_console(c->console_socket, passed) < 0) {
          char m[PATH_MAX + 128];
          snprintf(m, sizeof m, "sending the pty master to the console socket %s", c->console_socket);
          proto_send_error(PROTO_FD, "terminal", errno, m);
          had_error = true;
          kill(pid, SIGKILL);
        }
        close(passed);
        free(raw);
        continue;
      }
      if (rc > 0 && passed >= 0 && strstr(raw, "\"kind\":\"terminal\"")) {
        if (master >= 0) close(master);
        master = passed;
        fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
        struct winsize ws;
        if (ioctl(0, TIOCGWINSZ, &ws) == 0) ioctl(master, TIOCSWINSZ, &ws);
        free(raw);
        continue;
      }
      if (passed >= 0) close(passed);
      if (rc <= 0) {
        if (!had_error) { static const char m[] = "{\"kind\":\"started\"}"; proto_send(PROTO_FD, m, sizeof m - 1); }
        close(sync_fd);
        sync_fd = -1;
      } else {
        if (strstr(raw, "\"kind\":\"mapping-request\"")) {
          sb_printf(&b, "{\"kind\":\"mapping-request\",\"pid\":%d}", pid);
          proto_send(PROTO_FD, b.buf, b.len);
          sb_free(&b);
        } else if (strstr(raw, "\"kind\":\"hooks-request\"")) {
          sb_printf(&b, "{\"kind\":\"hooks-request\",\"pid\":%d}", pid);
          proto_send(PROTO_FD, b.buf, b.len);
          sb_free(&b);
        } else {
          if (strstr(raw, "\"kind\":\"error\"")) had_error = true;
          proto_send(PROTO_FD, raw, len);
        }
        free(raw);
      }
    }
    if (pfd[2].revents) {
      char *raw = NULL;
      size_t len = 0;
      int rc = proto_recv(PROTO_FD, &raw, &len);
      if (rc <= 0) ctl_open = false; /* the runtime went away (e.g. `create` returned): keep monitoring */
      else {
        char perr[128];
        struct json *m = json_parse(raw, len, perr, sizeof perr);
        const char *kind = json_str(m, "kind", "");
        char byte = !strcmp(kind, "mapping-written") ? 'M' : !strcmp(kind, "start") ? 'S' : !strcmp(kind, "hooks-done") ? 'H' : 0;
        if (byte && sync_fd >= 0 && write(sync_fd, &byte, 1) < 0) { /* the child died; SIGCHLD follows */ }
        /* the state JSON for the container-side hooks follows the byte, framed */
        if (byte == 'H' && sync_fd >= 0) proto_send(sync_fd, raw, len);
        json_free(m);
        free(raw);
      }
    }
    if (pfd[0].revents) {
      struct signalfd_siginfo si;
      if (read(sigfd, &si, sizeof si) != sizeof si) continue;
      if (si.ssi_signo == SIGWINCH && master >= 0) {
        /* a new size for the pty; the kernel signals the container's foreground group */
        struct winsize ws;
        if (ioctl(0, TIOCGWINSZ, &ws) == 0) ioctl(master, TIOCSWINSZ, &ws);
        continue;
      }
      if (si.ssi_signo != SIGCHLD) { kill(pid, (int)si.ssi_signo); continue; }
      pid_t r = waitpid(pid, &status, WNOHANG);
      if (r != pid) continue;
      /* the rest of the terminal output */
      while (master >= 0) {
        struct pollfd mp = { master, POLLIN, 0 };
        if (poll(&mp, 1, 50) <= 0 || !relay(master, 1)) break;
      }
      /* relay what the child said before dying (an error precedes its exit) */
      while (sync_fd >= 0) {
        struct pollfd sp = { sync_fd, POLLIN, 0 };
        if (poll(&sp, 1, 200) <= 0) break;
        char *raw = NULL;
        size_t len = 0;
        if (proto_recv(sync_fd, &raw, &len) <= 0) break;
        if (strstr(raw, "\"kind\":\"error\"")) had_error = true;
        if (!strstr(raw, "mapping-request")) proto_send(PROTO_FD, raw, len);
        free(raw);
      }
      int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
      if (c->exit_file) write_exit_file(c->exit_file, code, sig);
      sb_printf(&b, "{\"kind\":\"exit\",\"exitCode\":%d", code);
      if (sig) { sb_puts(&b, ",\"signal\":"); sb_json_str(&b, signal_name(sig)); }
      sb_puts(&b, "}");
      proto_send(PROTO_FD, b.buf, b.len);
      sb_free(&b);
      return code;
    }
  }
  return 255;
}

int main(int argc, char **argv) {
  (void)argc;
  struct herr err = { "config", 0, "" };
  struct ctx c;
  memset(&c, 0, sizeof c);
  signal(SIGPIPE, SIG_IGN);
  if (fcntl(PROTO_FD, F_GETFD) < 0) { static const char m[] = "tsbuild-helper: must be started by tsbuild with a socket on fd 3\n"; if (write(2, m, sizeof m - 1)) {} return 2; }
  fcntl(PROTO_FD, F_SETFD, 0);   /* fd 3 must survive the memfd re-exec */
  if (getenv("TSBUILD_HELPER_NO_REEXEC") == NULL && ensure_sealed_self(argv, &err)) { report(&err); return 1; }
  if (load_config(&c, &err)) { report(&err); return 1; }

  int sp[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) { fail(&err, "clone", errno, "socketpair"); report(&err); return 1; }
  sigset_t mask, old;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  for (size_t i = 0; i < sizeof FORWARDED / sizeof FORWARDED[0]; i++) sigaddset(&mask, FORWARDED[i]);
  sigprocmask(SIG_BLOCK, &mask, &old);
  int sigfd = signalfd(-1, &mask, SFD_CLOEXEC);
  if (sigfd < 0) { fail(&err, "clone", errno, "signalfd"); report(&err); return 1; }

  /* the cgroup namespace is unshared by the child after joining its cgroups (init.c) */
  int flags = c.clone_flags & ~CLONE_NEWCGROUP;
  pid_t pid = (pid_t)syscall(SYS_clone, (unsigned long)flags | SIGCHLD, NULL, NULL, NULL, NULL);
  if (pid < 0) { fail(&err, "clone", errno, "clone (flags %#x)", flags); report(&err); return 1; }
  if (pid == 0) {
    /* the container starts with default dispositions and an empty mask, whatever ours were
     * (a caller in the background may have SIGINT ignored; ignored signals survive execve) */
    for (int s = 1; s < NSIG; s++) if (s != SIGKILL && s != SIGSTOP) signal(s, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    (void)old;
    close(sp[0]);
    close(sigfd);
    c.sync_fd = sp[1];
    container_init_setup(&c, &err);
    proto_send_error(c.sync_fd, err.step, err.errnum, err.message);
    _exit(127);
  }
  close(sp[1]);
  for (int i = 0; c.cgroup_fds[i] >= 0; i++) close(c.cgroup_fds[i]);
  for (int i = 0; c.ns_fds[i] >= 0; i++) close(c.ns_fds[i]);
  if (c.fifo_fd >= 0) close(c.fifo_fd);
  int code = monitor(&c, pid, sp[0], sigfd);
  json_free(c.spec_owned);
  json_free(c.msg);
  free(c.rootfs);
  return code;
}
