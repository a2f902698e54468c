/*
 * collection_write.c -- the writes of a `col`: add, insert, upsert, delete,
 * update_metadata, delete_scope and purge_expired.
 *
 * Every entry of a call is checked before anything is written; the
 * backend is written first and memory after it succeeded (when memory
 * cannot follow, the collection is marked stale and reloads on next use).
 */
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/hashidx.h"
#include "base/limits.h"
#include "lua/args.h"
#include "lua/class.h"
#include "lua/collection.h"
#include "lua/collection_write.h"
#include "lua/error.h"
#include "lua/luavalue.h"
#include "value/json.h"

#define ROWS_MT "llmspell.storage.Rows"

/* ------------------------------------------------------------- entries */

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
  rows_free(lls_class_check(L, 1, ROWS_MT));
  return 0;
}

static rows *new_rows(lua_State *L, size_t n, size_t dim) {
  rows *r = lls_class_scratch(L, ROWS_MT, sizeof *r, rows_gc);
  r->rows = calloc(n ? n : 1, sizeof *r->rows);
  r->vecs = malloc((n ? n : 1) * dim * sizeof(float));
  r->json_off = malloc((n ? n : 1) * sizeof(size_t));
  if (r->rows == NULL || r->vecs == NULL || r->json_off == NULL ||
      lls_hidx_reserve(&r->seen, n) != 0)
    luaL_error(L, "out of memory");
  return r;
}

/* Reads the id of the entry table at idx into row i: checked, not twice in
 * the batch, and (insert_only) not in the collection. Returns its slot in
 * the collection, or -1. */
static int64_t entry_id(lua_State *L, coll *c, rows *r, size_t i, int idx, int arg,
                        int insert_only) {
  lls_vec_row *row = &r->rows[i];
  int en = (int)i + 1;
  lua_getfield(L, idx, "id");
  int top = lua_gettop(L);
  const char *label = lua_pushfstring(L, "entry %d", en);
  const char *msg = lls_coll_id_problem(L, top, label);
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
    lls_raisef(L, lls_coll_backend(L, 1), LLS_ECONFLICT,
               "entry %d: id '%s' already exists in collection '%s'", en, row->id.ptr,
               c->info.name);
  return slot;
}

/* Reads the vector of the entry table at idx into row i. */
static void entry_vector(lua_State *L, coll *c, rows *r, size_t i, int idx, int arg) {
  size_t dim = (size_t)c->info.dimension;
  lls_vec_row *row = &r->rows[i];
  lua_getfield(L, idx, "vector");
  int top = lua_gettop(L);
  float *v = r->vecs + i * dim;
  const char *label = lua_pushfstring(L, "entry %d: vector", (int)i + 1);
  const char *msg = lls_lua_to_vector(L, top, dim, v, label);
  if (msg) luaL_argerror(L, arg, msg);
  lua_settop(L, top - 1);
  row->vector.ptr = (const char *)v;
  row->vector.len = dim * 4;
}

/* Appends the metadata of the entry table at idx to r->json as JSON text
 * ("{}" when absent); row i's metadata.ptr is set once all are read. */
static void entry_metadata(lua_State *L, rows *r, size_t i, int idx, int arg) {
  int en = (int)i + 1;
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
  r->rows[i].metadata.len = r->json.len - r->json_off[i];
}

/* Reads the scope of the entry table at idx into row ("global" when
 * absent): 1..LLS_MAX_SCOPE bytes of UTF-8 text without NUL. */
static void entry_scope(lua_State *L, lls_vec_row *row, int en, int idx, int arg) {
  if (lua_getfield(L, idx, "scope") == LUA_TNIL) {
    row->scope.ptr = "global";
    row->scope.len = 6;
  } else {
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_argerror(L, arg, lua_pushfstring(L, "entry %d: scope must be a string of 1..%d "
                                               "bytes", en, LLS_MAX_SCOPE));
    row->scope.ptr = lua_tolstring(L, -1, &row->scope.len);
    if (!lls_text_ok(row->scope, 1, LLS_MAX_SCOPE))
      lls_check_text(L, arg, row->scope, 1, LLS_MAX_SCOPE,
                     lua_pushfstring(L, "entry %d: scope", en));
  }
  lua_pop(L, 1); /* the entry table keeps the string alive */
}

