/*
 * patterns_section.c -- the "procedural_memory" export section
 * (rs-llmspell's PatternExport records), read and written through the
 * backend's pattern op table. Apart from the binding (patterns.c) because
 * the store and the exporter reach the section list, and this file needs
 * nothing of theirs: no Lua, only records.
 */
#include "lua/patterns_section.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "backend/patterns.h"
#include "base/limits.h"
#include "base/uuid.h"

/* Texts in messages: at most this many bytes. */
#define QUOTE(s) (int)((s).len > 100 ? 100 : (s).len), (s).ptr

int lls_patterns_count(lls_backend *cb, int64_t now, int64_t *n, lls_error *err) {
  (void)now;
  return cb->vt->patterns->count(cb, n, err);
}

/* Rows per dump page. */
#define PAGE 256

/* Adds member k = v to o (taking v; a NULL v is out of memory). */
static int put(lls_value *o, const char *k, lls_value *v) {
  return lls_value_set(o, k, strlen(k), v);
}

static lls_value *str_value(lls_str s) { return lls_value_string(s.ptr, s.len); }

typedef struct dump_ctx {
  lls_section_emit emit;
  void *ud;
  lls_buf last;   /* the last pattern sent: scope, key, value bytes */
  size_t len[3];  /* their lengths */
} dump_ctx;

/* One row as rs-llmspell's PatternExport, to the exporter. */
static int dump_row(void *ud, const lls_pattern *p, lls_error *err) {
  dump_ctx *d = ud;
  lls_value *rec = lls_value_object();
  if (rec == NULL) return lls_error_oom(err);
  /* each put takes its value, also when an earlier one failed */
  int rc = put(rec, "pattern_id", str_value(p->pattern_id)) |
           put(rec, "tenant_id", str_value(p->tenant_id)) |
           put(rec, "scope", str_value(p->scope)) | put(rec, "key", str_value(p->key)) |
           put(rec, "value", str_value(p->value)) |
           put(rec, "frequency", lls_value_int(p->frequency)) |
           put(rec, "first_seen", lls_value_int(p->first_seen)) |
           put(rec, "last_seen", lls_value_int(p->last_seen)) |
           put(rec, "created_at", lls_value_int(p->created_at)) |
           put(rec, "updated_at", lls_value_int(p->updated_at));
  d->last.len = 0;
  d->len[0] = p->scope.len, d->len[1] = p->key.len, d->len[2] = p->value.len;
  if (rc != 0 || lls_buf_append(&d->last, p->scope.ptr, p->scope.len) != 0 ||
      lls_buf_append(&d->last, p->key.ptr, p->key.len) != 0 ||
      lls_buf_append(&d->last, p->value.ptr, p->value.len) != 0) {
    lls_value_free(rec);
    return lls_error_oom(err);
  }
  rc = d->emit(d->ud, rec, err);
  lls_value_free(rec);
  return rc;
}

/* Every pattern of the tenant in (scope, key, value) order, a page at a
 * time; each page starts after the last pattern of the one before. */
static int section_dump(lls_backend *cb, int part, int64_t now, lls_section_emit emit, void *ud,
                        int64_t *n, lls_error *err) {
  (void)part, (void)now;
  dump_ctx d = {emit, ud, {NULL, 0, 0}, {0, 0, 0}};
  lls_buf after = {NULL, 0, 0};
  lls_pattern from = {0};
  int rc = 0, first = 1;
  *n = 0;
  for (;;) {
    size_t got;
    rc = cb->vt->patterns->dump(cb, first ? NULL : &from, PAGE, dump_row, &d, &got, err);
    *n += (int64_t)got;
    if (rc != 0 || got < PAGE) break;
    lls_buf tmp = after; /* the page's last pattern becomes the next start */
    after = d.last;
    d.last = tmp;
    const char *s = after.data ? after.data : "";
    from.scope = (lls_str){s, d.len[0]};
    from.key = (lls_str){s + d.len[0], d.len[1]};
    from.value = (lls_str){s + d.len[0] + d.len[1], d.len[2]};
    first = 0;
  }
  lls_buf_free(&after);
  lls_buf_free(&d.last);
  return rc;
}

/* An import error (LLS_EFORMAT), naming the record by its pattern once
 * it is known; the importer puts the record's place in the file before. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int bad(lls_error *err, const lls_pattern *p, const char *fmt, ...) {
  char what[300];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  if (p == NULL) return lls_error_set(err, LLS_EFORMAT, "%s", what);
  return lls_error_set(err, LLS_EFORMAT, "pattern ('%.*s', '%.*s', '%.*s'): %s",
                       QUOTE(p->scope), QUOTE(p->key), QUOTE(p->value), what);
}

/* A text member of min..max bytes; absent or null leaves *out as it is
 * (NULL ptr: missing). */
