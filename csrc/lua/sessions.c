/*
 * sessions.c -- db:sessions(): the Sessions object (create, get, update,
 * touch, delete, list, cleanup_expired, count) over the backend's sessions op
 * table (backend/sessions.h). The export section is sessions_section.c.
 *
 * Each method checks every argument before the one backend call, so a bad
 * argument raises before anything is written, and converts the result to
 * Lua only after the call returns (a Lua error never interrupts a backend
 * mid-call). Times are seconds in Lua and microseconds below.
 */
#include "lua/sessions.h"

#include <string.h>

#include "backend/sessions.h"
#include "base/clock.h"
#include "base/limits.h"
#include "lua/args.h"
#include "lua/component.h"
#include "lua/error.h"
#include "lua/sessions_section.h"

#define SESSIONS_MT "llmspell.storage.Sessions"

static const lls_component_class CLS = {{"sessions", lls_component_owned_close, NULL},
                                        SESSIONS_MT, "sessions", lls_sessions_count};

/* ------------------------------------------------------ argument checks */

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
    if (!lls_sessions_status_ok(s))
      luaL_argerror(L, arg,
                    lua_pushfstring(L, "option 'status' must be one of " LLS_SESSION_STATUSES
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
  return lls_component_push_ids(L, h);
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

/** s:count() --> the number of live sessions */
static int s_count(lua_State *L) {
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  int64_t n;
  lls_error err;
  if (lls_sessions_count(cb, lls_now_us(), &n, &err) != 0)
    return lls_raise(L, &err, h->vt->name);
  lua_pushinteger(L, (lua_Integer)n);
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
      {"count", s_count},
      {NULL, NULL},
  };
  lls_component_define(L, &CLS, methods);
}
