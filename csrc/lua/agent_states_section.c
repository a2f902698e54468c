/*
 * agent_states_section.c -- the export section "agent_state" of the agent
 * state component (agent_states_section.h) and the checksum check every
 * read of a state goes through (load in agent_states.c, export here).
 *
 * Apart from the binding (agent_states.c) because the store's section
 * list (sections.c) links to it: it must not reach back into the store
 * through the component base. It knows the op table only.
 *
 * Records carry rs-llmspell's fields (state_id, tenant_id, agent_id,
 * agent_type, state_data, schema_version, data_version, checksum,
 * created_at, updated_at; times in integer microseconds) plus is_json,
 * and state_encoding "base64" for a string state that is not UTF-8 text.
 */
#include "lua/agent_states_section.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "backend/agent_states.h"
#include "base/b64.h"
#include "base/limits.h"
#include "base/sha256.h"
#include "base/utf8.h"
#include "base/uuid.h"
#include "value/json.h"

/* Rows per page of an export: each holds a whole state, so a page is kept
 * small; the PostgreSQL result and the records of one page are what an
 * export holds at a time. */
#define DUMP_PAGE 64

/* Ids are quoted in messages up to this many bytes (cut at a character). */
#define QUOTE 120

static int quote_len(lls_str s) {
  size_t n = s.len;
  if (n > QUOTE) {
    n = QUOTE;
    while (n > 0 && ((unsigned char)s.ptr[n] & 0xC0) == 0x80) n--;
  }
  return (int)n;
}

int lls_agent_state_verify(const lls_agent_state *st, lls_error *err) {
  char hex[LLS_SHA256_HEX];
  if (lls_sha256_hex(st->state_data.ptr, st->state_data.len, hex) != 0)
    return lls_error_set(err, LLS_EIO, "SHA-256 failed");
  if (st->checksum.len == LLS_SHA256_HEX - 1 &&
      memcmp(st->checksum.ptr, hex, LLS_SHA256_HEX - 1) == 0)
    return 0;
  return lls_error_set(err, LLS_EINTEGRITY,
                       "agent state '%.*s' fails its checksum: the stored state is damaged"
                       " (checksum %.*s, stored bytes hash to %s)",
                       quote_len(st->agent_id), st->agent_id.ptr,
                       (int)(st->checksum.len > 64 ? 64 : st->checksum.len), st->checksum.ptr,
                       hex);
}

/* --------------------------------------------------------------- export */

/* Sets key to v (taken) in obj; 0, or -1 when out of memory. */
static int put(lls_value *obj, const char *key, lls_value *v) {
  return lls_value_set(obj, key, strlen(key), v);
}

static lls_value *str_value(lls_str s) { return lls_value_string(s.ptr, s.len); }

/* The record's state_data: the JSON value when is_json; else the string,
 * or its base64 (*b64 = 1) when the bytes are not UTF-8 text without NUL,
 * which a JSON string cannot carry. NULL + err. */
static lls_value *state_value(const lls_agent_state *st, int *b64, lls_error *err) {
  *b64 = 0;
  if (st->is_json) {
    char msg[256];
    lls_value *v = lls_json_decode(st->state_data.ptr, st->state_data.len, msg, sizeof msg);
    if (v == NULL)
      lls_error_set(err, LLS_EINTEGRITY, "agent state '%.*s': stored JSON cannot be read: %s",
                    quote_len(st->agent_id), st->agent_id.ptr, msg);
    return v;
  }
  const unsigned char *p = (const unsigned char *)st->state_data.ptr;
  if (lls_utf8_bad_at(p, st->state_data.len) == st->state_data.len) {
    lls_value *v = str_value(st->state_data);
    if (v == NULL) lls_error_oom(err);
    return v;
  }
  lls_buf q = {0};
  lls_value *v = NULL;
  if (lls_b64_quoted(&q, p, st->state_data.len) == 0) v = lls_value_string(q.data + 1, q.len - 2);
  lls_buf_free(&q);
  if (v == NULL) lls_error_oom(err);
  *b64 = 1;
  return v;
}

/* The export record of a (verified) row, with rs-llmspell's field names
 * plus is_json (and state_encoding for bytes), so a round trip restores
 * the row exactly. NULL + err. */
