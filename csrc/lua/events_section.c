/*
 * events_section.c -- the "event_log" export section (rs-llmspell's
 * EventExport records), read and written through the backend's event
 * op table. Apart from the binding (events.c) because the store and the
 * exporter reach the section list, and this file needs nothing of
 * theirs: no Lua, only records.
 *
 * A record: id and event_id (the event's id; rs-llmspell's table has no
 * other), tenant_id, event_type, correlation_id ("" for none: rs-llmspell
 * requires a string), timestamp (µs), sequence, language, and payload:
 * rs-llmspell's UniversalEvent, the whole event as JSON ({id, event_type,
 * data, language, timestamp (RFC 3339), sequence, metadata =
 * {correlation_id}, schema_version}), whose data member is the event's
 * data. On import a payload object with both event_type and data members
 * is such an event and gives its data; any other payload is the data.
 */
#include "lua/events_section.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "backend/events.h"
#include "base/limits.h"
#include "base/uuid.h"
#include "value/json.h"

/* Texts in messages: at most this many bytes. */
#define QUOTE(s) (int)((s).len > 100 ? 100 : (s).len), (s).ptr

/* Events per dump page. */
#define PAGE 256

int lls_events_count(lls_backend *cb, int64_t now, int64_t *n, lls_error *err) {
  (void)now;
  return cb->vt->events->count(cb, n, err);
}

/* Adds member k = v to o (taking v; a NULL v is out of memory). */
static int put(lls_value *o, const char *k, lls_value *v) {
  return lls_value_set(o, k, strlen(k), v);
}

static lls_value *str_value(lls_str s) { return lls_value_string(s.ptr ? s.ptr : "", s.len); }

/* us as RFC 3339 UTC with microseconds, "2025-01-31T12:00:00.000001Z"
 * (out: 64 bytes). Years 1..9999 only, as events carry. */
static void rfc3339(int64_t us, char *out) {
  int64_t s = us / 1000000, frac = us % 1000000;
  if (frac < 0) frac += 1000000, s--;
  int64_t days = s / 86400, sec = s % 86400;
  if (sec < 0) sec += 86400, days--;
  /* civil date from days since 1970-01-01 (H. Hinnant's algorithm) */
  int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
  int64_t d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
  int64_t y = yoe + era * 400 + (m <= 2);
  snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", (int)y, (int)m, (int)d,
           (int)(sec / 3600), (int)(sec / 60 % 60), (int)(sec % 60), (int)frac);
}

/* The UniversalEvent of e, with its data decoded. NULL when out of
 * memory or the stored data is not JSON (err says which). */
static lls_value *payload_of(const lls_event *e, lls_error *err) {
  char msg[200], when[64];
  lls_value *data = lls_json_decode(e->data.ptr, e->data.len, msg, sizeof msg);
  if (data == NULL) {
    lls_error_set(err, LLS_EINTEGRITY, "event %lld: stored data is not JSON: %s",
                  (long long)e->sequence, msg);
    return NULL;
  }
  lls_value *p = lls_value_object(), *md = lls_value_object();
  if (p == NULL || md == NULL) {
    lls_value_free(data);
    lls_value_free(md);
    lls_value_free(p);
    lls_error_oom(err);
    return NULL;
  }
  rfc3339(e->timestamp, when);
  int rc = put(md, "correlation_id", e->correlation_id.ptr ? str_value(e->correlation_id)
                                                           : lls_value_null());
  rc |= put(p, "id", str_value(e->id)) | put(p, "event_type", str_value(e->type)) |
        put(p, "data", data) | put(p, "language", str_value(e->language)) |
        put(p, "timestamp", lls_value_string(when, strlen(when))) |
        put(p, "sequence", lls_value_int(e->sequence)) | put(p, "metadata", md) |
        put(p, "schema_version", lls_value_string("1.0", 3));
  if (rc != 0) {
    lls_value_free(p);
    lls_error_oom(err);
    return NULL;
  }
  return p;
}

typedef struct dump_ctx {
  lls_section_emit emit;
  void *ud;
  int64_t last; /* the last sequence sent */
} dump_ctx;

/* One event as rs-llmspell's EventExport, to the exporter. */
static int dump_row(void *ud, const lls_event *e, lls_error *err) {
  dump_ctx *d = ud;
  lls_value *payload = payload_of(e, err);
  if (payload == NULL) return -1;
  lls_value *rec = lls_value_object();
  if (rec == NULL) {
    lls_value_free(payload);
    return lls_error_oom(err);
  }
  int rc = put(rec, "id", str_value(e->id)) | put(rec, "tenant_id", str_value(e->tenant_id)) |
           put(rec, "event_id", str_value(e->id)) | put(rec, "event_type", str_value(e->type)) |
           put(rec, "correlation_id", str_value(e->correlation_id)) |
           put(rec, "timestamp", lls_value_int(e->timestamp)) |
           put(rec, "sequence", lls_value_int(e->sequence)) |
           put(rec, "language", str_value(e->language)) | put(rec, "payload", payload);
  if (rc != 0) {
    lls_value_free(rec);
    return lls_error_oom(err);
  }
  d->last = e->sequence;
  rc = d->emit(d->ud, rec, err);
  lls_value_free(rec);
  return rc;
}

/* Every event of the tenant in sequence order, a page at a time. */
static int section_dump(lls_backend *cb, int part, int64_t now, lls_section_emit emit, void *ud,
                        int64_t *n, lls_error *err) {
  (void)part, (void)now;
  dump_ctx d = {emit, ud, 0};
  *n = 0;
  for (;;) {
    size_t got;
    if (cb->vt->events->dump(cb, d.last, PAGE, dump_row, &d, &got, err) != 0) return -1;
    *n += (int64_t)got;
    if (got < PAGE) return 0;
  }
}

