/*
 * json.c -- JSON text <-> lls_value (value.h), on Debian's yajl 2.
 *
 * Decoding uses yajl's event parser and builds the value directly (no
 * yajl_tree, whose numbers lose the int/float distinction). yajl's own
 * checks are loose in places, so this file adds what JSON and value.h
 * need: strict UTF-8 (no overlongs, surrogates or code points past
 * U+10FFFF), paired \u surrogate escapes and only JSON's four whitespace
 * characters between tokens (json_scan.h), exact int64 parsing, a nesting
 * limit, and sorted unique object members with the last duplicate winning.
 *
 * Numbers never go through the process locale: a host that called
 * setlocale() (os.setlocale from Lua) may have ',' as its decimal point,
 * so float text is produced and parsed under a thread-local "C" locale
 * (POSIX uselocale), which is thread-safe and needs no global state.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* uselocale; the Makefile defines it too */
#endif

#include "value/value.h"
#include "value/json.h"
#include "value/json_scan.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_parse.h>

/* ------------------------------------------------------------- helpers */

static void set_err(char *err, size_t errlen, const char *fmt, ...) {
  if (err == NULL || errlen == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

/* Strict UTF-8 (RFC 3629): rejects overlong forms, UTF-16 surrogates
 * (which is also how yajl's decoding of a lone "\udc00" escape shows up)
 * and anything past U+10FFFF. 1 when valid. */
static int utf8_valid(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t need;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c >= 0xE0 && c <= 0xEF) {
      need = 2;
      if (c == 0xE0) lo = 0xA0;      /* overlong */
      else if (c == 0xED) hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
      need = 3;
      if (c == 0xF0) lo = 0x90;      /* overlong */
      else if (c == 0xF4) hi = 0x8F; /* past U+10FFFF */
    } else
      return 0;
    if (n - i - 1 < need) return 0;
    if (s[i + 1] < lo || s[i + 1] > hi) return 0;
    for (size_t k = 2; k <= need; k++)
      if ((s[i + k] & 0xC0) != 0x80) return 0;
    i += need + 1;
  }
  return 1;
}

/* The "C" locale for number text. glibc hands out a static object for
 * "C" (no allocation); (locale_t)0 if unavailable, and then the caller
 * stays in the current locale. */
static locale_t c_locale(void) { return newlocale(LC_ALL_MASK, "C", (locale_t)0); }

/* ------------------------------------------------------------ encoding */

/* A path from the root to the value being written, kept on the C stack
 * and rendered only when an error needs it. */
typedef struct path_link {
  const struct path_link *up;
  const char *key; /* member key, or NULL for an array item */
  size_t klen;
  size_t index; /* 1-based array index (as Lua counts) */
} path_link;

static size_t render_path(const path_link *p, char *out, size_t cap) {
  size_t n = 0;
  if (p == NULL) {
    if (cap > 1) out[n++] = '$';
  } else {
    n = render_path(p->up, out, cap);
    char piece[48];
    if (p->key != NULL) {
      if (n + 1 < cap) out[n++] = '.';
      for (size_t i = 0; i < p->klen && n + 1 < cap; i++) {
        unsigned char c = (unsigned char)p->key[i];
        /* keep messages printable even when the key is the bad string */
        out[n++] = (c < 0x20 || c == 0x7F) ? '?' : (char)c;
      }
    } else {
      snprintf(piece, sizeof piece, "[%zu]", p->index);
      for (size_t i = 0; piece[i] != '\0' && n + 1 < cap; i++) out[n++] = piece[i];
    }
  }
  if (cap > 0) out[n < cap ? n : cap - 1] = '\0';
  return n;
}

typedef struct enc {
  yajl_gen g;
  lls_buf *out;
  int oom;
  locale_t cloc;
  char *err;
  size_t errlen;
  int base; /* the depth at which g started */
} enc;

/* yajl's generator refuses to open more than YAJL_MAX_DEPTH - 1 (127)
 * containers, one fewer than LLS_MAX_DEPTH. So every ENC_SPLIT levels a
 * subtree is written by a generator of its own and handed to the outer
 * one as raw text (yajl_gen_number prints what it is given, with the
 * separators around it). */
#define ENC_SPLIT 64

static void enc_print(void *ctx, const char *s, size_t len) {
  enc *e = ctx;
  if (!e->oom && lls_buf_append(e->out, s, len) != 0) e->oom = 1;
}

/* "<path>: <what>"; a path too long for its buffer ends in "...", which
 * keeps the reason inside the callers' 300-byte messages. */
