/* The root filesystem: spec mounts (options parsed like runc), /dev, pivot_root, masked and
 * read-only paths. Destinations are resolved with openat2(RESOLVE_IN_ROOT) so a symlink in the
 * image can never point a mount outside the root (CVE-2021-30465 class). */
#include "helper.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

struct mopts {
  unsigned long flags;   /* mount(2) flags */
  unsigned long clear;   /* flags an option turned off (rw, suid, ...) */
  unsigned long pflags;  /* propagation, applied by a second mount(2) */
  bool bind;
  struct sbuf data;      /* filesystem-specific options */
};

static const struct { const char *name; bool clear; unsigned long flag; } FLAG_OPTS[] = {
  { "async", true, MS_SYNCHRONOUS }, { "atime", true, MS_NOATIME }, { "bind", false, MS_BIND },
  { "defaults", false, 0 }, { "dev", true, MS_NODEV }, { "diratime", true, MS_NODIRATIME },
  { "dirsync", false, MS_DIRSYNC }, { "exec", true, MS_NOEXEC }, { "iversion", false, MS_I_VERSION },
  { "lazytime", false, MS_LAZYTIME }, { "loud", true, MS_SILENT }, { "mand", false, MS_MANDLOCK },
  { "noatime", false, MS_NOATIME }, { "nodev", false, MS_NODEV }, { "nodiratime", false, MS_NODIRATIME },
  { "noexec", false, MS_NOEXEC }, { "noiversion", true, MS_I_VERSION }, { "nolazytime", true, MS_LAZYTIME },
  { "nomand", true, MS_MANDLOCK }, { "norelatime", true, MS_RELATIME }, { "nostrictatime", true, MS_STRICTATIME },
  { "nosuid", false, MS_NOSUID }, { "rbind", false, MS_BIND | MS_REC }, { "relatime", false, MS_RELATIME },
  { "remount", false, MS_REMOUNT }, { "ro", false, MS_RDONLY }, { "rw", true, MS_RDONLY },
  { "silent", false, MS_SILENT }, { "strictatime", false, MS_STRICTATIME }, { "suid", true, MS_NOSUID },
  { "sync", false, MS_SYNCHRONOUS },
};
static const struct { const char *name; unsigned long flag; } PROP_OPTS[] = {
  { "private", MS_PRIVATE }, { "rprivate", MS_PRIVATE | MS_REC }, { "shared", MS_SHARED },
  { "rshared", MS_SHARED | MS_REC }, { "slave", MS_SLAVE }, { "rslave", MS_SLAVE | MS_REC },
  { "unbindable", MS_UNBINDABLE }, { "runbindable", MS_UNBINDABLE | MS_REC },
};

static void parse_options(const struct json *opts, struct mopts *m) {
  memset(m, 0, sizeof *m);
  for (size_t i = 0; opts && i < opts->len; i++) {
    if (opts->items[i]->type != JSON_STRING) continue;
    const char *o = opts->items[i]->string;
    bool found = false;
    for (size_t k = 0; k < sizeof FLAG_OPTS / sizeof FLAG_OPTS[0] && !found; k++) {
      if (strcmp(o, FLAG_OPTS[k].name)) continue;
      found = true;
      if (FLAG_OPTS[k].clear) { m->flags &= ~FLAG_OPTS[k].flag; m->clear |= FLAG_OPTS[k].flag; }
      else m->flags |= FLAG_OPTS[k].flag;
    }
    for (size_t k = 0; k < sizeof PROP_OPTS / sizeof PROP_OPTS[0] && !found; k++)
      if (!strcmp(o, PROP_OPTS[k].name)) { m->pflags |= PROP_OPTS[k].flag; found = true; }
    /* crun/runc extensions we accept and ignore */
    if (!found && (!strcmp(o, "tmpcopyup") || !strcmp(o, "idmap") || !strcmp(o, "ridmap") || !strncmp(o, "x-", 2))) found = true;
    if (!found) { if (m->data.len) sb_puts(&m->data, ","); sb_puts(&m->data, o); }
  }
  m->bind = (m->flags & MS_BIND) != 0;
}

