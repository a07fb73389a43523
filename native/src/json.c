#include "json.h"
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <stdarg.h>

struct parser { const char *p, *end; char *err; size_t errlen; int depth; };

static void *xcalloc(size_t n, size_t s) { void *p = calloc(n ? n : 1, s); if (!p) abort(); return p; }

static void fail(struct parser *ps, const char *what) {
  if (ps->err && ps->errlen && !ps->err[0]) snprintf(ps->err, ps->errlen, "%s", what);
}

static void skip_ws(struct parser *ps) {
  while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) ps->p++;
}

static void put_utf8(struct sbuf *b, unsigned cp) {
  char tmp[5] = {0};
  if (cp < 0x80) { tmp[0] = (char)cp; }
  else if (cp < 0x800) { tmp[0] = (char)(0xC0 | (cp >> 6)); tmp[1] = (char)(0x80 | (cp & 0x3F)); }
  else if (cp < 0x10000) { tmp[0] = (char)(0xE0 | (cp >> 12)); tmp[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); tmp[2] = (char)(0x80 | (cp & 0x3F)); }
  else { tmp[0] = (char)(0xF0 | (cp >> 18)); tmp[1] = (char)(0x80 | ((cp >> 12) & 0x3F)); tmp[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); tmp[3] = (char)(0x80 | (cp & 0x3F)); }
  sb_puts(b, tmp);
}

static int hex4(struct parser *ps, unsigned *out) {
  if (ps->end - ps->p < 4) return -1;
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    char c = ps->p[i]; v <<= 4;
    if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
    else return -1;
  }
  ps->p += 4; *out = v; return 0;
}

static char *parse_string(struct parser *ps) {
  struct sbuf b = {0};
  ps->p++; /* opening quote */
  sb_puts(&b, "");
  while (ps->p < ps->end && *ps->p != '"') {
    char c = *ps->p++;
    if ((unsigned char)c < 0x20) { fail(ps, "control character in string"); sb_free(&b); return NULL; }
    if (c != '\\') { char t[2] = {c, 0}; sb_puts(&b, t); continue; }
    if (ps->p >= ps->end) break;
    char e = *ps->p++;
    switch (e) {
    case '"': sb_puts(&b, "\""); break;
    case '\\': sb_puts(&b, "\\"); break;
    case '/': sb_puts(&b, "/"); break;
    case 'b': sb_puts(&b, "\b"); break;
    case 'f': sb_puts(&b, "\f"); break;
    case 'n': sb_puts(&b, "\n"); break;
    case 'r': sb_puts(&b, "\r"); break;
    case 't': sb_puts(&b, "\t"); break;
    case 'u': {
      unsigned cp;
      if (hex4(ps, &cp) < 0) { fail(ps, "bad \\u escape"); sb_free(&b); return NULL; }
      if (cp >= 0xD800 && cp < 0xDC00 && ps->end - ps->p >= 6 && ps->p[0] == '\\' && ps->p[1] == 'u') {
        unsigned lo; ps->p += 2;
        if (hex4(ps, &lo) < 0) { fail(ps, "bad \\u escape"); sb_free(&b); return NULL; }
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
      }
      if (cp == 0) { fail(ps, "NUL in string"); sb_free(&b); return NULL; }
      put_utf8(&b, cp);
      break;
    }
    default: fail(ps, "bad escape"); sb_free(&b); return NULL;
    }
  }
  if (ps->p >= ps->end) { fail(ps, "unterminated string"); sb_free(&b); return NULL; }
  ps->p++;
  return b.buf;
}

static struct json *parse_value(struct parser *ps);

static struct json *parse_container(struct parser *ps, bool object) {
  struct json *j = xcalloc(1, sizeof *j);
  j->type = object ? JSON_OBJECT : JSON_ARRAY;
  size_t cap = 0;
  ps->p++;
  skip_ws(ps);
  if (ps->p < ps->end && *ps->p == (object ? '}' : ']')) { ps->p++; return j; }
  for (;;) {
    char *key = NULL;
    skip_ws(ps);
    if (object) {
      if (ps->p >= ps->end || *ps->p != '"') { fail(ps, "expected member name"); json_free(j); return NULL; }
      key = parse_string(ps);
      if (!key) { json_free(j); return NULL; }
      skip_ws(ps);
      if (ps->p >= ps->end || *ps->p != ':') { free(key); fail(ps, "expected ':'"); json_free(j); return NULL; }
      ps->p++;
    }
    struct json *v = parse_value(ps);
    if (!v) { free(key); json_free(j); return NULL; }
    if (j->len == cap) {
      cap = cap ? cap * 2 : 8;
      j->items = realloc(j->items, cap * sizeof *j->items);
      if (object) j->keys = realloc(j->keys, cap * sizeof *j->keys);
      if (!j->items || (object && !j->keys)) abort();
    }
    j->items[j->len] = v;
    if (object) j->keys[j->len] = key;
    j->len++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ',') { ps->p++; continue; }
    if (ps->p < ps->end && *ps->p == (object ? '}' : ']')) { ps->p++; return j; }
    fail(ps, object ? "expected ',' or '}'" : "expected ',' or ']'");
    json_free(j);
    return NULL;
  }
}

