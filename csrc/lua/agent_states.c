/*
 * agent_states.c -- db:agent_states() (COMPONENTS.md "Agent state"): one
 * snapshot of state per agent id, saved as JSON text (a table) or as the
 * bytes of a string, with a SHA-256 checksum of the stored bytes that is
 * checked on every read that returns state (load and export), and a
 * data_version the backend's one-statement upsert keeps exact under
 * concurrent savers. Also the export section "agent_state".
 *
 * The checksum is computed and verified here, once for every backend: the
 * backends (backend/agent_states.h) only store and return bytes.
 */
#include "lua/agent_states.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "backend/agent_states.h"
#include "base/b64.h"
#include "base/clock.h"
#include "base/limits.h"
#include "base/sha256.h"
#include "base/utf8.h"
#include "base/uuid.h"
#include "lua/args.h"
#include "lua/component.h"
#include "lua/error.h"
#include "value/json.h"

#define AGENT_STATES_MT "llmspell.storage.AgentStates"

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

static int count_rows(lls_backend *cb, int64_t now, int64_t *n, lls_error *err) {
  (void)now;
  return cb->vt->agent_states->count(cb, n, err);
}

static const lls_component_class CLS = {
    {"agent_states", lls_component_owned_close, NULL}, AGENT_STATES_MT, "agent_states",
    count_rows};

/* 0 when st's bytes hash to its checksum; else LLS_EINTEGRITY naming the
 * agent: the row was damaged (or edited) after it was written. */
