/*
 * workflows_section.c -- the "workflow_states" export section
 * (rs-llmspell's WorkflowStateExport records), read and written through
 * the backend's workflow op table. Apart from the binding (workflows.c)
 * because the store and the exporter reach the section list, and this
 * file needs nothing of theirs: no Lua, only records.
 */
#include "lua/workflows_section.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "backend/workflows.h"
#include "base/limits.h"
#include "value/json.h"

/* Ids in messages: at most this many bytes. */
#define QUOTE(s) (int)((s).len > 200 ? 200 : (s).len), (s).ptr

int lls_workflows_count(lls_backend *cb, int64_t now, int64_t *n, lls_error *err) {
  (void)now;
  return cb->vt->workflows->count(cb, n, err);
}

/* Rows per dump page. */
#define PAGE 256

/* Adds member k = v to o (taking v; a NULL v is out of memory). */
static int put(lls_value *o, const char *k, lls_value *v) {
  return lls_value_set(o, k, strlen(k), v);
}

static lls_value *str_value(lls_str s) { return lls_value_string(s.ptr, s.len); }

static lls_value *time_value(int set, int64_t us) {
  return set ? lls_value_int(us) : lls_value_null();
}

typedef struct dump_ctx {
  lls_section_emit emit;
  void *ud;
  lls_buf last; /* the last id sent: where the next page starts */
} dump_ctx;

/* One row as rs-llmspell's WorkflowStateExport, to the exporter. */
static int dump_row(void *ud, const lls_workflow *w, lls_error *err) {
  dump_ctx *d = ud;
  char msg[256];
  lls_value *data = lls_json_decode(w->data.ptr, w->data.len, msg, sizeof msg);
  if (data == NULL)
    return lls_error_set(err, LLS_EINTEGRITY, "workflow '%.*s': stored data cannot be read: %s",
                         QUOTE(w->workflow_id), msg);
  lls_value *rec = lls_value_object();
  if (rec == NULL) {
    lls_value_free(data);
    return lls_error_oom(err);
  }
  /* each put takes its value, also when an earlier one failed */
  int rc = put(rec, "tenant_id", str_value(w->tenant_id)) |
           put(rec, "workflow_id", str_value(w->workflow_id)) |
           put(rec, "workflow_name", str_value(w->name)) | put(rec, "state_data", data) |
           put(rec, "current_step", lls_value_int(w->current_step)) |
           put(rec, "status", str_value(w->status)) |
           put(rec, "started_at", time_value(w->has_started, w->started_at)) |
           put(rec, "completed_at", time_value(w->has_completed, w->completed_at)) |
           put(rec, "last_updated", lls_value_int(w->last_updated)) |
           put(rec, "created_at", lls_value_int(w->created_at));
  d->last.len = 0;
  if (rc != 0 || lls_buf_append(&d->last, w->workflow_id.ptr, w->workflow_id.len) != 0) {
    lls_value_free(rec);
    return lls_error_oom(err);
  }
  rc = d->emit(d->ud, rec, err);
  lls_value_free(rec);
  return rc;
}

/* Every workflow of the tenant in workflow_id order, a page at a time. */
static int section_dump(lls_backend *cb, int part, int64_t now, lls_section_emit emit, void *ud,
                        int64_t *n, lls_error *err) {
  (void)part, (void)now;
  dump_ctx d = {emit, ud, {NULL, 0, 0}};
  lls_buf after = {NULL, 0, 0};
  int rc = 0;
  *n = 0;
  for (;;) {
    size_t got;
    lls_str from = {after.data ? after.data : "", after.len};
    rc = cb->vt->workflows->dump(cb, from, PAGE, dump_row, &d, &got, err);
    *n += (int64_t)got;
    if (rc != 0 || got < PAGE) break;
    lls_buf tmp = after; /* the page's last id becomes the next start */
    after = d.last;
    d.last = tmp;
  }
  lls_buf_free(&after);
  lls_buf_free(&d.last);
  return rc;
}

/* An import error (LLS_EFORMAT), naming the record by its id once it is
 * known; the importer puts the record's place in the file before it. */
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
  return lls_error_set(err, LLS_EFORMAT, "workflow '%.*s': %s", QUOTE(id), what);
}

/* A text member of 0..LLS_MAX_ID bytes; absent or null leaves *out as
 * it is (the default). */
static int rec_text(const lls_value *rec, const char *k, size_t min, lls_str id, lls_str *out,
                    lls_error *err) {
  const lls_value *v = lls_value_get(rec, k, strlen(k));
  if (v == NULL || v->type == LLS_VNULL) return 0;
  if (v->type != LLS_VSTRING) return bad(err, id, "%s must be a string", k);
  lls_str s = {v->u.s.ptr, v->u.s.len};
  if (!lls_text_ok(s, min, LLS_MAX_ID))
    return bad(err, id, "%s must be %zu..%d bytes of UTF-8 without NUL", k, min, LLS_MAX_ID);
  *out = s;
  return 0;
}

