/*
 * collection.c -- vector collections in Lua: db:create_collection() and
 * friends, and the `col` object (add, upsert, get, delete, search, ...).
 *
 * This file checks arguments and converts between Lua and C; the state of
 * an open collection and how it keeps up with the backend's rows live in
 * coll_state.c, query answering in coll_search.c (see coll.h).
 *
 * Every write goes to the backend first and to memory after it succeeded.
 * Open collections are cached per store handle (in its uservalue), so a
 * rolled-back transaction can mark them stale (they reload on next use)
 * and closing the store closes them. Snapshots are written on close
 * (col:close, db:close, garbage collection) and by col:snapshot().
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collection/coll.h"
#include "value/json.h"
#include "lua/core.h"
#include "lua/luavalue.h"

#define LLS_COLL_MT "llmspell.storage.Collection"
#define MAX_NAME_LEN 255
#define MAX_K 10000
#define MAX_DIM LLS_MAX_DIM
#define MAX_ID_LEN LLS_MAX_ID

/* The userdata: c is NULL once closed. Uservalue 1 is the db handle. */
typedef struct coll_ud {
  coll *c;
} coll_ud;

/* -------------------------------------------------------- Lua arguments */

static int default_threads(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : n > 64 ? 64 : (int)n;
}

/* Seconds (integer or float) -> µs. */
static int64_t to_us(lua_Number s) { return (int64_t)llround((double)s * 1e6); }

/* µs -> seconds: an integer when whole, a float otherwise. */
static void push_time(lua_State *L, int64_t us) {
  if (us % 1000000 == 0)
    lua_pushinteger(L, us / 1000000);
  else
    lua_pushnumber(L, (lua_Number)us / 1e6);
}

/* Reads the vector at idx into out (dim floats): a Lua array of numbers or
 * a packed little-endian float32 string. Returns NULL or an error message
 * (pushed) naming `what`. */
static const char *read_vector(lua_State *L, int idx, size_t dim, float *out,
                               const char *what) {
  if (lua_type(L, idx) == LUA_TSTRING) {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    if (len != dim * 4)
      return lua_pushfstring(L, "%s is a %d-byte string, collection expects %d float32 "
                                "values (%d bytes)", what, (int)len, (int)dim,
                             (int)(dim * 4));
    memcpy(out, s, len);
  } else if (lua_type(L, idx) == LUA_TTABLE) {
    size_t n = (size_t)lua_rawlen(L, idx);
    if (n != dim)
      return lua_pushfstring(L, "%s has %d numbers, collection expects %d", what, (int)n,
                             (int)dim);
    for (size_t i = 0; i < dim; i++) {
      lua_rawgeti(L, idx, (lua_Integer)i + 1);
      int isnum = lua_type(L, -1) == LUA_TNUMBER;
      lua_Number x = lua_tonumber(L, -1);
      lua_pop(L, 1);
      if (!isnum) return lua_pushfstring(L, "%s[%d] is not a number", what, (int)i + 1);
      out[i] = (float)x;
    }
  } else {
    return lua_pushfstring(L, "%s: table of numbers or packed float32 string expected, "
                              "got %s", what, luaL_typename(L, idx));
  }
  for (size_t i = 0; i < dim; i++)
    if (!isfinite(out[i]))
      return lua_pushfstring(L, "%s[%d] is %s", what, (int)i + 1,
                             isnan(out[i]) ? "NaN" : "infinite (or too large for float32)");
  return NULL;
}

/* 1 when the n packed floats at p are all finite. */
static int finite_floats(const char *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    float f;
    memcpy(&f, p + 4 * i, 4);
    if (!isfinite(f)) return 0;
  }
  return 1;
}

/* Checks an id string: 1..MAX_ID_LEN bytes of UTF-8 text. NULL or message. */
static const char *id_problem(lua_State *L, int idx, const char *what) {
  if (lua_type(L, idx) != LUA_TSTRING)
    return lua_pushfstring(L, "%s: string id expected, got %s", what, luaL_typename(L, idx));
  size_t len;
  const char *s = lua_tolstring(L, idx, &len);
  if (len == 0 || len > MAX_ID_LEN)
    return lua_pushfstring(L, "%s: id must be 1..%d bytes", what, MAX_ID_LEN);
  for (size_t i = 0; i < len; i++)
    if (s[i] == '\0') return lua_pushfstring(L, "%s: id must not contain NUL bytes", what);
  return NULL;
}

/* Checks the option value at vi (named `name`, argument arg). */
static lua_Number number_at(lua_State *L, int vi, const char *name, int arg) {
  if (lua_type(L, vi) != LUA_TNUMBER)
    luaL_argerror(L, arg, lua_pushfstring(L, "option '%s': number expected, got %s", name,
                                          luaL_typename(L, vi)));
  return lua_tonumber(L, vi);
}

static int int_at(lua_State *L, int vi, const char *name, int arg, long lo, long hi) {
  lua_Number x = number_at(L, vi, name, arg);
  if (x != floor(x) || x < lo || x > hi)
    luaL_argerror(L, arg, lua_pushfstring(L, "option '%s' must be an integer in [%d, %d]",
                                          name, (int)lo, (int)hi));
  return (int)x;
}

static int bool_at(lua_State *L, int vi, const char *name, int arg) {
  if (lua_type(L, vi) != LUA_TBOOLEAN)
    luaL_argerror(L, arg, lua_pushfstring(L, "option '%s': boolean expected, got %s", name,
                                          luaL_typename(L, vi)));
  return lua_toboolean(L, vi);
}

/* A {from, to} time range in seconds (either end may be nil). */
static range range_at(lua_State *L, int vi, const char *name, int arg) {
  range r = {1, INT64_MIN, INT64_MAX};
  if (!lua_istable(L, vi))
    luaL_argerror(L, arg, lua_pushfstring(L, "option '%s': {from, to} expected", name));
  for (int i = 1; i <= 2; i++) {
    int tt = lua_rawgeti(L, vi, i);
    if (tt == LUA_TNUMBER) {
      if (i == 1) r.from = to_us(lua_tonumber(L, -1));
      else r.to = to_us(lua_tonumber(L, -1));
    } else if (tt != LUA_TNIL) {
      luaL_argerror(L, arg, lua_pushfstring(L, "option '%s': times must be numbers "
                                               "(seconds)", name));
    }
    lua_pop(L, 1);
  }
  return r;
}

/* Optional number field of table tbl; returns 1 and sets *out when present. */
static int opt_number(lua_State *L, int tbl, const char *name, int arg, lua_Number *out) {
  int present = lua_getfield(L, tbl, name) != LUA_TNIL;
  if (present) *out = number_at(L, lua_gettop(L), name, arg);
  lua_pop(L, 1);
  return present;
}

static int opt_int(lua_State *L, int tbl, const char *name, int arg, long lo, long hi,
                   long def) {
  int v = (int)def;
  if (lua_getfield(L, tbl, name) != LUA_TNIL) v = int_at(L, lua_gettop(L), name, arg, lo, hi);
  lua_pop(L, 1);
  return v;
}

