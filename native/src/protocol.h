/*
 * Wire protocol between the TypeScript runtime (runtime/helper/protocol.ts) and tsbuild-helper.
 *
 * Transport: the helper's fd 3, a full-duplex unix stream socket made by the parent.
 * Framing: every message is a 4-byte little-endian length N (1 <= N <= PROTO_MAX_MESSAGE)
 * followed by N bytes of UTF-8 JSON, an object with a string member "kind".
 *
 * TS -> helper
 *   {"kind":"config", "bundle":DIR, "configPath":PATH? | "config":{...spec}?,
 *    "cgroupProcs":[PATH...]?, "waitStart":BOOL?, "execFifo":PATH?, "init":BOOL?,
 *    "exitFile":PATH?, "preserveFds":N?, "exec":BOOL?, "consoleSocket":PATH?}       exactly once, first
 *   {"kind":"mapping-written"}     after answering a mapping-request
 *   {"kind":"start"}               releases a container created with waitStart and no execFifo
 *   {"kind":"hooks-done", "state":TEXT, "startState":TEXT}   after running prestart + createRuntime
 *                                  hooks on the host (answer to hooks-request); the texts are the
 *                                  state JSON given to createContainer / startContainer hooks
 *
 * helper -> TS
 *   {"kind":"pid", "pid":N}                       host pid of the container's first process
 *   {"kind":"mapping-request", "pid":N}           write /proc/N/{uid,gid}_map, then answer
 *   {"kind":"hooks-request", "pid":N}             run prestart + createRuntime hooks, then answer
 *   {"kind":"created", "droppedCapabilities":[NAME...]}  set up; waiting for start (or about to exec)
 *   {"kind":"started"}                            execve of process.args succeeded
 *   {"kind":"error", "step":STEP, "errno":N, "message":TEXT}   setup failed (the helper then exits)
 *   {"kind":"exit", "exitCode":N, "signal":NAME?}  the container's first process ended
 *
 * With process.terminal the child sends the pty master to the monitor ({"kind":"terminal"} with
 * SCM_RIGHTS on the private socket); the monitor relays its own stdin/stdout to it, or, with
 * consoleSocket, sends it to that unix socket (SCM_RIGHTS, as runc) and keeps no copy.
 *
 * Steps are listed in SetupStep in protocol.ts; keep both lists identical.
 * The child side talks to the monitor over a private socketpair with the same framing; the
 * monitor relays its messages and answers with one byte: 'M' (mapping written), 'S' (start),
 * 'H' (hooks done; the hooks-done message follows, framed).
 */
#ifndef TSBUILD_PROTOCOL_H
#define TSBUILD_PROTOCOL_H
#include <stddef.h>
#include <stdint.h>
#include "json.h"

#define PROTO_FD 3
#define PROTO_MAX_MESSAGE (16u << 20)

/* Writes one framed message; returns 0 or -1 (errno set). Never raises SIGPIPE. */
int proto_send(int fd, const char *json, size_t len);
/* Reads one framed message into *out (malloc'd, NUL-terminated). Returns 1 on a message,
 * 0 on EOF before a header, -1 on error (errno set; EPROTO for a bad frame). */
int proto_recv(int fd, char **out, size_t *len);
/* Like proto_send, with `passfd` attached as SCM_RIGHTS (child -> monitor only). */
int proto_send_fd(int fd, const char *json, size_t len, int passfd);
/* Like proto_recv; an fd passed with the message is stored in *passed (else -1). */
int proto_recv_fd(int fd, char **out, size_t *len, int *passed);
/* Sends {"kind":"error",...}. */
int proto_send_error(int fd, const char *step, int errnum, const char *message);
#endif
