/* Shared declarations of tsbuild-helper: the setup context and crun-style error reporting. */
#ifndef TSBUILD_HELPER_H
#define TSBUILD_HELPER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "json.h"

/* A failure: the step that failed (a SetupStep name), errno (0 when none) and a message.
 * Functions return -1 after filling it, like crun's libcrun_error_t. */
struct herr {
  const char *step;
  int errnum;
  char message[1024];
};

/* Fills err and returns -1. */
int fail(struct herr *err, const char *step, int errnum, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

struct ctx {
  struct json *msg;        /* the config message */
  struct json *spec;       /* the runtime spec (owned by msg or parsed from configPath) */
  struct json *spec_owned; /* spec parsed from a file, freed at exit */
  const char *bundle;
  bool exec_mode;          /* join an existing container: no rootfs setup */
  bool wait_start;
  bool init;               /* fork a pid-1 reaper that forwards signals */
  const char *exec_fifo;
  const char *exit_file;
  const char *console_socket; /* runc --console-socket: where the pty master goes, or NULL */
  int preserve_fds;
  int clone_flags;         /* namespaces to create */
  int sync_fd;             /* child side of the monitor <-> child socket */
  char *rootfs;            /* absolute host path of the root filesystem */
  int cgroup_fds[32];      /* opened cgroup.procs files to join, -1 terminated */
  int fifo_fd;             /* O_PATH fd of the exec fifo (opened on the host), or -1 */
  int ns_fds[8];           /* namespaces to join by path, opened on the host; -1 terminated */
  int ns_types[8];
  char *hook_state;        /* state JSON for createContainer hooks (from the runtime), or NULL */
  char *hook_start_state;  /* state JSON for startContainer hooks, or NULL */
};

/* Child side: runs the whole ordered setup and execs; returns only on failure. */
int container_init_setup(struct ctx *c, struct herr *err);

/* mount.c */
int setup_rootfs(struct ctx *c, struct herr *err);
int setup_masked_readonly(struct ctx *c, struct herr *err);
/* caps.c */
int caps_from_spec(const struct json *caps, const char *set, uint64_t *out, struct herr *err);
int cap_by_name(const char *name);
const char *cap_name(int cap);
int cap_last(void);
int apply_bounding(uint64_t bounding, struct herr *err);
int apply_caps(const struct json *caps, struct herr *err);
void dropped_caps(const struct json *caps, struct sbuf *out);
/* seccomp.c */
int apply_seccomp(const struct json *seccomp, bool nnp, struct herr *err);
/* hooks.c */
int run_hooks(const struct json *hooks, const char *name, const char *state, struct herr *err);
int container_create_hooks(struct ctx *c, struct herr *err);
int container_start_hooks(struct ctx *c, struct herr *err);
/* signals */
const char *signal_name(int sig);
#endif