static int opt_bool(lua_State *L, int tbl, const char *name, int arg, int def) {
  int v = def;
  if (lua_getfield(L, tbl, name) != LUA_TNIL) v = bool_at(L, lua_gettop(L), name, arg);
  lua_pop(L, 1);
  return v;
}

/* ----------------------------------------------------- the col userdata */

/* The handle's table of open collections (name -> userdata, weak values). */
static void push_registry(lua_State *L, int hidx) { lua_getiuservalue(L, hidx, 1); }

/* Closes the collection at idx without a snapshot (it no longer exists)
 * and removes it from its handle's cache. */
static void forget_coll(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  coll_ud *u = luaL_checkudata(L, idx, LLS_COLL_MT);
  if (u->c == NULL) return;
  lua_getiuservalue(L, idx, 1);
  push_registry(L, lua_gettop(L));
  if (lua_getfield(L, -1, u->c->info.name) == LUA_TUSERDATA && lua_touserdata(L, -1) == u) {
    lua_pushnil(L);
    lua_setfield(L, -3, u->c->info.name);
  }
  lua_pop(L, 3);
  coll_free(u->c);
  u->c = NULL;
}

/* The open collection at idx, caught up with the backend; *hp its handle. */
static coll *ready(lua_State *L, int idx, lls_handle **hp) {
  coll_ud *u = luaL_checkudata(L, idx, LLS_COLL_MT);
  if (u->c == NULL) lls_raisef(L, LLS_ECLOSED, "collection is closed");
  lua_getiuservalue(L, idx, 1);
  lls_handle *h = lls_check_handle(L, -1);
  lua_pop(L, 1);
  lls_error err;
  int rc = 0;
  /* A private store (memory, sqlite::memory:) has no other writer, so
   * there is never anything to catch up with. */
  if (u->c->stale)
    rc = coll_load(h->b, u->c, &err);
  else if (!h->b->ephemeral)
    rc = coll_catch_up(h->b, u->c, &err);
  if (rc != 0) {
    if (err.code == LLS_ENOTFOUND) {
      /* Gone (dropped elsewhere, or its creation rolled back): this object
       * is closed and leaves the handle's cache, so db:collection and
       * create_collection start afresh. */
      lls_error_set(&err, LLS_ENOTFOUND, "collection '%s' was dropped", u->c->info.name);
      forget_coll(L, idx);
    }
    lls_raise(L, &err, h->vt->name);
  }
  *hp = h;
  return u->c;
}

/* Pushes a userdata around c (taking ownership) and registers it. */
static void push_coll(lua_State *L, int hidx, coll *c) {
  coll_ud *u = lua_newuserdatauv(L, sizeof *u, 1);
  u->c = c;
  luaL_setmetatable(L, LLS_COLL_MT);
  lua_pushvalue(L, hidx);
  lua_setiuservalue(L, -2, 1);
  push_registry(L, hidx);
  lua_pushvalue(L, -2);
  lua_setfield(L, -2, c->info.name);
  lua_pop(L, 1);
}

/* Raises a backend failure; marks the collection stale when memory may no
 * longer match the rows. */
static int fail(lua_State *L, lls_handle *h, const lls_error *err) {
  return lls_raise(L, err, h->vt->name);
}

static const char *const ENTRY_FIELDS[] = {"id",  "vector",     "metadata",   "scope",
                                           "ttl", "expires_at", "event_time", NULL};

/* Rows parsed from Lua, with the memory they point into. */
typedef struct rows {
  lls_vec_row *rows;
  float *vecs;
  lls_buf json;
  size_t *json_off;
  size_t n;
  lls_hidx seen; /* ids within this batch */
} rows;

static void rows_free(rows *r) {
  free(r->rows);
  free(r->vecs);
  free(r->json_off);
  lls_buf_free(&r->json);
  lls_hidx_free(&r->seen);
  memset(r, 0, sizeof *r);
}

static int row_has_id(void *ud, uintptr_t val, const char *key, size_t klen) {
  const rows *r = ud;
  const lls_str *id = &r->rows[val - 1].id;
  return id->len == klen && memcmp(id->ptr, key, klen) == 0;
}

/* Rows are kept in a userdata so a Lua error mid-parse frees them. */
static int rows_gc(lua_State *L) {
  rows_free(luaL_checkudata(L, 1, "llmspell.storage.Rows"));
  return 0;
}

