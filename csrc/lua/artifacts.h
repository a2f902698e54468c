/*
 * lua/artifacts.h -- db:artifacts(), the Artifacts object (artifacts.c);
 * its reader is in artifact_reader.h, its export section in
 * artifacts_section.h.
 */
#ifndef LLS_LUA_ARTIFACTS_H
#define LLS_LUA_ARTIFACTS_H

#include <lauxlib.h>
#include <lua.h>

/* The store method `artifacts`, for the Store class core.c assembles. */
extern const luaL_Reg lls_artifacts_db_methods[];

/* Defines the Artifacts class and its reader's. */
void lls_open_artifacts(lua_State *L);

#endif
