/* linux.seccomp of the runtime spec, compiled and loaded with libseccomp (runc's patchbpf-free path). */
#include "helper.h"
#include <ctype.h>
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_action(const char *name, const struct json *errno_ret, uint32_t *out, struct herr *err) {
  uint32_t ret = errno_ret && errno_ret->type == JSON_NUMBER ? (uint32_t)errno_ret->uinteger : 0;
  if (!strcmp(name, "SCMP_ACT_ALLOW")) *out = SCMP_ACT_ALLOW;
  else if (!strcmp(name, "SCMP_ACT_ERRNO")) *out = SCMP_ACT_ERRNO(errno_ret ? ret : EPERM);
  else if (!strcmp(name, "SCMP_ACT_KILL") || !strcmp(name, "SCMP_ACT_KILL_THREAD")) *out = SCMP_ACT_KILL_THREAD;
  else if (!strcmp(name, "SCMP_ACT_KILL_PROCESS")) *out = SCMP_ACT_KILL_PROCESS;
  else if (!strcmp(name, "SCMP_ACT_TRAP")) *out = SCMP_ACT_TRAP;
  else if (!strcmp(name, "SCMP_ACT_TRACE")) *out = SCMP_ACT_TRACE(errno_ret ? ret : EPERM);
  else if (!strcmp(name, "SCMP_ACT_LOG")) *out = SCMP_ACT_LOG;
  else return fail(err, "seccomp", EINVAL, "unsupported seccomp action %s", name);
  return 0;
}

static int parse_op(const char *name, enum scmp_compare *out) {
  static const struct { const char *n; enum scmp_compare op; } ops[] = {
    { "SCMP_CMP_NE", SCMP_CMP_NE }, { "SCMP_CMP_LT", SCMP_CMP_LT }, { "SCMP_CMP_LE", SCMP_CMP_LE },
    { "SCMP_CMP_EQ", SCMP_CMP_EQ }, { "SCMP_CMP_GE", SCMP_CMP_GE }, { "SCMP_CMP_GT", SCMP_CMP_GT },
    { "SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ },
  };
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) if (!strcmp(ops[i].n, name)) { *out = ops[i].op; return 0; }
  return -1;
}

static int add_rule(scmp_filter_ctx f, uint32_t act, int nr, unsigned n, const struct scmp_arg_cmp *cmp, const char *name, struct herr *err) {
  int rc = seccomp_rule_add_array(f, act, nr, n, cmp);
  /* -EACCES: the action equals the default action, nothing to add (libseccomp refuses it). */
  if (rc < 0 && rc != -EACCES) return fail(err, "seccomp", -rc, "adding the seccomp rule for %s", name);
  return 0;
}

int apply_seccomp(const struct json *sc, bool nnp, struct herr *err) {
  uint32_t def;
  const char *defname = json_str(sc, "defaultAction", NULL);
  if (!defname) return fail(err, "seccomp", EINVAL, "linux.seccomp.defaultAction is missing");
  if (parse_action(defname, json_get(sc, "defaultErrnoRet"), &def, err)) return -1;
  scmp_filter_ctx f = seccomp_init(def);
  if (!f) return fail(err, "seccomp", ENOMEM, "seccomp_init");
  int rc;
  /* no_new_privs is the spec's choice (process.noNewPrivileges), not libseccomp's default. */
  seccomp_attr_set(f, SCMP_FLTATR_CTL_NNP, nnp ? 1 : 0);
  struct json *flags = json_arr(sc, "flags");
  for (size_t i = 0; flags && i < flags->len; i++) {
    const char *fl = flags->items[i]->type == JSON_STRING ? flags->items[i]->string : "";
    if (!strcmp(fl, "SECCOMP_FILTER_FLAG_LOG")) seccomp_attr_set(f, SCMP_FLTATR_CTL_LOG, 1);
    else if (!strcmp(fl, "SECCOMP_FILTER_FLAG_SPEC_ALLOW")) seccomp_attr_set(f, SCMP_FLTATR_CTL_SSB, 1);
    else if (!strcmp(fl, "SECCOMP_FILTER_FLAG_TSYNC")) seccomp_attr_set(f, SCMP_FLTATR_CTL_TSYNC, 1);
    else { seccomp_release(f); return fail(err, "seccomp", EINVAL, "unsupported seccomp flag %s", fl); }
  }
  struct json *arches = json_arr(sc, "architectures");
  for (size_t i = 0; arches && i < arches->len; i++) {
    if (arches->items[i]->type != JSON_STRING) continue;
    char name[64];
    const char *a = arches->items[i]->string;
    if (!strncmp(a, "SCMP_ARCH_", 10)) a += 10;
    snprintf(name, sizeof name, "%s", a);
    for (char *p = name; *p; p++) *p = (char)tolower((unsigned char)*p);
    uint32_t arch = seccomp_arch_resolve_name(name);
    if (!arch) continue; /* an architecture this libseccomp does not know cannot run here anyway */
    rc = seccomp_arch_add(f, arch);
    if (rc < 0 && rc != -EEXIST) { seccomp_release(f); return fail(err, "seccomp", -rc, "adding seccomp architecture %s", a); }
  }
  struct json *rules = json_arr(sc, "syscalls");
  for (size_t i = 0; rules && i < rules->len; i++) {
    struct json *r = rules->items[i];
    const char *actname = json_str(r, "action", NULL);
    if (!actname) { seccomp_release(f); return fail(err, "seccomp", EINVAL, "linux.seccomp.syscalls[%zu].action is missing", i); }
    uint32_t act;
    if (parse_action(actname, json_get(r, "errnoRet"), &act, err)) { seccomp_release(f); return -1; }
    struct json *args = json_arr(r, "args");
    struct scmp_arg_cmp cmp[6];
    unsigned n = 0;
    bool same_index = false;
    for (size_t k = 0; args && k < args->len; k++) {
      if (n == 6) { seccomp_release(f); return fail(err, "seccomp", EINVAL, "linux.seccomp.syscalls[%zu] has more than 6 args", i); }
      enum scmp_compare op;
      if (parse_op(json_str(args->items[k], "op", ""), &op) < 0) { seccomp_release(f); return fail(err, "seccomp", EINVAL, "unsupported seccomp operator %s", json_str(args->items[k], "op", "")); }
      cmp[n].arg = (unsigned)json_uint(args->items[k], "index", 0);
      cmp[n].op = op;
      cmp[n].datum_a = json_uint(args->items[k], "value", 0);
      cmp[n].datum_b = json_uint(args->items[k], "valueTwo", 0);
      for (unsigned m = 0; m < n; m++) if (cmp[m].arg == cmp[n].arg) same_index = true;
      n++;
    }
    struct json *names = json_arr(r, "names");
    for (size_t k = 0; names && k < names->len; k++) {
      if (names->items[k]->type != JSON_STRING) continue;
      const char *name = names->items[k]->string;
      int nr = seccomp_syscall_resolve_name(name);
      if (nr == __NR_SCMP_ERROR) continue; /* unknown to this kernel/libseccomp: nothing to filter */
      /* libseccomp rejects two comparisons of one argument in a rule; like runc, add one rule each. */
      if (same_index) {
        for (unsigned m = 0; m < n; m++) if (add_rule(f, act, nr, 1, &cmp[m], name, err)) { seccomp_release(f); return -1; }
      } else if (add_rule(f, act, nr, n, cmp, name, err)) { seccomp_release(f); return -1; }
    }
  }
  rc = seccomp_load(f);
  seccomp_release(f);
  if (rc < 0) return fail(err, "seccomp", -rc, "loading the seccomp filter");
  return 0;
}
