/*
 * collection_scan.c -- col:scan(): a collection's live entries without a
 * query vector, streamed page by page from the backend (its scan slot,
 * backend/vectors.h) in id or (event_time, id) order, with the scope,
 * filter, resume point and limit a caller gives.
 *
 * Unlike searches, which the in-memory graph answers, a scan reads the
 * backend: each page is one index range (SQLite and PostgreSQL) resuming
 * after the last row the previous page saw, so memory stays bounded by a
 * page, writes inside the loop are safe, and the order is the database's.
 * In event_time order the rows with an event_time come first, then those
 * without one, by id: one ordered phase after the other.
 *
 * The backend's sink may not run Lua (a Lua error would unwind past the
 * backend's open statement), so a page is copied into C memory first and
 * turned into tables one entry per iteration.
 */
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/limits.h"
#include "lua/args.h"
#include "lua/class.h"
#include "lua/collection.h"
#include "lua/collection_scan.h"
#include "lua/error.h"
#include "lua/luavalue.h"
#include "value/filter.h"
#include "value/json.h"

#define SCAN_MT "llmspell.storage.CollectionScan"
#define SCAN_PAGE LLS_VEC_SCAN_PAGE /* rows asked of the backend per page */

/* One row of a page: strings in the arena at off (id, scope, metadata,
 * vector, in that order); meta decoded when the filter needed it. */
typedef struct srow {
  size_t off, idlen, scopelen, metalen, veclen;
  int64_t created_at, updated_at, event_time, expires_at;
  int has_event_time;
  lls_value *meta;
} srow;

typedef struct cscan {
  srow *rows;
  size_t n, cap, next;   /* the page, and the next row to hand out */
  lls_buf arena;
  lls_buf scope;         /* the scope option, when has_scope */
  int has_scope;
  lls_filter *filter;    /* NULL: none */
  lls_vec_order order;   /* the phase: BY_TIME is followed by UNTIMED */
  int has_after;         /* the resume point: the last row seen (kept */
  lls_buf after_id;      /* or filtered out) */
  int64_t after_time;
  int64_t remaining;     /* entries still to hand out; -1: no limit */
  size_t seen;           /* rows the backend gave in the current page */
  int last_page;         /* the backend has no more rows after this page */
  int include_vector, include_metadata;
  int dimension;
  int done, closed;
  char problem[200];     /* a stored row the filter could not read */
} cscan;

static void free_page(cscan *s) {
  for (size_t i = 0; i < s->n; i++) lls_value_free(s->rows[i].meta);
  s->n = s->next = 0;
  s->arena.len = 0;
}

/* Frees everything; the object stays (done) until collected. */
static void finish(cscan *s) {
  free_page(s);
  free(s->rows);
  s->rows = NULL;
  s->cap = 0;
  lls_buf_free(&s->arena);
  lls_buf_free(&s->scope);
  lls_buf_free(&s->after_id);
  lls_filter_free(s->filter);
  s->filter = NULL;
  s->done = 1;
}

/* The backend's sink: moves the resume point past every row, and keeps
 * those the filter takes. Plain C: no Lua may run here. */
