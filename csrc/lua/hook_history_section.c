/*
 * hook_history_section.c -- the "hook_history" export section and the
 * stored form of a hook context (hook_history_section.h).
 *
 * Records carry rs-llmspell's HookExport fields (id, execution_id,
 * tenant_id, hook_id, hook_type, correlation_id, hook_context, result_data,
 * timestamp, duration_ms) plus every other column, which rs-llmspell's
 * exporter drops: triggering_component, component_id, modified_operation,
 * tags, retention_priority, context_size, contains_sensitive_data,
 * metadata, created_at. Times are integer microseconds. hook_context is
 * the base64 of the stored bytes, which are rs-llmspell's compressed form
 * (lz4_flex compress_prepend_size), so a record reads the same on both
 * sides. An import takes rs-llmspell's short form: only execution_id,
 * hook_id and hook_type are required, the rest default as h:record does.
 *
 * Apart from the binding (hook_history.c) because the store's section
 * list (sections.c) links to it: it knows the op table only.
 */
#include "lua/hook_history_section.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "backend/hook_history.h"
#include "base/b64.h"
#include "base/compress.h"
#include "base/limits.h"
#include "base/uuid.h"
#include "value/json.h"

/* Rows per dump page: each holds a whole (compressed) context. */
#define DUMP_PAGE 64

/* Texts in messages: at most this many bytes. */
#define QUOTE(s) (int)((s).len > 100 ? 100 : (s).len), (s).ptr

int lls_hook_history_count(lls_backend *cb, int64_t now, int64_t *n, lls_error *err) {
  (void)now;
  return cb->vt->hook_history->count(cb, n, err);
}

/* ------------------------------------------------------ the stored form */

int lls_hook_pack(const char *raw, size_t n, lls_buf *out) {
  out->len = 0;
  if (n == 0) return 0;
  if (n > LLS_MAX_HOOK_CONTEXT) return -1;
  size_t bound = lls_lz4_bound(n);
  if (bound == 0 || lls_buf_reserve(out, 4 + bound) != 0) return -1;
  unsigned char *p = (unsigned char *)out->data;
  p[0] = (unsigned char)(n & 0xff), p[1] = (unsigned char)(n >> 8 & 0xff);
  p[2] = (unsigned char)(n >> 16 & 0xff), p[3] = (unsigned char)(n >> 24 & 0xff);
  size_t z = lls_lz4_compress(raw, n, out->data + 4, bound);
  if (z == 0) return -1; /* cannot happen with bound bytes of room */
  out->len = 4 + z;
  return 0;
}

int lls_hook_unpack(lls_str stored, int64_t context_size, lls_buf *out, int64_t *size) {
  out->len = 0;
  *size = 0;
  if (stored.len == 0) return context_size > 0 ? -1 : 0;
  if (stored.len < 4) return -1;
  const unsigned char *p = (const unsigned char *)stored.ptr;
  uint32_t raw = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                 (uint32_t)p[3] << 24;
  *size = raw;
  if (context_size >= 0 && (int64_t)raw != context_size) return -1;
  if (raw > LLS_MAX_HOOK_CONTEXT) return -1;
  /* lz4_flex writes an empty input as the prefix and one 0 token */
  if (raw == 0) return stored.len == 4 || (stored.len == 5 && p[4] == 0) ? 0 : -1;
  if (lls_buf_reserve(out, raw) != 0) return -2;
  if (lls_lz4_decompress(stored.ptr + 4, stored.len - 4, out->data, raw) != 0) return -1;
  out->len = raw;
  return 0;
}

/* --------------------------------------------------------------- export */

typedef struct dump_ctx {
  lls_section_emit emit;
  void *ud;
  lls_buf last;  /* the execution id of the last record sent */
  lls_buf plain; /* a context, decompressed to verify it */
  lls_buf b64;
} dump_ctx;

/* Adds member k = v to o (taking v; a NULL v is out of memory). */
static int put(lls_value *o, const char *k, lls_value *v) {
  return lls_value_set(o, k, strlen(k), v);
}