static int enc_fail(enc *e, const path_link *at, const char *what) {
  char path[160];
  size_t n = render_path(at, path, sizeof path);
  set_err(e->err, e->errlen, "%s%s: %s", path, n + 1 >= sizeof path ? "..." : "", what);
  return -1;
}

static int gen_ok(enc *e, const path_link *at, yajl_gen_status st) {
  if (e->oom) return enc_fail(e, at, "out of memory");
  if (st == yajl_gen_status_ok) return 0;
  if (st == yajl_gen_invalid_string) return enc_fail(e, at, "string is not valid UTF-8");
  return enc_fail(e, at, "JSON generator error");
}

/* Shortest of 15, 16 or 17 significant digits that reads back as the same
 * double (17 always does), with ".0" added when the text would otherwise
 * read back as an integer. Called under the "C" locale. */
static void format_float(double f, char *buf, size_t cap) {
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(buf, cap, "%.*g", prec, f);
    if (prec == 17 || strtod(buf, NULL) == f) break;
  }
  /* A whole number below 2^63 in exponent form ("1e+15") comes back from
   * PostgreSQL's jsonb, which writes numbers in plain digits, as an
   * integer: written out with ".0" it stays a float everywhere. */
  if (strpbrk(buf, "eE") != NULL && f == floor(f) && fabs(f) < 9223372036854775808.0)
    snprintf(buf, cap, "%.0f", f);
  if (strpbrk(buf, ".eE") == NULL) {
    size_t n = strlen(buf);
    if (n + 3 <= cap) memcpy(buf + n, ".0", 3);
  }
}

static int encode_value(enc *e, const lls_value *v, const path_link *at, int depth);

/* Opens a generator writing into out for e (its first level at depth
 * base); 0, or -1 when out of memory. */
static int enc_open(enc *e, lls_buf *out, int base) {
  e->g = yajl_gen_alloc(NULL);
  e->out = out;
  e->oom = 0;
  e->base = base;
  if (e->g == NULL) return -1;
  /* No beautify: compact output with no spaces. UTF-8 is checked before
   * each string (strictly); yajl's own, looser check stays on as a second
   * guard. */
  yajl_gen_config(e->g, yajl_gen_validate_utf8, 1);
  yajl_gen_config(e->g, yajl_gen_print_callback, (yajl_print_t)enc_print, (void *)e);
  return 0;
}

/* Writes the container v (at depth) with a generator of its own, then
 * hands its text to e's generator (see ENC_SPLIT). */
static int encode_split(enc *e, const lls_value *v, const path_link *at, int depth) {
  lls_buf text = {0};
  enc sub = *e;
  if (enc_open(&sub, &text, depth) != 0) return enc_fail(e, at, "out of memory");
  int rc = encode_value(&sub, v, at, depth);
  yajl_gen_free(sub.g);
  if (rc == 0) rc = gen_ok(e, at, yajl_gen_number(e->g, text.data, text.len));
  lls_buf_free(&text);
  return rc;
}

