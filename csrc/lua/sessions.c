/*
 * sessions.c -- db:sessions(): the Sessions object (create, get, update,
 * touch, delete, list, cleanup_expired) over the backend's sessions op
 * table (backend/sessions.h), and the "sessions" export section.
 *
 * Each method checks every argument before the one backend call, so a bad
 * argument raises before anything is written, and converts the result to
 * Lua only after the call returns (a Lua error never interrupts a backend
 * mid-call). Times are seconds in Lua and microseconds below.
 */
#include "lua/sessions.h"

#include <math.h>
#include <string.h>

#include "backend/sessions.h"
#include "base/clock.h"
#include "base/limits.h"
#include "base/uuid.h"
#include "lua/args.h"
#include "lua/component.h"
#include "lua/error.h"
#include "value/json.h"

#define SESSIONS_MT "llmspell.storage.Sessions"
/* Sessions per page of an export. */
#define DUMP_PAGE 256

static const char *const STATUSES[] = {"active", "completed", "expired", "archived", NULL};
#define STATUS_LIST "active, completed, expired, archived"

static int count_sessions(lls_backend *cb, int64_t now, int64_t *n, lls_error *err) {
  return cb->vt->sessions->count(cb, now, n, err);
}

static const lls_component_class CLS = {{"sessions", lls_component_owned_close, NULL},
                                        SESSIONS_MT, "sessions", count_sessions};

/* ------------------------------------------------------ argument checks */

static int status_ok(lls_str s) {
  for (int i = 0; STATUSES[i]; i++)
    if (strlen(STATUSES[i]) == s.len && memcmp(STATUSES[i], s.ptr, s.len) == 0) return 1;
  return 0;
}

/* A session id at arg: a string of 1..LLS_MAX_ID bytes of UTF-8 without
 * NUL; what names it in messages ("session id", "option 'after'"). */
static lls_str id_at(lua_State *L, int idx, int arg, const char *what) {
  lls_str s;
  if (lua_type(L, idx) != LUA_TSTRING)
    luaL_argerror(L, arg, lua_pushfstring(L, "%s: string expected, got %s", what,
                                          luaL_typename(L, idx)));
  s.ptr = lua_tolstring(L, idx, &s.len);
  lls_check_text(L, arg, s, 1, LLS_MAX_ID, what);
  return s;
}

static lls_str check_id(lua_State *L, int arg) { return id_at(L, arg, arg, "session id"); }

/* Field `status` of the options at arg: ptr NULL when absent. The string
 * stays alive in the options table. */
static lls_str opt_status(lua_State *L, int arg) {
  lls_str s = {NULL, 0};
  int t = lua_getfield(L, arg, "status");
  if (t != LUA_TNIL) {
    if (t != LUA_TSTRING)
      luaL_argerror(L, arg, lua_pushfstring(L, "option 'status': string expected, got %s",
                                            luaL_typename(L, -1)));
    s.ptr = lua_tolstring(L, -1, &s.len);
    if (!status_ok(s))
      luaL_argerror(L, arg, lua_pushfstring(L, "option 'status' must be one of " STATUS_LIST
                                            " (got '%s')", s.ptr));
  }
  lua_pop(L, 1);
  return s;
}

/* The expiry options ttl / expires_at of the table at arg (exclusive).
 * expires_at = false (allow_clear: update only) removes the expiry. */
static lls_expiry_change opt_expiry(lua_State *L, int arg, int64_t now, int allow_clear,
                                    int64_t *expires_at) {
  int tt = lua_getfield(L, arg, "ttl");
  int te = lua_getfield(L, arg, "expires_at");
  lls_expiry_change c = LLS_EXPIRY_KEEP;
  if (tt != LUA_TNIL && te != LUA_TNIL)
    luaL_argerror(L, arg, "options 'ttl' and 'expires_at' are exclusive");
  if (tt != LUA_TNIL) {
    lua_Number t = lua_tonumber(L, -2);
    if (tt != LUA_TNUMBER || !lls_ttl_ok(t))
      luaL_argerror(L, arg, "option 'ttl' must be a positive number of seconds, at most "
                            LLS_STR(LLS_MAX_TTL_S));
    *expires_at = now + lls_seconds_to_us(t);
    c = LLS_EXPIRY_SET;
  } else if (te == LUA_TBOOLEAN && allow_clear && !lua_toboolean(L, -1)) {
    c = LLS_EXPIRY_CLEAR;
  } else if (te != LUA_TNIL) {
    lua_Number t = lua_tonumber(L, -1);
    if (te != LUA_TNUMBER || !lls_time_ok(t) || t <= 0)
      luaL_argerror(L, arg,
                    allow_clear ? "option 'expires_at' must be a positive time (" LLS_TIME_RULE
                                  "), or false for none"
                                : "option 'expires_at' must be a positive time (" LLS_TIME_RULE
                                  ")");
    *expires_at = lls_seconds_to_us(t);
    /* a time in the first microsecond would round to 0, "never" */
    if (*expires_at <= 0) *expires_at = 1;
    c = LLS_EXPIRY_SET;
  }
  lua_pop(L, 2);
  return c;
}

