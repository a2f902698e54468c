/*
 * store.c -- the store handle (`db`): its userdata, close, transactions,
 * introspection, and the registry of the objects it owns.
 *
 * The handle owns what it hands out (collections; later components): each
 * lives in the handle's registry (its uservalue 1) under its kind, so a
 * rolled-back transaction can mark them stale (they reload on next use)
 * and closing the store closes them first. A kind tells the store how
 * through its lls_owned_type, so this file knows no kind by name.
 */
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "lua/class.h"
#include "lua/error.h"
#include "lua/sections.h"
#include "lua/store.h"

/* --------------------------------------------------------- the handle */

lls_handle *lls_test_handle(lua_State *L, int idx) {
  return luaL_testudata(L, idx, LLS_HANDLE_MT);
}

lls_handle *lls_check_handle(lua_State *L, int idx) {
  lls_handle *h = lls_class_check(L, idx, LLS_HANDLE_MT);
  if (h->b == NULL) lls_class_closed(L, "store", h->vt->name);
  return h;
}

void lls_push_handle(lua_State *L, const lls_backend_vt *vt, lls_backend *b,
                     const char *tenant) {
  lls_handle *h = lls_class_new(L, LLS_HANDLE_MT, sizeof *h, 1);
  /* Uservalue 1: the registry of owned objects, kind -> (name -> object). */
  lua_newtable(L);
  lua_setiuservalue(L, -2, 1);
  h->tenant = malloc(strlen(tenant) + 1);
  if (h->tenant == NULL) {
    vt->close(b);
    luaL_error(L, "out of memory");
  }
  strcpy(h->tenant, tenant);
  h->vt = vt;
  h->b = b; /* set last: __gc only closes what is fully built */
}

int lls_store_fail(lua_State *L, const lls_handle *h, const lls_error *err) {
  return lls_raise(L, err, h->vt->name);
}

/* ----------------------------------------------------- owned objects */

/* Pushes the registry's table for kind t (name -> object, weak values),
 * creating it when create is set; pushes nil when absent otherwise. */
static void push_kind(lua_State *L, int sidx, const lls_owned_type *t, int create) {
  sidx = lua_absindex(L, sidx);
  lua_getiuservalue(L, sidx, 1);
  if (lua_rawgetp(L, -1, t) == LUA_TNIL && create) {
    lua_pop(L, 1);
    lua_createtable(L, 0, 4);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "v");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, -3, t);
  }
  lua_remove(L, -2);
}

void lls_store_owned(lua_State *L, int sidx, const lls_owned_type *t, const char *name) {
  push_kind(L, sidx, t, 0);
  if (lua_istable(L, -1)) lua_getfield(L, -1, name);
  else lua_pushnil(L);
  lua_remove(L, -2);
}

void lls_store_own(lua_State *L, int sidx, const lls_owned_type *t, const char *name,
                   int oidx) {
  oidx = lua_absindex(L, oidx);
  push_kind(L, sidx, t, 1);
  lua_pushvalue(L, oidx);
  lua_setfield(L, -2, name);
  lua_pop(L, 1);
}

void lls_store_disown(lua_State *L, int sidx, const lls_owned_type *t, const char *name,
                      int oidx) {
  oidx = lua_absindex(L, oidx);
  push_kind(L, sidx, t, 0);
  if (lua_istable(L, -1)) {
    if (lua_getfield(L, -1, name) != LUA_TNIL && lua_rawequal(L, -1, oidx)) {
      lua_pushnil(L);
      lua_setfield(L, -3, name);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

/* Calls close (or invalidate) of each kind on every object the store at
 * sidx owns. The objects are gathered first: closing one edits its kind's
 * table, which a running lua_next must not see. */
static void each_owned(lua_State *L, int sidx, int closing) {
  sidx = lua_absindex(L, sidx);
  lua_getiuservalue(L, sidx, 1);
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    return;
  }
  int reg = lua_gettop(L);
  lua_newtable(L); /* { kind, object, kind, object, ... } */
  int list = lua_gettop(L), n = 0;
  lua_pushnil(L);
  while (lua_next(L, reg)) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      lua_pushvalue(L, -4);
      lua_rawseti(L, list, ++n);
      lua_rawseti(L, list, ++n);
    }
    lua_pop(L, 1);
  }
  for (int i = 1; i < n; i += 2) {
    lua_rawgeti(L, list, i);
    const lls_owned_type *t = lua_touserdata(L, -1);
    lua_rawgeti(L, list, i + 1);
    if (closing) t->close(L, lua_gettop(L));
    else if (t->invalidate != NULL) t->invalidate(L, lua_gettop(L));
    lua_pop(L, 2);
  }
  lua_settop(L, reg - 1);
}