/* An integer member in [lo, hi]; *set = 0 when absent or null. */
static int rec_int(const lls_value *rec, const char *k, int64_t lo, int64_t hi, lls_str id,
                   int *set, int64_t *out, lls_error *err) {
  const lls_value *v = lls_value_get(rec, k, strlen(k));
  *set = v != NULL && v->type != LLS_VNULL;
  if (!*set) return 0;
  if (v->type != LLS_VINT || v->u.i < lo || v->u.i > hi)
    return bad(err, id, "%s must be an integer in [%lld, %lld]", k, (long long)lo,
               (long long)hi);
  *out = v->u.i;
  return 0;
}

/* 1 when a string of v (at any depth) holds a NUL byte: data takes what
 * the Lua API takes, and PostgreSQL's jsonb cannot hold "\u0000". */
static int has_nul(const lls_value *v) {
  switch (v->type) {
  case LLS_VSTRING: return v->u.s.len > 0 && memchr(v->u.s.ptr, '\0', v->u.s.len) != NULL;
  case LLS_VARRAY:
    for (size_t i = 0; i < v->u.a.n; i++)
      if (has_nul(v->u.a.items[i])) return 1;
    return 0;
  case LLS_VOBJECT:
    for (size_t i = 0; i < v->u.o.n; i++)
      if (has_nul(v->u.o.members[i].value)) return 1;
    return 0;
  default: return 0;
  }
}

/* Reads rs-llmspell's record (its short form too: only workflow_id is
 * required; status "pending", current_step 0, state_data {}, name = the
 * id, missing times: unset, or now for last_updated / created_at). */
static int section_load(lls_backend *cb, int part, const lls_value *rec, lls_conflict on_conflict,
                        int64_t now, int *written, lls_error *err) {
  (void)part;
  const int64_t tmax = (int64_t)(LLS_MAX_TIME_S * 1e6);
  lls_str none = {NULL, 0};
  lls_workflow w = {0};
  int set;
  int64_t x = 0;
  if (rec->type != LLS_VOBJECT) return bad(err, none, "a record must be an object");
  if (rec_text(rec, "workflow_id", 1, none, &w.workflow_id, err) != 0) return -1;
  if (w.workflow_id.ptr == NULL) return bad(err, none, "workflow_id is missing");
  lls_str id = w.workflow_id;
  w.name = id;
  w.status = (lls_str){"pending", 7};
  if (rec_text(rec, "workflow_name", 0, id, &w.name, err) != 0 ||
      rec_text(rec, "status", 1, id, &w.status, err) != 0)
    return -1;
  if (lls_workflow_status(w.status) < 0)
    return bad(err, id, "status must be one of " LLS_WF_STATUS_LIST);
  if (rec_int(rec, "current_step", 0, INT32_MAX, id, &set, &x, err) != 0) return -1;
  w.current_step = set ? (int)x : 0;
  if (rec_int(rec, "started_at", -tmax, tmax, id, &w.has_started, &w.started_at, err) != 0 ||
      rec_int(rec, "completed_at", -tmax, tmax, id, &w.has_completed, &w.completed_at, err))
    return -1;
  int has_updated, has_created;
  if (rec_int(rec, "last_updated", -tmax, tmax, id, &has_updated, &w.last_updated, err) != 0 ||
      rec_int(rec, "created_at", -tmax, tmax, id, &has_created, &w.created_at, err) != 0)
    return -1;
  if (!has_created) w.created_at = has_updated ? w.last_updated : now;
  if (!has_updated) w.last_updated = has_created ? w.created_at : now;
  const lls_value *data = lls_value_get(rec, "state_data", 10);
  if (data != NULL && has_nul(data))
    return bad(err, id, "state_data must not hold NUL (\\u0000) in its strings");
  lls_buf json = {NULL, 0, 0};
  char msg[256];
  if (data == NULL) {
    w.data = (lls_str){"{}", 2};
  } else if (lls_json_encode(data, &json, msg, sizeof msg) != 0) {
    lls_buf_free(&json);
    return bad(err, id, "state_data: %s", msg);
  } else {
    w.data = (lls_str){json.data, json.len};
  }
  int rc = 0;
  if (cb == NULL) *written = 1; /* a dry run: checked only */
  else rc = cb->vt->workflows->put(cb, &w, on_conflict, written, err);
  lls_buf_free(&json);
  return rc;
}

const lls_section_codec lls_workflows_section = {"workflow_states", NULL, section_dump,
                                                 section_load, lls_workflows_count, NULL};
