/*
 * core.c -- luaopen_llmspell_storage_core: registers every type and
 * provides open(), which turns a URL or an options table into a backend.
 *
 * The method tables of the Store and Collection classes are assembled
 * here, in one place, from the arrays each binding file exports: a store
 * method lives in the file of its concern (kv.c, collection.c, ...) and
 * no file patches another's metatable.
 *
 * Loading twice in one interpreter (busted reloads modules per spec file)
 * is safe: metatables are looked up by name and reused, and no C state
 * outlives a lua_State.
 */
#include <stdlib.h>
#include <string.h>

#include "base/limits.h"
#include "lua/args.h"
#include "lua/collection.h"
#include "lua/collection_read.h"
#include "lua/collection_write.h"
#include "lua/core.h"
#include "lua/error.h"
#include "lua/export.h"
#include "lua/import.h"
#include "lua/kv.h"
#include "lua/luajson.h"
#include "lua/records.h"
#include "lua/signals.h"
#include "lua/store.h"

#define MAX_OPTS 32

static const lls_backend_vt *find_backend(const char *name) {
  if (strcmp(name, "memory") == 0) return &lls_memory_vt;
  if (strcmp(name, "sqlite") == 0) return &lls_sqlite_vt;
  if (strcmp(name, "postgres") == 0 || strcmp(name, "postgresql") == 0)
    return &lls_postgres_vt;
  return NULL;
}

/* Splits a URL into backend and location. Returns NULL for an unknown
 * form. Accepted: "memory", "sqlite:PATH", "sqlite::memory:",
 * "sqlite://PATH", "postgresql://...", "postgres://...". */
static const lls_backend_vt *parse_url(const char *url, const char **location) {
  if (strcmp(url, "memory") == 0 || strcmp(url, "memory:") == 0) {
    *location = "memory";
    return &lls_memory_vt;
  }
  if (strncmp(url, "sqlite:", 7) == 0) {
    const char *p = url + 7;
    if (strncmp(p, "//", 2) == 0) p += 2;
    *location = p;
    return &lls_sqlite_vt;
  }
  if (strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0) {
    *location = url;
    return &lls_postgres_vt;
  }
  return NULL;
}

/* Stringifies an option value for the backend; raises for other types. */
static const char *option_string(lua_State *L, int idx, const char *name) {
  switch (lua_type(L, idx)) {
  case LUA_TSTRING:
    return lua_tostring(L, idx);
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx))
      return lua_pushfstring(L, "%I", (lua_Integer)lua_tointeger(L, idx));
    return lua_pushfstring(L, "%f", (double)lua_tonumber(L, idx));
  case LUA_TBOOLEAN:
    return lua_toboolean(L, idx) ? "true" : "false";
  default:
    luaL_argerror(L, 1, lua_pushfstring(L, "option '%s': string, number or boolean "
                                           "expected, got %s", name,
                                        luaL_typename(L, idx)));
    return NULL;
  }
}

/* The tenant option at idx: 1..LLS_MAX_TENANT bytes of UTF-8 text
 * without NUL (it is stored on every row and compared in SQL). */
static const char *check_tenant(lua_State *L, int idx) {
  if (lua_type(L, idx) != LUA_TSTRING)
    luaL_argerror(L, 1, lua_pushfstring(L, "option 'tenant': string expected, got %s",
                                        luaL_typename(L, idx)));
  lls_str t;
  t.ptr = lua_tolstring(L, idx, &t.len);
  lls_check_text(L, 1, t, 1, LLS_MAX_TENANT, "option 'tenant'");
  return t.ptr;
}

/* Reads url, backend, path and tenant from the options table at tbl into
 * *vt and cfg (vt may already hold the backend a URL argument named). */