static struct json *parse_value(struct parser *ps) {
  if (++ps->depth > 200) { fail(ps, "nesting too deep"); return NULL; }
  skip_ws(ps);
  struct json *j = NULL;
  if (ps->p >= ps->end) { fail(ps, "unexpected end of input"); ps->depth--; return NULL; }
  char c = *ps->p;
  if (c == '{' || c == '[') j = parse_container(ps, c == '{');
  else if (c == '"') {
    char *s = parse_string(ps);
    if (s) { j = xcalloc(1, sizeof *j); j->type = JSON_STRING; j->string = s; j->len = strlen(s); }
  } else if (ps->end - ps->p >= 4 && !memcmp(ps->p, "true", 4)) { j = xcalloc(1, sizeof *j); j->type = JSON_BOOL; j->boolean = true; ps->p += 4; }
  else if (ps->end - ps->p >= 5 && !memcmp(ps->p, "false", 5)) { j = xcalloc(1, sizeof *j); j->type = JSON_BOOL; ps->p += 5; }
  else if (ps->end - ps->p >= 4 && !memcmp(ps->p, "null", 4)) { j = xcalloc(1, sizeof *j); j->type = JSON_NULL; ps->p += 4; }
  else if (c == '-' || (c >= '0' && c <= '9')) {
    const char *s = ps->p;
    bool integral = true;
    while (ps->p < ps->end && strchr("+-0123456789.eE", *ps->p)) { if (strchr(".eE", *ps->p)) integral = false; ps->p++; }
    char tmp[64];
    size_t n = (size_t)(ps->p - s);
    if (n >= sizeof tmp) { fail(ps, "number too long"); ps->depth--; return NULL; }
    memcpy(tmp, s, n); tmp[n] = 0;
    j = xcalloc(1, sizeof *j);
    j->type = JSON_NUMBER;
    j->number = strtod(tmp, NULL);
    if (integral) {
      if (tmp[0] == '-') { j->integer = strtoll(tmp, NULL, 10); j->uinteger = (uint64_t)j->integer; }
      else { j->uinteger = strtoull(tmp, NULL, 10); j->integer = (int64_t)j->uinteger; }
    } else { j->integer = (int64_t)j->number; j->uinteger = (uint64_t)j->number; }
  } else fail(ps, "unexpected character");
  ps->depth--;
  return j;
}

struct json *json_parse(const char *text, size_t n, char *err, size_t errlen) {
  struct parser ps = { text, text + n, err, errlen, 0 };
  if (err && errlen) err[0] = 0;
  struct json *j = parse_value(&ps);
  if (!j) {
    if (err && errlen) { char tmp[96]; snprintf(tmp, sizeof tmp, " (offset %ld)", (long)(ps.p - text)); strncat(err, tmp, errlen - strlen(err) - 1); }
    return NULL;
  }
  skip_ws(&ps);
  if (ps.p != ps.end) { if (err) snprintf(err, errlen, "trailing data at offset %ld", (long)(ps.p - text)); json_free(j); return NULL; }
  return j;
}

void json_free(struct json *j) {
  if (!j) return;
  for (size_t i = 0; i < j->len && j->items; i++) { json_free(j->items[i]); if (j->keys) free(j->keys[i]); }
  free(j->items); free(j->keys); free(j->string); free(j);
}

struct json *json_get(const struct json *obj, const char *key) {
  if (!obj || obj->type != JSON_OBJECT) return NULL;
  for (size_t i = 0; i < obj->len; i++) if (!strcmp(obj->keys[i], key)) return obj->items[i];
  return NULL;
}
const char *json_str(const struct json *obj, const char *key, const char *fallback) {
  struct json *v = json_get(obj, key); return v && v->type == JSON_STRING ? v->string : fallback;
}
bool json_bool(const struct json *obj, const char *key, bool fallback) {
  struct json *v = json_get(obj, key); return v && v->type == JSON_BOOL ? v->boolean : fallback;
}
int64_t json_int(const struct json *obj, const char *key, int64_t fallback) {
  struct json *v = json_get(obj, key); return v && v->type == JSON_NUMBER ? v->integer : fallback;
}
uint64_t json_uint(const struct json *obj, const char *key, uint64_t fallback) {
  struct json *v = json_get(obj, key); return v && v->type == JSON_NUMBER ? v->uinteger : fallback;
}
struct json *json_arr(const struct json *obj, const char *key) {
  struct json *v = json_get(obj, key); return v && v->type == JSON_ARRAY ? v : NULL;
}

static void sb_grow(struct sbuf *b, size_t extra) {
  if (b->len + extra + 1 <= b->cap) return;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + extra + 1) cap *= 2;
  b->buf = realloc(b->buf, cap);
  if (!b->buf) abort();
  b->cap = cap;
}
void sb_puts(struct sbuf *b, const char *s) {
  size_t n = strlen(s);
  sb_grow(b, n);
  memcpy(b->buf + b->len, s, n + 1);
  b->len += n;
}
void sb_printf(struct sbuf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  sb_grow(b, (size_t)n);
  va_start(ap, fmt);
  vsnprintf(b->buf + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}
void sb_json_str(struct sbuf *b, const char *s) {
  sb_puts(b, "\"");
  for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
    if (*p == '"') sb_puts(b, "\\\"");
    else if (*p == '\\') sb_puts(b, "\\\\");
    else if (*p < 0x20) sb_printf(b, "\\u%04x", *p);
    else { char t[2] = {(char)*p, 0}; sb_puts(b, t); }
  }
  sb_puts(b, "\"");
}
void sb_free(struct sbuf *b) { free(b->buf); b->buf = NULL; b->len = b->cap = 0; }
