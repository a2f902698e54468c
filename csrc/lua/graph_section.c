/*
 * graph_section.c -- the "knowledge_graph" export section: {entities =
 * [...], relationships = [...]}, every version of each, with
 * rs-llmspell's field names (COMPONENTS.md "Semantic memory"). Read and
 * written through the backend's graph op table; no Lua here.
 *
 * An open end is written as rs-llmspell's PostgreSQL exporter writes
 * infinity, 9223372036854775807. Read back as open: that, null or a
 * missing field, and rs-llmspell's SQLite marker 9999999999 (seconds, as
 * its SQLite graph stores them, or the same in microseconds).
 */
#include "lua/graph_section.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "backend/graph.h"
#include "base/limits.h"
#include "value/json.h"

#define QUOTE(s) (int)((s).len > 100 ? 100 : (s).len), (s).ptr

/* Versions per dump page. */
#define PAGE 256

int lls_graph_count(lls_backend *cb, int64_t now, int64_t *n, lls_error *err) {
  (void)now;
  int64_t e, r;
  if (cb->vt->graph->count(cb, 0, &e, err) != 0 || cb->vt->graph->count(cb, 1, &r, err) != 0)
    return -1;
  *n = e + r;
  return 0;
}

static int count_part(lls_backend *cb, int part, int64_t now, int64_t *n, lls_error *err) {
  (void)now;
  return cb->vt->graph->count(cb, part, n, err);
}

/* Field names per part: id, type, name (entities) or the two ends. */
static const char *const ID[2] = {"entity_id", "relationship_id"};
static const char *const TYPE[2] = {"entity_type", "relationship_type"};
static const char *const TIMES[5] = {"valid_time_start", "valid_time_end",
                                     "transaction_time_start", "transaction_time_end",
                                     "created_at"};

/* ---------------------------------------------------------------- export */

static int put(lls_value *o, const char *k, lls_value *v) {
  return lls_value_set(o, k, strlen(k), v);
}

static lls_value *str_value(lls_str s) { return lls_value_string(s.ptr, s.len); }

typedef struct dump_ctx {
  lls_section_emit emit;
  void *ud;
  int part;
  lls_buf last_id; /* the last version sent: its key */
  int64_t last_recorded, last_valid;
} dump_ctx;

/* One version as rs-llmspell's record, to the exporter. */
static int dump_row(void *ud, const lls_graph_row *v, lls_error *err) {
  dump_ctx *d = ud;
  char msg[200];
  lls_value *rec = lls_value_object();
  lls_value *props = lls_json_decode(v->properties.ptr, v->properties.len, msg, sizeof msg);
  if (rec == NULL || props == NULL) {
    lls_value_free(rec);
    if (props == NULL)
      return lls_error_set(err, LLS_EINTEGRITY, "%s '%.*s': stored properties unreadable: %s",
                           ID[d->part], QUOTE(v->id), msg);
    lls_value_free(props);
    return lls_error_oom(err);
  }
  int rc = put(rec, ID[d->part], str_value(v->id)) |
           put(rec, "tenant_id", str_value(v->tenant_id)) |
           put(rec, TYPE[d->part], str_value(v->type)) | put(rec, "properties", props);
  if (d->part == 0) {
    rc |= put(rec, "name", str_value(v->name));
  } else {
    rc |= put(rec, "source_entity_id", str_value(v->from)) |
          put(rec, "target_entity_id", str_value(v->to));
  }
  const int64_t t[5] = {v->valid_from, v->valid_to, v->recorded_at, v->superseded_at,
                        v->created_at};
  for (int i = 0; i < 5; i++) rc |= put(rec, TIMES[i], lls_value_int(t[i]));
  d->last_id.len = 0;
  if (rc != 0 || lls_buf_append(&d->last_id, v->id.ptr, v->id.len) != 0) {
    lls_value_free(rec);
    return lls_error_oom(err);
  }
  d->last_recorded = v->recorded_at;
  d->last_valid = v->valid_from;
  rc = d->emit(d->ud, rec, err);
  lls_value_free(rec);
  return rc;
}

/* Every version of part in key order, a page at a time, each page after
 * the last key of the one before. */
static int section_dump(lls_backend *cb, int part, int64_t now, lls_section_emit emit, void *ud,
                        int64_t *n, lls_error *err) {
  (void)now;
  dump_ctx d = {emit, ud, part, {NULL, 0, 0}, 0, 0};
  lls_buf key = {NULL, 0, 0};
  lls_graph_row after = {0};
  int rc = 0, first = 1;
  *n = 0;
  for (;;) {
    size_t got;
    rc = cb->vt->graph->dump(cb, part, first ? NULL : &after, PAGE, dump_row, &d, &got, err);
    *n += (int64_t)got;
    if (rc != 0 || got < PAGE) break;
    lls_buf tmp = key; /* the page's last key becomes the next start */
    key = d.last_id;
    d.last_id = tmp;
    after.id = (lls_str){key.data ? key.data : "", key.len};
    after.recorded_at = d.last_recorded;
    after.valid_from = d.last_valid;
    first = 0;
  }
  lls_buf_free(&key);
  lls_buf_free(&d.last_id);
  return rc;
}

/* ---------------------------------------------------------------- import */

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static int bad(lls_error *err, int part, lls_str id, const char *fmt, ...) {
  char what[300];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  if (id.ptr == NULL) return lls_error_set(err, LLS_EFORMAT, "%s", what);
  return lls_error_set(err, LLS_EFORMAT, "%s '%.*s': %s", part == 0 ? "entity" : "relationship",
                       QUOTE(id), what);
}