void lls_store_invalidate(lua_State *L, int sidx) { each_owned(L, sidx, 0); }

/* ---------------------------------------------------------- lifecycle */

/** db:close() -- idempotent; an open transaction is rolled back and the
 * objects the store owns are closed first. Also __gc and __close, so
 * `local db <close> = storage.open(...)` works. */
static int store_close(lua_State *L) {
  lls_handle *h = lls_class_check(L, 1, LLS_HANDLE_MT);
  if (h->b != NULL) {
    each_owned(L, 1, 1);
    lls_backend *b = h->b;
    h->b = NULL;
    h->vt->close(b);
  }
  lls_rows_free(&h->rows);
  lls_buf_free(&h->scratch);
  free(h->tenant);
  h->tenant = NULL;
  return 0;
}

static int store_tostring(lua_State *L) {
  lls_handle *h = lls_class_check(L, 1, LLS_HANDLE_MT);
  if (h->b == NULL) {
    lua_pushliteral(L, "llmspell.storage.Store (closed)");
    return 1;
  }
  lls_kv_stats st;
  lls_error err;
  if (h->vt->kv->stats(h->b, lls_now_us(), &st, &err) != 0)
    lua_pushfstring(L, "llmspell.storage.Store (%s %s, tenant %s, keys unknown: %s)",
                    h->vt->name, h->vt->location(h->b), h->tenant, err.message);
  else
    lua_pushfstring(L, "llmspell.storage.Store (%s %s, tenant %s, %I keys)", h->vt->name,
                    h->vt->location(h->b), h->tenant, (lua_Integer)st.keys);
  return 1;
}

/* ---------------------------------------------------------- transactions */

/* Error handler for the transaction body: keeps the original error value
 * untouched (tables stay tables), so it can be rethrown as it was. */
static int keep_error(lua_State *L) {
  (void)L;
  return 1;
}

/* Rolls back level depth after fn failed or commit did (best effort: the
 * first error wins) and marks the owned objects stale. */
static void undo(lua_State *L, lls_handle *h, int depth) {
  lls_error rerr;
  h->vt->rollback(h->b, depth, &rerr);
  h->txdepth = depth;
  lls_store_invalidate(L, 1);
}

/** db:transaction(fn) --> fn's results. Commits when fn returns, rolls back
 * and rethrows fn's error when it raises. Nested calls use savepoints. */
static int store_transaction(lua_State *L) {
  lls_handle *h = lls_check_handle(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lls_error err;
  int depth = h->txdepth;
  if (h->vt->begin(h->b, depth, &err) != 0) return lls_store_fail(L, h, &err);
  h->txdepth = depth + 1;
  lua_settop(L, 2);
  lua_pushcfunction(L, keep_error);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 1);
  int status = lua_pcall(L, 1, LUA_MULTRET, 3);
  if (h->b == NULL) {
    /* fn closed the store: close() already rolled back. */
    if (status != LUA_OK) return lua_error(L);
    return lls_raisef(L, h->vt->name, LLS_ECLOSED, "store was closed inside its transaction");
  }
  if (status != LUA_OK) {
    undo(L, h, depth);
    return lua_error(L);
  }
  if (h->vt->commit(h->b, depth, &err) != 0) {
    undo(L, h, depth);
    return lls_store_fail(L, h, &err);
  }
  h->txdepth = depth;
  return lua_gettop(L) - 3;
}

/* ------------------------------------------------------- introspection */

static int count_sink(void *ud, const lls_coll_info *info, lls_error *err) {
  (void)info;
  (void)err;
  (*(int64_t *)ud)++;
  return 0;
}

/* Pushes { <section> = records } for every component (sessions,
 * agent_state, workflow_states, ...), by their export names; a section
 * of parts counts each part apart (artifacts, artifact_content). */