static lls_value *record_of(const lls_agent_state *st, lls_error *err) {
  int b64;
  lls_value *data = state_value(st, &b64, err);
  if (data == NULL) return NULL;
  lls_value *r = lls_value_object();
  if (r == NULL) {
    lls_value_free(data);
    lls_error_oom(err);
    return NULL;
  }
  int bad = put(r, "agent_id", str_value(st->agent_id));
  bad |= put(r, "agent_type", str_value(st->agent_type));
  bad |= put(r, "checksum", str_value(st->checksum));
  bad |= put(r, "created_at", lls_value_int(st->created_at));
  bad |= put(r, "data_version", lls_value_int(st->data_version));
  bad |= put(r, "is_json", lls_value_bool(st->is_json));
  bad |= put(r, "schema_version", lls_value_int(st->schema_version));
  bad |= put(r, "state_data", data);
  if (b64) bad |= put(r, "state_encoding", lls_value_string("base64", 6));
  bad |= put(r, "state_id", str_value(st->state_id));
  bad |= put(r, "tenant_id", str_value(st->tenant_id));
  bad |= put(r, "updated_at", lls_value_int(st->updated_at));
  if (bad) {
    lls_value_free(r);
    lls_error_oom(err);
    return NULL;
  }
  return r;
}

/* One page of an export: the records, and the last id seen (the next
 * page's cursor; a buffer apart from the one bound for this page). */
typedef struct page {
  lls_value *recs[DUMP_PAGE];
  size_t n;
  lls_buf last;
} page;

static int page_row(void *ud, const lls_agent_state *st, lls_error *err) {
  page *p = ud;
  if (p->n == DUMP_PAGE) return lls_error_set(err, LLS_EIO, "agent state export: page overrun");
  if (lls_agent_state_verify(st, err) != 0) return -1;
  lls_value *rec = record_of(st, err);
  if (rec == NULL) return -1;
  p->recs[p->n++] = rec;
  p->last.len = 0;
  return lls_buf_append(&p->last, st->agent_id.ptr, st->agent_id.len) == 0 ? 0
                                                                             : lls_error_oom(err);
}

/* Every row in agent_id order, a page at a time; a row that fails its
 * checksum stops the export with `integrity` (an export never carries a
 * damaged state as if it were sound). */
static int section_dump(lls_backend *cb, int part, int64_t now, lls_section_emit emit, void *ud,
                        int64_t *n, lls_error *err) {
  (void)part;
  (void)now;
  page p;
  lls_buf cursor = {0};
  memset(&p, 0, sizeof p);
  *n = 0;
  int rc = 0, first = 1;
  while (rc == 0) {
    lls_str after = {first ? NULL : (cursor.data ? cursor.data : ""), cursor.len};
    p.n = 0;
    rc = cb->vt->agent_states->dump(cb, after, DUMP_PAGE, page_row, &p, err);
    for (size_t i = 0; i < p.n; i++) {
      if (rc == 0 && emit(ud, p.recs[i], err) != 0) rc = -1;
      lls_value_free(p.recs[i]);
    }
    if (rc != 0 || p.n < DUMP_PAGE) break;
    *n += (int64_t)p.n;
    lls_buf swap = cursor;
    cursor = p.last;
    p.last = swap;
    first = 0;
  }
  if (rc == 0) *n += (int64_t)p.n;
  lls_buf_free(&cursor);
  lls_buf_free(&p.last);
  return rc;
}

/* ------------------------------------------------------------- import */

/* Import failures are LLS_EFORMAT naming the record ("agent_state 'id'")
 * and the field. */
#define FMT_REC "agent_state '%.*s': "

/* A member of rec, NULL when absent or JSON null (rs-llmspell's short
 * forms leave optional fields out, or write null). */
static const lls_value *member(const lls_value *rec, const char *name) {
  const lls_value *v = lls_value_get(rec, name, strlen(name));
  return v != NULL && v->type != LLS_VNULL ? v : NULL;
}

/* An optional text field of 1..max bytes of UTF-8; out->ptr NULL when absent. */
static int rec_text(const lls_value *rec, lls_str id, const char *name, size_t max, lls_str *out,
                    lls_error *err) {
  const lls_value *v = member(rec, name);
  out->ptr = NULL;
  out->len = 0;
  if (v == NULL) return 0;
  lls_str s = {v->u.s.ptr, v->u.s.len};
  if (v->type != LLS_VSTRING || !lls_text_ok(s, 1, max))
    return lls_error_set(err, LLS_EFORMAT, FMT_REC "%s must be 1..%zu bytes of UTF-8 text",
                         quote_len(id), id.ptr, name, max);
  *out = s;
  return 0;
}

/* An optional integer field in [lo, hi] (a float with no fraction is
 * taken, as JSON writers may print one); def when absent. */