/* A required text member of 1..max bytes. */
static int rec_text(const lls_value *rec, int part, const char *k, size_t max, lls_str id,
                    lls_str *out, lls_error *err) {
  const lls_value *v = lls_value_get(rec, k, strlen(k));
  if (v == NULL || v->type == LLS_VNULL) return bad(err, part, id, "%s is missing", k);
  if (v->type != LLS_VSTRING) return bad(err, part, id, "%s must be a string", k);
  *out = (lls_str){v->u.s.ptr, v->u.s.len};
  if (!lls_text_ok(*out, 1, max))
    return bad(err, part, id, "%s must be 1..%zu bytes of UTF-8 without NUL", k, max);
  return 0;
}

/* rs-llmspell's ways of writing an open end. */
static int is_open(int64_t t) {
  return t == LLS_GRAPH_OPEN || t == INT64_C(9999999999) || t == INT64_C(9999999999000000);
}

/* The five times: ends missing, null or written as infinity are open;
 * a missing start follows created_at (then now), a missing created_at the
 * transaction start. */
static int rec_times(const lls_value *rec, int part, lls_str id, int64_t now, int64_t t[5],
                     lls_error *err) {
  const int64_t tmax = (int64_t)(LLS_MAX_TIME_S * 1e6);
  int set[5];
  for (int i = 0; i < 5; i++) {
    const lls_value *v = lls_value_get(rec, TIMES[i], strlen(TIMES[i]));
    set[i] = v != NULL && v->type != LLS_VNULL;
    t[i] = LLS_GRAPH_OPEN;
    if (!set[i]) continue;
    int end = i == 1 || i == 3;
    if (v->type != LLS_VINT || (!(end && is_open(v->u.i)) && (v->u.i < -tmax || v->u.i > tmax)))
      return bad(err, part, id, "%s must be integer microseconds", TIMES[i]);
    t[i] = end && is_open(v->u.i) ? LLS_GRAPH_OPEN : v->u.i;
  }
  if (!set[4]) t[4] = set[2] ? t[2] : set[0] ? t[0] : now;
  if (!set[0]) t[0] = t[4];
  if (!set[2]) t[2] = t[4];
  if (t[0] > t[1]) return bad(err, part, id, "valid_time_start is after valid_time_end");
  if (t[2] > t[3])
    return bad(err, part, id, "transaction_time_start is after transaction_time_end");
  return 0;
}

/* Reads rs-llmspell's record into v; properties' JSON text into buf. */
static int read_record(const lls_value *rec, int part, int64_t now, lls_graph_row *v,
                       lls_buf *buf, lls_error *err) {
  lls_str none = {NULL, 0};
  if (rec->type != LLS_VOBJECT)
    return bad(err, part, none, "knowledge_graph.%s record is not an object",
               part == 0 ? "entities" : "relationships");
  if (rec_text(rec, part, ID[part], LLS_MAX_ID, none, &v->id, err) != 0 ||
      rec_text(rec, part, TYPE[part], LLS_MAX_NAME, v->id, &v->type, err) != 0)
    return -1;
  if (part == 0 && rec_text(rec, part, "name", LLS_MAX_KEY, v->id, &v->name, err) != 0)
    return -1;
  if (part == 1 &&
      (rec_text(rec, part, "source_entity_id", LLS_MAX_ID, v->id, &v->from, err) != 0 ||
       rec_text(rec, part, "target_entity_id", LLS_MAX_ID, v->id, &v->to, err) != 0))
    return -1;
  const lls_value *p = lls_value_get(rec, "properties", 10);
  char msg[200];
  buf->len = 0;
  if (p == NULL || p->type == LLS_VNULL || (p->type == LLS_VARRAY && p->u.a.n == 0)) {
    if (lls_buf_append(buf, "{}", 2) != 0) return lls_error_oom(err);
  } else if (p->type != LLS_VOBJECT) {
    return bad(err, part, v->id, "properties must be an object");
  } else if (lls_json_encode(p, buf, msg, sizeof msg) != 0) {
    return bad(err, part, v->id, "properties: %s", msg);
  }
  v->properties = (lls_str){buf->data, buf->len};
  int64_t t[5];
  if (rec_times(rec, part, v->id, now, t, err) != 0) return -1;
  v->valid_from = t[0], v->valid_to = t[1], v->recorded_at = t[2], v->superseded_at = t[3];
  v->created_at = t[4];
  return 0;
}

static int section_load(lls_backend *cb, int part, const lls_value *rec, lls_conflict on_conflict,
                        int64_t now, int *written, lls_error *err) {
  lls_graph_row v = {0};
  lls_buf buf = {NULL, 0, 0};
  *written = 0;
  int rc = read_record(rec, part, now, &v, &buf, err);
  if (rc == 0 && cb == NULL) *written = 1; /* a dry run: checked only */
  else if (rc == 0) rc = cb->vt->graph->put(cb, part, &v, on_conflict, written, err);
  lls_buf_free(&buf);
  return rc;
}

static const char *const PARTS[] = {"entities", "relationships", NULL};

const lls_section_codec lls_graph_section = {"knowledge_graph", PARTS,           section_dump,
                                             section_load,      lls_graph_count, count_part};