static void push_component_counts(lua_State *L, lls_handle *h) {
  lls_error err;
  lls_backend *cb = lls_backend_components(h->b, &err);
  if (cb == NULL) lls_store_fail(L, h, &err);
  lua_newtable(L);
  int64_t now = lls_now_us();
  for (size_t i = 0; lls_section_codecs[i] != NULL; i++) {
    const lls_section_codec *c = lls_section_codecs[i];
    int64_t n = 0;
    if (c->parts == NULL || c->count_part == NULL) {
      if (c->count(cb, now, &n, &err) != 0) lls_store_fail(L, h, &err);
      lua_pushinteger(L, n);
      lua_setfield(L, -2, c->name);
      continue;
    }
    for (int p = 0; c->parts[p] != NULL; p++) {
      char key[64];
      if (c->count_part(cb, p, now, &n, &err) != 0) lls_store_fail(L, h, &err);
      lls_section_part_key(c, p, key, sizeof key);
      lua_pushinteger(L, n);
      lua_setfield(L, -2, key);
    }
  }
}

/** db:stats() --> { backend=, tenant=, location=, keys=, bytes=, collections=,
 *                  transaction_depth=, components = { sessions=, artifacts=,
 *                  artifact_content=, agent_state=, workflow_states= }
 *                  (records per component, by export section name) } */
static int store_stats(lua_State *L) {
  lls_handle *h = lls_check_handle(L, 1);
  lls_kv_stats st;
  lls_error err;
  if (h->vt->kv->stats(h->b, lls_now_us(), &st, &err) != 0) return lls_store_fail(L, h, &err);
  int64_t collections = 0;
  lls_str all = {"", 0};
  if (h->vt->vec->coll_list(h->b, all, count_sink, &collections, &err) != 0)
    return lls_store_fail(L, h, &err);
  lua_createtable(L, 0, 8);
  lua_pushstring(L, h->vt->name);
  lua_setfield(L, -2, "backend");
  lua_pushstring(L, h->tenant);
  lua_setfield(L, -2, "tenant");
  lua_pushstring(L, h->vt->location(h->b));
  lua_setfield(L, -2, "location");
  lua_pushinteger(L, st.keys);
  lua_setfield(L, -2, "keys");
  lua_pushinteger(L, st.bytes);
  lua_setfield(L, -2, "bytes");
  lua_pushinteger(L, collections);
  lua_setfield(L, -2, "collections");
  lua_pushinteger(L, h->txdepth);
  lua_setfield(L, -2, "transaction_depth");
  push_component_counts(L, h);
  lua_setfield(L, -2, "components");
  return 1;
}

/** db:backend_type() --> "memory" | "sqlite" | "postgres" */
static int store_backend_type(lua_State *L) {
  lls_handle *h = lls_check_handle(L, 1);
  lua_pushstring(L, h->vt->name);
  return 1;
}

/** db:tenant() --> the tenant id this handle is bound to */
static int store_tenant(lua_State *L) {
  lls_handle *h = lls_check_handle(L, 1);
  lua_pushstring(L, h->tenant);
  return 1;
}

/** db:characteristics() --> { persistent=, transactional=, supports_prefix_scan=,
 *   supports_atomic_ops=, avg_read_latency_us=, avg_write_latency_us=,
 *   measured_reads=, measured_writes= }
 * Latencies are this handle's own averages once it has done work, the
 * backend's nominal figures before. */
static int store_characteristics(lua_State *L) {
  lls_handle *h = lls_check_handle(L, 1);
  const lls_traits *t = &h->vt->traits;
  lua_createtable(L, 0, 8);
  lua_pushboolean(L, t->persistent && !h->b->ephemeral);
  lua_setfield(L, -2, "persistent");
  lua_pushboolean(L, t->transactional);
  lua_setfield(L, -2, "transactional");
  lua_pushboolean(L, t->supports_prefix_scan);
  lua_setfield(L, -2, "supports_prefix_scan");
  lua_pushboolean(L, t->supports_atomic_ops);
  lua_setfield(L, -2, "supports_atomic_ops");
  const lls_latency *r = &h->reads, *w = &h->writes;
  lua_pushnumber(L, r->samples ? r->us / (double)r->samples : t->nominal_read_us);
  lua_setfield(L, -2, "avg_read_latency_us");
  lua_pushnumber(L, w->samples ? w->us / (double)w->samples : t->nominal_write_us);
  lua_setfield(L, -2, "avg_write_latency_us");
  lua_pushinteger(L, r->calls);
  lua_setfield(L, -2, "measured_reads");
  lua_pushinteger(L, w->calls);
  lua_setfield(L, -2, "measured_writes");
  return 1;
}