static int rec_int(const lls_value *rec, lls_str id, const char *name, int64_t lo, int64_t hi,
                   int64_t def, int64_t *out, lls_error *err) {
  const lls_value *v = member(rec, name);
  *out = def;
  if (v == NULL) return 0;
  if (v->type == LLS_VINT && v->u.i >= lo && v->u.i <= hi) {
    *out = v->u.i;
    return 0;
  }
  if (v->type == LLS_VFLOAT && v->u.f == floor(v->u.f) && v->u.f >= (double)lo &&
      v->u.f <= (double)hi) {
    *out = (int64_t)v->u.f;
    return 0;
  }
  return lls_error_set(err, LLS_EFORMAT, FMT_REC "%s must be an integer in [%lld, %lld]",
                       quote_len(id), id.ptr, name, (long long)lo, (long long)hi);
}

/* The record's fields other than the state: ids, type, versions, times. */
static int rec_fields(const lls_value *rec, lls_agent_state *st, char sid[37], int64_t now,
                      lls_error *err) {
  const int64_t tmax = (int64_t)(LLS_MAX_TIME_S * 1e6);
  const lls_value *idv = member(rec, "agent_id");
  st->agent_id.ptr = idv != NULL && idv->type == LLS_VSTRING ? idv->u.s.ptr : "";
  st->agent_id.len = idv != NULL && idv->type == LLS_VSTRING ? idv->u.s.len : 0;
  if (!lls_text_ok(st->agent_id, 1, LLS_MAX_ID))
    return lls_error_set(err, LLS_EFORMAT,
                         "agent_state record: agent_id must be 1..%d bytes of UTF-8 text",
                         LLS_MAX_ID);
  lls_str id = st->agent_id;
  if (rec_text(rec, id, "state_id", LLS_MAX_ID, &st->state_id, err) != 0 ||
      rec_text(rec, id, "agent_type", LLS_MAX_NAME, &st->agent_type, err) != 0 ||
      rec_int(rec, id, "schema_version", 1, INT32_MAX, LLS_AGENT_SCHEMA_DEFAULT,
              &st->schema_version, err) != 0 ||
      rec_int(rec, id, "data_version", 1, INT64_MAX, 1, &st->data_version, err) != 0 ||
      rec_int(rec, id, "created_at", -tmax, tmax, now, &st->created_at, err) != 0 ||
      rec_int(rec, id, "updated_at", -tmax, tmax, st->created_at, &st->updated_at, err) != 0)
    return -1;
  if (st->agent_type.ptr == NULL) {
    st->agent_type.ptr = LLS_AGENT_TYPE_DEFAULT;
    st->agent_type.len = strlen(LLS_AGENT_TYPE_DEFAULT);
  }
  if (st->state_id.ptr == NULL) {
    if (lls_uuid_v4(sid) != 0) return lls_error_set(err, LLS_EIO, "no randomness for a UUID");
    st->state_id.ptr = sid;
    st->state_id.len = 36;
  }
  return 0;
}

/* 1 when the given checksum text is hex (either case) equal to hex. */
static int sum_equal(lls_str given, const char hex[LLS_SHA256_HEX]) {
  if (given.len != LLS_SHA256_HEX - 1) return 0;
  for (size_t i = 0; i < given.len; i++) {
    char c = given.ptr[i];
    if (c >= 'A' && c <= 'F') c = (char)(c - 'A' + 'a');
    if (c != hex[i]) return 0;
  }
  return 1;
}

/* The bytes to store for the record's state_data, into *bytes:
 *   - is_json true, or a value other than a string: its JSON text, as
 *     save() writes it (compact, members sorted: serde_json's to_string);
 *   - is_json false: the string's bytes (state_encoding "base64": the
 *     bytes it encodes);
 *   - no is_json (rs-llmspell's form) and a string: its bytes when the
 *     given checksum is theirs, else the JSON text of the string.
 * *is_json says which. */