static int openat2_in_root(int rootfd, const char *path, int flags) {
  struct open_how how = { .flags = (uint64_t)flags | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
  while (*path == '/') path++;
  if (!*path) path = ".";
  return (int)syscall(SYS_openat2, rootfd, path, &how, sizeof how);
}

/* Creates every missing component of `path` inside the root (the last one as a file when
 * is_file) and returns an O_PATH fd of it. */
static int mkdir_in_root(int rootfd, const char *path, bool is_file, mode_t mode, struct herr *err, const char *step) {
  char buf[PATH_MAX];
  if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) return fail(err, step, ENAMETOOLONG, "path %s", path);
  size_t n = strlen(buf);
  for (size_t i = 1; i <= n; i++) {
    if (buf[i] != '/' && buf[i] != 0) continue;
    bool last = buf[i] == 0 || buf[i + 1] == 0;
    char saved = buf[i];
    buf[i] = 0;
    int fd = openat2_in_root(rootfd, buf, O_PATH);
    if (fd < 0 && errno == ENOENT) {
      char *slash = strrchr(buf, '/');
      *slash = 0;
      int parent = openat2_in_root(rootfd, buf[0] ? buf : "/", O_PATH | O_DIRECTORY);
      *slash = '/';
      if (parent < 0) return fail(err, step, errno, "opening the parent of %s in the rootfs", buf);
      int rc;
      if (last && is_file) {
        rc = openat(parent, slash + 1, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, mode);
        if (rc >= 0) close(rc);
      } else rc = mkdirat(parent, slash + 1, 0755);
      if (rc < 0 && errno != EEXIST) { int e = errno; close(parent); return fail(err, step, e, "creating %s in the rootfs", buf); }
      close(parent);
      fd = openat2_in_root(rootfd, buf, O_PATH);
    }
    if (fd < 0) return fail(err, step, errno, "resolving %s in the rootfs", buf);
    buf[i] = saved;
    if (last) return fd;
    close(fd);
  }
  return fail(err, step, EINVAL, "empty path");
}

/* Flags a bind remount must keep: the kernel refuses to clear locked nosuid/nodev/noexec. */
static unsigned long locked_flags(const char *target) {
  struct statvfs s;
  unsigned long f = 0;
  if (statvfs(target, &s) < 0) return 0;
  if (s.f_flag & ST_NOSUID) f |= MS_NOSUID;
  if (s.f_flag & ST_NODEV) f |= MS_NODEV;
  if (s.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
  if (s.f_flag & ST_NOATIME) f |= MS_NOATIME;
  if (s.f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
  if (s.f_flag & ST_RELATIME) f |= MS_RELATIME;
  return f;
}

/* After mount(2) on /proc/self/fd/N, fd N still names the covered directory: reopen the
 * destination to reach the new mount (for remounts, propagation and submounts). */
static int reopen(int rootfd, const char *dest, int *fd, char *target, size_t tlen, struct herr *err) {
  close(*fd);
  *fd = openat2_in_root(rootfd, dest, O_PATH);
  if (*fd < 0) return fail(err, "mount", errno, "reopening %s after mounting it", dest);
  snprintf(target, tlen, "/proc/self/fd/%d", *fd);
  return 0;
}

static int bind_remount(const char *target, unsigned long flags, unsigned long clear, const char *what, struct herr *err) {
  unsigned long f = (locked_flags(target) & ~clear) | (flags & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME));
  if (mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | f, NULL) < 0) return fail(err, "mount", errno, "remounting %s with its options", what);
  return 0;
}

static bool is_dir_path(const char *p) { struct stat st; return stat(p, &st) == 0 && S_ISDIR(st.st_mode); }

/* The cgroup filesystem as the container sees it: cgroup2 on a unified host; on v1/hybrid hosts
 * a tmpfs with one mount per v1 hierarchy (as runc does), all read-only when asked. */