/* Field `data` of the table at arg as JSON text in h->scratch (which
 * outlives an error); ptr NULL when absent. */
static lls_str opt_data(lua_State *L, lls_handle *h, int arg) {
  lls_str d = {NULL, 0};
  if (lua_getfield(L, arg, "data") != LUA_TNIL) {
    lls_component_json_arg(L, lua_gettop(L), arg, "data", &h->scratch);
    d.ptr = h->scratch.data ? h->scratch.data : "";
    d.len = h->scratch.len;
  }
  lua_pop(L, 1);
  return d;
}

/* ----------------------------------------------------------- results */

static void set_time(lua_State *L, const char *name, int64_t us) {
  lls_push_time(L, us);
  lua_setfield(L, -2, name);
}

/* Pushes the session table get() returns. */
static void push_session(lua_State *L, const lls_handle *h, const lls_session *s) {
  luaL_checkstack(L, 4, "session");
  lua_createtable(L, 0, 8);
  lua_pushlstring(L, s->id.ptr, s->id.len);
  lua_setfield(L, -2, "id");
  lua_pushlstring(L, s->status.ptr, s->status.len);
  lua_setfield(L, -2, "status");
  lls_component_push_json(L, h, s->data, "session data");
  lua_setfield(L, -2, "data");
  set_time(L, "created_at", s->created_at);
  set_time(L, "updated_at", s->updated_at);
  set_time(L, "last_accessed_at", s->last_accessed_at);
  if (s->expires_at != 0) set_time(L, "expires_at", s->expires_at);
  lua_pushinteger(L, (lua_Integer)s->artifact_count);
  lua_setfield(L, -2, "artifact_count");
}

/* --------------------------------------------------------- the methods */

/** s:create([id] [, {data=, status="active", ttl=|expires_at=}]) --> session
 * (as get returns it); `conflict` when a live session has the id. */
static int s_create(lua_State *L) {
  static const char *const allowed[] = {"data", "status", "ttl", "expires_at", NULL};
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  char idbuf[37], rowid[37];
  lls_session s;
  memset(&s, 0, sizeof s);
  if (lua_isnoneornil(L, 2)) {
    lls_component_uuid(L, idbuf);
    s.id = (lls_str){idbuf, 36};
  } else {
    s.id = check_id(L, 2);
  }
  int64_t now = lls_now_us();
  s.status = (lls_str){"active", 6};
  s.data = (lls_str){"{}", 2};
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    lls_check_fields(L, 3, 3, allowed, NULL, 0);
    lls_str st = opt_status(L, 3);
    if (st.ptr != NULL) s.status = st;
    opt_expiry(L, 3, now, 0, &s.expires_at);
    lls_str d = opt_data(L, h, 3);
    if (d.ptr != NULL) s.data = d;
  }
  lls_component_uuid(L, rowid);
  s.row_id = (lls_str){rowid, 36};
  lls_error err;
  if (cb->vt->sessions->create(cb, &s, now, &err) != 0) return lls_raise(L, &err, h->vt->name);
  s.created_at = s.updated_at = s.last_accessed_at = now;
  push_session(L, h, &s);
  return 1;
}

/** s:get(id) --> {id=, status=, data=, created_at=, updated_at=,
 * last_accessed_at=, expires_at=, artifact_count=} | nil (expired: nil) */
static int s_get(lua_State *L) {
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  lls_str id = check_id(L, 2);
  lls_session s;
  int found;
  lls_error err;
  if (cb->vt->sessions->get(cb, id, lls_now_us(), &s, &found, &err) != 0)
    return lls_raise(L, &err, h->vt->name);
  if (!found) {
    lua_pushnil(L);
    return 1;
  }
  push_session(L, h, &s);
  return 1;
}

