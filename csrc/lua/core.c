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
#include "lua/agent_states.h"
#include "lua/args.h"
#include "lua/artifacts.h"
#include "lua/collection.h"
#include "lua/collection_read.h"
#include "lua/collection_write.h"
#include "lua/core.h"
#include "lua/error.h"
#include "lua/events.h"
#include "lua/export.h"
#include "lua/hook_history.h"
#include "lua/import.h"
#include "lua/kv.h"
#include "lua/luajson.h"
#include "lua/component.h"
#include "lua/graph.h"
#include "lua/patterns.h"
#include "lua/records.h"
#include "lua/sessions.h"
#include "lua/signals.h"
#include "lua/store.h"
#include "lua/workflows.h"

#define MAX_OPTS 32

static const lls_backend_vt *find_backend(const char *name) {
  if (strcmp(name, "memory") == 0) return &lls_memory_vt;
  if (strcmp(name, "sqlite") == 0) return &lls_sqlite_vt;
  if (strcmp(name, "postgres") == 0 || strcmp(name, "postgresql") == 0)
    return &lls_postgres_vt;
  return NULL;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static int is_word(char c, int first) {
  return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (!first && c >= '0' && c <= '9');
}

/* 1 when s has the shape of a libpq conninfo: one or more `keyword =
 * value` pairs separated by spaces, a value bare (backslash escapes) or
 * in single quotes. Only the shape: libpq judges the keywords. */
static int is_conninfo(const char *s) {
  int pairs = 0;
  for (;;) {
    while (is_space(*s)) s++;
    if (*s == '\0') return pairs > 0;
    if (!is_word(*s, 1)) return 0;
    while (is_word(*s, 0)) s++;
    while (is_space(*s)) s++;
    if (*s++ != '=') return 0;
    while (is_space(*s)) s++;
    if (*s == '\'') {
      for (s++; *s != '\''; s++) {
        if (*s == '\0') return 0;
        if (*s == '\\' && s[1] != '\0') s++;
      }
      s++;
    } else {
      for (; *s != '\0' && !is_space(*s); s++)
        if (*s == '\\' && s[1] != '\0') s++;
    }
    if (*s != '\0' && !is_space(*s)) return 0;
    pairs++;
  }
}

#define URL_FORMS "\"memory\", \"sqlite:PATH\", \"sqlite::memory:\", \"postgresql://...\" " \
                  "or a libpq conninfo \"host=... dbname=...\""

/* The one routing of a URL to a backend, for both forms of open: the
 * backend and the location it opens (*location points into url or is a
 * constant); *by_scheme is 1 when url names its backend outright (not
 * just by a conninfo's shape). NULL for any other form:
 *   "memory", "memory:"                                  memory
 *   "sqlite:PATH", "sqlite://PATH", "sqlite::memory:"    sqlite (PATH)
 *   "postgresql://...", "postgres://..."                 postgres (the URL)
 *   "key=value key=value" (a libpq conninfo)             postgres (the string) */
static const lls_backend_vt *route_url(const char *url, const char **location,
                                       int *by_scheme) {
  *by_scheme = 1;
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
  *location = url;
  if (strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0)
    return &lls_postgres_vt;
  *by_scheme = 0;
  return is_conninfo(url) ? &lls_postgres_vt : NULL;
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

/* Where a store is: the URL (argument 1 or option 'url'), the options
 * 'backend' and 'path', and whether the URL came as argument 1. */
typedef struct target {
  const char *url, *backend, *path;
  int url_arg;
} target;

/* The backend t names and its location in cfg. An explicit backend wins
 * over the URL's shape (`{ backend = "sqlite", url = "x.db" }` is a file),
 * but not over a URL that names another backend outright. */
static const lls_backend_vt *resolve(lua_State *L, const target *t, lls_config *cfg) {
  const lls_backend_vt *named = NULL, *vt = NULL;
  if (t->backend != NULL && (named = find_backend(t->backend)) == NULL)
    luaL_argerror(L, 1, lua_pushfstring(L, "option 'backend' must be \"memory\", "
                                           "\"sqlite\" or \"postgres\", got '%s'", t->backend));
  if (t->url != NULL) {
    int by_scheme;
    vt = route_url(t->url, &cfg->location, &by_scheme);
    if (named != NULL && vt != named) {
      if (vt != NULL && by_scheme)
        luaL_argerror(L, 1, "options 'backend' and 'url' name different backends");
      if (named == &lls_memory_vt)
        luaL_argerror(L, 1, lua_pushfstring(L, "option 'url' must be \"memory\" for backend "
                                               "memory, got '%s'", t->url));
      vt = named;
      cfg->location = t->url;
    }
    if (vt == NULL)
      luaL_argerror(L, 1, lua_pushfstring(L, "%sunknown storage URL '%s' (expected " URL_FORMS
                                             ")", t->url_arg ? "" : "option 'url': ", t->url));
  }
  if (vt == NULL) vt = named != NULL ? named : &lls_sqlite_vt;
  if (t->path != NULL) {
    if (vt != &lls_sqlite_vt) luaL_argerror(L, 1, "option 'path' is for sqlite only");
    if (t->url != NULL) luaL_argerror(L, 1, "options 'url' and 'path' both say where");
    cfg->location = t->path;
  }
  if (vt == &lls_memory_vt) cfg->location = "memory";
  if (cfg->location == NULL)
    luaL_argerror(L, 1, vt == &lls_sqlite_vt ? "sqlite needs option 'path' or 'url'"
                                              : "postgres needs option 'url'");
  return vt;
}

/* Reads url, backend, path and tenant from the options table at tbl into
 * t and cfg; the table keeps the strings alive. */
static void read_main_options(lua_State *L, int tbl, target *t, lls_config *cfg) {
  static const char *const names[] = {"url", "backend", "path"};
  const char **slots[] = {&t->url, &t->backend, &t->path};
  for (int i = 0; i < 3; i++) {
    int type = lua_getfield(L, tbl, names[i]);
    if (type != LUA_TNIL && type != LUA_TSTRING)
      luaL_argerror(L, 1, lua_pushfstring(L, "option '%s': string expected, got %s",
                                          names[i], luaL_typename(L, -1)));
    if (type == LUA_TNIL) continue;
    if (i == 0 && t->url != NULL)
      luaL_argerror(L, 1, "option 'url' and argument #1 both give the URL");
    *slots[i] = lua_tostring(L, -1);
  }
  if (lua_getfield(L, tbl, "tenant") != LUA_TNIL) cfg->tenant = check_tenant(L, -1);
  lua_pop(L, 4);
}

/* 1 for the options read_main_options consumes. */
static int main_option(const char *name) {
  return strcmp(name, "url") == 0 || strcmp(name, "backend") == 0 ||
         strcmp(name, "path") == 0 || strcmp(name, "tenant") == 0;
}

/* Hands every other option of the table at tbl to the backend, as strings
 * in a table left on the stack (so the C strings stay alive) and listed
 * in cfg->opts (room for MAX_OPTS). */
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

/* Refuses, before anything is opened, an option the backend does not take
 * (a bad-argument error naming it) or a value it cannot use (an error
 * object, "invalid"): the backend reads them all and touches nothing. */
static void check_options(lua_State *L, const lls_backend_vt *vt, lls_config *cfg) {
  lls_error err;
  if (vt->check_options != NULL && vt->check_options(cfg, &err) != 0)
    lls_raise(L, &err, vt->name);
  const lls_option *o = lls_config_unused(cfg);
  if (o != NULL)
    luaL_argerror(L, 1, lua_pushfstring(L, "unknown option '%s' for backend %s", o->name,
                                        vt->name));
}

/** storage.open(url [, options]) or storage.open{ backend=, url=|path=,
 * tenant=, ...backend options } --> db
 * Both forms route a URL the same way (route_url). Every option is checked
 * before a file or a server is touched. Raises a bad-argument error for
 * malformed input and an error object (code "io", "connection",
 * "version"...) when the backend cannot open. */
static int core_open(lua_State *L) {
  lls_option opts[MAX_OPTS];
  lls_config cfg = {NULL, "default", opts, 0};
  target t = {NULL, NULL, NULL, 0};
  int tbl = 0;
  if (lua_type(L, 1) == LUA_TSTRING) {
    t.url = lua_tostring(L, 1);
    t.url_arg = 1;
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
  if (tbl) read_main_options(L, tbl, &t, &cfg);
  const lls_backend_vt *vt = resolve(L, &t, &cfg);
  if (tbl) backend_options(L, tbl, &cfg, opts);
  check_options(L, vt, &cfg);
  lls_error err;
  lls_backend *b = lls_backend_open(vt, &cfg, &err);
  if (b == NULL) return lls_raise(L, &err, vt->name);
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
      {"max_pattern_key", LLS_MAX_PATTERN_KEY},
      {"max_pattern_value", LLS_MAX_PATTERN_VALUE},
      {"max_hook_context", (lua_Integer)LLS_MAX_HOOK_CONTEXT},
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

/* storage.uuid() --> a new random UUID v4 (OpenSSL's RAND_bytes), for
 * ids the Lua layer makes (episodic turns). */
static int core_uuid(lua_State *L) {
  char out[37];
  lls_component_uuid(L, out);
  lua_pushlstring(L, out, 36);
  return 1;
}

LUALIB_API int luaopen_llmspell_storage_core(lua_State *L) {
  static const luaL_Reg funcs[] = {
      {"open", core_open},
      {"uuid", core_uuid},
      {NULL, NULL},
  };
  /* Every method of `db` and of `col`, by the file that implements it. */
  static const luaL_Reg *const store_methods[] = {
      lls_store_methods,   /* store.c: close, transaction, stats, ... */
      lls_kv_methods,      /* kv.c: get, set, scan, batch, ... */
      lls_coll_db_methods, /* collection.c: create_collection, collection, ... */
      lls_sessions_db_methods, /* sessions.c: sessions */
      lls_artifacts_db_methods, /* artifacts.c: artifacts */
      lls_agent_states_db_methods, /* agent_states.c: agent_states */
      lls_workflows_db_methods, /* workflows.c: workflows */
      lls_patterns_db_methods,  /* patterns.c: patterns */
      lls_graph_db_methods,     /* graph.c: graph */
      lls_hook_history_db_methods, /* hook_history.c: hook_history */
      lls_events_db_methods,    /* events.c: events */
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
  lls_open_sessions(L);
  lls_open_collections(L, coll_methods);
  lls_open_artifacts(L);
  lls_open_agent_states(L);
  lls_open_workflows(L);
  lls_open_patterns(L);
  lls_open_graph(L);
  lls_open_hook_history(L);
  lls_open_events(L);
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