static int mount_cgroup(int rootfd, int *fd, char *target, size_t tlen, const char *dest, struct mopts *m, struct herr *err) {
  struct statvfs s;
  if (statvfs("/sys/fs/cgroup", &s) == 0) {
    FILE *f = fopen("/proc/self/mountinfo", "re");
    bool v1 = false;
    char line[4096];
    while (f && fgets(line, sizeof line, f)) if (strstr(line, " - cgroup ")) v1 = true;
    if (f) fclose(f);
    if (!v1) {
      if (mount("cgroup2", target, "cgroup2", m->flags & ~(MS_BIND | MS_REC), NULL) < 0) return fail(err, "mount", errno, "mounting cgroup2 on %s", dest);
      return 0;
    }
  }
  if (mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755") < 0) return fail(err, "mount", errno, "mounting tmpfs for cgroups on %s", dest);
  if (reopen(rootfd, dest, fd, target, tlen, err)) return -1;
  FILE *f = fopen("/proc/self/mountinfo", "re");
  if (!f) return fail(err, "mount", errno, "reading /proc/self/mountinfo");
  char line[4096];
  int dirfd = open(target, O_PATH | O_DIRECTORY | O_CLOEXEC);
  while (fgets(line, sizeof line, f)) {
    char mp[PATH_MAX], fstype[64], super[1024];
    char *sep = strstr(line, " - ");
    if (!sep || sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1) continue;
    if (sscanf(sep + 3, "%63s %*s %1023s", fstype, super) != 2) continue;
    if (strncmp(mp, "/sys/fs/cgroup/", 15) || strchr(mp + 15, '/')) continue;
    const char *name = mp + 15;
    char data[1024] = "";
    const char *type = "cgroup";
    if (!strcmp(fstype, "cgroup")) {
      /* keep the controller list, drop rw/ro */
      char *save = NULL, *tok;
      for (tok = strtok_r(super, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (!strcmp(tok, "rw") || !strcmp(tok, "ro")) continue;
        if (data[0]) strncat(data, ",", sizeof data - strlen(data) - 1);
        strncat(data, tok, sizeof data - strlen(data) - 1);
      }
    } else continue; /* like runc and crun, the hybrid's cgroup2 "unified" mount is not exposed */
    if (mkdirat(dirfd, name, 0755) < 0 && errno != EEXIST) { fclose(f); close(dirfd); return fail(err, "mount", errno, "creating %s/%s", dest, name); }
    char sub[PATH_MAX + 64];
    snprintf(sub, sizeof sub, "%s/%s", target, name);
    if (mount("cgroup", sub, type, MS_NOSUID | MS_NODEV | MS_NOEXEC | (m->flags & MS_RDONLY), data[0] ? data : NULL) < 0) {
      int e = errno; fclose(f); close(dirfd);
      return fail(err, "mount", e, "mounting the %s cgroup hierarchy on %s/%s", data[0] ? data : type, dest, name);
    }
  }
  fclose(f);
  close(dirfd);
  /* the tmpfs itself stays writable as with runc and crun; the hierarchies carry "ro" */
  return 0;
}

static int mount_one(struct ctx *c, int rootfd, const struct json *jm, size_t idx, bool userns, struct herr *err) {
  const char *dest = json_str(jm, "destination", NULL);
  const char *type = json_str(jm, "type", NULL);
  const char *source = json_str(jm, "source", NULL);
  if (!dest || dest[0] != '/') return fail(err, "mount", EINVAL, "mounts[%zu].destination %s is not an absolute path", idx, dest ? dest : "(missing)");
  struct mopts m;
  parse_options(json_arr(jm, "options"), &m);
  if (type && !strcmp(type, "bind")) { m.bind = true; m.flags |= MS_BIND; }
  if (m.bind && !source) { sb_free(&m.data); return fail(err, "mount", EINVAL, "bind mount on %s has no source", dest); }
  bool is_file = false;
  if (m.bind) {
    struct stat st;
    if (stat(source, &st) < 0) { int e = errno; sb_free(&m.data); return fail(err, "mount", e, "bind source %s for %s", source, dest); }
    is_file = !S_ISDIR(st.st_mode);
  }
  int fd = mkdir_in_root(rootfd, dest, is_file, 0644, err, "mount");
  if (fd < 0) { sb_free(&m.data); return -1; }
  char target[64];
  snprintf(target, sizeof target, "/proc/self/fd/%d", fd);
  int rc = 0;
  if (m.bind) {
    if (mount(source, target, NULL, m.flags & (MS_BIND | MS_REC), NULL) < 0) rc = fail(err, "mount", errno, "bind-mounting %s on %s", source, dest);
    else if ((m.flags & ~(MS_BIND | MS_REC | MS_REMOUNT)) || m.clear) rc = reopen(rootfd, dest, &fd, target, sizeof target, err) ? -1 : bind_remount(target, m.flags, m.clear, dest, err);
  } else if (type && (!strcmp(type, "cgroup") || !strcmp(type, "cgroup2"))) {
    rc = mount_cgroup(rootfd, &fd, target, sizeof target, dest, &m, err);
  } else {
    rc = mount(source ? source : type, target, type, m.flags, m.data.len ? m.data.buf : NULL);
    if (rc < 0 && (errno == EPERM || errno == EBUSY) && type && (!strcmp(type, "sysfs") || !strcmp(type, "mqueue"))) {
      /* sysfs needs a new net namespace and mqueue a new ipc namespace; like runc, fall back to
       * a bind of the host's (sysfs: recursive, read-only when asked). */
      const char *host = !strcmp(type, "sysfs") ? "/sys" : "/dev/mqueue";
      rc = mount(host, target, NULL, MS_BIND | MS_REC, NULL);
      if (rc == 0) rc = reopen(rootfd, dest, &fd, target, sizeof target, err) ? -1 : bind_remount(target, m.flags, m.clear, dest, err);
      else rc = fail(err, "mount", errno, "binding %s on %s", host, dest);
    } else if (rc < 0) rc = fail(err, "mount", errno, "mounting %s (%s) on %s%s%s", source ? source : "none", type ? type : "none", dest, m.data.len ? " with " : "", m.data.len ? m.data.buf : "");
  }
  if (rc == 0 && m.pflags && reopen(rootfd, dest, &fd, target, sizeof target, err) == 0 && mount(NULL, target, NULL, m.pflags, NULL) < 0) rc = fail(err, "mount", errno, "setting the propagation of %s", dest);
  (void)c;
  (void)userns;
  if (fd >= 0) close(fd);
  sb_free(&m.data);
  return rc;
}

struct devspec { const char *path; char type; unsigned major, minor; mode_t mode; uid_t uid; gid_t gid; };
static const struct devspec DEFAULT_DEVICES[] = {
  { "/dev/null", 'c', 1, 3, 0666, 0, 0 }, { "/dev/zero", 'c', 1, 5, 0666, 0, 0 },
  { "/dev/full", 'c', 1, 7, 0666, 0, 0 }, { "/dev/random", 'c', 1, 8, 0666, 0, 0 },
  { "/dev/urandom", 'c', 1, 9, 0666, 0, 0 }, { "/dev/tty", 'c', 5, 0, 0666, 0, 0 },
};

static int create_device(int rootfd, const struct devspec *d, bool userns, struct herr *err) {
  mode_t kind = d->type == 'b' ? S_IFBLK : d->type == 'p' ? S_IFIFO : S_IFCHR;
  char parent[PATH_MAX];
  snprintf(parent, sizeof parent, "%s", d->path);
  char *slash = strrchr(parent, '/');
  if (!slash) return fail(err, "device", EINVAL, "device path %s", d->path);
  *slash = 0;
  int pfd = mkdir_in_root(rootfd, parent[0] ? parent : "/", false, 0755, err, "device");
  if (pfd < 0) return -1;
  const char *name = slash + 1;
  int rc = userns ? -1 : mknodat(pfd, name, kind | (d->mode & 07777), makedev(d->major, d->minor));
  if (rc == 0) {
    if (fchownat(pfd, name, d->uid, d->gid, AT_SYMLINK_NOFOLLOW) < 0 || fchmodat(pfd, name, d->mode & 07777, 0) < 0) { int e = errno; close(pfd); return fail(err, "device", e, "setting owner and mode of %s", d->path); }
    close(pfd);
    return 0;
  }
  if (!userns && errno == EEXIST) { close(pfd); return 0; }
  if (!userns && errno != EPERM) { int e = errno; close(pfd); return fail(err, "device", e, "mknod %s", d->path); }
  /* In a user namespace mknod is not allowed: bind-mount the host's node instead. */
  int fd = openat(pfd, name, O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0 && errno != EEXIST) { int e = errno; close(pfd); return fail(err, "device", e, "creating the mount point %s", d->path); }
  if (fd >= 0) close(fd);
  close(pfd);
  int tfd = openat2_in_root(rootfd, d->path, O_PATH);
  if (tfd < 0) return fail(err, "device", errno, "opening %s", d->path);
  char target[64];
  snprintf(target, sizeof target, "/proc/self/fd/%d", tfd);
  rc = mount(d->path, target, NULL, MS_BIND, NULL);
  int e = errno;
  close(tfd);
  if (rc < 0) return fail(err, "device", e, "bind-mounting the host's %s", d->path);
  return 0;
}

static int setup_dev(struct ctx *c, int rootfd, bool userns, struct herr *err) {
  for (size_t i = 0; i < sizeof DEFAULT_DEVICES / sizeof DEFAULT_DEVICES[0]; i++)
    if (create_device(rootfd, &DEFAULT_DEVICES[i], userns, err)) return -1;
  struct json *devs = json_arr(json_get(c->spec, "linux"), "devices");
  for (size_t i = 0; devs && i < devs->len; i++) {
    struct json *d = devs->items[i];
    struct devspec ds = {
      json_str(d, "path", ""), json_str(d, "type", "c")[0], (unsigned)json_uint(d, "major", 0), (unsigned)json_uint(d, "minor", 0),
      (mode_t)json_uint(d, "fileMode", 0666), (uid_t)json_uint(d, "uid", 0), (gid_t)json_uint(d, "gid", 0),
    };
    if (ds.path[0] != '/') return fail(err, "device", EINVAL, "linux.devices[%zu].path is not absolute", i);
    if (create_device(rootfd, &ds, userns, err)) return -1;
  }
  int dfd = openat2_in_root(rootfd, "/dev", O_PATH | O_DIRECTORY);
  if (dfd < 0) return fail(err, "device", errno, "opening /dev in the rootfs");
  static const char *const links[][2] = {
    { "/proc/self/fd", "fd" }, { "/proc/self/fd/0", "stdin" }, { "/proc/self/fd/1", "stdout" },
    { "/proc/self/fd/2", "stderr" }, { "pts/ptmx", "ptmx" }, { "/proc/kcore", "core" },
  };
  for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
    /* like runc (libcontainer setupDevSymlinks): /dev/core only where the host has /proc/kcore */
    if (!strcmp(links[i][1], "core") && access("/proc/kcore", F_OK) != 0) continue;
    if (symlinkat(links[i][0], dfd, links[i][1]) < 0 && errno != EEXIST) { int e = errno; close(dfd); return fail(err, "device", e, "creating the symlink /dev/%s", links[i][1]); }
  }
  close(dfd);
  return 0;
}

static unsigned long propagation_flag(const char *name) {
  for (size_t k = 0; k < sizeof PROP_OPTS / sizeof PROP_OPTS[0]; k++) if (!strcmp(name, PROP_OPTS[k].name)) return PROP_OPTS[k].flag;
  return 0;
}

/* MS_PRIVATE on the mount point holding `path`: `path` itself, else the nearest ancestor that is one. */
static int make_parent_mount_private(const char *path, struct herr *err) {
  char tmp[PATH_MAX];
  if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) return fail(err, "propagation", ENAMETOOLONG, "rootfs path too long");
  for (;;) {
    if (mount(NULL, tmp, NULL, MS_PRIVATE, NULL) == 0) return 0;
    if (errno != EINVAL) return fail(err, "propagation", errno, "making the mount of %s private", tmp);
    char *slash = strrchr(tmp, '/');
    if (!slash || slash == tmp) {
      if (mount(NULL, "/", NULL, MS_PRIVATE, NULL) == 0) return 0;
      return fail(err, "propagation", errno, "making / private");
    }
    *slash = 0;
  }
}