static lls_value *str_value(lls_str s) { return lls_value_string(s.ptr, s.len); }

static lls_value *opt_value(lls_str s) {
  return s.ptr ? lls_value_string(s.ptr, s.len) : lls_value_null();
}

/* A row's JSON column (what names it) as a value into *out, or an
 * `integrity` error naming the execution. */
static int json_col(const lls_hook_exec *e, lls_str json, const char *what, lls_value **out,
                    lls_error *err) {
  char msg[200];
  *out = json.ptr ? lls_json_decode(json.ptr, json.len, msg, sizeof msg) : lls_value_null();
  if (*out != NULL) return 0;
  if (json.ptr == NULL) return lls_error_oom(err);
  return lls_error_set(err, LLS_EINTEGRITY, "hook execution '%.*s': stored %s cannot be read: %s",
                       QUOTE(e->execution_id), what, msg);
}

/* The row's record with every column; *rec NULL + err on failure. */
static int build_record(dump_ctx *d, const lls_hook_exec *e, lls_value **rec, lls_error *err) {
  lls_value *result = NULL, *tags = NULL, *meta = NULL;
  *rec = NULL;
  if (json_col(e, e->result, "result", &result, err) != 0) return -1;
  if (json_col(e, e->tags, "tags", &tags, err) != 0 ||
      json_col(e, e->metadata, "metadata", &meta, err) != 0) {
    lls_value_free(result);
    lls_value_free(tags);
    return -1;
  }
  lls_value *r = lls_value_object();
  if (r == NULL) {
    lls_value_free(result), lls_value_free(tags), lls_value_free(meta);
    return lls_error_oom(err);
  }
  /* each put takes its value, also when an earlier one failed */
  int rc = put(r, "result_data", result) | put(r, "tags", tags) | put(r, "metadata", meta) |
           put(r, "id", str_value(e->id)) | put(r, "execution_id", str_value(e->execution_id)) |
           put(r, "tenant_id", str_value(e->tenant_id)) |
           put(r, "hook_id", str_value(e->hook_id)) |
           put(r, "hook_type", str_value(e->hook_type)) |
           put(r, "correlation_id", str_value(e->correlation_id)) |
           put(r, "hook_context", lls_value_string(d->b64.data + 1, d->b64.len - 2)) |
           put(r, "timestamp", lls_value_int(e->timestamp)) |
           put(r, "duration_ms", lls_value_int(e->duration_ms)) |
           put(r, "triggering_component", opt_value(e->triggering_component)) |
           put(r, "component_id", opt_value(e->component_id)) |
           put(r, "modified_operation", lls_value_bool(e->modified_operation)) |
           put(r, "retention_priority", lls_value_int(e->retention_priority)) |
           put(r, "context_size", lls_value_int(e->context_size)) |
           put(r, "contains_sensitive_data", lls_value_bool(e->contains_sensitive_data)) |
           put(r, "created_at", lls_value_int(e->created_at));
  if (rc != 0) {
    lls_value_free(r);
    return lls_error_oom(err);
  }
  *rec = r;
  return 0;
}

/* One row to the exporter, after checking its context decompresses to
 * its context_size (a damaged row stops the export, and shows in
 * db:check(), rather than travel on). */
static int dump_row(void *ud, const lls_hook_exec *e, lls_error *err) {
  dump_ctx *d = ud;
  int64_t size;
  int rc = lls_hook_unpack(e->context, e->context_size, &d->plain, &size);
  if (rc == -2) return lls_error_oom(err);
  if (rc != 0)
    return lls_error_set(err, LLS_EINTEGRITY,
                         "hook execution '%.*s': its stored context is damaged (it does not"
                         " decompress to its context_size, %lld bytes)",
                         QUOTE(e->execution_id), (long long)e->context_size);
  d->b64.len = 0;
  d->last.len = 0;
  if (lls_b64_quoted(&d->b64, e->context.ptr, e->context.len) != 0 ||
      lls_buf_append(&d->last, e->execution_id.ptr, e->execution_id.len) != 0)
    return lls_error_oom(err);
  lls_value *rec;
  if (build_record(d, e, &rec, err) != 0) return -1;
  rc = d->emit(d->ud, rec, err);
  lls_value_free(rec);
  return rc;
}

