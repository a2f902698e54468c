/*
 * lua/events.h -- db:events(), the event log (events.c).
 */
#ifndef LLS_LUA_EVENTS_H
#define LLS_LUA_EVENTS_H

#include <lauxlib.h>
#include <lua.h>

extern const luaL_Reg lls_events_db_methods[];

void lls_open_events(lua_State *L);

#endif