static int rec_text(const lls_value *rec, const char *k, size_t min, size_t max,
                    const lls_pattern *p, lls_str *out, lls_error *err) {
  const lls_value *v = lls_value_get(rec, k, strlen(k));
  if (v == NULL || v->type == LLS_VNULL) return 0;
  if (v->type != LLS_VSTRING) return bad(err, p, "%s must be a string", k);
  lls_str s = {v->u.s.ptr, v->u.s.len};
  if (!lls_text_ok(s, min, max))
    return bad(err, p, "%s must be %zu..%zu bytes of UTF-8 without NUL", k, min, max);
  *out = s;
  return 0;
}

/* An integer member in [lo, hi]; *set = 0 when absent or null. */
static int rec_int(const lls_value *rec, const char *k, int64_t lo, int64_t hi,
                   const lls_pattern *p, int *set, int64_t *out, lls_error *err) {
  const lls_value *v = lls_value_get(rec, k, strlen(k));
  *set = v != NULL && v->type != LLS_VNULL;
  if (!*set) return 0;
  if (v->type != LLS_VINT || v->u.i < lo || v->u.i > hi)
    return bad(err, p, "%s must be an integer in [%lld, %lld]", k, (long long)lo,
               (long long)hi);
  *out = v->u.i;
  return 0;
}

/* The four times: missing ones follow the others (first_seen = created_at,
 * last_seen = updated_at, ...), now when none is given. */
static int rec_times(const lls_value *rec, int64_t now, lls_pattern *p, lls_error *err) {
  const int64_t tmax = (int64_t)(LLS_MAX_TIME_S * 1e6);
  static const char *const names[] = {"first_seen", "last_seen", "created_at", "updated_at"};
  int64_t *t[] = {&p->first_seen, &p->last_seen, &p->created_at, &p->updated_at};
  int set[4];
  for (int i = 0; i < 4; i++)
    if (rec_int(rec, names[i], -tmax, tmax, p, &set[i], t[i], err) != 0) return -1;
  /* first_seen <-> created_at, last_seen <-> updated_at, then across */
  static const int alt[4][3] = {{2, 1, 3}, {3, 0, 2}, {0, 3, 1}, {1, 2, 0}};
  for (int i = 0; i < 4; i++) {
    if (set[i]) continue;
    *t[i] = now;
    for (int j = 0; j < 3; j++)
      if (set[alt[i][j]]) {
        *t[i] = *t[alt[i][j]];
        break;
      }
  }
  return 0;
}

/* Reads rs-llmspell's record (its short form too: only scope, key and
 * value are required; frequency 1, a new pattern_id, missing times taken
 * from the others or now). */
static int section_load(lls_backend *cb, int part, const lls_value *rec, lls_conflict on_conflict,
                        int64_t now, int *written, lls_error *err) {
  (void)part;
  lls_pattern p = {0};
  if (rec->type != LLS_VOBJECT) return bad(err, NULL, "a record must be an object");
  if (rec_text(rec, "scope", 1, LLS_MAX_SCOPE, NULL, &p.scope, err) != 0 ||
      rec_text(rec, "key", 1, LLS_MAX_PATTERN_KEY, NULL, &p.key, err) != 0 ||
      rec_text(rec, "value", 0, LLS_MAX_PATTERN_VALUE, NULL, &p.value, err) != 0)
    return -1;
  if (p.scope.ptr == NULL) return bad(err, NULL, "scope is missing");
  if (p.key.ptr == NULL) return bad(err, NULL, "key is missing");
  if (p.value.ptr == NULL) return bad(err, NULL, "value is missing");
  char uuid[37];
  if (rec_text(rec, "pattern_id", 1, LLS_MAX_ID, &p, &p.pattern_id, err) != 0) return -1;
  if (p.pattern_id.ptr == NULL) {
    if (lls_uuid_v4(uuid) != 0)
      return lls_error_set(err, LLS_EIO, "no randomness for a UUID (RAND_bytes failed)");
    p.pattern_id = (lls_str){uuid, 36};
  }
  int set;
  if (rec_int(rec, "frequency", 1, INT64_MAX, &p, &set, &p.frequency, err) != 0) return -1;
  if (!set) p.frequency = 1;
  if (rec_times(rec, now, &p, err) != 0) return -1;
  if (cb == NULL) {
    *written = 1; /* a dry run: checked only */
    return 0;
  }
  return cb->vt->patterns->put(cb, &p, on_conflict, written, err);
}

const lls_section_codec lls_patterns_section = {"procedural_memory", NULL, section_dump,
                                                section_load, lls_patterns_count, NULL};
