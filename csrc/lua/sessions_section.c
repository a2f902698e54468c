/*
 * sessions_section.c -- the "sessions" export section (sessions_section.h):
 * records in rs-llmspell's shape from and to the sessions op table
 * (backend/sessions.h). No Lua here: the exporter and importer call it
 * with their own error handling, and the store counts through it. It is
 * apart from the binding (sessions.c) because the store lists the codecs,
 * and the binding depends on the store.
 */
#include "lua/sessions_section.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "backend/sessions.h"
#include "base/limits.h"
#include "base/uuid.h"
#include "lua/args.h"
#include "value/json.h"

/* Sessions per page of an export. */
#define DUMP_PAGE 256

static const char *const STATUSES[] = {"active", "completed", "expired", "archived", NULL};

int lls_sessions_status_ok(lls_str s) {
  for (int i = 0; STATUSES[i]; i++)
    if (strlen(STATUSES[i]) == s.len && memcmp(STATUSES[i], s.ptr, s.len) == 0) return 1;
  return 0;
}

int lls_sessions_count(lls_backend *cb, int64_t now, int64_t *n, lls_error *err) {
  return cb->vt->sessions->count(cb, now, n, err);
}

/* The exporter's dump state: where the page stands and where records go. */
typedef struct dump_ctx {
  lls_section_emit emit;
  void *ud;
  lls_buf last; /* the id of the last record sent */
} dump_ctx;

/* Sets key to v in rec; 0, or -1 (out of memory). */
static int put(lls_value *rec, const char *key, lls_value *v) {
  return lls_value_set(rec, key, strlen(key), v);
}

static lls_value *str_value(lls_str s) { return lls_value_string(s.ptr, s.len); }

/* One row as rs-llmspell's record: id, tenant_id, session_id,
 * session_data, status, created_at, last_accessed_at, expires_at (null
 * when none), artifact_count, updated_at. */
static int dump_row(void *ud, const lls_session *s, lls_error *err) {
  dump_ctx *c = ud;
  char msg[256];
  lls_value *data = lls_json_decode(s->data.ptr, s->data.len, msg, sizeof msg);
  if (data == NULL)
    return lls_error_set(err, LLS_EINTEGRITY, "session '%.*s': stored data cannot be read: %s",
                         (int)(s->id.len > 200 ? 200 : s->id.len), s->id.ptr, msg);
  lls_value *rec = lls_value_object();
  if (rec == NULL) {
    lls_value_free(data);
    return lls_error_oom(err);
  }
  /* data first: lls_value_set frees it when it fails */
  int rc = put(rec, "session_data", data) ||
           put(rec, "artifact_count", lls_value_int(s->artifact_count)) ||
           put(rec, "created_at", lls_value_int(s->created_at)) ||
           put(rec, "expires_at",
               s->expires_at ? lls_value_int(s->expires_at) : lls_value_null()) ||
           put(rec, "id", str_value(s->row_id)) ||
           put(rec, "last_accessed_at", lls_value_int(s->last_accessed_at)) ||
           put(rec, "session_id", str_value(s->id)) ||
           put(rec, "status", str_value(s->status)) ||
           put(rec, "tenant_id", str_value(s->tenant)) ||
           put(rec, "updated_at", lls_value_int(s->updated_at));
  if (rc != 0) {
    lls_value_free(rec);
    return lls_error_oom(err);
  }
  c->last.len = 0;
  if (lls_buf_append(&c->last, s->id.ptr, s->id.len) != 0) {
    lls_value_free(rec);
    return lls_error_oom(err);
  }
  rc = c->emit(c->ud, rec, err);
  lls_value_free(rec);
  return rc;
}

/* Page by page in session_id order; the cursor the backend is bound to
 * (after) is not the buffer the sink writes (last) while it runs. */
static int section_dump(lls_backend *cb, int part, int64_t now, lls_section_emit emit, void *ud,
                        int64_t *n, lls_error *err) {
  (void)part;
  dump_ctx c = {emit, ud, {0}};
  lls_buf after = {0};
  lls_str cursor = {NULL, 0};
  int rc = 0;
  *n = 0;
  for (;;) {
    size_t got;
    rc = cb->vt->sessions->dump(cb, cursor, now, DUMP_PAGE, dump_row, &c, &got, err);
    if (rc != 0) break;
    *n += (int64_t)got;
    if (got < DUMP_PAGE) break;
    after.len = 0;
    if (lls_buf_append(&after, c.last.data, c.last.len) != 0) {
      rc = lls_error_oom(err);
      break;
    }
    cursor = (lls_str){after.data, after.len};
  }
  lls_buf_free(&after);
  lls_buf_free(&c.last);
  return rc;
}

/* Record field name of rec, NULL when absent or null. */
static const lls_value *field(const lls_value *rec, const char *name) {
  const lls_value *v = lls_value_get(rec, name, strlen(name));
  return v != NULL && v->type == LLS_VNULL ? NULL : v;
}

/* Messages about a record name its session id when it has one (the
 * importer puts the record's place in front: "sessions[3]: ..."). */
static int bad(lls_error *err, lls_str id, const char *fmt, const char *name) {
  char what[400]; /* fmt and name: a JSON error message is under 256 */
  snprintf(what, sizeof what, fmt, name);
  if (id.ptr == NULL) return lls_error_set(err, LLS_EFORMAT, "%s", what);
  return lls_error_set(err, LLS_EFORMAT, "session '%.*s': %s",
                       (int)(id.len > 200 ? 200 : id.len), id.ptr, what);
}

