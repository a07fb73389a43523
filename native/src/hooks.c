/*
 * OCI lifecycle hooks that run on the child side (runtime-spec config.md#posix-platform-hooks):
 *   prestart + createRuntime   in the runtime's namespaces: the child asks the monitor, which asks
 *                              tsbuild ({"kind":"hooks-request"}); tsbuild runs them on the host and
 *                              answers with the state JSON the container-side hooks get on stdin
 *   createContainer            here, in the container's namespaces, after the mounts and before
 *                              pivot_root (paths resolve as on the host, like runc)
 *   startContainer             here, after start and before the user process is executed
 * poststart and poststop are run by tsbuild itself (start and delete).
 *
 * Each hook: fork, the state JSON on stdin (a socket, so a hook that does not read it cannot
 * SIGPIPE us), execve(path, args, env), wait at most `timeout` seconds (then SIGKILL). A hook that
 * fails (non-zero exit, signal, timeout, exec failure) fails the setup with step "hooks".
 */
#include "helper.h"
#include "protocol.h"
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static bool has_hooks(const struct json *hooks, const char *name) {
  struct json *a = json_arr(hooks, name);
  return a && a->len > 0;
}

/* Runs one hook; 0 or -1 with err filled. */
static int run_hook(const struct json *hook, const char *phase, size_t idx, const char *state, struct herr *err) {
  const char *path = json_str(hook, "path", NULL);
  if (!path || !*path) return fail(err, "hooks", EINVAL, "%s hook #%zu has no path", phase, idx);
  struct json *args = json_arr(hook, "args");
  struct json *env = json_arr(hook, "env");
  int64_t timeout = json_int(hook, "timeout", 0);
  if (json_get(hook, "timeout") && timeout <= 0) return fail(err, "hooks", EINVAL, "%s hook %s: timeout must be positive", phase, path);
  char **argv = calloc((args ? args->len : 0) + 2, sizeof *argv);
  char **envp = calloc((env ? env->len : 0) + 1, sizeof *envp);
  if (!argv || !envp) { free(argv); free(envp); return fail(err, "hooks", ENOMEM, "allocating the argv of %s hook %s", phase, path); }
  if (args && args->len) for (size_t i = 0; i < args->len; i++) argv[i] = args->items[i]->type == JSON_STRING ? args->items[i]->string : "";
  else argv[0] = (char *)path;
  for (size_t i = 0; env && i < env->len; i++) envp[i] = env->items[i]->type == JSON_STRING ? env->items[i]->string : "";
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) { free(argv); free(envp); return fail(err, "hooks", errno, "socketpair for %s hook %s", phase, path); }
  pid_t pid = fork();
  if (pid < 0) { int e = errno; close(sv[0]); close(sv[1]); free(argv); free(envp); return fail(err, "hooks", e, "forking %s hook %s", phase, path); }
  if (pid == 0) {
    if (dup2(sv[1], 0) < 0) _exit(127);
    shutdown(0, SHUT_WR);
    execve(path, argv, envp);
    _exit(errno == ENOENT ? 127 : 126);
  }
  free(argv);
  free(envp);
  close(sv[1]);
  if (state) {
    size_t len = strlen(state);
    for (size_t off = 0; off < len; ) {
      ssize_t n = send(sv[0], state + off, len - off, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break; /* the hook does not read its stdin: not an error */
      off += (size_t)n;
    }
  }
  close(sv[0]);
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  int status = 0;
  for (;;) {
    pid_t r = waitpid(pid, &status, timeout > 0 ? WNOHANG : 0);
    if (r == pid) break;
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return fail(err, "hooks", errno, "waiting for %s hook %s", phase, path);
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec - start.tv_sec >= timeout) {
      kill(pid, SIGKILL);
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
      return fail(err, "hooks", ETIMEDOUT, "%s hook %s timed out after %lld s", phase, path, (long long)timeout);
    }
    struct timespec ts = { 0, 5 * 1000 * 1000 };
    nanosleep(&ts, NULL);
  }
  if (WIFSIGNALED(status)) return fail(err, "hooks", 0, "%s hook %s was killed by %s", phase, path, signal_name(WTERMSIG(status)));
  if (WEXITSTATUS(status) != 0) return fail(err, "hooks", 0, "%s hook %s exited with status %d", phase, path, WEXITSTATUS(status));
  return 0;
}

int run_hooks(const struct json *hooks, const char *name, const char *state, struct herr *err) {
  struct json *a = json_arr(hooks, name);
  for (size_t i = 0; a && i < a->len; i++) if (run_hook(a->items[i], name, i, state, err)) return -1;
  return 0;
}

/* Waits for one byte `want` from the monitor (other bytes are skipped). */
static int wait_for(int fd, char want, struct herr *err) {
  char b;
  for (;;) {
    ssize_t r = read(fd, &b, 1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return fail(err, "hooks", errno, "waiting for the runtime's hooks");
    if (r == 0) return fail(err, "hooks", EPIPE, "the runtime went away during its hooks");
    if (b == want) return 0;
  }
}

int container_create_hooks(struct ctx *c, struct herr *err) {
  struct json *hooks = json_get(c->spec, "hooks");
  if (c->exec_mode || !hooks) return 0;
  bool host = has_hooks(hooks, "prestart") || has_hooks(hooks, "createRuntime");
  if (!host && !has_hooks(hooks, "createContainer") && !has_hooks(hooks, "startContainer")) return 0;
  /* the runtime runs prestart + createRuntime on the host, then sends the state for ours */
  static const char req[] = "{\"kind\":\"hooks-request\"}";
  if (proto_send(c->sync_fd, req, sizeof req - 1) < 0) return fail(err, "hooks", errno, "asking the runtime to run its hooks");
  if (wait_for(c->sync_fd, 'H', err)) return -1;
  char *raw = NULL;
  size_t len = 0;
  if (proto_recv(c->sync_fd, &raw, &len) <= 0) return fail(err, "hooks", errno ? errno : EPIPE, "reading the container state for the hooks");
  char perr[128];
  struct json *m = json_parse(raw, len, perr, sizeof perr);
  free(raw);
  if (!m) return fail(err, "hooks", EPROTO, "bad hooks-done message: %s", perr);
  const char *st = json_str(m, "state", NULL), *st2 = json_str(m, "startState", NULL);
  c->hook_state = st ? strdup(st) : NULL;
  c->hook_start_state = st2 ? strdup(st2) : c->hook_state ? strdup(c->hook_state) : NULL;
  json_free(m);
  return run_hooks(hooks, "createContainer", c->hook_state, err);
}

int container_start_hooks(struct ctx *c, struct herr *err) {
  if (c->exec_mode) return 0;
  return run_hooks(json_get(c->spec, "hooks"), "startContainer", c->hook_start_state, err);
}
