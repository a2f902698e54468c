/*
 * luajson.c -- storage.json_encode, storage.json_decode and storage.array:
 * the library's one JSON codec (value/json.c) offered to Lua, so the Lua
 * layer (the CLI's reports, the migration recipes) writes and reads JSON
 * with the same rules as stored metadata: canonical output (keys in byte
 * order), integers kept apart from floats, UTF-8 checked, depth bounded.
 */
#include <string.h>

#include <lauxlib.h>

#include "base/buf.h"
#include "base/limits.h"
#include "lua/error.h"
#include "lua/luajson.h"
#include "lua/luavalue.h"
#include "value/json.h"

/** storage.json_encode(v) --> string
 * v: nil, a boolean, a finite number, a UTF-8 string or a table (an array
 * when its keys are 1..n or it came from storage.array, else an object
 * with string keys). Raises an argument error naming where a value cannot
 * be encoded ("value.items[2]: NaN and infinities cannot be stored"). */
static int json_encode(lua_State *L) {
  luaL_checkany(L, 1);
  char err[300];
  lls_value *v = lua_isnil(L, 1) ? lls_value_null() : lls_lua_to_value(L, 1, "value", err,
                                                                         sizeof err);
  if (v == NULL) return luaL_argerror(L, 1, err);
  lls_buf out = {0};
  int rc = lls_json_encode(v, &out, err, sizeof err);
  lls_value_free(v);
  if (rc != 0) {
    lls_buf_free(&out);
    return luaL_argerror(L, 1, err);
  }
  lua_pushlstring(L, out.data ? out.data : "", out.len);
  lls_buf_free(&out);
  return 1;
}

/** storage.json_decode(s) --> value
 * Arrays come back marked as storage.array (so they encode as arrays even
 * when empty); JSON null becomes nil (and object members that are null are
 * left out). Raises "format" with the reason and position. */
static int json_decode(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  char err[300];
  lls_value *v = lls_json_decode(s, len, err, sizeof err);
  if (v == NULL) return lls_raisef(L, NULL, LLS_EFORMAT, "%s", err);
  lls_push_json(L, v);
  lls_value_free(v);
  return 1;
}

/** storage.array([t]) --> t
 * Marks t (a new table when absent) as a JSON array, so json_encode and
 * stored metadata keep it an array even when it is empty. */
static int json_array(lua_State *L) {
  lua_settop(L, 1);
  if (lua_isnil(L, 1)) {
    lua_newtable(L);
    lua_replace(L, 1);
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_setmetatable(L, LLS_ARRAY_MT);
  return 1;
}

void lls_open_json(lua_State *L) {
  if (luaL_newmetatable(L, LLS_ARRAY_MT)) {
    lua_pushliteral(L, "llmspell.storage.array");
    lua_setfield(L, -2, "__name");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, json_encode);
  lua_setfield(L, -2, "json_encode");
  lua_pushcfunction(L, json_decode);
  lua_setfield(L, -2, "json_decode");
  lua_pushcfunction(L, json_array);
  lua_setfield(L, -2, "array");
}