/* Optional time field (integer microseconds; a float is rounded). */
static int rec_time(const lls_value *rec, const char *name, lls_str id, int64_t def,
                    int64_t *out, int *present, lls_error *err) {
  const lls_value *v = field(rec, name);
  if (present) *present = v != NULL;
  *out = def;
  if (v == NULL) return 0;
  if (v->type == LLS_VINT) {
    *out = v->u.i;
    return 0;
  }
  if (v->type == LLS_VFLOAT && fabs(v->u.f) < 9.2e18) {
    *out = (int64_t)llround(v->u.f);
    return 0;
  }
  return bad(err, id, "%s must be integer microseconds", name);
}

/* Optional string field; ptr NULL when absent. */
static int rec_str(const lls_value *rec, const char *name, lls_str id, lls_str *out,
                   lls_error *err) {
  const lls_value *v = field(rec, name);
  *out = (lls_str){NULL, 0};
  if (v == NULL) return 0;
  if (v->type != LLS_VSTRING) return bad(err, id, "%s must be a string", name);
  *out = (lls_str){v->u.s.ptr, v->u.s.len};
  return 0;
}

/* Checks one record and reads it into s (data JSON into json, row id made
 * into rowid when absent). *skip = 1 for a record that has expired. */
static int read_record(const lls_value *rec, int64_t now, lls_session *s, lls_buf *json,
                       char rowid[37], int *skip, lls_error *err) {
  lls_str none = {NULL, 0};
  memset(s, 0, sizeof *s);
  *skip = 0;
  if (rec->type != LLS_VOBJECT)
    return lls_error_set(err, LLS_EFORMAT, "a session record must be an object");
  if (rec_str(rec, "session_id", none, &s->id, err) != 0) return -1;
  if (s->id.ptr == NULL) return bad(err, none, "no %s", "session_id");
  if (!lls_text_ok(s->id, 1, LLS_MAX_ID))
    return bad(err, none, "%s must be 1.." LLS_STR(LLS_MAX_ID)
                          " bytes of UTF-8 text without NUL bytes", "session_id");
  lls_str id = s->id;
  if (rec_str(rec, "id", id, &s->row_id, err) != 0 || rec_str(rec, "status", id, &s->status, err))
    return -1;
  if (s->row_id.ptr != NULL && !lls_text_ok(s->row_id, 1, LLS_MAX_ID))
    return bad(err, id, "%s must be 1.." LLS_STR(LLS_MAX_ID)
                        " bytes of UTF-8 text without NUL bytes", "id");
  if (s->row_id.ptr == NULL) {
    if (lls_uuid_v4(rowid) != 0)
      return lls_error_set(err, LLS_EIO, "no randomness for a UUID (RAND_bytes failed)");
    s->row_id = (lls_str){rowid, 36};
  }
  if (s->status.ptr == NULL) s->status = (lls_str){"active", 6};
  if (!lls_sessions_status_ok(s->status))
    return bad(err, id, "%s must be one of " LLS_SESSION_STATUSES, "status");
  int has_expiry;
  if (rec_time(rec, "created_at", id, now, &s->created_at, NULL, err) ||
      rec_time(rec, "updated_at", id, s->created_at, &s->updated_at, NULL, err) ||
      rec_time(rec, "last_accessed_at", id, s->updated_at, &s->last_accessed_at, NULL, err) ||
      rec_time(rec, "expires_at", id, 0, &s->expires_at, &has_expiry, err))
    return -1;
  /* as for KV records: a present expires_at is a time like any other, and
   * one at or before now has expired (a kept one is then never 0) */
  if (has_expiry && s->expires_at <= now) {
    *skip = 1;
    return 0;
  }
  /* checked, not stored: the store counts the artifacts it holds */
  const lls_value *n = field(rec, "artifact_count");
  if (n != NULL && (n->type != LLS_VINT || n->u.i < 0))
    return bad(err, id, "%s must be a non-negative integer", "artifact_count");
  const lls_value *d = field(rec, "session_data");
  json->len = 0;
  if (d == NULL) {
    if (lls_buf_append(json, "{}", 2) != 0) return lls_error_oom(err);
  } else {
    char msg[256];
    if (lls_json_encode(d, json, msg, sizeof msg) != 0)
      return bad(err, id, "session_data: %s", msg);
  }
  s->data = (lls_str){json->data, json->len};
  return 0;
}

static int section_load(lls_backend *cb, int part, const lls_value *rec, lls_conflict on_conflict,
                        int64_t now, int *written, lls_error *err) {
  (void)part;
  lls_session s;
  lls_buf json = {0};
  char rowid[37];
  int skip, rc;
  *written = 0;
  rc = read_record(rec, now, &s, &json, rowid, &skip, err);
  if (rc == 0 && !skip && cb == NULL) *written = 1; /* a dry run: checked only */
  else if (rc == 0 && !skip) rc = cb->vt->sessions->load(cb, &s, on_conflict, now, written, err);
  lls_buf_free(&json);
  return rc;
}

const lls_section_codec lls_sessions_section = {"sessions", NULL, section_dump, section_load,
                                                 lls_sessions_count, NULL};