/** db:migrations() --> { { name=, applied_at= }, ... } schema migrations applied */
static int store_migrations(lua_State *L) {
  lls_handle *h = lls_check_handle(L, 1);
  lls_error err;
  lls_rows_reset(&h->rows);
  if (h->vt->migrations(h->b, &h->rows, &err) != 0) return lls_store_fail(L, h, &err);
  lua_createtable(L, (int)h->rows.count, 0);
  for (size_t i = 0; i < h->rows.count; i++) {
    lls_str k = lls_row_key(&h->rows, i);
    lua_createtable(L, 0, 2);
    lua_pushlstring(L, k.ptr, k.len);
    lua_setfield(L, -2, "name");
    lua_pushnumber(L, (lua_Number)h->rows.rows[i].created_at / 1e6);
    lua_setfield(L, -2, "applied_at");
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lls_rows_reset(&h->rows);
  return 1;
}

/* lls_section_emit that only reads: check_components wants the codecs'
 * own verification (checksums, content hashes), not the records. */
static int emit_nothing(void *ud, const lls_value *rec, lls_error *err) {
  (void)ud;
  (void)rec;
  (void)err;
  return 0;
}

/* Reads every component record through its codec, which verifies what
 * the component stores a checksum or hash of (agent states, artifact
 * contents); a record that fails adds one problem under the section's
 * name. Other failures (a lost connection) raise. */
static void check_components(lua_State *L, lls_handle *h) {
  lls_error err;
  lls_backend *cb = lls_backend_components(h->b, &err);
  if (cb == NULL) lls_store_fail(L, h, &err);
  int64_t now = lls_now_us();
  for (size_t i = 0; lls_section_codecs[i] != NULL; i++) {
    const lls_section_codec *c = lls_section_codecs[i];
    for (int p = 0; p == 0 || (c->parts != NULL && c->parts[p] != NULL); p++) {
      int64_t n = 0;
      if (c->dump(cb, p, now, emit_nothing, NULL, &n, &err) == 0) continue;
      if (err.code != LLS_EINTEGRITY && err.code != LLS_EFORMAT) lls_store_fail(L, h, &err);
      if (lls_rows_add(&h->rows, c->name, strlen(c->name), err.message,
                       strlen(err.message)) == NULL)
        luaL_error(L, "out of memory");
    }
  }
}

/** db:check() --> { { where=, what= }, ... } problems the store finds in
 * itself (SQLite: PRAGMA integrity_check and every record's checksum;
 * PostgreSQL: counts, schema and row-level security; every backend: the
 * agent states' checksums and the artifacts' content hashes, the first
 * failure of each under its section's name); an empty array means
 * healthy. */
static int store_check(lua_State *L) {
  lls_handle *h = lls_check_handle(L, 1);
  lls_error err;
  lls_rows_reset(&h->rows);
  if (h->vt->check(h->b, &h->rows, &err) != 0) return lls_store_fail(L, h, &err);
  check_components(L, h);
  lua_createtable(L, (int)h->rows.count, 0);
  for (size_t i = 0; i < h->rows.count; i++) {
    lls_str k = lls_row_key(&h->rows, i), v = lls_row_value(&h->rows, i);
    lua_createtable(L, 0, 2);
    lua_pushlstring(L, k.ptr, k.len);
    lua_setfield(L, -2, "where");
    lua_pushlstring(L, v.ptr, v.len);
    lua_setfield(L, -2, "what");
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lls_rows_reset(&h->rows);
  return 1;
}

const luaL_Reg lls_store_methods[] = {
    {"transaction", store_transaction},
    {"stats", store_stats},
    {"backend_type", store_backend_type},
    {"tenant", store_tenant},
    {"characteristics", store_characteristics},
    {"migrations", store_migrations},
    {"check", store_check},
    {"close", store_close},
    {NULL, NULL},
};

void lls_open_store(lua_State *L, const luaL_Reg *const *methods) {
  static const luaL_Reg meta[] = {
      {"__gc", store_close},
      {"__close", store_close},
      {"__tostring", store_tostring},
      {NULL, NULL},
  };
  lls_class_define(L, LLS_HANDLE_MT, methods, meta);
}
