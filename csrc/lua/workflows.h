/*
 * lua/workflows.h -- db:workflows(), the workflow-state component
 * (workflows.c).
 */
#ifndef LLS_LUA_WORKFLOWS_H
#define LLS_LUA_WORKFLOWS_H

#include <lauxlib.h>
#include <lua.h>

/* The store's method db:workflows(), for the Store class core.c assembles. */
extern const luaL_Reg lls_workflows_db_methods[];

/* Defines the Workflows class. */
void lls_open_workflows(lua_State *L);

#endif