static void read_main_options(lua_State *L, int tbl, const lls_backend_vt **vt,
                              lls_config *cfg) {
  if (lua_getfield(L, tbl, "url") != LUA_TNIL) {
    if (lua_type(L, -1) != LUA_TSTRING) luaL_argerror(L, 1, "option 'url': string expected");
    const char *loc;
    const lls_backend_vt *from_url = parse_url(lua_tostring(L, -1), &loc);
    if (from_url == NULL) /* a bare libpq conninfo: "host=... dbname=..." */
      loc = lua_tostring(L, -1);
    if (*vt == NULL) *vt = from_url;
    cfg->location = loc;
  }
  if (lua_getfield(L, tbl, "backend") != LUA_TNIL) {
    const char *name = lua_tostring(L, -1);
    const lls_backend_vt *named = name ? find_backend(name) : NULL;
    if (named == NULL)
      luaL_argerror(L, 1, lua_pushfstring(L, "option 'backend' must be \"memory\", "
                                             "\"sqlite\" or \"postgres\", got %s",
                                          luaL_tolstring(L, -1, NULL)));
    if (*vt != NULL && *vt != named)
      luaL_argerror(L, 1, "options 'backend' and 'url' name different backends");
    *vt = named;
  }
  if (lua_getfield(L, tbl, "path") != LUA_TNIL) {
    if (lua_type(L, -1) != LUA_TSTRING) luaL_argerror(L, 1, "option 'path': string expected");
    if (*vt == NULL) *vt = &lls_sqlite_vt;
    if (*vt != &lls_sqlite_vt) luaL_argerror(L, 1, "option 'path' is for sqlite only");
    cfg->location = lua_tostring(L, -1);
  }
  if (lua_getfield(L, tbl, "tenant") != LUA_TNIL) cfg->tenant = check_tenant(L, -1);
  lua_pop(L, 4); /* the options table keeps cfg's strings alive */
}

/* 1 for the options read_main_options consumes. */
static int main_option(const char *name) {
  return strcmp(name, "url") == 0 || strcmp(name, "backend") == 0 ||
         strcmp(name, "path") == 0 || strcmp(name, "tenant") == 0;
}

/* Hands every other option of the table at tbl to the backend, as strings
 * in a table left on the stack (so the C strings stay alive) and listed
 * in cfg->opts (room for MAX_OPTS). What the backend does not consume is
 * an unknown option, refused after open. */
static void backend_options(lua_State *L, int tbl, lls_config *cfg, lls_option *opts) {
  lua_newtable(L);
  int strs = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, tbl)) {
    if (lua_type(L, -2) != LUA_TSTRING) luaL_argerror(L, 1, "option names must be strings");
    const char *name = lua_tostring(L, -2);
    if (!main_option(name)) {
      const char *v = option_string(L, strs + 2, name);
      lua_pushvalue(L, strs + 1);
      lua_pushstring(L, v);
      lua_rawset(L, strs);
    }
    lua_settop(L, strs + 1);
  }
  lua_pushnil(L);
  while (lua_next(L, strs)) {
    if (cfg->nopts == MAX_OPTS) luaL_argerror(L, 1, "too many options");
    opts[cfg->nopts].name = lua_tostring(L, -2);
    opts[cfg->nopts].value = lua_tostring(L, -1);
    opts[cfg->nopts].used = 0;
    cfg->nopts++;
    lua_pop(L, 1);
  }
}

/* The backend a URL argument names (argument 1 a string); raises for an
 * unknown form. */
static const lls_backend_vt *url_argument(lua_State *L, lls_config *cfg) {
  const char *url = lua_tostring(L, 1);
  const lls_backend_vt *vt = parse_url(url, &cfg->location);
  if (vt == NULL)
    luaL_argerror(L, 1, lua_pushfstring(L, "unknown storage URL '%s' (expected "
                                           "\"memory\", \"sqlite:PATH\", "
                                           "\"sqlite::memory:\" or "
                                           "\"postgresql://...\")", url));
  return vt;
}

/** storage.open(url [, options]) or storage.open{ backend=, url=|path=,
 * tenant=, ...backend options } --> db
 * Raises a bad-argument error for malformed input and an error object
 * (code "io", "connection", "version"...) when the backend cannot open. */