static int page_sink(void *ud, const lls_vec_row *r, lls_error *err) {
  cscan *s = ud;
  s->seen++;
  s->after_id.len = 0;
  if (lls_buf_append(&s->after_id, r->id.ptr, r->id.len) != 0) return lls_error_oom(err);
  s->has_after = 1;
  s->after_time = r->event_time;
  lls_value *meta = NULL;
  if (s->filter != NULL) {
    meta = lls_json_decode(r->metadata.ptr, r->metadata.len, s->problem, sizeof s->problem);
    if (meta == NULL)
      return lls_error_set(err, LLS_EFORMAT, "entry '%.*s': stored metadata: %s",
                           (int)(r->id.len > 64 ? 64 : r->id.len), r->id.ptr, s->problem);
    if (!lls_filter_match(s->filter, meta)) {
      lls_value_free(meta);
      return 0;
    }
  }
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 64;
    srow *p = realloc(s->rows, cap * sizeof *p);
    if (p == NULL) return lls_value_free(meta), lls_error_oom(err);
    s->rows = p;
    s->cap = cap;
  }
  srow *o = &s->rows[s->n];
  *o = (srow){s->arena.len, r->id.len, r->scope.len, r->metadata.len, r->vector.len,
              r->created_at, r->updated_at, r->event_time, r->expires_at,
              r->has_event_time, meta};
  if (lls_buf_append(&s->arena, r->id.ptr, r->id.len) != 0 ||
      lls_buf_append(&s->arena, r->scope.ptr, r->scope.len) != 0 ||
      lls_buf_append(&s->arena, r->metadata.ptr, r->metadata.len) != 0 ||
      (s->include_vector && lls_buf_append(&s->arena, r->vector.ptr, r->vector.len) != 0))
    return lls_value_free(meta), lls_error_oom(err);
  s->n++;
  return 0;
}

/* Reads pages until one holds an entry or the rows run out. */
static void fetch(lua_State *L, cscan *s) {
  while (!s->done && s->next >= s->n) {
    if (s->last_page) {
      finish(s);
      return;
    }
    free_page(s);
    lls_handle *h;
    coll *c = lls_coll_ready(L, lua_upvalueindex(1), &h);
    size_t page = SCAN_PAGE;
    if (s->filter == NULL && s->remaining >= 0 && (size_t)s->remaining < page)
      page = (size_t)s->remaining;
    lls_vec_scan q = {s->order, {s->has_scope ? s->scope.data : NULL, s->scope.len},
                      s->has_after, {s->after_id.data, s->after_id.len}, s->after_time,
                      lls_now_us(), page};
    if (q.scope.ptr == NULL && s->has_scope) q.scope.ptr = "";
    s->seen = 0;
    lls_error err;
    if (h->vt->vec->scan(h->b, c->info.id, &q, page_sink, s, &err) != 0) {
      finish(s);
      lls_store_fail(L, h, &err);
    }
    if (s->seen < page) {
      /* this phase is over: event_time order goes on with the untimed */
      if (s->order == LLS_VEC_BY_TIME) {
        s->order = LLS_VEC_UNTIMED;
        s->has_after = 0;
      } else {
        s->last_page = 1;
      }
    }
  }
}

/* Pushes the entry for page row r. */
static void push_entry(lua_State *L, const cscan *s, const srow *r, int dim) {
  const char *p = s->arena.data + r->off;
  lua_createtable(L, 0, 8);
  lua_pushlstring(L, p, r->idlen);
  lua_setfield(L, -2, "id");
  lua_pushlstring(L, p + r->idlen, r->scopelen);
  lua_setfield(L, -2, "scope");
  if (s->include_metadata) {
    if (r->meta != NULL) {
      lls_push_value(L, r->meta);
    } else {
      char msg[200];
      lls_value *v = lls_json_decode(p + r->idlen + r->scopelen, r->metalen, msg, sizeof msg);
      if (v == NULL) luaL_error(L, "entry '%s': stored metadata: %s", lua_tostring(L, -2), msg);
      lls_push_value(L, v);
      lls_value_free(v);
    }
    lua_setfield(L, -2, "metadata");
  }
  if (s->include_vector && r->veclen == (size_t)dim * sizeof(float)) {
    float *f = lua_newuserdatauv(L, r->veclen ? r->veclen : 1, 0);
    memcpy(f, p + r->idlen + r->scopelen + r->metalen, r->veclen);
    lls_push_vector(L, f, (size_t)dim);
    lua_remove(L, -2);
    lua_setfield(L, -2, "vector");
  }
  lls_push_time(L, r->created_at);
  lua_setfield(L, -2, "created_at");
  lls_push_time(L, r->updated_at);
  lua_setfield(L, -2, "updated_at");
  if (r->has_event_time) {
    lls_push_time(L, r->event_time);
    lua_setfield(L, -2, "event_time");
  }
  if (r->expires_at) {
    lls_push_time(L, r->expires_at);
    lua_setfield(L, -2, "expires_at");
  }
}