static int encode_value(enc *e, const lls_value *v, const path_link *at, int depth) {
  int container = v->type == LLS_VARRAY || v->type == LLS_VOBJECT;
  if (container && depth >= LLS_MAX_DEPTH) {
    char what[80];
    snprintf(what, sizeof what, "nested too deeply for JSON (more than %d levels)",
             LLS_MAX_DEPTH);
    return enc_fail(e, at, what);
  }
  if (container && depth - e->base >= ENC_SPLIT) return encode_split(e, v, at, depth);
  switch (v->type) {
  case LLS_VNULL: return gen_ok(e, at, yajl_gen_null(e->g));
  case LLS_VBOOL: return gen_ok(e, at, yajl_gen_bool(e->g, v->u.b != 0));
  case LLS_VINT: return gen_ok(e, at, yajl_gen_integer(e->g, (long long)v->u.i));
  case LLS_VFLOAT: {
    if (!isfinite(v->u.f)) return enc_fail(e, at, "NaN and infinity cannot be written as JSON");
    char buf[40];
    locale_t old = e->cloc != (locale_t)0 ? uselocale(e->cloc) : (locale_t)0;
    format_float(v->u.f, buf, sizeof buf);
    if (old != (locale_t)0) uselocale(old);
    /* yajl_gen_number writes the text as given (yajl_gen_double would
     * reformat with %.20g) */
    return gen_ok(e, at, yajl_gen_number(e->g, buf, strlen(buf)));
  }
  case LLS_VSTRING:
    if (!utf8_valid((const unsigned char *)v->u.s.ptr, v->u.s.len))
      return enc_fail(e, at, "string is not valid UTF-8");
    return gen_ok(e, at,
                  yajl_gen_string(e->g, (const unsigned char *)v->u.s.ptr, v->u.s.len));
  case LLS_VARRAY: {
    if (gen_ok(e, at, yajl_gen_array_open(e->g)) != 0) return -1;
    for (size_t i = 0; i < v->u.a.n; i++) {
      path_link here = {at, NULL, 0, i + 1};
      if (encode_value(e, v->u.a.items[i], &here, depth + 1) != 0) return -1;
    }
    return gen_ok(e, at, yajl_gen_array_close(e->g));
  }
  case LLS_VOBJECT: {
    if (gen_ok(e, at, yajl_gen_map_open(e->g)) != 0) return -1;
    for (size_t i = 0; i < v->u.o.n; i++) {
      const lls_member *m = &v->u.o.members[i];
      path_link here = {at, m->key, m->klen, 0};
      if (!utf8_valid((const unsigned char *)m->key, m->klen))
        return enc_fail(e, &here, "key is not valid UTF-8");
      if (gen_ok(e, &here, yajl_gen_string(e->g, (const unsigned char *)m->key, m->klen)) != 0)
        return -1;
      if (encode_value(e, m->value, &here, depth + 1) != 0) return -1;
    }
    return gen_ok(e, at, yajl_gen_map_close(e->g));
  }
  }
  return enc_fail(e, at, "unknown value type");
}

int lls_json_encode(const lls_value *v, lls_buf *out, char *err, size_t errlen) {
  if (v == NULL) {
    set_err(err, errlen, "$: no value");
    return -1;
  }
  enc e = {NULL, out, 0, c_locale(), err, errlen, 0};
  if (enc_open(&e, out, 0) != 0) {
    if (e.cloc != (locale_t)0) freelocale(e.cloc);
    set_err(err, errlen, "out of memory");
    return -1;
  }
  size_t start = out->len;
  int rc = encode_value(&e, v, NULL, 0);
  yajl_gen_free(e.g);
  if (e.cloc != (locale_t)0) freelocale(e.cloc);
  if (rc != 0) out->len = start; /* nothing half-written stays in the buffer */
  return rc;
}

/* ------------------------------------------------------------ decoding */

/* A member of an object under construction, in arrival order. The key
 * lives in the frame's key arena (an offset: the arena moves as it grows). */
typedef struct pending {
  size_t koff, klen;
  size_t seq; /* arrival order, so the last duplicate wins after sorting */
  lls_value *value;
  const char *key; /* set just before sorting, when the arena is final */
} pending;

typedef struct frame {
  int is_object;
  lls_value *array; /* arrays are built in place with lls_value_push */
  pending *m;       /* objects are collected here and sorted at the end */
  size_t n, cap;
  lls_buf keys;
  size_t key_off, key_len; /* the key waiting for its value */
} frame;

typedef struct dec {
  /* frames are reused level by level; their buffers are freed at the end.
   * They grow with the nesting met, so a flat value costs a few. */
  frame *st;
  int cap;
  int limit; /* levels allowed */
  int depth;
  lls_value *root;
  locale_t cloc;
  int have_cloc;
  char *err;
  size_t errlen;
  int failed; /* a callback set err itself */
} dec;

static int dec_fail(dec *d, const char *fmt, ...) {
  if (d->err != NULL && d->errlen > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->err, d->errlen, fmt, ap);
    va_end(ap);
  }
  d->failed = 1;
  return 0; /* a zero return cancels the yajl parse */
}

/* Hands a finished value to its container (or makes it the root). */
static int dec_add(dec *d, lls_value *v) {
  if (v == NULL) return dec_fail(d, "out of memory");
  if (d->depth == 0) {
    d->root = v; /* yajl refuses a second top-level value */
    return 1;
  }
  frame *f = &d->st[d->depth - 1];
  if (!f->is_object) {
    if (lls_value_push(f->array, v) != 0) return dec_fail(d, "out of memory");
    return 1;
  }
  if (f->n == f->cap) {
    size_t cap = f->cap ? f->cap * 2 : 8;
    pending *p = cap <= SIZE_MAX / sizeof *p ? realloc(f->m, cap * sizeof *p) : NULL;
    if (p == NULL) {
      lls_value_free(v);
      return dec_fail(d, "out of memory");
    }
    f->m = p;
    f->cap = cap;
  }
  pending *p = &f->m[f->n];
  p->koff = f->key_off;
  p->klen = f->key_len;
  p->seq = f->n;
  p->value = v;
  f->n++;
  return 1;
}