/* Reads ttl | expires_at and event_time of the entry table at idx. */
static void entry_times(lua_State *L, lls_vec_row *row, int en, int idx, int arg,
                        int64_t now) {
  lua_Number x;
  row->expires_at = 0;
  int has_ttl = lls_opt_number(L, idx, "ttl", arg, &x);
  if (has_ttl) {
    if (!lls_ttl_ok(x))
      luaL_argerror(L, arg, lua_pushfstring(L, "entry %d: ttl must be a positive number of "
                                               "seconds", en));
    row->expires_at = now + lls_seconds_to_us(x);
  }
  if (lls_opt_number(L, idx, "expires_at", arg, &x)) {
    if (has_ttl)
      luaL_argerror(L, arg, lua_pushfstring(L, "entry %d: give ttl or expires_at, not both",
                                            en));
    if (!(x > 0) || !lls_time_ok(x))
      luaL_argerror(L, arg, lua_pushfstring(L, "entry %d: expires_at must be a positive "
                                               "time (" LLS_TIME_RULE ")", en));
    row->expires_at = lls_seconds_to_us(x);
  }
  row->has_event_time = lls_opt_number(L, idx, "event_time", arg, &x);
  if (row->has_event_time && !lls_time_ok(x))
    luaL_argerror(L, arg, lua_pushfstring(L, "entry %d: event_time must be a time ("
                                             LLS_TIME_RULE ")", en));
  row->event_time = row->has_event_time ? lls_seconds_to_us(x) : 0;
}

/* Parses the entry table at idx into row i. */
static void parse_entry(lua_State *L, coll *c, rows *r, size_t i, int idx, int arg,
                        int insert_only, int64_t now) {
  lls_vec_row *row = &r->rows[i];
  int en = (int)i + 1;
  if (!lua_istable(L, idx))
    luaL_argerror(L, arg, lua_pushfstring(L, "entry %d: table expected, got %s", en,
                                          luaL_typename(L, idx)));
  lls_check_fields(L, idx, arg, ENTRY_FIELDS, "entry %d: ", en);
  int64_t slot = entry_id(L, c, r, i, idx, arg, insert_only);
  entry_vector(L, c, r, i, idx, arg);
  entry_metadata(L, r, i, idx, arg);
  entry_scope(L, row, en, idx, arg);
  entry_times(L, row, en, idx, arg, now);
  row->created_at = slot >= 0 ? c->entries[slot].created_at : now;
  row->updated_at = now;
}

/* add / upsert / insert: all entries are checked before anything is
 * written. Answers the number written, or (want_ids) an array of the ids
 * written, in the order of the entries. */