int setup_rootfs(struct ctx *c, struct herr *err) {
  struct json *linux_ = json_get(c->spec, "linux");
  bool userns = false;
  struct json *nss = json_arr(linux_, "namespaces");
  for (size_t i = 0; nss && i < nss->len; i++) if (!strcmp(json_str(nss->items[i], "type", ""), "user")) userns = true;

  // === propagation: nothing mounted below may reach the host (runc prepareRoot: rslave by default)
  const char *prop = json_str(linux_, "rootfsPropagation", NULL);
  unsigned long pflag = prop ? propagation_flag(prop) : MS_SLAVE | MS_REC;
  if (prop && !pflag) return fail(err, "propagation", EINVAL, "unknown linux.rootfsPropagation %s", prop);
  if (mount(NULL, "/", NULL, pflag | MS_REC, NULL) < 0) return fail(err, "propagation", errno, "making / %s", prop ? prop : "rslave");

  // === pivot_root refuses a new root (or its parent mount) that is shared: with a shared
  // rootfsPropagation the mount holding the rootfs becomes private again (crun's
  // make_parent_mount_private); the mounts below it keep the asked propagation
  // (and an unbindable one could not be bound at all)
  if ((pflag & (MS_SHARED | MS_UNBINDABLE)) && make_parent_mount_private(c->rootfs, err)) return -1;

  // === the root filesystem becomes a mount point of its own, required by pivot_root
  if (mount(c->rootfs, c->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0) return fail(err, "rootfs", errno, "bind-mounting the rootfs %s", c->rootfs);
  int rootfd = open(c->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) return fail(err, "rootfs", errno, "opening the rootfs %s", c->rootfs);

  // === spec mounts, in order
  struct json *mounts = json_arr(c->spec, "mounts");
  bool dev_tmpfs = false;
  for (size_t i = 0; mounts && i < mounts->len; i++) {
    if (mount_one(c, rootfd, mounts->items[i], i, userns, err)) { close(rootfd); return -1; }
    if (!strcmp(json_str(mounts->items[i], "destination", ""), "/dev") && strcmp(json_str(mounts->items[i], "type", ""), "bind")) {
      struct mopts m;
      parse_options(json_arr(mounts->items[i], "options"), &m);
      dev_tmpfs = !m.bind;
      sb_free(&m.data);
    }
  }
  // === device nodes and the /dev symlinks, when /dev is ours (not a bind of the host's)
  if (dev_tmpfs && setup_dev(c, rootfd, userns, err)) { close(rootfd); return -1; }

  // === prestart/createRuntime (host, by the runtime), then createContainer hooks (runc: before pivot_root)
  if (container_create_hooks(c, err)) { close(rootfd); return -1; }

  // === pivot_root(".", ".") then detach the old root (runc pivotRoot)
  int oldroot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (oldroot < 0) { close(rootfd); return fail(err, "pivot_root", errno, "opening the old root"); }
  if (fchdir(rootfd) < 0) { int e = errno; close(rootfd); close(oldroot); return fail(err, "pivot_root", e, "entering the rootfs"); }
  close(rootfd);
  if (syscall(SYS_pivot_root, ".", ".") < 0) { int e = errno; close(oldroot); return fail(err, "pivot_root", e, "pivot_root into %s", c->rootfs); }
  if (fchdir(oldroot) < 0) { int e = errno; close(oldroot); return fail(err, "pivot_root", e, "entering the old root"); }
  close(oldroot);
  if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0) return fail(err, "pivot_root", errno, "making the old root rslave");
  if (umount2(".", MNT_DETACH) < 0) return fail(err, "pivot_root", errno, "detaching the old root");
  if (chdir("/") < 0) return fail(err, "pivot_root", errno, "chdir to the new root");
  // the asked propagation holds for the container's own root too
  if (prop && mount(NULL, "/", NULL, pflag | MS_REC, NULL) < 0) return fail(err, "propagation", errno, "making the new root %s", prop);
  return 0;
}