static int state_bytes(const lls_value *rec, lls_str id, lls_str given, lls_buf *bytes,
                       int *is_json, lls_error *err) {
  const lls_value *data = lls_value_get(rec, "state_data", 10);
  const lls_value *isj = member(rec, "is_json");
  const lls_value *enc = member(rec, "state_encoding");
  char msg[256], hex[LLS_SHA256_HEX];
  if (data == NULL)
    return lls_error_set(err, LLS_EFORMAT, FMT_REC "state_data is missing", quote_len(id),
                         id.ptr);
  if (isj != NULL && isj->type != LLS_VBOOL)
    return lls_error_set(err, LLS_EFORMAT, FMT_REC "is_json must be a boolean", quote_len(id),
                         id.ptr);
  int raw = isj != NULL && !isj->u.b;
  if (enc != NULL && (enc->type != LLS_VSTRING || enc->u.s.len != 6 ||
                      memcmp(enc->u.s.ptr, "base64", 6) != 0 ||
                      (isj != NULL && isj->u.b)))
    return lls_error_set(err, LLS_EFORMAT,
                         FMT_REC "state_encoding must be \"base64\", for a state that is not JSON",
                         quote_len(id), id.ptr);
  if ((raw || enc != NULL) && data->type != LLS_VSTRING)
    return lls_error_set(err, LLS_EFORMAT, FMT_REC "state_data must be a string when is_json"
                         " is false", quote_len(id), id.ptr);
  if (isj == NULL && enc == NULL && data->type == LLS_VSTRING && given.ptr != NULL &&
      lls_sha256_hex(data->u.s.ptr, data->u.s.len, hex) == 0 && sum_equal(given, hex))
    raw = 1;
  *is_json = !raw && enc == NULL;
  bytes->len = 0;
  if (enc != NULL) {
    int rc = lls_b64_decode(bytes, data->u.s.ptr, data->u.s.len);
    if (rc == -2) return lls_error_oom(err);
    if (rc != 0)
      return lls_error_set(err, LLS_EFORMAT, FMT_REC "state_data is not base64",
                           quote_len(id), id.ptr);
    return 0;
  }
  if (raw)
    return lls_buf_append(bytes, data->u.s.ptr, data->u.s.len) == 0 ? 0 : lls_error_oom(err);
  if (lls_json_encode(data, bytes, msg, sizeof msg) != 0)
    return lls_error_set(err, LLS_EFORMAT, FMT_REC "state_data: %s", quote_len(id), id.ptr,
                         msg);
  return 0;
}

/* Stores one record. Our records carry is_json, and their bytes are
 * exactly what state_bytes rebuilds, so a checksum that does not match
 * means the record was altered or damaged: refused (LLS_EFORMAT), never
 * stored under a checksum that fails every load nor under a fresh one
 * that hides the damage. rs-llmspell's records (no is_json) carry a
 * checksum of the bytes its caller serialised before PostgreSQL's jsonb
 * (or its own importer) rewrote them, which the file does not hold: it is
 * kept when it matches the bytes stored, else replaced by theirs. A record
 * without a checksum gets its own. */
static int section_load(lls_backend *cb, int part, const lls_value *rec,
                        lls_conflict on_conflict, int64_t now, int *written, lls_error *err) {
  (void)part;
  *written = 0;
  if (rec->type != LLS_VOBJECT)
    return lls_error_set(err, LLS_EFORMAT, "agent_state record must be an object");
  lls_agent_state st;
  memset(&st, 0, sizeof st);
  char sid[37], hex[LLS_SHA256_HEX];
  lls_str given;
  if (rec_fields(rec, &st, sid, now, err) != 0 ||
      rec_text(rec, st.agent_id, "checksum", LLS_MAX_ID, &given, err) != 0)
    return -1;
  int ours = member(rec, "is_json") != NULL;
  lls_buf bytes = {0};
  int rc = state_bytes(rec, st.agent_id, given, &bytes, &st.is_json, err);
  st.state_data.ptr = bytes.data ? bytes.data : "";
  st.state_data.len = bytes.len;
  if (rc == 0 && lls_sha256_hex(st.state_data.ptr, st.state_data.len, hex) != 0)
    rc = lls_error_set(err, LLS_EIO, "SHA-256 failed");
  if (rc == 0 && ours && given.ptr != NULL && !sum_equal(given, hex))
    rc = lls_error_set(err, LLS_EFORMAT,
                       FMT_REC "checksum %.*s does not match state_data (whose SHA-256 is %s):"
                       " the record was altered or damaged",
                       quote_len(st.agent_id), st.agent_id.ptr,
                       (int)(given.len > 64 ? 64 : given.len), given.ptr, hex);
  if (rc == 0) {
    st.checksum.ptr = hex;
    st.checksum.len = LLS_SHA256_HEX - 1;
    if (cb == NULL) *written = 1; /* a dry run: checked only */
    else rc = cb->vt->agent_states->put(cb, &st, on_conflict, written, err);
  }
  lls_buf_free(&bytes);
  return rc;
}

static int section_count(lls_backend *cb, int64_t now, int64_t *n, lls_error *err) {
  (void)now;
  return cb->vt->agent_states->count(cb, n, err);
}

const lls_section_codec lls_agent_states_section = {"agent_state", NULL, section_dump,
                                                    section_load, section_count, NULL};
