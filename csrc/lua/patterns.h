/*
 * lua/patterns.h -- db:patterns(), the procedural-memory component
 * (patterns.c).
 */
#ifndef LLS_LUA_PATTERNS_H
#define LLS_LUA_PATTERNS_H

#include <lauxlib.h>
#include <lua.h>

/* The store's method db:patterns(), for the Store class core.c assembles. */
extern const luaL_Reg lls_patterns_db_methods[];

/* Defines the Patterns class. */
void lls_open_patterns(lua_State *L);

#endif