static int put_entries(lua_State *L, int insert_only, int want_ids) {
  static const char *const opt_fields[] = {"threads", NULL};
  lls_handle *h;
  coll *c = lls_coll_ready(L, 1, &h);
  luaL_checktype(L, 2, LUA_TTABLE);
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    lls_check_fields(L, 3, 3, opt_fields, NULL, 0);
    c->threads = lls_opt_int(L, 3, "threads", 3, 1, LLS_MAX_THREADS, c->threads);
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
    return lls_store_fail(L, h, &err);
  if (n > 0) {
    if (coll_apply_rows(c, r->rows, n, &err) != 0)
      c->stale = 1; /* written; memory reloads on next use */
    else
      coll_after_write(h->b, c, before, seq);
  }
  if (!want_ids) {
    lua_pushinteger(L, (lua_Integer)n);
    return 1;
  }
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    lua_pushlstring(L, r->rows[i].id.ptr, r->rows[i].id.len);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

/** col:add(entry | entries [, {threads = n}]) --> number added.
 * Raises "conflict" when an id exists; nothing is written then. */
static int col_add(lua_State *L) { return put_entries(L, 1, 0); }

/** col:upsert(entry | entries [, {threads = n}]) --> number written */
static int col_upsert(lua_State *L) { return put_entries(L, 0, 0); }

/** col:insert(entry | entries [, {threads = n}]) --> { id, ... }
 * add under the name rs-llmspell's VectorStorage::insert has, answering
 * as it does: the ids inserted, in the order of the entries. Every entry
 * needs its id (as there); "conflict" when one exists, nothing written. */
static int col_insert(lua_State *L) { return put_entries(L, 1, 1); }

/* Deletes ids (all present in memory or not) through the backend. */
static size_t delete_ids(lua_State *L, lls_handle *h, coll *c, const lls_str *ids, size_t n) {
  lls_error err;
  size_t deleted = 0;
  int64_t before = c->seq, seq = c->seq;
  if (n > 0 && h->vt->vec->del(h->b, c->info.id, ids, n, &deleted, &seq, &err) != 0)
    lls_store_fail(L, h, &err);
  for (size_t i = 0; i < n; i++) {
    int64_t slot = coll_find_slot(c, ids[i].ptr, ids[i].len);
    if (slot >= 0) coll_remove(c, (uint32_t)slot);
  }
  /* Nothing deleted: nothing written, and seq is the backend's current one,
   * which may be one past `before` through another handle's write. */
  if (deleted > 0) coll_after_write(h->b, c, before, seq);
  return deleted;
}

/* Room for n ids in a userdata-owned buffer (freed by GC on error). */
static lls_str *id_array(lua_State *L, size_t n) {
  return lua_newuserdatauv(L, (n ? n : 1) * sizeof(lls_str), 0);
}

/** col:delete(id | ids) --> number deleted */
static int col_delete(lua_State *L) {
  lls_handle *h;
  coll *c = lls_coll_ready(L, 1, &h);
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
    const char *msg = lls_coll_id_problem(L, top, label);
    if (msg) luaL_argerror(L, 2, msg);
    ids[i].ptr = lua_tolstring(L, top, &ids[i].len); /* arg 2 keeps it alive */
    lua_settop(L, top - 1);
  }
  lua_pushinteger(L, (lua_Integer)delete_ids(L, h, c, ids, n));
  return 1;
}

/* Slot of a live (unexpired) entry named by the id argument, or -1. */
static int64_t live_slot(lua_State *L, coll *c, int arg, int64_t now) {
  const char *msg = lls_coll_id_problem(L, arg, "id");
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
  coll *c = lls_coll_ready(L, 1, &h);
  luaL_checktype(L, 3, LUA_TTABLE);
  int64_t now = lls_now_us();
  int64_t slot = live_slot(L, c, 2, now);
  if (slot < 0)
    return lls_raisef(L, h->vt->name, LLS_ENOTFOUND, "no entry '%s' in collection '%s'",
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
  if (h->vt->vec->put(h->b, c->info.id, row, 1, 0, &seq, &e2) != 0)
    return lls_store_fail(L, h, &e2);
  if (coll_apply_rows(c, row, 1, &e2) != 0)
    c->stale = 1;
  else
    coll_after_write(h->b, c, before, seq);
  return 0;
}

/* ------------------------------------------------------ scopes, expiry */

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
  coll *c = lls_coll_ready(L, 1, &h);
  int64_t i = lls_coll_scope_arg(L, c, 2);
  lua_pushinteger(L, i < 0 ? 0 : (lua_Integer)delete_where(L, h, c, in_scope, &i));
  return 1;
}

/** col:purge_expired() --> number of expired entries removed (rows and index) */
static int col_purge_expired(lua_State *L) {
  lls_handle *h;
  coll *c = lls_coll_ready(L, 1, &h);
  int64_t now = lls_now_us();
  lua_pushinteger(L, c->expiring ? (lua_Integer)delete_where(L, h, c, is_expired, &now) : 0);
  return 1;
}

const luaL_Reg lls_coll_write_methods[] = {
    {"add", col_add},
    {"insert", col_insert},
    {"upsert", col_upsert},
    {"delete", col_delete},
    {"update_metadata", col_update_metadata},
    {"delete_scope", col_delete_scope},
    {"purge_expired", col_purge_expired},
    {NULL, NULL},
};
