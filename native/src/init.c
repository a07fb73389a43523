/* The child side: one ordered function, crun's container_init_setup order, seccomp last. */
#include "helper.h"
#include "protocol.h"
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

extern char **environ;

/* Blocks until the monitor answers with `want` (one byte). */
static int wait_byte(int fd, char want, const char *step, struct herr *err) {
  char b;
  for (;;) {
    ssize_t r = read(fd, &b, 1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return fail(err, step, errno, "waiting for the runtime");
    if (r == 0) return fail(err, step, EPIPE, "the runtime went away");
    if (b == want) return 0;
  }
}

/* Joins the namespaces given by path (opened by the monitor; pid was joined before clone). */
static int join_namespaces(struct ctx *c, bool user_pass, struct herr *err) {
  for (size_t i = 0; c->ns_fds[i] >= 0; i++) {
    if ((c->ns_types[i] == CLONE_NEWUSER) != user_pass) continue;
    if (setns(c->ns_fds[i], c->ns_types[i]) < 0) return fail(err, "namespace", errno, "joining namespace #%zu (clone flag %#x)", i, c->ns_types[i]);
    close(c->ns_fds[i]);
  }
  return 0;
}

static int set_rlimits(struct ctx *c, struct herr *err) {
  static const struct { const char *name; int res; } RL[] = {
    { "RLIMIT_AS", RLIMIT_AS }, { "RLIMIT_CORE", RLIMIT_CORE }, { "RLIMIT_CPU", RLIMIT_CPU },
    { "RLIMIT_DATA", RLIMIT_DATA }, { "RLIMIT_FSIZE", RLIMIT_FSIZE }, { "RLIMIT_LOCKS", RLIMIT_LOCKS },
    { "RLIMIT_MEMLOCK", RLIMIT_MEMLOCK }, { "RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE }, { "RLIMIT_NICE", RLIMIT_NICE },
    { "RLIMIT_NOFILE", RLIMIT_NOFILE }, { "RLIMIT_NPROC", RLIMIT_NPROC }, { "RLIMIT_RSS", RLIMIT_RSS },
    { "RLIMIT_RTPRIO", RLIMIT_RTPRIO }, { "RLIMIT_RTTIME", RLIMIT_RTTIME }, { "RLIMIT_SIGPENDING", RLIMIT_SIGPENDING },
    { "RLIMIT_STACK", RLIMIT_STACK },
  };
  struct json *rls = json_arr(json_get(c->spec, "process"), "rlimits");
  for (size_t i = 0; rls && i < rls->len; i++) {
    const char *type = json_str(rls->items[i], "type", "");
    int res = -1;
    for (size_t k = 0; k < sizeof RL / sizeof RL[0]; k++) if (!strcmp(RL[k].name, type)) res = RL[k].res;
    if (res < 0) return fail(err, "rlimit", EINVAL, "unknown rlimit %s", type);
    struct rlimit rl = { json_uint(rls->items[i], "soft", 0), json_uint(rls->items[i], "hard", 0) };
    if (setrlimit(res, &rl) < 0) return fail(err, "rlimit", errno, "setting %s to %llu:%llu", type, (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max);
  }
  return 0;
}

static int set_sysctls(struct ctx *c, struct herr *err) {
  struct json *s = json_get(json_get(c->spec, "linux"), "sysctl");
  for (size_t i = 0; s && s->type == JSON_OBJECT && i < s->len; i++) {
    char path[PATH_MAX] = "/proc/sys/";
    size_t off = strlen(path);
    for (const char *k = s->keys[i]; *k && off < sizeof path - 1; k++) path[off++] = *k == '.' ? '/' : *k;
    path[off] = 0;
    const char *v = s->items[i]->type == JSON_STRING ? s->items[i]->string : "";
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return fail(err, "sysctl", errno, "opening %s", path);
    ssize_t w = write(fd, v, strlen(v));
    int e = errno;
    close(fd);
    if (w < 0) return fail(err, "sysctl", e, "setting %s", s->keys[i]);
  }
  return 0;
}

static int set_user(struct ctx *c, bool userns, struct herr *err) {
  struct json *user = json_get(json_get(c->spec, "process"), "user");
  uid_t uid = (uid_t)json_uint(user, "uid", 0);
  gid_t gid = (gid_t)json_uint(user, "gid", 0);
  struct json *extra = json_arr(user, "additionalGids");
  gid_t groups[NGROUPS_MAX > 65536 ? 65536 : NGROUPS_MAX];
  size_t n = 0;
  for (size_t i = 0; extra && i < extra->len && n < sizeof groups / sizeof groups[0]; i++) groups[n++] = (gid_t)extra->items[i]->uinteger;
  /* setgroups is refused after "deny" was written to /proc/PID/setgroups (rootless). */
  if (setgroups(n, groups) < 0 && !(userns && errno == EPERM && n == 0)) return fail(err, "user", errno, "setgroups (%zu groups)", n);
  if (setresgid(gid, gid, gid) < 0) return fail(err, "user", errno, "setresgid(%u)", gid);
  if (setresuid(uid, uid, uid) < 0) return fail(err, "user", errno, "setresuid(%u)", uid);
  if (json_get(user, "umask")) umask((mode_t)json_uint(user, "umask", 022));
  else umask(022);
  return 0;
}

/* execvpe() searches the caller's PATH; a container searches the PATH of process.env. */
static int exec_process(struct json *args, struct json *env, struct herr *err) {
  if (!args || args->len == 0) return fail(err, "exec", EINVAL, "process.args is empty");
  char **argv = calloc(args->len + 1, sizeof *argv);
  char **envp = calloc((env ? env->len : 0) + 1, sizeof *envp);
  if (!argv || !envp) return fail(err, "exec", ENOMEM, "allocating argv");
  for (size_t i = 0; i < args->len; i++) argv[i] = args->items[i]->type == JSON_STRING ? args->items[i]->string : "";
  const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (size_t i = 0; env && i < env->len; i++) {
    envp[i] = env->items[i]->type == JSON_STRING ? env->items[i]->string : "";
    if (!strncmp(envp[i], "PATH=", 5)) path = envp[i] + 5;
  }
  const char *file = argv[0];
  if (strchr(file, '/')) {
    execve(file, argv, envp);
    return fail(err, "exec", errno, "executing %s", file);
  }
  int saved = ENOENT;
  char buf[PATH_MAX];
  for (const char *p = path;; ) {
    const char *colon = strchr(p, ':');
    size_t len = colon ? (size_t)(colon - p) : strlen(p);
    if (snprintf(buf, sizeof buf, "%.*s/%s", (int)len, len ? p : ".", file) < (int)sizeof buf) {
      execve(buf, argv, envp);
      if (errno == EACCES) saved = EACCES;
      else if (errno != ENOENT && errno != ENOTDIR && errno != ESTALE && errno != ELOOP) saved = errno;
    }
    if (!colon) break;
    p = colon + 1;
  }
  return fail(err, "exec", saved, "executable %s not found in $PATH", file);
}

static int wait_for_start(struct ctx *c, int fifo, struct herr *err) {
  if (fifo < 0) return wait_byte(c->sync_fd, 'S', "wait-start", err);
  char p[64];
  snprintf(p, sizeof p, "/proc/self/fd/%d", fifo);
  int fd = open(p, O_WRONLY | O_CLOEXEC); /* blocks until `start` opens the fifo for reading */
  if (fd < 0) return fail(err, "wait-start", errno, "opening the exec fifo");
  if (write(fd, "0", 1) != 1) { int e = errno; close(fd); return fail(err, "wait-start", e, "writing the exec fifo"); }
  close(fd);
  close(fifo);
  return 0;
}

/* process.terminal: a pty from the container's devpts becomes the controlling terminal and
 * stdio; the master goes to the monitor, which relays it to its own stdio. */
static int setup_terminal(struct ctx *c, struct herr *err) {
  struct json *process = json_get(c->spec, "process");
  if (!json_bool(process, "terminal", false)) return 0;
  int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) return fail(err, "terminal", errno, "opening /dev/ptmx (is devpts mounted on /dev/pts?)");
  char name[128];
  if (unlockpt(master) < 0 || ptsname_r(master, name, sizeof name) != 0) { int e = errno; close(master); return fail(err, "terminal", e, "unlocking the pty"); }
  struct json *cs = json_get(process, "consoleSize");
  if (cs) {
    struct winsize ws = { .ws_row = (unsigned short)json_uint(cs, "height", 24), .ws_col = (unsigned short)json_uint(cs, "width", 80) };
    ioctl(master, TIOCSWINSZ, &ws);
  }
  int slave = open(name, O_RDWR | O_NOCTTY);
  if (slave < 0) { int e = errno; close(master); return fail(err, "terminal", e, "opening %s", name); }
  if (ioctl(slave, TIOCSCTTY, 0) < 0) { int e = errno; close(master); close(slave); return fail(err, "terminal", e, "making %s the controlling terminal", name); }
  for (int fd = 0; fd < 3; fd++) if (dup2(slave, fd) < 0) { int e = errno; close(master); close(slave); return fail(err, "terminal", e, "dup2 of the pty"); }
  if (slave > 2) close(slave);
  static const char m[] = "{\"kind\":\"terminal\"}";
  int rc = proto_send_fd(c->sync_fd, m, sizeof m - 1, master);
  int e = errno;
  close(master);
  if (rc < 0) return fail(err, "terminal", e, "handing the pty to the monitor");
  return 0;
}

/* pid 1 of the container with --init: reaps every child, forwards signals to the command and
 * exits with its status (tini's job). */
static void reaper(pid_t main_pid) {
  sigset_t all;
  sigfillset(&all);
  syscall(SYS_close_range, 3, ~0U, 0);
  for (;;) {
    siginfo_t si;
    int sig = sigwaitinfo(&all, &si);
    if (sig < 0) continue;
    if (sig != SIGCHLD) { kill(main_pid, sig); continue; }
    int st;
    pid_t p;
    while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
      if (p != main_pid) continue;
      _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    }
  }
}

int container_init_setup(struct ctx *c, struct herr *err) {
  struct json *process = json_get(c->spec, "process");
  struct json *linux_ = json_get(c->spec, "linux");
  struct json *caps = json_get(process, "capabilities");
  bool userns = (c->clone_flags & CLONE_NEWUSER) != 0;
  bool nnp = json_bool(process, "noNewPrivileges", false);
  struct json *seccomp = json_get(linux_, "seccomp");
  int fifo = -1;

  if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) return fail(err, "init", errno, "PR_SET_PDEATHSIG");
  /* A session of its own: kill(0, ...) or a terminal's job control inside the container must
   * never reach the runtime's process group (the monitor forwards SIGINT/SIGTERM itself). */
  if (setsid() < 0) return fail(err, "init", errno, "setsid");
  // === namespaces: user first (so the others are owned by it), then the rest by path
  if (join_namespaces(c, true, err)) return -1;
  if (userns) {
    static const char req[] = "{\"kind\":\"mapping-request\"}";
    if (proto_send(c->sync_fd, req, sizeof req - 1) < 0) return fail(err, "userns-map", errno, "asking for uid/gid maps");
    if (wait_byte(c->sync_fd, 'M', "userns-map", err)) return -1;
    if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) return fail(err, "userns-map", errno, "becoming root in the user namespace (is uid 0 mapped?)");
  }
  if (join_namespaces(c, false, err)) return -1;
  // === cgroups before the cgroup namespace: its root is fixed at unshare time
  for (int i = 0; c->cgroup_fds[i] >= 0; i++) {
    if (write(c->cgroup_fds[i], "0", 1) < 0) return fail(err, "cgroup", errno, "joining cgroup (cgroup.procs #%d)", i);
    close(c->cgroup_fds[i]);
  }
  if ((c->clone_flags & CLONE_NEWCGROUP) && unshare(CLONE_NEWCGROUP) < 0) return fail(err, "namespace", errno, "creating the cgroup namespace");

  if (!c->exec_mode) {
    fifo = c->fifo_fd;
    if (setup_rootfs(c, err)) return -1;               /* propagation, rootfs bind, mounts, /dev, pivot_root */
    if (set_sysctls(c, err)) return -1;
    if (setup_masked_readonly(c, err)) return -1;      /* after sysctl: /proc/sys may become read-only */
    const char *hostname = json_str(c->spec, "hostname", NULL);
    if (hostname && sethostname(hostname, strlen(hostname)) < 0) return fail(err, "hostname", errno, "setting the hostname %s", hostname);
    const char *domain = json_str(c->spec, "domainname", NULL);
    if (domain && setdomainname(domain, strlen(domain)) < 0) return fail(err, "hostname", errno, "setting the domainname %s", domain);
  }
  if (set_rlimits(c, err)) return -1;
  if (json_get(process, "oomScoreAdj")) {
    char v[32];
    int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    int n = snprintf(v, sizeof v, "%lld", (long long)json_int(process, "oomScoreAdj", 0));
    if (fd < 0 || write(fd, v, (size_t)n) < 0) return fail(err, "rlimit", errno, "setting oom_score_adj");
    close(fd);
  }

  if (setup_terminal(c, err)) return -1;

  // === created: report, then wait for start
  struct sbuf msg = {0};
  sb_puts(&msg, "{\"kind\":\"created\",\"droppedCapabilities\":");
  dropped_caps(caps, &msg);
  sb_puts(&msg, "}");
  if (proto_send(c->sync_fd, msg.buf, msg.len) < 0) { sb_free(&msg); return fail(err, "wait-start", errno, "reporting created"); }
  sb_free(&msg);
  if (c->wait_start && wait_for_start(c, fifo, err)) return -1;
  if (fifo >= 0) close(fifo);
  if (container_start_hooks(c, err)) return -1;

  /* Without no_new_privs, loading a filter needs CAP_SYS_ADMIN in the effective set, which the
   * user switch below clears (uid 0 -> non-zero) and the caps may drop: then, like runc, the
   * filter goes in first, while still fully privileged, and must allow setgroups/setresuid/
   * capset/prctl/execve (Docker's default profile does). */
  if (seccomp && !nnp && apply_seccomp(seccomp, nnp, err)) return -1;

  // === credentials: bounding set while still privileged, then user, no_new_privs, caps
  uint64_t bounding;
  if (caps) {
    if (caps_from_spec(caps, "bounding", &bounding, err)) return -1;
    if (apply_bounding(bounding, err)) return -1;
  }
  if (prctl(PR_SET_KEEPCAPS, 1) < 0) return fail(err, "user", errno, "PR_SET_KEEPCAPS");
  if (set_user(c, userns, err)) return -1;
  if (prctl(PR_SET_KEEPCAPS, 0) < 0) return fail(err, "user", errno, "PR_SET_KEEPCAPS");
  if (nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return fail(err, "no_new_privs", errno, "PR_SET_NO_NEW_PRIVS");
  if (caps && apply_caps(caps, err)) return -1;
  if (seccomp && nnp && apply_seccomp(seccomp, nnp, err)) return -1;  /* last: as few syscalls as possible after it */

  // === no host fd survives exec (CVE-2024-21626); the sync socket reports exec failures
  int keep = 3 + (c->preserve_fds > 0 ? c->preserve_fds : 0);
  if (syscall(SYS_close_range, (unsigned)keep, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
    for (int fd = keep; fd < 65536; fd++) fcntl(fd, F_SETFD, FD_CLOEXEC);
  }
  if (c->init) {
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    pid_t child = fork();
    if (child < 0) return fail(err, "init", errno, "forking the command under the init");
    if (child > 0) { close(c->sync_fd); reaper(child); }
    sigprocmask(SIG_SETMASK, &old, NULL);
  }
  const char *cwd = json_str(process, "cwd", "/");
  if (chdir(cwd) < 0) return fail(err, "cwd", errno, "changing to the working directory %s", cwd);
  return exec_process(json_arr(process, "args"), json_arr(process, "env"), err);
}
