/*
 * lua/sessions.h -- db:sessions() and the Sessions object (sessions.c).
 */
#ifndef LLS_LUA_SESSIONS_H
#define LLS_LUA_SESSIONS_H

#include <lauxlib.h>
#include <lua.h>

/* The store method `sessions`, for the Store class core.c assembles. */
extern const luaL_Reg lls_sessions_db_methods[];

/* Defines the Sessions class. */
void lls_open_sessions(lua_State *L);

#endif
