/*
 * lua/sessions.h -- db:sessions(), the Sessions object, and the "sessions"
 * export section (sessions.c).
 */
#ifndef LLS_LUA_SESSIONS_H
#define LLS_LUA_SESSIONS_H

#include <lauxlib.h>
#include <lua.h>

#include "lua/sections.h"

/* The store method `sessions`, for the Store class core.c assembles. */
extern const luaL_Reg lls_sessions_db_methods[];

/* Defines the Sessions class. */
void lls_open_sessions(lua_State *L);

/* The export section "sessions" (sections.c lists it). */
extern const lls_section_codec lls_sessions_section;

#endif