static int verify(const lls_agent_state *st, lls_error *err) {
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

/* ------------------------------------------------------ argument checks */

static lls_str check_text_arg(lua_State *L, int idx, int arg, size_t max, const char *what) {
  if (lua_type(L, idx) != LUA_TSTRING)
    luaL_argerror(L, arg, lua_pushfstring(L, "string %s expected, got %s", what,
                                          luaL_typename(L, idx)));
  lls_str s;
  s.ptr = lua_tolstring(L, idx, &s.len);
  lls_check_text(L, arg, s, 1, max, what);
  return s;
}

static lls_str check_id(lua_State *L, int arg) {
  return check_text_arg(L, arg, arg, LLS_MAX_ID, "agent_id");
}

/* -------------------------------------------------------------- methods */

/** g:save(agent_id, state [, {agent_type=, schema_version=}])
 * --> {data_version=, checksum=}. state: a table (stored as JSON) or a
 * string (stored as its bytes). agent_type / schema_version: kept from the
 * stored row when not given ("unknown" / 1 for a new one). */
static int as_save(lua_State *L) {
  static const char *const allowed[] = {"agent_type", "schema_version", NULL};
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  lls_agent_state st;
  memset(&st, 0, sizeof st);
  st.agent_id = check_id(L, 2);
  int t = lua_type(L, 3);
  if (t == LUA_TTABLE) {
    /* h->scratch outlives a raise; nothing else uses it during the call */
    lls_component_json_arg(L, 3, 3, "state", &h->scratch);
    st.state_data.ptr = h->scratch.data ? h->scratch.data : "";
    st.state_data.len = h->scratch.len;
    st.is_json = 1;
  } else if (t == LUA_TSTRING) {
    st.state_data.ptr = lua_tolstring(L, 3, &st.state_data.len);
  } else {
    luaL_argerror(L, 3, lua_pushfstring(L, "table or string state expected, got %s",
                                        luaL_typename(L, 3)));
  }
  if (!lua_isnoneornil(L, 4)) {
    luaL_checktype(L, 4, LUA_TTABLE);
    lls_check_fields(L, 4, 4, allowed, NULL, 0);
    /* the string stays alive in the options table after the pop */
    if (lua_getfield(L, 4, "agent_type") != LUA_TNIL)
      st.agent_type = check_text_arg(L, -1, 4, LLS_MAX_NAME, "agent_type");
    lua_pop(L, 1);
    st.schema_version = lls_opt_int(L, 4, "schema_version", 4, 1, INT32_MAX, 0);
  }
  char sid[37], hex[LLS_SHA256_HEX];
  lls_component_uuid(L, sid);
  st.state_id.ptr = sid;
  st.state_id.len = 36;
  if (lls_sha256_hex(st.state_data.ptr, st.state_data.len, hex) != 0)
    return luaL_error(L, "SHA-256 failed");
  st.checksum.ptr = hex;
  st.checksum.len = LLS_SHA256_HEX - 1;
  int64_t version = 0;
  lls_error err;
  if (cb->vt->agent_states->save(cb, &st, lls_now_us(), &version, &err) != 0)
    return lls_raise(L, &err, h->vt->name);
  lua_createtable(L, 0, 2);
  lua_pushinteger(L, (lua_Integer)version);
  lua_setfield(L, -2, "data_version");
  lua_pushstring(L, hex);
  lua_setfield(L, -2, "checksum");
  return 1;
}

/* A loaded row, copied out of the backend into a buffer the handle owns
 * (so the pushes after it, which may raise, leak nothing). */
enum { H_TYPE, H_DATA, H_SUM, H_SID, H_PARTS };

typedef struct held {
  lls_buf *buf;
  size_t off[H_PARTS], len[H_PARTS];
  int is_json;
  int64_t schema_version, data_version, created_at, updated_at;
} held;

static int hold_row(void *ud, const lls_agent_state *st, lls_error *err) {
  held *k = ud;
  const lls_str parts[H_PARTS] = {st->agent_type, st->state_data, st->checksum, st->state_id};
  k->buf->len = 0;
  for (int i = 0; i < H_PARTS; i++) {
    k->off[i] = k->buf->len;
    k->len[i] = parts[i].len;
    if (lls_buf_append(k->buf, parts[i].ptr, parts[i].len) != 0) return lls_error_oom(err);
  }
  k->is_json = st->is_json;
  k->schema_version = st->schema_version;
  k->data_version = st->data_version;
  k->created_at = st->created_at;
  k->updated_at = st->updated_at;
  return 0;
}

static lls_str held_part(const held *k, int i) {
  lls_str s = {k->buf->data ? k->buf->data + k->off[i] : "", k->len[i]};
  return s;
}

/* Pushes the info table load() returns beside the state. */
static void push_info(lua_State *L, const held *k) {
  lua_createtable(L, 0, 7);
  lls_str s = held_part(k, H_TYPE);
  lua_pushlstring(L, s.ptr, s.len);
  lua_setfield(L, -2, "agent_type");
  lua_pushinteger(L, (lua_Integer)k->data_version);
  lua_setfield(L, -2, "data_version");
  lua_pushinteger(L, (lua_Integer)k->schema_version);
  lua_setfield(L, -2, "schema_version");
  s = held_part(k, H_SUM);
  lua_pushlstring(L, s.ptr, s.len);
  lua_setfield(L, -2, "checksum");
  s = held_part(k, H_SID);
  lua_pushlstring(L, s.ptr, s.len);
  lua_setfield(L, -2, "state_id");
  lls_push_time(L, k->created_at);
  lua_setfield(L, -2, "created_at");
  lls_push_time(L, k->updated_at);
  lua_setfield(L, -2, "updated_at");
}

/** g:load(agent_id) --> state, {agent_type=, data_version=, schema_version=,
 * checksum=, state_id=, created_at=, updated_at=} | nil. The checksum is
 * verified first: a mismatch raises `integrity`, never a damaged state. */
static int as_load(lua_State *L) {
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  lls_str id = check_id(L, 2);
  held k;
  memset(&k, 0, sizeof k);
  k.buf = &h->scratch;
  int found = 0;
  lls_error err;
  if (cb->vt->agent_states->load(cb, id, hold_row, &k, &found, &err) != 0)
    return lls_raise(L, &err, h->vt->name);
  if (!found) {
    lua_pushnil(L);
    return 1;
  }
  lls_agent_state st;
  memset(&st, 0, sizeof st);
  st.agent_id = id;
  st.state_data = held_part(&k, H_DATA);
  st.checksum = held_part(&k, H_SUM);
  if (verify(&st, &err) != 0) return lls_raise(L, &err, h->vt->name);
  if (k.is_json)
    lls_component_push_json(L, h, st.state_data, "agent state");
  else
    lua_pushlstring(L, st.state_data.ptr, st.state_data.len);
  push_info(L, &k);
  return 2;
}

/** g:list([{agent_type=, after=, limit=}]) --> array of agent ids in byte
 * order: those of one agent_type when given (an index range), after the
 * id `after`, at most `limit`. */
static int as_list(lua_State *L) {
  static const char *const allowed[] = {"agent_type", "after", "limit", NULL};
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  lls_str type = {NULL, 0}, after = {NULL, 0};
  size_t limit = 0;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lls_check_fields(L, 2, 2, allowed, NULL, 0);
    if (lua_getfield(L, 2, "agent_type") != LUA_TNIL)
      type = check_text_arg(L, -1, 2, LLS_MAX_NAME, "agent_type");
    if (lua_getfield(L, 2, "after") != LUA_TNIL)
      after = check_text_arg(L, -1, 2, LLS_MAX_ID, "after");
    lua_pop(L, 2);
    limit = (size_t)lls_opt_int(L, 2, "limit", 2, 1, INT32_MAX, 0);
  }
  lls_error err;
  lls_rows_reset(&h->rows);
  if (cb->vt->agent_states->list(cb, type, after, limit, &h->rows, &err) != 0)
    return lls_raise(L, &err, h->vt->name);
  lua_createtable(L, (int)h->rows.count, 0);
  for (size_t i = 0; i < h->rows.count; i++) {
    lls_str id = lls_row_key(&h->rows, i);
    lua_pushlstring(L, id.ptr, id.len);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lls_rows_reset(&h->rows);
  return 1;
}

/** g:delete(agent_id) --> true if the agent had a state */
static int as_delete(lua_State *L) {
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  lls_str id = check_id(L, 2);
  int existed = 0;
  lls_error err;
  if (cb->vt->agent_states->del(cb, id, &existed, &err) != 0)
    return lls_raise(L, &err, h->vt->name);
  lua_pushboolean(L, existed);
  return 1;
}

/** g:count() --> the number of agents with a state */
static int as_count(lua_State *L) {
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  int64_t n = 0;
  lls_error err;
  if (cb->vt->agent_states->count(cb, &n, &err) != 0) return lls_raise(L, &err, h->vt->name);
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

/** db:agent_states() --> the store's agent state component (the same
 * object while it is referenced) */
static int db_agent_states(lua_State *L) { return lls_component_get(L, &CLS); }

const luaL_Reg lls_agent_states_db_methods[] = {
    {"agent_states", db_agent_states},
    {NULL, NULL},
};

void lls_open_agent_states(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"save", as_save},     {"load", as_load},   {"list", as_list},
      {"delete", as_delete}, {"count", as_count}, {NULL, NULL},
  };
  lls_component_define(L, &CLS, methods);
}

/* ------------------------------------------------ the export section */

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
  if (verify(st, err) != 0) return -1;
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
    rc = cb->vt->agent_states->put(cb, &st, on_conflict, written, err);
  }
  lls_buf_free(&bytes);
  return rc;
}

const lls_section_codec lls_agent_states_section = {"agent_state", NULL, section_dump,
                                                    section_load, count_rows};
