/* Capabilities: names, the host bounding set, capset and ambient caps (runc's capabilities package). */
#include "helper.h"
#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *const CAP_NAMES[] = {
  "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
  "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
  "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
  "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
  "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
  "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
  "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
  "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
};
#define NCAPS ((int)(sizeof CAP_NAMES / sizeof CAP_NAMES[0]))

int cap_by_name(const char *name) {
  for (int i = 0; i < NCAPS; i++) if (!strcasecmp(CAP_NAMES[i], name) || !strcasecmp(CAP_NAMES[i] + 4, name)) return i;
  return -1;
}

const char *cap_name(int cap) { return cap >= 0 && cap < NCAPS ? CAP_NAMES[cap] : "CAP_UNKNOWN"; }

int cap_last(void) {
  static int last = -1;
  if (last >= 0) return last;
  FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
  if (f) { if (fscanf(f, "%d", &last) != 1) last = -1; fclose(f); }
  if (last < 0 || last >= 64) last = NCAPS - 1;
  return last;
}

/* The caps the host lets us keep: known to the kernel and in our own bounding set. */
static uint64_t host_caps(void) {
  uint64_t m = 0;
  for (int i = 0; i <= cap_last(); i++) if (prctl(PR_CAPBSET_READ, i, 0, 0, 0) == 1) m |= 1ull << i;
  return m;
}

/* Unknown names are an error (runc rejects them too); caps the host lacks are dropped silently
 * here and reported through dropped_caps(). */
int caps_from_spec(const struct json *caps, const char *set, uint64_t *out, struct herr *err) {
  *out = 0;
  struct json *a = json_arr(caps, set);
  if (!a) return 0;
  for (size_t i = 0; i < a->len; i++) {
    if (a->items[i]->type != JSON_STRING) return fail(err, "capabilities", EINVAL, "process.capabilities.%s[%zu] is not a string", set, i);
    int c = cap_by_name(a->items[i]->string);
    if (c < 0) return fail(err, "capabilities", EINVAL, "unknown capability %s in process.capabilities.%s", a->items[i]->string, set);
    *out |= 1ull << c;
  }
  *out &= host_caps();
  return 0;
}

void dropped_caps(const struct json *caps, struct sbuf *out) {
  static const char *const sets[] = { "bounding", "effective", "permitted", "inheritable", "ambient" };
  uint64_t host = host_caps(), seen = 0;
  bool first = true;
  sb_puts(out, "[");
  for (size_t s = 0; s < 5; s++) {
    struct json *a = json_arr(caps, sets[s]);
    for (size_t i = 0; a && i < a->len; i++) {
      if (a->items[i]->type != JSON_STRING) continue;
      int c = cap_by_name(a->items[i]->string);
      if (c < 0 || (host & (1ull << c)) || (seen & (1ull << c))) continue;
      seen |= 1ull << c;
      if (!first) sb_puts(out, ",");
      sb_json_str(out, cap_name(c));
      first = false;
    }
  }
  sb_puts(out, "]");
}

int apply_bounding(uint64_t bounding, struct herr *err) {
  for (int i = 0; i <= cap_last(); i++) {
    if (bounding & (1ull << i)) continue;
    if (prctl(PR_CAPBSET_READ, i, 0, 0, 0) != 1) continue;
    if (prctl(PR_CAPBSET_DROP, i, 0, 0, 0) < 0) return fail(err, "capabilities", errno, "dropping %s from the bounding set", cap_name(i));
  }
  return 0;
}

int apply_caps(const struct json *caps, struct herr *err) {
  uint64_t eff, perm, inh, amb;
  if (caps_from_spec(caps, "effective", &eff, err) || caps_from_spec(caps, "permitted", &perm, err) ||
      caps_from_spec(caps, "inheritable", &inh, err) || caps_from_spec(caps, "ambient", &amb, err))
    return -1;
  struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  data[0].effective = (uint32_t)eff; data[1].effective = (uint32_t)(eff >> 32);
  data[0].permitted = (uint32_t)perm; data[1].permitted = (uint32_t)(perm >> 32);
  data[0].inheritable = (uint32_t)inh; data[1].inheritable = (uint32_t)(inh >> 32);
  if (syscall(SYS_capset, &hdr, data) < 0) return fail(err, "capabilities", errno, "capset (effective %#llx permitted %#llx inheritable %#llx)", (unsigned long long)eff, (unsigned long long)perm, (unsigned long long)inh);
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) return fail(err, "capabilities", errno, "clearing ambient capabilities");
  for (int i = 0; i <= cap_last(); i++) {
    if (!(amb & (1ull << i))) continue;
    /* like runc, an ambient cap that is not also permitted and inheritable is skipped (EPERM) */
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, i, 0, 0) < 0 && errno != EPERM) return fail(err, "capabilities", errno, "raising ambient %s", cap_name(i));
  }
  return 0;
}