/* The generic-for iterator (upvalue 1: the collection): (scan) --> entry | nil */
static int scan_next(lua_State *L) {
  cscan *s = lls_class_check(L, 1, SCAN_MT);
  if (s->closed) return lls_class_closed(L, "scan", lls_coll_backend(L, lua_upvalueindex(1)));
  if (s->done || s->remaining == 0) {
    finish(s);
    return 0;
  }
  fetch(L, s);
  if (s->done) return 0;
  push_entry(L, s, &s->rows[s->next++], s->dimension);
  if (s->remaining > 0) s->remaining--;
  return 1;
}

/* -------------------------------------------------------------- options */

static const char *const SCAN_FIELDS[] = {"scope",          "filter",          "order", "after",
                                          "limit",          "include_vector",
                                          "include_metadata", NULL};

/* Compiles the filter table at vi into s->filter. */
static void take_filter(lua_State *L, cscan *s, int vi, int arg) {
  char msg[300];
  if (!lua_istable(L, vi))
    luaL_argerror(L, arg, lua_pushfstring(L, "option 'filter': table expected, got %s",
                                          luaL_typename(L, vi)));
  lls_value *spec = lls_lua_to_value(L, vi, "filter", msg, sizeof msg);
  if (spec == NULL) luaL_argerror(L, arg, msg);
  s->filter = lls_filter_compile(spec, msg, sizeof msg);
  lls_value_free(spec);
  if (s->filter == NULL) luaL_argerror(L, arg, msg);
  if (lls_filter_matches_all(s->filter)) {
    lls_filter_free(s->filter);
    s->filter = NULL;
  }
}

/* The resume point at vi: an id (order "id"), or a table { event_time=,
 * id= } / { t, id } (an entry the scan gave does): after that row. An
 * event_time order resume point without a time resumes among the
 * entries that have none. */
static void take_after(lua_State *L, cscan *s, int vi, int arg, int by_time) {
  int idx = vi;
  if (lua_istable(L, vi)) {
    if (lua_getfield(L, vi, "id") == LUA_TNIL) {
      lua_pop(L, 1);
      lua_rawgeti(L, vi, 2);
    }
    idx = lua_gettop(L);
  } else if (by_time) {
    luaL_argerror(L, arg, "option 'after': with order \"event_time\", a table "
                          "{ event_time = t, id = id } (an entry) expected");
  }
  const char *msg = lls_coll_id_problem(L, idx, "option 'after'");
  if (msg) luaL_argerror(L, arg, msg);
  size_t len;
  const char *id = lua_tolstring(L, idx, &len);
  if (lls_buf_append(&s->after_id, id, len) != 0) luaL_error(L, "out of memory");
  s->has_after = 1;
  if (!by_time) return;
  if (lua_getfield(L, vi, "event_time") == LUA_TNIL) {
    lua_pop(L, 1);
    lua_rawgeti(L, vi, 1);
  }
  if (lua_isnil(L, -1)) {
    s->order = LLS_VEC_UNTIMED;
  } else if (lua_type(L, -1) != LUA_TNUMBER || !lls_time_ok(lua_tonumber(L, -1))) {
    luaL_argerror(L, arg, "option 'after': event_time must be " LLS_TIME_RULE
                          " (nil: an entry without one)");
  } else {
    s->after_time = lls_seconds_to_us(lua_tonumber(L, -1));
  }
}

