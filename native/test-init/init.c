/*
 * test-init: a static probe run inside test containers (crun's tests/init.c pattern).
 * Each subcommand prints one fact about the process's environment on stdout:
 *   hostname | pid | mounts | id | caps | cgroup | seccomp | fds | cwd | env | tty | exit N | sleep N |
 *   read PATH | syscall NAME | fork-bomb N | alloc MB | zombies
 * Several subcommands may be chained: `test-init hostname id caps`.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static void status_lines(const char *prefix1, const char *prefix2) {
  FILE *f = fopen("/proc/self/status", "re");
  char line[512];
  if (!f) { printf("status: %s\n", strerror(errno)); return; }
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, prefix1, strlen(prefix1)) || (prefix2 && !strncmp(line, prefix2, strlen(prefix2)))) fputs(line, stdout);
  fclose(f);
}

static void cat(const char *path) {
  FILE *f = fopen(path, "re");
  char line[4096];
  if (!f) { printf("%s: %s\n", path, strerror(errno)); return; }
  while (fgets(line, sizeof line, f)) fputs(line, stdout);
  fclose(f);
}

/* "<mount point> <fstype> <ro|rw>", one line per mount, from mountinfo. */
static void mounts(void) {
  FILE *f = fopen("/proc/self/mountinfo", "re");
  char line[4096];
  if (!f) { printf("mountinfo: %s\n", strerror(errno)); return; }
  while (fgets(line, sizeof line, f)) {
    char mp[2048], opts[1024], fstype[128];
    char *sep = strstr(line, " - ");
    if (!sep || sscanf(line, "%*s %*s %*s %*s %2047s %1023s", mp, opts) != 2 || sscanf(sep + 3, "%127s", fstype) != 1) continue;
    printf("%s %s %s\n", mp, fstype, strncmp(opts, "ro", 2) == 0 && (opts[2] == ',' || opts[2] == 0) ? "ro" : "rw");
  }
  fclose(f);
}

static const char *errname(int e) {
  switch (e) {
  case 0: return "OK"; case EPERM: return "EPERM"; case ENOSYS: return "ENOSYS"; case EACCES: return "EACCES";
  case EINVAL: return "EINVAL"; case EFAULT: return "EFAULT"; case ENOENT: return "ENOENT"; case EAGAIN: return "EAGAIN";
  case ENOMEM: return "ENOMEM"; case EBADF: return "EBADF"; case EOPNOTSUPP: return "EOPNOTSUPP";
  default: { static char b[32]; snprintf(b, sizeof b, "E%d", e); return b; }
  }
}

static void try_syscall(const char *name) {
  long rc;
  errno = 0;
  if (!strcmp(name, "keyctl")) rc = syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3, 0);
  else if (!strcmp(name, "add_key")) rc = syscall(SYS_add_key, "user", "probe", "x", 1, -3);
  else if (!strcmp(name, "bpf")) rc = syscall(SYS_bpf, 0, NULL, 0);
  else if (!strcmp(name, "mount")) rc = mount("none", "/tmp", "tmpfs", 0, NULL);
  else if (!strcmp(name, "unshare-user")) rc = unshare(CLONE_NEWUSER);
  else if (!strcmp(name, "kexec_load")) rc = syscall(SYS_kexec_load, 0, 0, NULL, 0);
  else if (!strcmp(name, "getpid")) rc = syscall(SYS_getpid);
  else { printf("%s unknown\n", name); return; }
  printf("%s %s\n", name, rc < 0 ? errname(errno) : "OK");
}

static void fds(void) {
  DIR *d = opendir("/proc/self/fd");
  if (!d) { printf("fds: %s\n", strerror(errno)); return; }
  int self = dirfd(d);
  int list[1024], n = 0;
  struct dirent *e;
  while ((e = readdir(d)) && n < 1024) {
    if (e->d_name[0] == '.') continue;
    int fd = atoi(e->d_name);
    if (fd != self) list[n++] = fd;
  }
  closedir(d);
  for (int i = 0; i < n; i++) for (int j = i + 1; j < n; j++) if (list[j] < list[i]) { int t = list[i]; list[i] = list[j]; list[j] = t; }
  printf("fds");
  for (int i = 0; i < n; i++) printf(" %d", list[i]);
  printf("\n");
}