/** s:update(id, {data=, status=, ttl=|expires_at=}) -- replaces what is
 * given (expires_at = false: never expires), sets updated_at;
 * `not_found` when no live session has the id. */
static int s_update(lua_State *L) {
  static const char *const allowed[] = {"data", "status", "ttl", "expires_at", NULL};
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  lls_str id = check_id(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  lls_check_fields(L, 3, 3, allowed, NULL, 0);
  int64_t now = lls_now_us();
  lls_session_change c;
  memset(&c, 0, sizeof c);
  c.status = opt_status(L, 3);
  c.expiry = opt_expiry(L, 3, now, 1, &c.expires_at);
  c.data = opt_data(L, h, 3);
  lls_error err;
  if (cb->vt->sessions->update(cb, id, &c, now, &err) != 0) return lls_raise(L, &err, h->vt->name);
  return 0;
}

/** s:touch(id) -- sets last_accessed_at; `not_found` when no live session
 * has the id. */
static int s_touch(lua_State *L) {
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  lls_str id = check_id(L, 2);
  lls_error err;
  if (cb->vt->sessions->touch(cb, id, lls_now_us(), &err) != 0)
    return lls_raise(L, &err, h->vt->name);
  return 0;
}

/** s:delete(id) --> true if a live session was removed; its artifacts go
 * with it (and content no other artifact refers to). */
static int s_delete(lua_State *L) {
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  lls_str id = check_id(L, 2);
  int existed;
  lls_error err;
  if (cb->vt->sessions->del(cb, id, lls_now_us(), &existed, &err) != 0)
    return lls_raise(L, &err, h->vt->name);
  lua_pushboolean(L, existed);
  return 1;
}

/** s:list([{status=, limit=, after=}]) --> ids of live sessions, newest
 * first (created_at, then id, descending); after = the last id of the
 * previous page (`not_found` when no session has it). */
static int s_list(lua_State *L) {
  static const char *const allowed[] = {"status", "limit", "after", NULL};
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  lls_str status = {NULL, 0}, after = {NULL, 0};
  size_t limit = 0;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lls_check_fields(L, 2, 2, allowed, NULL, 0);
    status = opt_status(L, 2);
    limit = (size_t)lls_opt_int(L, 2, "limit", 2, 1, 2147483647L, 0);
    if (lua_getfield(L, 2, "after") != LUA_TNIL)
      after = id_at(L, lua_gettop(L), 2, "option 'after'");
    /* the string stays alive in the options table */
    lua_pop(L, 1);
  }
  lls_error err;
  lls_rows_reset(&h->rows);
  if (cb->vt->sessions->list(cb, status, after, lls_now_us(), limit, &h->rows, &err) != 0)
    return lls_raise(L, &err, h->vt->name);
  lua_createtable(L, (int)h->rows.count, 0);
  for (size_t i = 0; i < h->rows.count; i++) {
    lls_str k = lls_row_key(&h->rows, i);
    lua_pushlstring(L, k.ptr, k.len);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lls_rows_reset(&h->rows);
  return 1;
}

/** s:cleanup_expired() --> number of expired sessions removed (with their
 * artifacts) */
static int s_cleanup_expired(lua_State *L) {
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  int64_t removed;
  lls_error err;
  if (cb->vt->sessions->cleanup(cb, lls_now_us(), &removed, &err) != 0)
    return lls_raise(L, &err, h->vt->name);
  lua_pushinteger(L, (lua_Integer)removed);
  return 1;
}

/** db:sessions() --> the store's Sessions object (the same one each call) */
static int db_sessions(lua_State *L) { return lls_component_get(L, &CLS); }

const luaL_Reg lls_sessions_db_methods[] = {
    {"sessions", db_sessions},
    {NULL, NULL},
};

void lls_open_sessions(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"create", s_create},
      {"get", s_get},
      {"update", s_update},
      {"touch", s_touch},
      {"delete", s_delete},
      {"list", s_list},
      {"cleanup_expired", s_cleanup_expired},
      {NULL, NULL},
  };
  lls_component_define(L, &CLS, methods);
}

/* ------------------------------------------------------- export section */

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
  char what[256];
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
  if (!status_ok(s->status)) return bad(err, id, "%s must be one of " STATUS_LIST, "status");
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
  if (rc == 0 && !skip) rc = cb->vt->sessions->load(cb, &s, on_conflict, now, written, err);
  lls_buf_free(&json);
  return rc;
}

const lls_section_codec lls_sessions_section = {"sessions", NULL, section_dump, section_load,
                                                 count_sessions};