/* Reads the options table at arg into s (defaults first). */
static void scan_options(lua_State *L, cscan *s, int arg) {
  s->order = LLS_VEC_BY_ID;
  s->remaining = -1;
  s->include_metadata = 1;
  if (lua_isnoneornil(L, arg)) return;
  luaL_checktype(L, arg, LUA_TTABLE);
  lls_check_fields(L, arg, arg, SCAN_FIELDS, NULL, 0);
  int by_time = 0;
  if (lua_getfield(L, arg, "order") != LUA_TNIL) {
    const char *o = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "";
    if (strcmp(o, "event_time") == 0) by_time = 1;
    else if (strcmp(o, "id") != 0)
      luaL_argerror(L, arg, "option 'order' must be \"id\" or \"event_time\"");
  }
  s->order = by_time ? LLS_VEC_BY_TIME : LLS_VEC_BY_ID;
  if (lua_getfield(L, arg, "scope") != LUA_TNIL) {
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_argerror(L, arg, lua_pushfstring(L, "option 'scope': string expected, got %s",
                                            luaL_typename(L, -1)));
    lls_str sc;
    sc.ptr = lua_tolstring(L, -1, &sc.len);
    lls_check_text(L, arg, sc, 1, LLS_MAX_SCOPE, "option 'scope'");
    if (lls_buf_append(&s->scope, sc.ptr, sc.len) != 0) luaL_error(L, "out of memory");
    s->has_scope = 1;
  }
  if (lua_getfield(L, arg, "filter") != LUA_TNIL) take_filter(L, s, lua_gettop(L), arg);
  if (lua_getfield(L, arg, "after") != LUA_TNIL) take_after(L, s, lua_gettop(L), arg, by_time);
  if (lua_getfield(L, arg, "limit") != LUA_TNIL)
    s->remaining = lls_int_at(L, lua_gettop(L), "limit", arg, 1, 2147483647L);
  s->include_vector = lls_opt_bool(L, arg, "include_vector", arg, 0);
  s->include_metadata = lls_opt_bool(L, arg, "include_metadata", arg, 1);
}

/* ------------------------------------------------------------ the object */

static int scan_close(lua_State *L) {
  cscan *s = lls_class_check(L, 1, SCAN_MT);
  finish(s);
  s->closed = 1;
  return 0;
}

static int scan_gc(lua_State *L) {
  finish(lls_class_check(L, 1, SCAN_MT));
  return 0;
}

static int scan_tostring(lua_State *L) {
  cscan *s = lls_class_check(L, 1, SCAN_MT);
  lua_pushfstring(L, "llmspell.storage.CollectionScan (%s)",
                  s->closed ? "closed" : s->done ? "finished" : "open");
  return 1;
}

/** for entry in col:scan{ scope=, filter=, order = "id" | "event_time",
 *   after=, limit=, include_vector = false, include_metadata = true } do ... end
 * Streams the collection's live entries (not expired) without a query
 * vector, a page at a time from the backend through its indexes: by id
 * (bytes), or by (event_time, id) with the entries that have no
 * event_time last (by id). entry = { id=, scope=, metadata=, vector=
 * (include_vector), created_at=, updated_at=, event_time=, expires_at= }.
 * after resumes past an id (order "id") or past an entry / { event_time=,
 * id= } (order "event_time"). The fourth value closes the scan when the
 * loop is left by break; scan:close() ends it early; the iterator refuses
 * to run on after that ("closed"). */
static int col_scan(lua_State *L) {
  lls_handle *h;
  coll *c = lls_coll_ready(L, 1, &h);
  lua_settop(L, 2);
  lua_pushvalue(L, 1);
  lua_pushcclosure(L, scan_next, 1);                        /* 3 */
  cscan *s = lls_class_new(L, SCAN_MT, sizeof *s, 0);      /* 4 */
  s->dimension = c->info.dimension;
  scan_options(L, s, 2);
  lua_settop(L, 4);
  lua_pushnil(L);
  lua_pushvalue(L, 4);
  return 4;
}

const luaL_Reg lls_coll_scan_methods[] = {
    {"scan", col_scan},
    {NULL, NULL},
};

void lls_open_coll_scan(lua_State *L) {
  static const luaL_Reg methods[] = {{"close", scan_close}, {NULL, NULL}};
  static const luaL_Reg *const all[] = {methods, NULL};
  static const luaL_Reg meta[] = {
      {"__gc", scan_gc},
      {"__close", scan_close},
      {"__tostring", scan_tostring},
      {NULL, NULL},
  };
  lls_class_define(L, SCAN_MT, all, meta);
}