static rows *new_rows(lua_State *L, size_t n, size_t dim) {
  rows *r = lua_newuserdatauv(L, sizeof *r, 0);
  memset(r, 0, sizeof *r);
  if (luaL_newmetatable(L, "llmspell.storage.Rows")) {
    lua_pushcfunction(L, rows_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  r->rows = calloc(n ? n : 1, sizeof *r->rows);
  r->vecs = malloc((n ? n : 1) * dim * sizeof(float));
  r->json_off = malloc((n ? n : 1) * sizeof(size_t));
  if (r->rows == NULL || r->vecs == NULL || r->json_off == NULL ||
      lls_hidx_reserve(&r->seen, n) != 0)
    luaL_error(L, "out of memory");
  return r;
}

/* Parses entry table at idx into row i. */
static void parse_entry(lua_State *L, coll *c, rows *r, size_t i, int idx, int arg,
                        int insert_only, int64_t now) {
  size_t dim = (size_t)c->info.dimension;
  lls_vec_row *row = &r->rows[i];
  int en = (int)i + 1;
  if (!lua_istable(L, idx))
    luaL_argerror(L, arg, lua_pushfstring(L, "entry %d: table expected, got %s", en,
                                          luaL_typename(L, idx)));
  lls_check_fields(L, idx, arg, ENTRY_FIELDS, "entry %d: ", en);

  lua_getfield(L, idx, "id");
  int top = lua_gettop(L);
  const char *label = lua_pushfstring(L, "entry %d", en);
  const char *msg = id_problem(L, top, label);
  if (msg) luaL_argerror(L, arg, msg);
  row->id.ptr = lua_tolstring(L, top, &row->id.len); /* entry table keeps it alive */
  lua_settop(L, top - 1);
  uint64_t h = lls_hash_bytes(row->id.ptr, row->id.len);
  size_t pos = lls_hidx_probe(&r->seen, h, row->id.ptr, row->id.len, row_has_id, r);
  if (r->seen.slots[pos].val)
    luaL_argerror(L, arg, lua_pushfstring(L, "entry %d: id '%s' appears twice in the batch",
                                          en, row->id.ptr));
  lls_hidx_put_at(&r->seen, pos, h, i + 1);
  int64_t slot = coll_find_slot(c, row->id.ptr, row->id.len);
  if (insert_only && slot >= 0)
    lls_raisef(L, LLS_ECONFLICT, "entry %d: id '%s' already exists in collection '%s'", en,
               row->id.ptr, c->info.name);

  lua_getfield(L, idx, "vector");
  top = lua_gettop(L);
  float *v = r->vecs + i * dim;
  label = lua_pushfstring(L, "entry %d: vector", en);
  msg = read_vector(L, top, dim, v, label);
  if (msg) luaL_argerror(L, arg, msg);
  lua_settop(L, top - 1);
  row->vector.ptr = (const char *)v;
  row->vector.len = dim * 4;

  r->json_off[i] = r->json.len;
  if (lua_getfield(L, idx, "metadata") == LUA_TNIL) {
    if (lls_buf_append(&r->json, "{}", 2) != 0) luaL_error(L, "out of memory");
  } else {
    char err[300];
    if (!lua_istable(L, -1))
      luaL_argerror(L, arg, lua_pushfstring(L, "entry %d: metadata: table expected, got %s",
                                            en, luaL_typename(L, -1)));
    lls_value *md = lls_lua_to_value(L, -1, "metadata", err, sizeof err);
    if (md == NULL) luaL_argerror(L, arg, lua_pushfstring(L, "entry %d: %s", en, err));
    int rc = lls_json_encode(md, &r->json, err, sizeof err);
    lls_value_free(md);
    if (rc != 0) luaL_argerror(L, arg, lua_pushfstring(L, "entry %d: metadata: %s", en, err));
  }
  lua_pop(L, 1);
  row->metadata.len = r->json.len - r->json_off[i];

  if (lua_getfield(L, idx, "scope") == LUA_TNIL) {
    row->scope.ptr = "global";
    row->scope.len = 6;
  } else {
    if (lua_type(L, -1) != LUA_TSTRING || lua_rawlen(L, -1) == 0 || lua_rawlen(L, -1) > 255)
      luaL_argerror(L, arg, lua_pushfstring(L, "entry %d: scope must be a string of 1..255 "
                                               "bytes", en));
    row->scope.ptr = lua_tolstring(L, -1, &row->scope.len);
  }
  lua_pop(L, 1);

  lua_Number x;
  row->expires_at = 0;
  int has_ttl = opt_number(L, idx, "ttl", arg, &x);
  if (has_ttl) {
    if (!(x > 0) || x > 1e11)
      luaL_argerror(L, arg, lua_pushfstring(L, "entry %d: ttl must be a positive number of "
                                               "seconds", en));
    row->expires_at = now + to_us(x);
  }
  if (opt_number(L, idx, "expires_at", arg, &x)) {
    if (has_ttl)
      luaL_argerror(L, arg, lua_pushfstring(L, "entry %d: give ttl or expires_at, not both",
                                            en));
    if (!(x > 0)) luaL_argerror(L, arg, lua_pushfstring(L, "entry %d: expires_at must be a "
                                                           "positive time", en));
    row->expires_at = to_us(x);
  }
  row->has_event_time = opt_number(L, idx, "event_time", arg, &x);
  row->event_time = row->has_event_time ? to_us(x) : 0;
  row->created_at = slot >= 0 ? c->entries[slot].created_at : now;
  row->updated_at = now;
}

/* add / upsert: all entries are checked before anything is written. */
static int put_entries(lua_State *L, int insert_only) {
  static const char *const opt_fields[] = {"threads", NULL};
  lls_handle *h;
  coll *c = ready(L, 1, &h);
  luaL_checktype(L, 2, LUA_TTABLE);
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    lls_check_fields(L, 3, 3, opt_fields, NULL, 0);
    c->threads = opt_int(L, 3, "threads", 3, 1, 64, c->threads);
  }
  lua_settop(L, 2);
  /* One entry, or an array of them. */
  int single = lua_getfield(L, 2, "id") != LUA_TNIL || lua_getfield(L, 2, "vector") != LUA_TNIL;
  lua_settop(L, 2);
  size_t n = single ? 1 : (size_t)lua_rawlen(L, 2);
  rows *r = new_rows(L, n, (size_t)c->info.dimension); /* at index 3 */
  int64_t now = lls_now_us();
  for (size_t i = 0; i < n; i++) {
    if (single)
      lua_pushvalue(L, 2);
    else
      lua_rawgeti(L, 2, (lua_Integer)i + 1);
    parse_entry(L, c, r, i, lua_gettop(L), 2, insert_only, now);
    lua_pop(L, 1);
  }
  for (size_t i = 0; i < n; i++) r->rows[i].metadata.ptr = r->json.data + r->json_off[i];
  r->n = n;
  lls_error err;
  int64_t before = c->seq, seq;
  if (n > 0 && h->vt->vec->put(h->b, c->info.id, r->rows, n, insert_only, &seq, &err) != 0)
    return fail(L, h, &err);
  if (n > 0) {
    if (coll_apply_rows(c, r->rows, n, &err) != 0)
      c->stale = 1; /* written; memory reloads on next use */
    else
      coll_after_write(h->b, c, before, seq);
  }
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

/** col:add(entry | entries [, {threads = n}]) --> number added.
 * Raises "conflict" when an id exists; nothing is written then. */
static int col_add(lua_State *L) { return put_entries(L, 1); }

/** col:upsert(entry | entries [, {threads = n}]) --> number written */
static int col_upsert(lua_State *L) { return put_entries(L, 0); }

/* Deletes ids (all present in memory or not) through the backend. */
static size_t delete_ids(lua_State *L, lls_handle *h, coll *c, const lls_str *ids, size_t n) {
  lls_error err;
  size_t deleted = 0;
  int64_t before = c->seq, seq = c->seq;
  if (n > 0 && h->vt->vec->del(h->b, c->info.id, ids, n, &deleted, &seq, &err) != 0)
    fail(L, h, &err);
  for (size_t i = 0; i < n; i++) {
    int64_t slot = coll_find_slot(c, ids[i].ptr, ids[i].len);
    if (slot >= 0) coll_remove(c, (uint32_t)slot);
  }
  if (seq != before) coll_after_write(h->b, c, before, seq);
  return deleted;
}

/* Room for n ids in a userdata-owned buffer (freed by GC on error). */
static lls_str *id_array(lua_State *L, size_t n) {
  return lua_newuserdatauv(L, (n ? n : 1) * sizeof(lls_str), 0);
}

/** col:delete(id | ids) --> number deleted */
static int col_delete(lua_State *L) {
  lls_handle *h;
  coll *c = ready(L, 1, &h);
  lua_settop(L, 2);
  size_t n = lua_istable(L, 2) ? (size_t)lua_rawlen(L, 2) : 1;
  lls_str *ids = id_array(L, n); /* index 3 */
  for (size_t i = 0; i < n; i++) {
    if (lua_istable(L, 2))
      lua_rawgeti(L, 2, (lua_Integer)i + 1);
    else
      lua_pushvalue(L, 2);
    int top = lua_gettop(L);
    const char *label = lua_istable(L, 2) ? lua_pushfstring(L, "id %d", (int)i + 1) : "id";
    const char *msg = id_problem(L, top, label);
    if (msg) luaL_argerror(L, 2, msg);
    ids[i].ptr = lua_tolstring(L, top, &ids[i].len); /* arg 2 keeps it alive */
    lua_settop(L, top - 1);
  }
  lua_pushinteger(L, (lua_Integer)delete_ids(L, h, c, ids, n));
  return 1;
}

/* Slot of a live (unexpired) entry named by the id argument, or -1. */
static int64_t live_slot(lua_State *L, coll *c, int arg, int64_t now) {
  const char *msg = id_problem(L, arg, "id");
  if (msg) luaL_argerror(L, arg, msg);
  size_t len;
  const char *id = lua_tolstring(L, arg, &len);
  int64_t slot = coll_find_slot(c, id, len);
  if (slot >= 0 && coll_expired(&c->entries[slot], now)) return -1;
  return slot;
}

/** col:update_metadata(id, metadata) -- replaces the entry's metadata.
 * Raises "not_found" when there is no such (unexpired) entry. */
static int col_update_metadata(lua_State *L) {
  lls_handle *h;
  coll *c = ready(L, 1, &h);
  luaL_checktype(L, 3, LUA_TTABLE);
  int64_t now = lls_now_us();
  int64_t slot = live_slot(L, c, 2, now);
  if (slot < 0)
    return lls_raisef(L, LLS_ENOTFOUND, "no entry '%s' in collection '%s'",
                      lua_tostring(L, 2), c->info.name);
  char err[300];
  lls_value *md = lls_lua_to_value(L, 3, "metadata", err, sizeof err);
  if (md == NULL) return luaL_argerror(L, 3, err);
  rows *r = new_rows(L, 1, 0);
  int rc = lls_json_encode(md, &r->json, err, sizeof err);
  lls_value_free(md);
  if (rc != 0) return luaL_argerror(L, 3, err);
  const entry *e = &c->entries[slot];
  lls_vec_row *row = &r->rows[0];
  row->id.ptr = e->id;
  row->id.len = e->idlen;
  row->scope.ptr = c->scopes[e->scope].name;
  row->scope.len = c->scopes[e->scope].len;
  row->vector.ptr = (const char *)hnsw_vector(c->ix, (uint32_t)slot);
  row->vector.len = coll_vector_bytes(c);
  row->metadata.ptr = r->json.data;
  row->metadata.len = r->json.len;
  row->created_at = e->created_at;
  row->updated_at = now;
  row->event_time = e->event_time;
  row->has_event_time = e->has_event_time;
  row->expires_at = e->expires_at;
  lls_error e2;
  int64_t before = c->seq, seq;
  if (h->vt->vec->put(h->b, c->info.id, row, 1, 0, &seq, &e2) != 0) return fail(L, h, &e2);
  if (coll_apply_rows(c, row, 1, &e2) != 0)
    c->stale = 1;
  else
    coll_after_write(h->b, c, before, seq);
  return 0;
}

/* ---------------------------------------------------------------- reads */

static void push_vector(lua_State *L, const float *v, size_t dim) {
  lua_createtable(L, (int)dim, 0);
  for (size_t i = 0; i < dim; i++) {
    lua_pushnumber(L, (lua_Number)v[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
}

static const char *const GET_FIELDS[] = {"exclude_expired", NULL};

/** col:get(id [, {exclude_expired = true}]) --> entry | nil
 * entry = { id=, vector=, metadata=, scope=, created_at=, updated_at=,
 *           event_time=, expires_at= } (times in seconds) */
static int col_get(lua_State *L) {
  lls_handle *h;
  coll *c = ready(L, 1, &h);
  int exclude = 1;
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    lls_check_fields(L, 3, 3, GET_FIELDS, NULL, 0);
    exclude = opt_bool(L, 3, "exclude_expired", 3, 1);
  }
  const char *msg = id_problem(L, 2, "id");
  if (msg) return luaL_argerror(L, 2, msg);
  size_t len;
  const char *id = lua_tolstring(L, 2, &len);
  int64_t slot = coll_find_slot(c, id, len);
  if (slot < 0 || (exclude && coll_expired(&c->entries[slot], lls_now_us()))) {
    lua_pushnil(L);
    return 1;
  }
  const entry *e = &c->entries[slot];
  lua_createtable(L, 0, 8);
  lua_pushlstring(L, e->id, e->idlen);
  lua_setfield(L, -2, "id");
  push_vector(L, hnsw_vector(c->ix, (uint32_t)slot), (size_t)c->info.dimension);
  lua_setfield(L, -2, "vector");
  lls_push_value(L, e->meta);
  lua_setfield(L, -2, "metadata");
  lua_pushlstring(L, c->scopes[e->scope].name, c->scopes[e->scope].len);
  lua_setfield(L, -2, "scope");
  push_time(L, e->created_at);
  lua_setfield(L, -2, "created_at");
  push_time(L, e->updated_at);
  lua_setfield(L, -2, "updated_at");
  if (e->has_event_time) {
    push_time(L, e->event_time);
    lua_setfield(L, -2, "event_time");
  }
  if (e->expires_at) {
    push_time(L, e->expires_at);
    lua_setfield(L, -2, "expires_at");
  }
  return 1;
}

/** col:count() (also #col) --> number of unexpired entries */
static int col_count(lua_State *L) {
  lls_handle *h;
  coll *c = ready(L, 1, &h);
  lua_pushinteger(L, coll_live_count(c, lls_now_us()));
  return 1;
}

typedef struct search_opts {
  size_t k, ef;
  int include_metadata, include_vector, has_threshold, threads;
  double threshold;
  pred p;
} search_opts;


/* The compiled filter lives in a userdata so a later Lua error frees it. */
static int filter_gc(lua_State *L) {
  lls_filter **f = luaL_checkudata(L, 1, "llmspell.storage.CompiledFilter");
  lls_filter_free(*f);
  *f = NULL;
  return 0;
}

/* Compiles the filter table at vi into a userdata stored at stack slot
 * `keep` (which frees it when the call ends, even by an error). */
static lls_filter *compile_filter(lua_State *L, int vi, int arg, int keep) {
  char err[300];
  if (!lua_istable(L, vi))
    luaL_argerror(L, arg, lua_pushfstring(L, "option 'filter': table expected, got %s",
                                          luaL_typename(L, vi)));
  lls_value *spec = lls_lua_to_value(L, vi, "filter", err, sizeof err);
  if (spec == NULL) luaL_argerror(L, arg, err);
  lls_filter **slot = lua_newuserdatauv(L, sizeof *slot, 0);
  *slot = NULL;
  if (luaL_newmetatable(L, "llmspell.storage.CompiledFilter")) {
    lua_pushcfunction(L, filter_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  lua_replace(L, keep);
  *slot = lls_filter_compile(spec, err, sizeof err);
  lls_value_free(spec);
  if (*slot == NULL) luaL_argerror(L, arg, err);
  return *slot;
}

/* Reads search options from the table at arg in one pass over the keys the
 * caller gave (searches are hot; a lookup per known option is not free).
 * Pushes one stack slot, which owns a compiled filter. */
static void parse_search_opts(lua_State *L, coll *c, int arg, search_opts *o) {
  memset(o, 0, sizeof *o);
  o->k = 10;
  o->ef = (size_t)c->info.ef_search;
  o->include_metadata = 1;
  o->threads = c->threads;
  o->p.c = c;
  o->p.now = lls_now_us();
  o->p.exclude_expired = 1;
  o->p.scope = -1;
  lua_pushnil(L); /* the slot for the compiled filter */
  int keep = lua_gettop(L);
  if (lua_isnoneornil(L, arg)) return;
  luaL_checktype(L, arg, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, arg)) {
    int vi = lua_gettop(L);
    const char *key = lua_type(L, vi - 1) == LUA_TSTRING ? lua_tostring(L, vi - 1) : "";
    if (strcmp(key, "k") == 0) {
      o->k = (size_t)int_at(L, vi, key, arg, 1, MAX_K);
    } else if (strcmp(key, "ef_search") == 0) {
      o->ef = (size_t)int_at(L, vi, key, arg, 1, 100000);
    } else if (strcmp(key, "include_metadata") == 0) {
      o->include_metadata = bool_at(L, vi, key, arg);
    } else if (strcmp(key, "include_vector") == 0) {
      o->include_vector = bool_at(L, vi, key, arg);
    } else if (strcmp(key, "filter") == 0) {
      o->p.filter = compile_filter(L, vi, arg, keep);
    } else if (strcmp(key, "scope") == 0) {
      if (lua_type(L, vi) != LUA_TSTRING)
        luaL_argerror(L, arg, lua_pushfstring(L, "option 'scope': string expected, got %s",
                                              luaL_typename(L, vi)));
      size_t len;
      const char *sc = lua_tolstring(L, vi, &len);
      o->p.scope = coll_scope_lookup(c, sc, len);
      if (o->p.scope < 0 || c->scopes[o->p.scope].count == 0) o->p.scope = -2;
    } else if (strcmp(key, "threshold") == 0) {
      o->threshold = number_at(L, vi, key, arg);
      o->has_threshold = 1;
    } else if (strcmp(key, "exclude_expired") == 0) {
      o->p.exclude_expired = bool_at(L, vi, key, arg);
    } else if (strcmp(key, "event_time") == 0) {
      o->p.event = range_at(L, vi, key, arg);
    } else if (strcmp(key, "ingestion_time") == 0) {
      o->p.ingest = range_at(L, vi, key, arg);
    } else if (strcmp(key, "threads") == 0) {
      o->threads = int_at(L, vi, key, arg, 1, 64);
    } else if (strcmp(key, "strategy") == 0) {
      const char *st = lua_type(L, vi) == LUA_TSTRING ? lua_tostring(L, vi) : "";
      if (strcmp(st, "auto") == 0) o->p.strat = STRAT_AUTO;
      else if (strcmp(st, "graph") == 0) o->p.strat = STRAT_GRAPH;
      else if (strcmp(st, "exact") == 0) o->p.strat = STRAT_EXACT;
      else luaL_argerror(L, arg, "option 'strategy' must be \"auto\", \"graph\" or \"exact\"");
    } else {
      const char *name = luaL_tolstring(L, vi - 1, NULL);
      luaL_argerror(L, arg, lua_pushfstring(L, "unknown option '%s'", name));
    }
    lua_settop(L, vi - 1);
  }
}

/* Pushes the result array for hits. */
static void push_hits(lua_State *L, const coll *c, const hnsw_hit *hits, int n,
                      const search_opts *o) {
  lua_createtable(L, n > 0 ? n : 0, 0);
  int out = 0;
  for (int i = 0; i < n; i++) {
    const entry *e = &c->entries[hits[i].slot];
    double score = coll_score(c->info.metric, hits[i].distance);
    if (o->has_threshold && score < o->threshold) continue;
    lua_createtable(L, 0, 4 + o->include_metadata + o->include_vector + e->has_event_time);
    lua_pushlstring(L, e->id, e->idlen);
    lua_setfield(L, -2, "id");
    lua_pushnumber(L, score);
    lua_setfield(L, -2, "score");
    lua_pushnumber(L, (lua_Number)hits[i].distance);
    lua_setfield(L, -2, "distance");
    lua_pushlstring(L, c->scopes[e->scope].name, c->scopes[e->scope].len);
    lua_setfield(L, -2, "scope");
    if (o->include_metadata) {
      lls_push_value(L, e->meta);
      lua_setfield(L, -2, "metadata");
    }
    if (o->include_vector) {
      push_vector(L, hnsw_vector(c->ix, hits[i].slot), (size_t)c->info.dimension);
      lua_setfield(L, -2, "vector");
    }
    if (e->has_event_time) {
      push_time(L, e->event_time);
      lua_setfield(L, -2, "event_time");
    }
    lua_rawseti(L, -2, ++out);
  }
}

/** col:search(vector, opts) --> { { id=, score=, distance=, scope=, metadata= }, ... }
 * best first. opts: k, ef_search, filter, scope, threshold, event_time =
 * {from, to}, ingestion_time = {from, to}, include_metadata,
 * include_vector, exclude_expired, strategy = "auto" | "graph" | "exact"
 * ("auto": exact over the matches when a filter leaves few, else the graph). */
static int col_search(lua_State *L) {
  lls_handle *h;
  coll *c = ready(L, 1, &h);
  size_t dim = (size_t)c->info.dimension;
  lua_settop(L, 3);
  /* A packed query is used where it lies (the kernels load unaligned);
   * a table of numbers is converted into a scratch userdata. */
  const float *q;
  const char *packed = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : NULL;
  if (packed && lua_rawlen(L, 2) == dim * 4 && (uintptr_t)packed % sizeof(float) == 0 &&
      finite_floats(packed, dim)) {
    q = (const float *)(const void *)packed;
  } else {
    float *buf = lua_newuserdatauv(L, dim * sizeof(float), 0); /* stays on the stack */
    const char *msg = read_vector(L, 2, dim, buf, "query vector");
    if (msg) return luaL_argerror(L, 2, msg);
    q = buf;
  }
  search_opts o;
  parse_search_opts(L, c, 3, &o);
  hnsw_hit small[64];
  hnsw_hit *hits = o.k <= 64 ? small : lua_newuserdatauv(L, o.k * sizeof *hits, 0);
  int n = coll_query(c, q, o.k, o.ef, &o.p, hits);
  if (n < 0) return lls_raisef(L, LLS_EIO, "search failed: %s", hnsw_strerror(n));
  push_hits(L, c, hits, n, &o);
  return 1;
}

/** col:search_many(vectors, opts) --> { results_1, results_2, ... }
 * Like search for each vector, answered on every core (opts.threads). */
static int col_search_many(lua_State *L) {
  lls_handle *h;
  coll *c = ready(L, 1, &h);
  size_t dim = (size_t)c->info.dimension;
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 3);
  size_t nq = (size_t)lua_rawlen(L, 2);
  float *qs = lua_newuserdatauv(L, (nq ? nq : 1) * dim * sizeof(float), 0); /* 4 */
  for (size_t i = 0; i < nq; i++) {
    lua_rawgeti(L, 2, (lua_Integer)i + 1);
    int top = lua_gettop(L);
    const char *label = lua_pushfstring(L, "query %d", (int)i + 1);
    const char *msg = read_vector(L, top, dim, qs + i * dim, label);
    if (msg) return luaL_argerror(L, 2, msg);
    lua_settop(L, top - 1);
  }
  search_opts o;
  parse_search_opts(L, c, 3, &o);
  hnsw_hit *hits = lua_newuserdatauv(L, (nq ? nq : 1) * o.k * sizeof(hnsw_hit), 0);
  int *counts = lua_newuserdatauv(L, (nq ? nq : 1) * sizeof(int), 0);
  coll_query_many(c, qs, nq, o.k, o.ef, &o.p, o.threads, hits, counts);
  lua_createtable(L, (int)nq, 0);
  for (size_t i = 0; i < nq; i++) {
    if (counts[i] < 0)
      return lls_raisef(L, LLS_EIO, "search failed: %s", hnsw_strerror(counts[i]));
    push_hits(L, c, hits + i * o.k, counts[i], &o);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

/* ------------------------------------------------- stats, scopes, expiry */

static const char *metric_name(int m) {
  const char *name = lls_metric_name((lls_metric)m);
  return name ? name : "?";
}

/** col:stats() --> { name=, count=, stored=, expired=, dimension=, metric=, m=,
 *   ef_construction=, ef_search=, memory_bytes=, from_snapshot=, rebuilt=,
 *   snapshot_error=, seq=, loads=, catch_ups=, scopes=, kernel=, threads= } */
static int col_stats(lua_State *L) {
  lls_handle *h;
  coll *c = ready(L, 1, &h);
  int64_t now = lls_now_us(), live = coll_live_count(c, now);
  size_t mem = hnsw_memory_bytes(c->ix) + c->nentries * sizeof(entry) +
               c->ids.nslots * sizeof(lls_hidx_slot);
  int64_t nscopes = 0;
  for (size_t i = 0; i < c->nentries; i++)
    if (c->entries[i].meta) mem += c->entries[i].idlen + lls_value_bytes(c->entries[i].meta);
  for (size_t i = 0; i < c->nscopes; i++) nscopes += c->scopes[i].count > 0;
  lua_createtable(L, 0, 18);
  lua_pushstring(L, c->info.name);
  lua_setfield(L, -2, "name");
  lua_pushinteger(L, live);
  lua_setfield(L, -2, "count");
  lua_pushinteger(L, (lua_Integer)hnsw_count(c->ix));
  lua_setfield(L, -2, "stored");
  lua_pushinteger(L, (lua_Integer)hnsw_count(c->ix) - live);
  lua_setfield(L, -2, "expired");
  lua_pushinteger(L, c->info.dimension);
  lua_setfield(L, -2, "dimension");
  lua_pushstring(L, metric_name(c->info.metric));
  lua_setfield(L, -2, "metric");
  lua_pushinteger(L, c->info.m);
  lua_setfield(L, -2, "m");
  lua_pushinteger(L, c->info.ef_construction);
  lua_setfield(L, -2, "ef_construction");
  lua_pushinteger(L, c->info.ef_search);
  lua_setfield(L, -2, "ef_search");
  lua_pushinteger(L, (lua_Integer)mem);
  lua_setfield(L, -2, "memory_bytes");
  lua_pushboolean(L, c->from_snapshot);
  lua_setfield(L, -2, "from_snapshot");
  lua_pushboolean(L, c->rebuilt);
  lua_setfield(L, -2, "rebuilt");
  if (c->snapshot_error[0]) {
    lua_pushstring(L, c->snapshot_error);
    lua_setfield(L, -2, "snapshot_error");
  }
  lua_pushinteger(L, c->seq);
  lua_setfield(L, -2, "seq");
  lua_pushinteger(L, c->loads);
  lua_setfield(L, -2, "loads");
  lua_pushinteger(L, c->catch_ups);
  lua_setfield(L, -2, "catch_ups");
  lua_pushinteger(L, nscopes);
  lua_setfield(L, -2, "scopes");
  lua_pushstring(L, hnsw_kernel_name(c->ix));
  lua_setfield(L, -2, "kernel");
  lua_pushinteger(L, c->threads);
  lua_setfield(L, -2, "threads");
  return 1;
}

/** col:stats_for_scope(scope) --> { scope=, vectors=, bytes= }
 * bytes = vector bytes + metadata JSON bytes of the scope's entries. */
static int col_stats_for_scope(lua_State *L) {
  lls_handle *h;
  coll *c = ready(L, 1, &h);
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  int64_t i = coll_scope_lookup(c, s, len);
  lua_createtable(L, 0, 3);
  lua_pushvalue(L, 2);
  lua_setfield(L, -2, "scope");
  lua_pushinteger(L, i >= 0 ? c->scopes[i].count : 0);
  lua_setfield(L, -2, "vectors");
  lua_pushinteger(L, i >= 0 ? c->scopes[i].bytes : 0);
  lua_setfield(L, -2, "bytes");
  return 1;
}

/* Deletes every entry `doomed` picks; returns how many rows went. The ids
 * are copied first (into one block a Lua error would free) because
 * deleting frees the entries they live in. */
static size_t delete_where(lua_State *L, lls_handle *h, coll *c,
                           int (*doomed)(const entry *, void *), void *ud) {
  size_t n = 0, bytes = 0;
  for (size_t i = 0; i < c->nentries; i++) {
    if (c->entries[i].id && doomed(&c->entries[i], ud)) {
      n++;
      bytes += c->entries[i].idlen;
    }
  }
  lls_str *ids = lua_newuserdatauv(L, (n ? n : 1) * sizeof(lls_str) + bytes, 0);
  char *text = (char *)(ids + (n ? n : 1));
  size_t k = 0;
  for (size_t i = 0; i < c->nentries && k < n; i++) {
    const entry *e = &c->entries[i];
    if (e->id && doomed(e, ud)) {
      memcpy(text, e->id, e->idlen);
      ids[k].ptr = text;
      ids[k].len = e->idlen;
      text += e->idlen;
      k++;
    }
  }
  size_t deleted = delete_ids(L, h, c, ids, n);
  lua_pop(L, 1);
  return deleted;
}

static int in_scope(const entry *e, void *ud) { return (int64_t)e->scope == *(int64_t *)ud; }

static int is_expired(const entry *e, void *ud) { return coll_expired(e, *(int64_t *)ud); }

/** col:delete_scope(scope) --> number deleted */
static int col_delete_scope(lua_State *L) {
  lls_handle *h;
  coll *c = ready(L, 1, &h);
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  int64_t i = coll_scope_lookup(c, s, len);
  lua_pushinteger(L, i < 0 ? 0 : (lua_Integer)delete_where(L, h, c, in_scope, &i));
  return 1;
}

/** col:purge_expired() --> number of expired entries removed (rows and index) */
static int col_purge_expired(lua_State *L) {
  lls_handle *h;
  coll *c = ready(L, 1, &h);
  int64_t now = lls_now_us();
  lua_pushinteger(L, c->expiring ? (lua_Integer)delete_where(L, h, c, is_expired, &now) : 0);
  return 1;
}

/** col:snapshot() --> seq: stores the index now (when the backend keeps
 * snapshots and anything changed), so the next open does not rebuild. */
static int col_snapshot(lua_State *L) {
  lls_handle *h;
  coll *c = ready(L, 1, &h);
  lls_error err;
  if (coll_save_snapshot(h->b, c, h->txdepth > 0, &err) != 0) return fail(L, h, &err);
  lua_pushinteger(L, c->snap_seq);
  return 1;
}

/** col:seq() --> the collection's change sequence, after catching up with
 * other handles: it moves with every write, so a caller can tell cheaply
 * whether anything changed since it last looked (unlike stats(), which
 * walks the entries). */
static int col_seq(lua_State *L) {
  lls_handle *h;
  coll *c = ready(L, 1, &h);
  lua_pushinteger(L, c->seq);
  return 1;
}

/** col:name() --> the collection's name */
static int col_name(lua_State *L) {
  coll_ud *u = luaL_checkudata(L, 1, LLS_COLL_MT);
  if (u->c == NULL) return lls_raisef(L, LLS_ECLOSED, "collection is closed");
  lua_pushstring(L, u->c->info.name);
  return 1;
}

/* Saves a snapshot (best effort) and frees the collection at idx. */
static void close_ud(lua_State *L, int idx) {
  coll_ud *u = luaL_checkudata(L, idx, LLS_COLL_MT);
  if (u->c == NULL) return;
  coll *c = u->c;
  u->c = NULL;
  lua_getiuservalue(L, idx, 1);
  lls_handle *h = luaL_testudata(L, -1, LLS_HANDLE_MT);
  if (h != NULL && h->b != NULL) {
    lls_error err;
    coll_save_snapshot(h->b, c, h->txdepth > 0, &err); /* lost: costs a rebuild */
    push_registry(L, lua_gettop(L));
    if (lua_getfield(L, -1, c->info.name) == LUA_TUSERDATA && lua_touserdata(L, -1) == u) {
      lua_pushnil(L);
      lua_setfield(L, -3, c->info.name);
    }
    lua_pop(L, 2);
  }
  lua_pop(L, 1);
  coll_free(c);
}

/** col:close() -- idempotent; also __close and __gc. Stores a snapshot
 * first when the collection changed. */
static int col_close(lua_State *L) {
  close_ud(L, 1);
  return 0;
}

static int col_len(lua_State *L) { return col_count(L); }

static int col_tostring(lua_State *L) {
  coll_ud *u = luaL_checkudata(L, 1, LLS_COLL_MT);
  if (u->c == NULL) {
    lua_pushliteral(L, "llmspell.storage.Collection (closed)");
    return 1;
  }
  const coll *c = u->c;
  lua_pushfstring(L, "llmspell.storage.Collection (%s, %d-d %s, %I vectors)", c->info.name,
                  c->info.dimension, metric_name(c->info.metric),
                  (lua_Integer)coll_live_count(c, lls_now_us()));
  return 1;
}

/* ------------------------------------------------------ db-level methods */

/* Collection names: 1..255 bytes of letters, digits and _ - . : / */
static const char *name_problem(lua_State *L, int idx) {
  if (lua_type(L, idx) != LUA_TSTRING)
    return lua_pushfstring(L, "string name expected, got %s", luaL_typename(L, idx));
  size_t len;
  const char *s = lua_tolstring(L, idx, &len);
  if (len == 0 || len > MAX_NAME_LEN)
    return lua_pushfstring(L, "name must be 1..%d bytes", MAX_NAME_LEN);
  for (size_t i = 0; i < len; i++) {
    char ch = s[i];
    int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
             ch == '_' || ch == '-' || ch == '.' || ch == ':' || ch == '/';
    if (!ok)
      return lua_pushfstring(L, "name '%s' has a character other than letters, digits and "
                                "_ - . : /", s);
  }
  return NULL;
}

static coll *new_coll(lua_State *L, const lls_coll_info *info) {
  coll *c = calloc(1, sizeof *c);
  if (c == NULL) luaL_error(L, "out of memory");
  c->info = *info;
  c->threads = default_threads();
  c->snap_seq = -1;
  return c;
}

static const char *const CREATE_FIELDS[] = {"dimension", "metric",    "m",      "ef_construction",
                                            "ef_search", "preset",    NULL};

/** db:create_collection(name, { dimension=, metric="cosine", m=16,
 *   ef_construction=200, ef_search=50 } | { dimension=, preset=
 *   "fast"|"balanced"|"accurate" }) --> col
 * Raises "conflict" when the tenant already has a collection of that name. */
static int db_create_collection(lua_State *L) {
  lls_handle *h = lls_check_handle(L, 1);
  const char *msg = name_problem(L, 2);
  if (msg) return luaL_argerror(L, 2, msg);
  luaL_checktype(L, 3, LUA_TTABLE);
  lls_check_fields(L, 3, 3, CREATE_FIELDS, NULL, 0);
  lls_coll_info info;
  memset(&info, 0, sizeof info);
  snprintf(info.name, sizeof info.name, "%s", lua_tostring(L, 2));
  if (lua_getfield(L, 3, "dimension") == LUA_TNIL)
    return luaL_argerror(L, 3, "option 'dimension' is required (1..4096)");
  lua_pop(L, 1);
  info.dimension = opt_int(L, 3, "dimension", 3, 1, MAX_DIM, 0);
  lua_getfield(L, 3, "metric");
  info.metric = LLS_METRIC_COSINE;
  if (!lua_isnil(L, -1)) {
    size_t len;
    const char *m = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : "";
    info.metric = lls_metric_parse(m, lua_type(L, -1) == LUA_TSTRING ? len : 0);
  }
  if (info.metric < 0)
    return luaL_argerror(L, 3, "option 'metric' must be \"cosine\", \"l2\", \"ip\" or \"l1\"");
  lua_pop(L, 1);
  int m = 16, efc = 200, efs = 50;
  if (lua_getfield(L, 3, "preset") != LUA_TNIL) {
    const char *p = lua_tostring(L, -1);
    if (p && strcmp(p, "fast") == 0) m = 12, efc = 100, efs = 50;
    else if (p && strcmp(p, "balanced") == 0) m = 16, efc = 200, efs = 100;
    else if (p && strcmp(p, "accurate") == 0) m = 32, efc = 400, efs = 200;
    else
      return luaL_argerror(L, 3, "option 'preset' must be \"fast\", \"balanced\" or "
                                 "\"accurate\"");
  }
  lua_pop(L, 1);
  info.m = opt_int(L, 3, "m", 3, 2, 128, m);
  info.ef_construction = opt_int(L, 3, "ef_construction", 3, 1, 10000, efc);
  info.ef_search = opt_int(L, 3, "ef_search", 3, 1, 100000, efs);
  if (h->vt->vec->coll_create == NULL)
    return lls_raisef(L, LLS_EINVALID, "backend %s has no vector collections", h->vt->name);
  lls_error err;
  if (h->vt->vec->coll_create(h->b, &info, lls_now_us(), &err) != 0) return fail(L, h, &err);
  coll *c = new_coll(L, &info);
  if (coll_reset(c, &err) != 0) {
    coll_free(c);
    return fail(L, h, &err);
  }
  c->seq = info.seq;
  push_coll(L, 1, c);
  return 1;
}

/** db:collection(name) --> col (the same object while it stays open).
 * Raises "not_found" when there is no such collection. */
static int db_collection(lua_State *L) {
  lls_handle *h = lls_check_handle(L, 1);
  const char *msg = name_problem(L, 2);
  if (msg) return luaL_argerror(L, 2, msg);
  push_registry(L, 1);
  if (lua_getfield(L, -1, lua_tostring(L, 2)) == LUA_TUSERDATA) {
    coll_ud *u = luaL_checkudata(L, -1, LLS_COLL_MT);
    if (u->c != NULL && !u->c->stale) return 1;
    if (u->c != NULL) {
      /* After a rollback: reload now; if the collection is gone, forget
       * this object and look the name up afresh below. */
      lls_error err;
      if (coll_load(h->b, u->c, &err) == 0) return 1;
      if (err.code != LLS_ENOTFOUND) return fail(L, h, &err);
      forget_coll(L, -1);
    }
  }
  lua_pop(L, 2);
  if (h->vt->vec->coll_get == NULL)
    return lls_raisef(L, LLS_EINVALID, "backend %s has no vector collections", h->vt->name);
  lls_coll_info info;
  int found;
  lls_error err;
  if (h->vt->vec->coll_get(h->b, lua_tostring(L, 2), &info, &found, &err) != 0)
    return fail(L, h, &err);
  if (!found)
    return lls_raisef(L, LLS_ENOTFOUND, "no collection '%s'", lua_tostring(L, 2));
  coll *c = new_coll(L, &info);
  push_coll(L, 1, c); /* owned by the userdata from here: errors free it by GC */
  if (coll_load(h->b, c, &err) != 0) return fail(L, h, &err);
  return 1;
}

typedef struct coll_list {
  lls_coll_info *items;
  size_t n, cap;
} coll_list;

static int oom(lls_error *err) { return lls_error_set(err, LLS_EIO, "out of memory"); }

static int list_sink(void *ud, const lls_coll_info *info, lls_error *err) {
  coll_list *l = ud;
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 16;
    lls_coll_info *p = realloc(l->items, cap * sizeof *p);
    if (p == NULL) return oom(err);
    l->items = p;
    l->cap = cap;
  }
  l->items[l->n++] = *info;
  return 0;
}

/** db:list_collections([prefix]) --> { { name=, dimension=, metric=, count=,
 *   m=, ef_construction=, ef_search=, created_at= }, ... } in name order */
static int db_list_collections(lua_State *L) {
  lls_handle *h = lls_check_handle(L, 1);
  lls_str prefix = {"", 0};
  if (!lua_isnoneornil(L, 2)) prefix.ptr = luaL_checklstring(L, 2, &prefix.len);
  if (h->vt->vec->coll_list == NULL)
    return lls_raisef(L, LLS_EINVALID, "backend %s has no vector collections", h->vt->name);
  coll_list *l = lua_newuserdatauv(L, sizeof *l, 0);
  memset(l, 0, sizeof *l);
  lls_error err;
  int rc = h->vt->vec->coll_list(h->b, prefix, list_sink, l, &err);
  if (rc != 0) {
    free(l->items);
    return fail(L, h, &err);
  }
  lua_createtable(L, (int)l->n, 0);
  for (size_t i = 0; i < l->n; i++) {
    const lls_coll_info *in = &l->items[i];
    lua_createtable(L, 0, 8);
    lua_pushstring(L, in->name);
    lua_setfield(L, -2, "name");
    lua_pushinteger(L, in->dimension);
    lua_setfield(L, -2, "dimension");
    lua_pushstring(L, metric_name(in->metric));
    lua_setfield(L, -2, "metric");
    lua_pushinteger(L, in->count);
    lua_setfield(L, -2, "count");
    lua_pushinteger(L, in->m);
    lua_setfield(L, -2, "m");
    lua_pushinteger(L, in->ef_construction);
    lua_setfield(L, -2, "ef_construction");
    lua_pushinteger(L, in->ef_search);
    lua_setfield(L, -2, "ef_search");
    push_time(L, in->created_at);
    lua_setfield(L, -2, "created_at");
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  free(l->items);
  return 1;
}

/** db:drop_collection(name) --> true if it existed. Its open `col` objects
 * are closed. */
static int db_drop_collection(lua_State *L) {
  lls_handle *h = lls_check_handle(L, 1);
  const char *msg = name_problem(L, 2);
  if (msg) return luaL_argerror(L, 2, msg);
  if (h->vt->vec->coll_drop == NULL)
    return lls_raisef(L, LLS_EINVALID, "backend %s has no vector collections", h->vt->name);
  int dropped;
  lls_error err;
  if (h->vt->vec->coll_drop(h->b, lua_tostring(L, 2), &dropped, &err) != 0) return fail(L, h, &err);
  push_registry(L, 1);
  if (lua_getfield(L, -1, lua_tostring(L, 2)) == LUA_TUSERDATA) {
    coll_ud *u = luaL_checkudata(L, -1, LLS_COLL_MT);
    coll_free(u->c);
    u->c = NULL;
    lua_pushnil(L);
    lua_setfield(L, -3, lua_tostring(L, 2));
  }
  lua_pushboolean(L, dropped);
  return 1;
}

/* ------------------------------------------------------ hooks for kv.c */

void lls_collections_invalidate(lua_State *L, int hidx) {
  hidx = lua_absindex(L, hidx);
  push_registry(L, hidx);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    coll_ud *u = luaL_testudata(L, -1, LLS_COLL_MT);
    if (u && u->c) u->c->stale = 1;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

void lls_collections_close(lua_State *L, int hidx) {
  hidx = lua_absindex(L, hidx);
  push_registry(L, hidx);
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    return;
  }
  /* close_ud edits the registry, so collect first, then close. */
  lua_newtable(L);
  int n = 0;
  lua_pushnil(L);
  while (lua_next(L, -3)) {
    lua_rawseti(L, -3, ++n);
  }
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    if (luaL_testudata(L, -1, LLS_COLL_MT)) close_ud(L, lua_gettop(L));
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
}

void lls_open_collections(lua_State *L) {
  static const luaL_Reg db_methods[] = {
      {"create_collection", db_create_collection},
      {"collection", db_collection},
      {"list_collections", db_list_collections},
      {"drop_collection", db_drop_collection},
      {NULL, NULL},
  };
  static const luaL_Reg methods[] = {
      {"add", col_add},
      {"upsert", col_upsert},
      {"get", col_get},
      {"delete", col_delete},
      {"update_metadata", col_update_metadata},
      {"search", col_search},
      {"search_many", col_search_many},
      {"count", col_count},
      {"stats", col_stats},
      {"stats_for_scope", col_stats_for_scope},
      {"delete_scope", col_delete_scope},
      {"purge_expired", col_purge_expired},
      {"snapshot", col_snapshot},
      {"seq", col_seq},
      {"name", col_name},
      {"close", col_close},
      {NULL, NULL},
  };
  static const luaL_Reg meta[] = {
      {"__gc", col_close},
      {"__close", col_close},
      {"__len", col_len},
      {"__tostring", col_tostring},
      {NULL, NULL},
  };
  luaL_newmetatable(L, LLS_COLL_MT);
  luaL_setfuncs(L, meta, 0);
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_getmetatable(L, LLS_HANDLE_MT);
  lua_getfield(L, -1, "__index");
  luaL_setfuncs(L, db_methods, 0);
  lua_pop(L, 2);
}