/* Every row of the tenant in execution_id order, a page at a time; the
 * cursor the backend is bound to (after) is not the buffer the sink
 * writes (last) while it runs. */
static int section_dump(lls_backend *cb, int part, int64_t now, lls_section_emit emit, void *ud,
                        int64_t *n, lls_error *err) {
  (void)part, (void)now;
  dump_ctx d = {emit, ud, {0}, {0}, {0}};
  lls_buf after = {0};
  lls_str cursor = {NULL, 0};
  int rc = 0;
  *n = 0;
  for (;;) {
    size_t got;
    rc = cb->vt->hook_history->dump(cb, cursor, DUMP_PAGE, dump_row, &d, &got, err);
    *n += (int64_t)got;
    if (rc != 0 || got < DUMP_PAGE) break;
    after.len = 0;
    if (lls_buf_append(&after, d.last.data, d.last.len) != 0) {
      rc = lls_error_oom(err);
      break;
    }
    cursor = (lls_str){after.data, after.len};
  }
  lls_buf_free(&after);
  lls_buf_free(&d.last);
  lls_buf_free(&d.plain);
  lls_buf_free(&d.b64);
  return rc;
}

/* --------------------------------------------------------------- import */

/* What one record's reading allocates. */
typedef struct load_bufs {
  lls_buf context, plain, result, tags, meta;
  char id[37], correlation_id[37];
} load_bufs;

static void load_bufs_free(load_bufs *lb) {
  lls_buf_free(&lb->context), lls_buf_free(&lb->plain), lls_buf_free(&lb->result);
  lls_buf_free(&lb->tags), lls_buf_free(&lb->meta);
}

/* An import error (LLS_EFORMAT), naming the record by its execution id
 * once it is known; the importer puts the record's place in front. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int bad(lls_error *err, lls_str id, const char *fmt, ...) {
  char what[300];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  if (id.ptr == NULL) return lls_error_set(err, LLS_EFORMAT, "%s", what);
  return lls_error_set(err, LLS_EFORMAT, "hook execution '%.*s': %s", QUOTE(id), what);
}

/* Member k of rec, NULL when absent or null. */
static const lls_value *field(const lls_value *rec, const char *k) {
  const lls_value *v = lls_value_get(rec, k, strlen(k));
  return v != NULL && v->type == LLS_VNULL ? NULL : v;
}

/* A text member of min..max bytes; absent or null leaves *out as it is. */
static int rec_text(const lls_value *rec, const char *k, size_t min, size_t max, lls_str id,
                    lls_str *out, lls_error *err) {
  const lls_value *v = field(rec, k);
  if (v == NULL) return 0;
  if (v->type != LLS_VSTRING) return bad(err, id, "%s must be a string", k);
  lls_str s = {v->u.s.ptr, v->u.s.len};
  if (!lls_text_ok(s, min, max))
    return bad(err, id, "%s must be %zu..%zu bytes of UTF-8 without NUL", k, min, max);
  *out = s;
  return 0;
}

/* An integer member in [lo, hi]; def when absent or null. */
static int rec_int(const lls_value *rec, const char *k, int64_t lo, int64_t hi, int64_t def,
                   lls_str id, int64_t *out, lls_error *err) {
  const lls_value *v = field(rec, k);
  *out = def;
  if (v == NULL) return 0;
  if (v->type != LLS_VINT || v->u.i < lo || v->u.i > hi)
    return bad(err, id, "%s must be an integer in [%lld, %lld]", k, (long long)lo,
               (long long)hi);
  *out = v->u.i;
  return 0;
}

