/*
 * lua/collection_read.h -- the reads of a `col` (collection_read.c): get,
 * search, search_many, stats, stats_for_scope.
 */
#ifndef LLS_LUA_COLLECTION_READ_H
#define LLS_LUA_COLLECTION_READ_H

#include <lauxlib.h>

/* The read methods, for the Collection class core.c assembles. */
extern const luaL_Reg lls_coll_read_methods[];

#endif
