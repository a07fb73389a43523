/* A tiny JSON DOM parser: enough for OCI runtime-spec config.json and the helper protocol. */
#ifndef TSBUILD_JSON_H
#define TSBUILD_JSON_H
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

struct json {
  enum json_type type;
  bool boolean;
  double number;
  int64_t integer; /* exact when the literal had no fraction/exponent */
  uint64_t uinteger;
  char *string;    /* JSON_STRING (NUL-terminated; embedded NULs rejected) */
  size_t len;      /* number of items (array) or members (object) */
  struct json **items;
  char **keys;     /* object member names, parallel to items */
};

/* Parses `text` (length n). Returns NULL and fills err (>= 128 bytes) on failure. */
struct json *json_parse(const char *text, size_t n, char *err, size_t errlen);
void json_free(struct json *j);
/* Member of an object, or NULL when missing / not an object. */
struct json *json_get(const struct json *obj, const char *key);
/* Typed accessors: return the fallback when missing or of another type. */
const char *json_str(const struct json *obj, const char *key, const char *fallback);
bool json_bool(const struct json *obj, const char *key, bool fallback);
int64_t json_int(const struct json *obj, const char *key, int64_t fallback);
uint64_t json_uint(const struct json *obj, const char *key, uint64_t fallback);
/* Array member (or NULL when missing / not an array). */
struct json *json_arr(const struct json *obj, const char *key);

/* Growable string buffer for writing JSON. */
struct sbuf { char *buf; size_t len, cap; };
void sb_puts(struct sbuf *b, const char *s);
void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_json_str(struct sbuf *b, const char *s); /* writes a quoted, escaped JSON string */
void sb_free(struct sbuf *b);
#endif