/* A boolean member; false when absent or null. */
static int rec_bool(const lls_value *rec, const char *k, lls_str id, int *out, lls_error *err) {
  const lls_value *v = field(rec, k);
  *out = 0;
  if (v == NULL) return 0;
  if (v->type != LLS_VBOOL) return bad(err, id, "%s must be true or false", k);
  *out = v->u.b != 0;
  return 0;
}

/* A JSON member as text into out: def when absent or null (def NULL: the
 * column stays NULL, *s.ptr NULL); type checked when want is not NULL. */
static int rec_json(const lls_value *rec, const char *k, const char *def, lls_vtype want,
                    lls_str id, lls_buf *out, lls_str *s, lls_error *err) {
  const lls_value *v = field(rec, k);
  char msg[200];
  out->len = 0;
  *s = (lls_str){NULL, 0};
  if (v == NULL && def == NULL) return 0;
  if (v == NULL) {
    if (lls_buf_append(out, def, strlen(def)) != 0) return lls_error_oom(err);
  } else if (want != LLS_VNULL && v->type != want) {
    return bad(err, id, "%s must be %s", k, want == LLS_VARRAY ? "an array" : "an object");
  } else if (lls_json_encode(v, out, msg, sizeof msg) != 0) {
    return bad(err, id, "%s: %s", k, msg);
  }
  *s = (lls_str){out->data, out->len};
  return 0;
}

/* tags: an array of texts of 1..LLS_MAX_NAME bytes, as h:record takes. */
static int rec_tags(const lls_value *rec, lls_str id, load_bufs *lb, lls_hook_exec *e,
                    lls_error *err) {
  if (rec_json(rec, "tags", "[]", LLS_VARRAY, id, &lb->tags, &e->tags, err) != 0) return -1;
  const lls_value *t = field(rec, "tags");
  for (size_t i = 0; t != NULL && i < t->u.a.n; i++) {
    const lls_value *v = t->u.a.items[i];
    if (v->type != LLS_VSTRING || !lls_text_ok((lls_str){v->u.s.ptr, v->u.s.len}, 1,
                                               LLS_MAX_NAME))
      return bad(err, id, "tags[%zu] must be a text of 1..%d bytes", i, LLS_MAX_NAME);
  }
  return 0;
}

/* hook_context: base64 of the stored form; its size must match a given
 * context_size. */
static int rec_context(const lls_value *rec, lls_str id, load_bufs *lb, lls_hook_exec *e,
                       lls_error *err) {
  lls_str b64 = {"", 0};
  if (rec_text(rec, "hook_context", 0, (size_t)-1 / 2, id, &b64, err) != 0) return -1;
  lb->context.len = 0;
  int rc = lls_b64_decode(&lb->context, b64.ptr, b64.len);
  if (rc == -2) return lls_error_oom(err);
  if (rc != 0) return bad(err, id, "hook_context must be base64");
  int64_t given, size;
  if (rec_int(rec, "context_size", 0, (int64_t)LLS_MAX_HOOK_CONTEXT, -1, id, &given, err) != 0)
    return -1;
  rc = lls_hook_unpack((lls_str){lb->context.data, lb->context.len}, -1, &lb->plain, &size);
  if (rc == -2) return lls_error_oom(err);
  if (rc != 0)
    return bad(err, id, "hook_context is not a size-prefixed LZ4 block (lz4_flex"
                        " compress_prepend_size) of at most %zu bytes",
               LLS_MAX_HOOK_CONTEXT);
  if (given >= 0 && given != size)
    return bad(err, id, "context_size %lld does not match hook_context (%lld bytes)",
               (long long)given, (long long)size);
  e->context_size = size;
  /* an empty context is stored as no bytes, whichever form it came in */
  e->context = size == 0 ? (lls_str){"", 0} : (lls_str){lb->context.data, lb->context.len};
  return 0;
}

