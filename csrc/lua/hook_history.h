/*
 * lua/hook_history.h -- db:hook_history(), the hook-history component
 * (hook_history.c).
 */
#ifndef LLS_LUA_HOOK_HISTORY_H
#define LLS_LUA_HOOK_HISTORY_H

#include <lauxlib.h>
#include <lua.h>

/* The store's method db:hook_history(), for the Store class core.c
 * assembles. */
extern const luaL_Reg lls_hook_history_db_methods[];

/* Defines the HookHistory class. */
void lls_open_hook_history(lua_State *L);

#endif