static int core_open(lua_State *L) {
  lls_option opts[MAX_OPTS];
  lls_config cfg = {NULL, "default", opts, 0};
  const lls_backend_vt *vt = NULL;
  int tbl = 0;
  if (lua_type(L, 1) == LUA_TSTRING) {
    vt = url_argument(L, &cfg);
    if (!lua_isnoneornil(L, 2)) {
      luaL_checktype(L, 2, LUA_TTABLE);
      tbl = 2;
    }
  } else if (lua_type(L, 1) == LUA_TTABLE) {
    tbl = 1;
  } else {
    return luaL_argerror(L, 1, lua_pushfstring(L, "URL string or options table expected, "
                                                  "got %s", luaL_typename(L, 1)));
  }
  if (tbl) {
    read_main_options(L, tbl, &vt, &cfg);
    if (vt == NULL) vt = &lls_sqlite_vt;
    if (vt == &lls_memory_vt) cfg.location = "memory";
    if (cfg.location == NULL)
      luaL_argerror(L, 1, vt == &lls_sqlite_vt ? "sqlite needs option 'path' or 'url'"
                                                : "postgres needs option 'url'");
    backend_options(L, tbl, &cfg, opts);
  }
  lls_error err;
  lls_backend *b = lls_backend_open(vt, &cfg, &err);
  if (b == NULL) return lls_raise(L, &err, vt->name);
  for (size_t i = 0; i < cfg.nopts; i++) {
    if (!opts[i].used) {
      vt->close(b);
      return luaL_argerror(L, 1, lua_pushfstring(L, "unknown option '%s' for backend %s",
                                                 opts[i].name, vt->name));
    }
  }
  lls_push_handle(L, vt, b, cfg.tenant);
  return 1;
}

/* storage.limits: base/limits.h as a table, so the Lua layer (tenant,
 * router, the CLI) checks what the core checks. */
static void push_limits(lua_State *L) {
  static const struct {
    const char *name;
    lua_Integer value;
  } ints[] = {
      {"max_key", LLS_MAX_KEY},
      {"max_id", LLS_MAX_ID},
      {"max_name", LLS_MAX_NAME},
      {"max_scope", LLS_MAX_SCOPE},
      {"max_tenant", LLS_MAX_TENANT},
      {"max_tenant_id", LLS_MAX_TENANT_ID},
      {"max_section", LLS_MAX_SECTION},
      {"max_dimension", LLS_MAX_DIM},
      {"max_k", LLS_MAX_K},
      {"min_m", LLS_MIN_M},
      {"max_m", LLS_MAX_M},
      {"max_ef_construction", LLS_MAX_EF_CONSTRUCTION},
      {"max_ef_search", LLS_MAX_EF_SEARCH},
      {"max_threads", LLS_MAX_THREADS},
      {"max_depth", LLS_MAX_DEPTH},
      /* the same limit: JSON had its own (64) until metadata's became 128 */
      {"max_json_depth", LLS_MAX_DEPTH},
      {"max_batch", LLS_MAX_BATCH},
  };
  lua_createtable(L, 0, (int)(sizeof ints / sizeof ints[0]) + 4);
  for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
    lua_pushinteger(L, ints[i].value);
    lua_setfield(L, -2, ints[i].name);
  }
  lua_pushnumber(L, LLS_MAX_TTL_S);
  lua_setfield(L, -2, "max_ttl");
  lua_pushnumber(L, LLS_MAX_TIME_S);
  lua_setfield(L, -2, "max_time");
  lua_pushliteral(L, LLS_NAME_CHARS);
  lua_setfield(L, -2, "name_chars");
  lua_pushliteral(L, LLS_NAME_CHARS_TEXT);
  lua_setfield(L, -2, "name_chars_text");
}

LUALIB_API int luaopen_llmspell_storage_core(lua_State *L) {
  static const luaL_Reg funcs[] = {
      {"open", core_open},
      {NULL, NULL},
  };
  /* Every method of `db` and of `col`, by the file that implements it. */
  static const luaL_Reg *const store_methods[] = {
      lls_store_methods,   /* store.c: close, transaction, stats, ... */
      lls_kv_methods,      /* kv.c: get, set, scan, batch, ... */
      lls_coll_db_methods, /* collection.c: create_collection, collection, ... */
      NULL,
  };
  static const luaL_Reg *const coll_methods[] = {
      lls_coll_methods,       /* collection.c: count, snapshot, seq, name, close */
      lls_coll_write_methods, /* collection_write.c: add, upsert, delete, ... */
      lls_coll_read_methods,  /* collection_read.c: get, search, stats, ... */
      NULL,
  };
  luaL_checkversion(L);
  lls_open_store(L, store_methods);
  lls_open_kv(L);
  lls_open_collections(L, coll_methods);
  luaL_newlib(L, funcs);
  lls_open_errors(L);
  lls_open_export(L);
  lls_open_import(L);
  lls_open_records(L);
  lls_open_json(L);
  lls_open_signals(L); /* signals.c: _signals, the CLI's signal guard */
  push_limits(L);
  lua_setfield(L, -2, "limits");
  lua_pushliteral(L, "0.1.0");
  lua_setfield(L, -2, "_VERSION");
  return 1;
}
