/*
 * lua/graph.h -- db:graph(), the bi-temporal knowledge-graph component
 * (graph.c).
 */
#ifndef LLS_LUA_GRAPH_H
#define LLS_LUA_GRAPH_H

#include <lauxlib.h>
#include <lua.h>

/* The store's method db:graph(), for the Store class core.c assembles. */
extern const luaL_Reg lls_graph_db_methods[];

/* Defines the Graph class. */
void lls_open_graph(lua_State *L);

#endif