static int cb_null(void *ctx) { return dec_add(ctx, lls_value_null()); }

static int cb_boolean(void *ctx, int b) { return dec_add(ctx, lls_value_bool(b)); }

static int cb_number(void *ctx, const char *s, size_t len) {
  dec *d = ctx;
  char small[64];
  char *text = len < sizeof small ? small : malloc(len + 1);
  if (text == NULL) return dec_fail(d, "out of memory");
  memcpy(text, s, len);
  text[len] = '\0';
  lls_value *v = NULL;
  int done = 0;
  if (strpbrk(text, ".eE") == NULL) {
    /* an integer: exact when it fits int64, else read as a float below */
    errno = 0;
    long long i = strtoll(text, NULL, 10);
    if (errno == 0) {
      v = lls_value_int((int64_t)i);
      done = 1;
    }
  }
  if (!done) {
    if (!d->have_cloc) {
      d->cloc = c_locale();
      d->have_cloc = 1;
    }
    locale_t old = d->cloc != (locale_t)0 ? uselocale(d->cloc) : (locale_t)0;
    double f = strtod(text, NULL);
    if (old != (locale_t)0) uselocale(old);
    if (!isfinite(f)) {
      int rc = dec_fail(d, "number out of range: %.40s", text);
      if (text != small) free(text);
      return rc;
    }
    v = lls_value_float(f);
  }
  if (text != small) free(text);
  return dec_add(d, v);
}

static int cb_string(void *ctx, const unsigned char *s, size_t len) {
  dec *d = ctx;
  if (!utf8_valid(s, len)) return dec_fail(d, "string is not valid UTF-8");
  return dec_add(d, lls_value_string((const char *)s, len));
}

static int push_frame(dec *d, int is_object) {
  if (d->depth >= d->limit) {
    if (d->limit > LLS_MAX_DEPTH) /* a record around the value (lls_vbuild) */
      return dec_fail(d, "a value in the record is nested deeper than %d levels",
                      LLS_MAX_DEPTH);
    return dec_fail(d, "nested deeper than %d levels", LLS_MAX_DEPTH);
  }
  if (d->depth == d->cap) {
    int cap = d->cap ? d->cap * 2 : 8;
    if (cap > d->limit) cap = d->limit;
    frame *st = realloc(d->st, (size_t)cap * sizeof *st);
    if (st == NULL) return dec_fail(d, "out of memory");
    memset(st + d->cap, 0, (size_t)(cap - d->cap) * sizeof *st);
    d->st = st;
    d->cap = cap;
  }
  frame *f = &d->st[d->depth];
  f->is_object = is_object;
  f->n = 0;
  f->keys.len = 0;
  f->array = NULL;
  if (!is_object && (f->array = lls_value_array()) == NULL) return dec_fail(d, "out of memory");
  d->depth++;
  return 1;
}

static int cb_start_map(void *ctx) { return push_frame(ctx, 1); }

static int cb_start_array(void *ctx) { return push_frame(ctx, 0); }

static int cb_map_key(void *ctx, const unsigned char *k, size_t len) {
  dec *d = ctx;
  frame *f = &d->st[d->depth - 1];
  if (!utf8_valid(k, len)) return dec_fail(d, "object key is not valid UTF-8");
  if (len > 0 && memchr(k, '\0', len) != NULL)
    return dec_fail(d, "object key contains a NUL character");
  f->key_off = f->keys.len;
  f->key_len = len;
  /* NUL-terminated: keeps keys.data non-NULL even when every key is "" */
  if (lls_buf_append(&f->keys, k, len) != 0 || lls_buf_append(&f->keys, "", 1) != 0)
    return dec_fail(d, "out of memory");
  return 1;
}

static int cmp_pending(const void *a, const void *b) {
  const pending *x = a, *y = b;
  size_t n = x->klen < y->klen ? x->klen : y->klen;
  int c = n > 0 ? memcmp(x->key, y->key, n) : 0;
  if (c != 0) return c;
  if (x->klen != y->klen) return x->klen < y->klen ? -1 : 1;
  return x->seq < y->seq ? -1 : x->seq > y->seq ? 1 : 0;
}

/* Sorting first keeps building O(n log n) whatever the key order: each
 * lls_value_set then appends at the end. */