/* An id member of 1..LLS_MAX_ID bytes, a new UUID (in uuid) when absent. */
static int rec_id(const lls_value *rec, const char *k, lls_str id, char uuid[37], lls_str *out,
                  lls_error *err) {
  *out = (lls_str){NULL, 0};
  if (rec_text(rec, k, 1, LLS_MAX_ID, id, out, err) != 0) return -1;
  if (out->ptr != NULL) return 0;
  if (lls_uuid_v4(uuid) != 0)
    return lls_error_set(err, LLS_EIO, "no randomness for a UUID (RAND_bytes failed)");
  *out = (lls_str){uuid, 36};
  return 0;
}

/* Checks one record and reads it into e (its buffers in lb). */
static int read_record(const lls_value *rec, int64_t now, load_bufs *lb, lls_hook_exec *e,
                       lls_error *err) {
  lls_str none = {NULL, 0};
  memset(e, 0, sizeof *e);
  if (rec->type != LLS_VOBJECT) return bad(err, none, "a record must be an object");
  if (rec_text(rec, "execution_id", 1, LLS_MAX_ID, none, &e->execution_id, err) != 0) return -1;
  if (e->execution_id.ptr == NULL) return bad(err, none, "execution_id is missing");
  lls_str id = e->execution_id;
  if (rec_text(rec, "hook_id", 1, LLS_MAX_ID, id, &e->hook_id, err) != 0 ||
      rec_text(rec, "hook_type", 1, LLS_MAX_ID, id, &e->hook_type, err) != 0)
    return -1;
  if (e->hook_id.ptr == NULL) return bad(err, id, "hook_id is missing");
  if (e->hook_type.ptr == NULL) return bad(err, id, "hook_type is missing");
  if (rec_id(rec, "id", id, lb->id, &e->id, err) != 0 ||
      rec_id(rec, "correlation_id", id, lb->correlation_id, &e->correlation_id, err) != 0 ||
      rec_text(rec, "triggering_component", 0, LLS_MAX_ID, id, &e->triggering_component,
               err) != 0 ||
      rec_text(rec, "component_id", 0, LLS_MAX_ID, id, &e->component_id, err) != 0)
    return -1;
  const int64_t tmax = (int64_t)(LLS_MAX_TIME_S * 1e6);
  if (rec_int(rec, "timestamp", -tmax, tmax, now, id, &e->timestamp, err) != 0 ||
      rec_int(rec, "created_at", -tmax, tmax, e->timestamp, id, &e->created_at, err) != 0 ||
      rec_int(rec, "duration_ms", 0, INT32_MAX, 0, id, &e->duration_ms, err) != 0 ||
      rec_int(rec, "retention_priority", INT32_MIN, INT32_MAX, 0, id, &e->retention_priority,
              err) != 0 ||
      rec_bool(rec, "modified_operation", id, &e->modified_operation, err) != 0 ||
      rec_bool(rec, "contains_sensitive_data", id, &e->contains_sensitive_data, err) != 0)
    return -1;
  if (rec_json(rec, "result_data", NULL, LLS_VNULL, id, &lb->result, &e->result, err) != 0 ||
      rec_json(rec, "metadata", "{}", LLS_VOBJECT, id, &lb->meta, &e->metadata, err) != 0 ||
      rec_tags(rec, id, lb, e, err) != 0)
    return -1;
  return rec_context(rec, id, lb, e, err);
}

static int section_load(lls_backend *cb, int part, const lls_value *rec, lls_conflict on_conflict,
                        int64_t now, int *written, lls_error *err) {
  (void)part;
  load_bufs lb;
  memset(&lb, 0, sizeof lb);
  lls_hook_exec e;
  int rc = read_record(rec, now, &lb, &e, err);
  if (rc == 0 && cb == NULL) *written = 1; /* a dry run: checked only */
  else if (rc == 0) rc = cb->vt->hook_history->put(cb, &e, on_conflict, written, err);
  load_bufs_free(&lb);
  return rc;
}

const lls_section_codec lls_hook_history_section = {"hook_history", NULL, section_dump,
                                                    section_load, lls_hook_history_count, NULL};
