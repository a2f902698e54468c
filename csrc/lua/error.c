/*
 * error.c -- the error objects operational failures raise.
 *
 * An error object is a plain table {code=, message=, backend=, where=,
 * sqlstate=, sqlite_code=} with a shared metatable whose __tostring prints
 * "[<where>: ]llmspell.storage: <code>: <message>", so `pcall` callers
 * branch on err.code and uncaught errors still read well. `where` is the
 * Lua caller's position (luaL_where at level 1, as luaL_error prepends to
 * a string): a table error gets no position from Lua itself, and without
 * one an uncaught error does not say which call failed. Wrong arguments
 * are not error objects: they raise luaL_argerror strings at once.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>

#include <lauxlib.h>

#include "lua/error.h"

/* __tostring: "[<where>: ]llmspell.storage: <code>: <message>". */
static int error_tostring(lua_State *L) {
  lua_getfield(L, 1, "code");
  lua_getfield(L, 1, "message");
  const char *where = lua_getfield(L, 1, "where") == LUA_TSTRING ? lua_tostring(L, -1) : "";
  lua_pushfstring(L, "%s%sllmspell.storage: %s: %s", where, where[0] ? ": " : "",
                  luaL_optstring(L, -3, "io"), luaL_optstring(L, -2, "?"));
  return 1;
}

/* Sets field `where` of the table at the top to the position of the
 * function at level (luaL_where: "chunk:line"), when that function is Lua
 * code with line information; leaves it absent otherwise. */
static void set_where(lua_State *L, int level) {
  luaL_where(L, level);
  size_t len;
  const char *w = lua_tolstring(L, -1, &len);
  if (len > 2) { /* "chunk:line: " */
    lua_pushlstring(L, w, len - 2);
    lua_setfield(L, -3, "where");
  }
  lua_pop(L, 1);
}

static void push_error(lua_State *L, const lls_error *err, const char *backend) {
  lua_createtable(L, 0, 6);
  lua_pushstring(L, lls_code_name(err->code));
  lua_setfield(L, -2, "code");
  lua_pushstring(L, err->message);
  lua_setfield(L, -2, "message");
  if (backend != NULL) {
    lua_pushstring(L, backend);
    lua_setfield(L, -2, "backend");
  }
  if (err->sqlstate[0] != '\0') {
    lua_pushstring(L, err->sqlstate);
    lua_setfield(L, -2, "sqlstate");
  }
  if (err->sqlite_code != 0) {
    lua_pushinteger(L, err->sqlite_code);
    lua_setfield(L, -2, "sqlite_code");
  }
  set_where(L, 1);
  luaL_setmetatable(L, LLS_ERROR_MT);
}

int lls_raise(lua_State *L, const lls_error *err, const char *backend) {
  push_error(L, err, backend);
  return lua_error(L);
}

int lls_raisef(lua_State *L, const char *backend, lls_code code, const char *fmt, ...) {
  lls_error err;
  va_list ap;
  err.code = code;
  err.sqlstate[0] = '\0';
  err.sqlite_code = 0;
  va_start(ap, fmt);
  vsnprintf(err.message, sizeof err.message, fmt, ap);
  va_end(ap);
  return lls_raise(L, &err, backend);
}

int lls_rethrow(lua_State *L) {
  if (lls_is_error(L, -1)) {
    lua_getfield(L, -1, "where");
    int has = !lua_isnil(L, -1);
    lua_pop(L, 1);
    if (!has) set_where(L, 1);
  }
  return lua_error(L);
}

int lls_is_error(lua_State *L, int idx) {
  int yes = 0;
  if (lua_getmetatable(L, idx)) {
    luaL_getmetatable(L, LLS_ERROR_MT);
    yes = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
  }
  return yes;
}

/* storage.is_error(v): true when v is an error object of this library. */
static int is_error(lua_State *L) {
  lua_pushboolean(L, lls_is_error(L, 1));
  return 1;
}

/* storage.error(code, message [, fields [, level]]) --> an error object
 * (not raised), for the Lua layer's own failures (a tenant quota, say) to
 * look exactly like the core's. code must be one of storage.error_codes.
 * level (as error()'s: 1 = the function calling storage.error, 2 = its
 * caller) sets `where`; without it the object has none (unless fields
 * gives one): a Lua module would otherwise point at its own line, not at
 * the call that failed. */
static int new_error(lua_State *L) {
  const char *code = luaL_checkstring(L, 1);
  const char *message = luaL_checkstring(L, 2);
  if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
  lua_Integer level = luaL_optinteger(L, 4, 0);
  luaL_argcheck(L, level >= 0, 4, "level must be 0 or more");
  lua_getfield(L, lua_upvalueindex(1), code);
  if (lua_isnil(L, -1))
    return luaL_argerror(L, 1, lua_pushfstring(L, "unknown error code '%s'", code));
  lua_pop(L, 1);
  lua_createtable(L, 0, 4);
  if (lua_istable(L, 3)) { /* extra fields first, so code and message win */
    lua_pushnil(L);
    while (lua_next(L, 3)) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, -4);
    }
  }
  lua_pushstring(L, code);
  lua_setfield(L, -2, "code");
  lua_pushstring(L, message);
  lua_setfield(L, -2, "message");
  if (level > 0 && level < INT_MAX) set_where(L, (int)level);
  luaL_setmetatable(L, LLS_ERROR_MT);
  return 1;
}

void lls_open_errors(lua_State *L) {
  /* luaL_newmetatable returns the existing table on a second load, so
   * error objects from before a module reload keep working. */
  luaL_newmetatable(L, LLS_ERROR_MT);
  lua_pushcfunction(L, error_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, "llmspell.storage.Error");
  lua_setfield(L, -2, "__name");
  lua_pop(L, 1);

  static const lls_code codes[] = {LLS_ECLOSED, LLS_ENOTFOUND, LLS_ECONFLICT,
                                   LLS_EBUSY,   LLS_EIO,       LLS_ECONNECTION,
                                   LLS_EQUOTA,  LLS_EFORMAT,   LLS_EVERSION,
                                   LLS_EINVALID, LLS_EINTEGRITY, LLS_EPERMISSION};
  lua_createtable(L, 0, (int)(sizeof codes / sizeof codes[0]));
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
    lua_pushstring(L, lls_code_name(codes[i]));
    lua_setfield(L, -2, lls_code_name(codes[i]));
  }
  lua_pushvalue(L, -1);
  lua_pushcclosure(L, new_error, 1);
  lua_setfield(L, -3, "error");
  lua_setfield(L, -2, "error_codes");
  lua_pushcfunction(L, is_error);
  lua_setfield(L, -2, "is_error");
}
