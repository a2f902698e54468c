/*
 * lua/collection_write.h -- the writes of a `col` (collection_write.c):
 * add, insert, upsert, delete, update_metadata, delete_scope, purge_expired.
 */
#ifndef LLS_LUA_COLLECTION_WRITE_H
#define LLS_LUA_COLLECTION_WRITE_H

#include <lauxlib.h>

/* The write methods, for the Collection class core.c assembles. */
extern const luaL_Reg lls_coll_write_methods[];

#endif