int setup_masked_readonly(struct ctx *c, struct herr *err) {
  struct json *linux_ = json_get(c->spec, "linux");
  struct json *ro = json_arr(linux_, "readonlyPaths");
  for (size_t i = 0; ro && i < ro->len; i++) {
    const char *p = ro->items[i]->type == JSON_STRING ? ro->items[i]->string : "";
    if (mount(p, p, NULL, MS_BIND | MS_REC, NULL) < 0) {
      if (errno == ENOENT) continue;
      return fail(err, "readonly-paths", errno, "binding %s", p);
    }
    if (mount(NULL, p, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC | locked_flags(p), NULL) < 0) return fail(err, "readonly-paths", errno, "remounting %s read-only", p);
  }
  struct json *masked = json_arr(linux_, "maskedPaths");
  for (size_t i = 0; masked && i < masked->len; i++) {
    const char *p = masked->items[i]->type == JSON_STRING ? masked->items[i]->string : "";
    struct stat st;
    if (lstat(p, &st) < 0) { if (errno == ENOENT) continue; return fail(err, "masked-paths", errno, "stat %s", p); }
    int rc = S_ISDIR(st.st_mode) ? mount("tmpfs", p, "tmpfs", MS_RDONLY, NULL) : mount("/dev/null", p, NULL, MS_BIND, NULL);
    if (rc < 0) return fail(err, "masked-paths", errno, "masking %s", p);
  }
  if (json_bool(json_get(c->spec, "root"), "readonly", false)) {
    if (mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | locked_flags("/"), NULL) < 0) return fail(err, "rootfs", errno, "remounting / read-only");
  }
  (void)is_dir_path;
  return 0;
}