/* An import error (LLS_EFORMAT), naming the event by its id once it is
 * known; the importer puts the record's place in the file before. */
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
  return lls_error_set(err, LLS_EFORMAT, "event '%.*s': %s", QUOTE(id), what);
}

/* A text member of min..max bytes of o; absent or null leaves *out as it
 * is. */
static int rec_text(const lls_value *o, const char *k, size_t min, size_t max, lls_str id,
                    lls_str *out, lls_error *err) {
  const lls_value *v = lls_value_get(o, k, strlen(k));
  if (v == NULL || v->type == LLS_VNULL) return 0;
  if (v->type != LLS_VSTRING) return bad(err, id, "%s must be a string", k);
  lls_str s = {v->u.s.ptr, v->u.s.len};
  if (!lls_text_ok(s, min, max))
    return bad(err, id, "%s must be %zu..%zu bytes of UTF-8 without NUL", k, min, max);
  *out = s;
  return 0;
}

/* An integer member in [lo, hi); *set = 0 when absent or null. */
static int rec_int(const lls_value *o, const char *k, int64_t lo, int64_t hi, lls_str id,
                   int *set, int64_t *out, lls_error *err) {
  const lls_value *v = lls_value_get(o, k, strlen(k));
  *set = v != NULL && v->type != LLS_VNULL;
  if (!*set) return 0;
  if (v->type != LLS_VINT || v->u.i < lo || v->u.i >= hi)
    return bad(err, id, "%s must be an integer in [%lld, %lld)", k, (long long)lo,
               (long long)hi);
  *out = v->u.i;
  return 0;
}

/* 1 when a string of v (at any depth) holds a NUL byte. */
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

/* The record's texts: event_type (or the payload's), the id (event_id,
 * id, the payload's id, else *uuid made new), correlation_id ("" is
 * none), language ("lua"). */
static int rec_texts(const lls_value *rec, const lls_value *pl, lls_event *e, char uuid[37],
                     lls_error *err) {
  lls_str none = {NULL, 0}, corr = {NULL, 0};
  const lls_value *plo = pl != NULL && pl->type == LLS_VOBJECT ? pl : NULL;
  if (rec_text(rec, "event_id", 1, LLS_MAX_ID, none, &e->id, err) != 0 ||
      (e->id.ptr == NULL && rec_text(rec, "id", 1, LLS_MAX_ID, none, &e->id, err) != 0) ||
      (e->id.ptr == NULL && plo && rec_text(plo, "id", 1, LLS_MAX_ID, none, &e->id, err) != 0))
    return -1;
  if (e->id.ptr == NULL) {
    if (lls_uuid_v4(uuid) != 0)
      return lls_error_set(err, LLS_EIO, "no randomness for a UUID (RAND_bytes failed)");
    e->id = (lls_str){uuid, 36};
  }
  if (rec_text(rec, "event_type", 1, LLS_MAX_NAME, e->id, &e->type, err) != 0 ||
      (e->type.ptr == NULL && plo &&
       rec_text(plo, "event_type", 1, LLS_MAX_NAME, e->id, &e->type, err) != 0))
    return -1;
  if (e->type.ptr == NULL) return bad(err, e->id, "event_type is missing");
  if (rec_text(rec, "correlation_id", 0, LLS_MAX_ID, e->id, &corr, err) != 0) return -1;
  e->correlation_id = corr.len > 0 ? corr : none;
  e->language = (lls_str){"lua", 3};
  return rec_text(rec, "language", 1, LLS_MAX_NAME, e->id, &e->language, err);
}

/* Reads rs-llmspell's record (its short form too: only event_type is
 * required, in the record or its payload). */
static int section_load(lls_backend *cb, int part, const lls_value *rec, lls_conflict on_conflict,
                        int64_t now, int *written, lls_error *err) {
  (void)part;
  lls_event e = {0};
  char uuid[37], msg[200];
  if (rec->type != LLS_VOBJECT) return bad(err, e.id, "a record must be an object");
  const lls_value *pl = lls_value_get(rec, "payload", 7);
  if (rec_texts(rec, pl, &e, uuid, err) != 0) return -1;
  int set;
  if (rec_int(rec, "timestamp", LLS_EVENT_MIN_US, LLS_EVENT_MAX_US, e.id, &set, &e.timestamp,
              err) != 0)
    return -1;
  if (!set) e.timestamp = now;
  if (rec_int(rec, "sequence", 1, INT64_MAX, e.id, &set, &e.sequence, err) != 0) return -1;
  if (!set) e.sequence = 0; /* the next one */
  const lls_value *data = pl;
  if (pl != NULL && pl->type == LLS_VOBJECT && lls_value_get(pl, "event_type", 10) != NULL &&
      lls_value_get(pl, "data", 4) != NULL)
    data = lls_value_get(pl, "data", 4);
  if (data != NULL && has_nul(data))
    return bad(err, e.id, "payload must not hold NUL (\\u0000) in its strings");
  lls_buf json = {NULL, 0, 0};
  int rc = 0;
  if (data == NULL)
    rc = lls_buf_append(&json, "null", 4) != 0 ? lls_error_oom(err) : 0;
  else if (lls_json_encode(data, &json, msg, sizeof msg) != 0)
    rc = bad(err, e.id, "payload: %s", msg);
  if (rc == 0 && cb == NULL) *written = 1; /* a dry run: checked only */
  if (rc == 0 && cb != NULL) {
    e.data = (lls_str){json.data, json.len};
    rc = cb->vt->events->put(cb, &e, on_conflict, written, err);
  }
  lls_buf_free(&json);
  return rc;
}

const lls_section_codec lls_events_section = {"event_log", NULL, section_dump, section_load,
                                              lls_events_count, NULL};