static int zombies(void) {
  pid_t c = fork();
  if (c == 0) { if (fork() == 0) _exit(0); _exit(0); }   /* the grandchild is orphaned to pid 1 */
  waitpid(c, NULL, 0);
  struct timespec ts = { 0, 300 * 1000 * 1000 };
  nanosleep(&ts, NULL);
  int n = 0;
  DIR *d = opendir("/proc");
  struct dirent *e;
  while (d && (e = readdir(d))) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    char p[300], buf[512];
    snprintf(p, sizeof p, "/proc/%s/stat", e->d_name);
    FILE *f = fopen(p, "re");
    if (!f) continue;
    if (fgets(buf, sizeof buf, f)) { char *rp = strrchr(buf, ')'); if (rp && rp[1] == ' ' && rp[2] == 'Z') n++; }
    fclose(f);
  }
  if (d) closedir(d);
  printf("zombies %d\n", n);
  return 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 2) { fprintf(stderr, "usage: test-init SUBCOMMAND [ARG]...\n"); return 2; }
  for (int i = 1; i < argc; i++) {
    const char *cmd = argv[i];
    const char *arg = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(cmd, "hostname")) { char h[256] = ""; gethostname(h, sizeof h); printf("hostname %s\n", h); }
    else if (!strcmp(cmd, "pid")) printf("pid %d ppid %d\n", getpid(), getppid());
    else if (!strcmp(cmd, "mounts")) mounts();
    else if (!strcmp(cmd, "id")) {
      gid_t g[64];
      int n = getgroups(64, g);
      printf("uid %d gid %d groups", getuid(), getgid());
      for (int k = 0; k < n; k++) printf(" %d", g[k]);
      printf("\n");
    } else if (!strcmp(cmd, "caps")) status_lines("Cap", NULL);
    else if (!strcmp(cmd, "cgroup")) cat("/proc/self/cgroup");
    else if (!strcmp(cmd, "seccomp")) status_lines("Seccomp:", "NoNewPrivs:");
    else if (!strcmp(cmd, "fds")) fds();
    else if (!strcmp(cmd, "cwd")) { char b[4096]; printf("cwd %s\n", getcwd(b, sizeof b) ? b : strerror(errno)); }
    else if (!strcmp(cmd, "tty")) { char *t = ttyname(0); printf("tty %s %s\n", t ? t : "none", isatty(1) ? "out-tty" : "out-notty"); }
    else if (!strcmp(cmd, "env")) for (char **e = environ; *e; e++) printf("env %s\n", *e);
    else if (!strcmp(cmd, "exit")) { fflush(stdout); return arg ? atoi(arg) : 0; }
    else if (!strcmp(cmd, "sleep")) { i++; sleep(arg ? (unsigned)atoi(arg) : 1); }
    else if (!strcmp(cmd, "read")) {
      i++;
      int fd = arg ? open(arg, O_RDONLY) : -1;
      if (fd < 0) { printf("read %s %s\n", arg ? arg : "", errname(errno)); continue; }
      char buf[4096];
      long total = 0;
      ssize_t r;
      while ((r = read(fd, buf, sizeof buf)) > 0 && total < (1 << 20)) total += r;
      printf("read %s %s %ld\n", arg, r < 0 ? errname(errno) : "OK", total);
      close(fd);
    } else if (!strcmp(cmd, "syscall")) { i++; if (arg) try_syscall(arg); }
    else if (!strcmp(cmd, "fork-bomb")) {
      i++;
      int want = arg ? atoi(arg) : 100, ok = 0, err = 0;
      pid_t kids[4096];
      if (want > 4096) want = 4096;
      for (int k = 0; k < want; k++) {
        pid_t p = fork();
        if (p == 0) { pause(); _exit(0); }
        if (p < 0) { err = errno; break; }
        kids[ok++] = p;
      }
      printf("forked %d %s\n", ok, errname(err));
      for (int k = 0; k < ok; k++) { kill(kids[k], SIGKILL); waitpid(kids[k], NULL, 0); }
    } else if (!strcmp(cmd, "alloc")) {
      i++;
      size_t mb = arg ? (size_t)atol(arg) : 1;
      char *p = malloc(mb << 20);
      if (!p) { printf("alloc failed\n"); return 1; }
      for (size_t k = 0; k < (mb << 20); k += 4096) p[k] = 1;
      printf("allocated %zu\n", mb);
    } else if (!strcmp(cmd, "zombies")) zombies();
    else { fprintf(stderr, "test-init: unknown subcommand %s\n", cmd); return 2; }
  }
  return 0;
}
