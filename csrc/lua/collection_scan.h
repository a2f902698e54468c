/*
 * lua/collection_scan.h -- col:scan() (collection_scan.c): a collection's
 * entries without a query vector, streamed in id or event_time order.
 */
#ifndef LLS_LUA_COLLECTION_SCAN_H
#define LLS_LUA_COLLECTION_SCAN_H

#include <lauxlib.h>
#include <lua.h>

/* The scan method, for the Collection class core.c assembles. */
extern const luaL_Reg lls_coll_scan_methods[];

/* Defines the class of the scan objects col:scan() returns. */
void lls_open_coll_scan(lua_State *L);

#endif