static int cb_end_map(void *ctx) {
  dec *d = ctx;
  frame *f = &d->st[d->depth - 1];
  for (size_t i = 0; i < f->n; i++) f->m[i].key = f->keys.data + f->m[i].koff;
  if (f->n > 1) qsort(f->m, f->n, sizeof *f->m, cmp_pending);
  lls_value *o = lls_value_object();
  int oom = o == NULL;
  for (size_t i = 0; i < f->n; i++) {
    pending *p = &f->m[i];
    int superseded = i + 1 < f->n && f->m[i + 1].klen == p->klen &&
                     (p->klen == 0 || memcmp(f->m[i + 1].key, p->key, p->klen) == 0);
    if (oom || superseded) lls_value_free(p->value); /* duplicate key: the last wins */
    else if (lls_value_set(o, p->key, p->klen, p->value) != 0) oom = 1;
    p->value = NULL;
  }
  f->n = 0;
  d->depth--;
  if (oom) {
    lls_value_free(o);
    return dec_fail(d, "out of memory");
  }
  return dec_add(d, o);
}

static int cb_end_array(void *ctx) {
  dec *d = ctx;
  frame *f = &d->st[d->depth - 1];
  lls_value *a = f->array;
  f->array = NULL;
  d->depth--;
  return dec_add(d, a);
}

static const yajl_callbacks callbacks = {
    cb_null,     cb_boolean, NULL,         NULL,           cb_number,   cb_string,
    cb_start_map, cb_map_key, cb_end_map, cb_start_array, cb_end_array,
};

/* yajl is lax in places (form feed and vertical tab as whitespace, a
 * lone surrogate escape silently turned into '?'), so the text goes
 * through json_scan.h's strict pass first. Returns how much of the text
 * yajl may see: all of it, or the part before the first byte the pass
 * refuses (then *bad says where and *why what; yajl's own error, if it
 * comes earlier, still wins). */
static size_t strict_prefix(const char *t, size_t len, size_t *bad, const char **why) {
  lls_jscan s;
  lls_jscan_init(&s, NULL);
  size_t pos = 0;
  if (lls_jscan_run(&s, (const unsigned char *)t, len, 0, &pos) != LLS_JSCAN_ERROR) return len;
  *bad = (size_t)s.err_at;
  *why = s.err;
  return pos;
}

static void dec_cleanup(dec *d) {
  for (int i = 0; i < d->cap; i++) {
    frame *f = &d->st[i];
    if (i < d->depth) {
      lls_value_free(f->array);
      for (size_t k = 0; k < f->n; k++) lls_value_free(f->m[k].value);
    }
    free(f->m);
    lls_buf_free(&f->keys);
  }
  free(d->st);
  if (d->have_cloc && d->cloc != (locale_t)0) freelocale(d->cloc);
}

lls_value *lls_json_decode(const char *text, size_t len, char *err, size_t errlen) {
  if (text == NULL) text = "";
  size_t bad = 0;
  const char *why = NULL;
  size_t upto = strict_prefix(text, len, &bad, &why);
  dec *d = calloc(1, sizeof *d);
  if (d == NULL) {
    set_err(err, errlen, "out of memory");
    return NULL;
  }
  d->err = err;
  d->errlen = errlen;
  d->limit = LLS_MAX_DEPTH;
  yajl_handle h = yajl_alloc(&callbacks, NULL, d);
  if (h == NULL) {
    free(d);
    set_err(err, errlen, "out of memory");
    return NULL;
  }
  /* Defaults are what JSON wants: no comments, strings checked, no
   * trailing garbage, one value, no partial values. */
  yajl_status st = yajl_parse(h, (const unsigned char *)text, upto);
  /* where a failure happened: yajl's count for yajl_parse; the end of the
   * text for yajl_complete_parse (truncated input) */
  size_t at = yajl_get_bytes_consumed(h);
  if (st == yajl_status_ok && why != NULL) {
    set_err(err, errlen, "invalid JSON at byte %zu: %s", bad + 1, why);
    yajl_free(h);
    lls_value_free(d->root);
    dec_cleanup(d);
    free(d);
    return NULL;
  }
  if (st == yajl_status_ok) {
    st = yajl_complete_parse(h);
    at = len;
  }
  lls_value *root = NULL;
  if (st == yajl_status_ok && d->depth == 0 && d->root != NULL) {
    root = d->root;
    d->root = NULL;
  } else {
    if (d->failed) {
      /* our own message: prefix it with where yajl stopped */
      char msg[200];
      snprintf(msg, sizeof msg, "%s", err != NULL && errlen > 0 ? err : "");
      set_err(err, errlen, "invalid JSON at byte %zu: %s", at, msg);
    } else {
      unsigned char *m = yajl_get_error(h, 0, (const unsigned char *)text, len);
      const char *s = m != NULL ? (const char *)m : "malformed";
      size_t n = strlen(s);
      while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '.')) n--;
      set_err(err, errlen, "invalid JSON at byte %zu: %.*s", at, (int)n, s);
      if (m != NULL) yajl_free_error(h, m);
    }
    lls_value_free(d->root);
  }
  yajl_free(h);
  dec_cleanup(d);
  free(d);
  return root;
}

