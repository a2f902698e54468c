/*
 * lua/collection.h -- vector collections in Lua (collection.c): the
 * db-level methods (create_collection, collection, list_collections,
 * drop_collection) and the `col` object's lifecycle. Its writes
 * (collection_write.c) and reads (collection_read.c) build on what this
 * header declares.
 */
#ifndef LLS_LUA_COLLECTION_H
#define LLS_LUA_COLLECTION_H

#include <lauxlib.h>
#include <lua.h>

#include "collection/state.h"
#include "lua/store.h"

#define LLS_COLL_MT "llmspell.storage.Collection"

/* The store's collection methods (create_collection, collection,
 * list_collections, drop_collection), for the Store class core.c
 * assembles. */
extern const luaL_Reg lls_coll_db_methods[];

/* The col object's own methods (count, snapshot, seq, name, close). */
extern const luaL_Reg lls_coll_methods[];

/* Defines the Collection class with the methods of every array in
 * methods (NULL-ended: lls_coll_methods and those of collection_write.c
 * and collection_read.c). */
void lls_open_collections(lua_State *L, const luaL_Reg *const *methods);

/* The name of the backend of the store the collection at idx belongs to
 * (its store may be closed), for the error objects its methods raise. */
const char *lls_coll_backend(lua_State *L, int idx);

/* The open collection at idx, caught up with the backend; *hp its store.
 * Raises "closed" when the collection or its store is closed, and
 * "not_found" (closing this object) when the collection was dropped. */
coll *lls_coll_ready(lua_State *L, int idx, lls_handle **hp);

/* Checks the id at idx: a string of 1..LLS_MAX_ID bytes of UTF-8 without
 * NUL. NULL, or a message (pushed) starting with what ("entry 3"). */
const char *lls_coll_id_problem(lua_State *L, int idx, const char *what);

/* The scope argument at arg, a string of 1..LLS_MAX_SCOPE bytes of UTF-8
 * without NUL (raises otherwise): its index in c, or -1 when no entry of
 * c has had it. */
int64_t lls_coll_scope_arg(lua_State *L, const coll *c, int arg);

/* The Lua name of a metric ("cosine", ...), "?" for an unknown one. */
const char *lls_coll_metric_name(int metric);

#endif