/* ------------------------------------------------------- value builder */

/* The decoder above, driven by the caller's events instead of a parser it
 * owns: import.c feeds one record at a time from its own yajl stream. */
struct lls_vbuild {
  dec d;
  char err[256];
};

lls_vbuild *lls_vbuild_new(void) {
  lls_vbuild *b = calloc(1, sizeof *b);
  if (b != NULL) {
    b->d.err = b->err;
    b->d.errlen = sizeof b->err;
    b->d.limit = LLS_MAX_DEPTH + 1; /* the record holding the value */
  }
  return b;
}

/* Frees the value under construction; keeps the frames' buffers. */
static void vbuild_drop(lls_vbuild *b) {
  dec *d = &b->d;
  for (int i = 0; i < d->depth; i++) {
    frame *f = &d->st[i];
    lls_value_free(f->array);
    f->array = NULL;
    for (size_t k = 0; k < f->n; k++) lls_value_free(f->m[k].value);
    f->n = 0;
  }
  d->depth = 0;
  lls_value_free(d->root);
  d->root = NULL;
  d->failed = 0;
}

void lls_vbuild_reset(lls_vbuild *b) {
  vbuild_drop(b);
  b->err[0] = '\0';
}

void lls_vbuild_free(lls_vbuild *b) {
  if (b == NULL) return;
  vbuild_drop(b);
  dec_cleanup(&b->d);
  free(b);
}

/* A value may only start where one is expected: nothing is built yet, or
 * the innermost container is an array, or an object whose key arrived. */
static int vbuild_value_ok(lls_vbuild *b) {
  if (b->d.depth == 0) return b->d.root == NULL || dec_fail(&b->d, "a second top value");
  return 1;
}

int lls_vbuild_null(lls_vbuild *b) { return vbuild_value_ok(b) && cb_null(&b->d); }

int lls_vbuild_bool(lls_vbuild *b, int v) { return vbuild_value_ok(b) && cb_boolean(&b->d, v); }

int lls_vbuild_number(lls_vbuild *b, const char *s, size_t len) {
  return vbuild_value_ok(b) && cb_number(&b->d, s, len);
}

int lls_vbuild_string(lls_vbuild *b, const char *s, size_t len) {
  return vbuild_value_ok(b) && cb_string(&b->d, (const unsigned char *)s, len);
}

int lls_vbuild_start_map(lls_vbuild *b) { return vbuild_value_ok(b) && cb_start_map(&b->d); }

int lls_vbuild_start_array(lls_vbuild *b) {
  return vbuild_value_ok(b) && cb_start_array(&b->d);
}

int lls_vbuild_map_key(lls_vbuild *b, const char *k, size_t len) {
  if (b->d.depth == 0 || !b->d.st[b->d.depth - 1].is_object)
    return dec_fail(&b->d, "a key outside an object");
  return cb_map_key(&b->d, (const unsigned char *)k, len);
}

int lls_vbuild_end_map(lls_vbuild *b) {
  if (b->d.depth == 0 || !b->d.st[b->d.depth - 1].is_object)
    return dec_fail(&b->d, "an object end without its start");
  return cb_end_map(&b->d);
}

int lls_vbuild_end_array(lls_vbuild *b) {
  if (b->d.depth == 0 || b->d.st[b->d.depth - 1].is_object)
    return dec_fail(&b->d, "an array end without its start");
  return cb_end_array(&b->d);
}

int lls_vbuild_depth(const lls_vbuild *b) { return b->d.depth; }

lls_value *lls_vbuild_take(lls_vbuild *b) {
  if (b->d.depth != 0) return NULL;
  lls_value *v = b->d.root;
  b->d.root = NULL;
  return v;
}

const char *lls_vbuild_error(const lls_vbuild *b) { return b->err; }
