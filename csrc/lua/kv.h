/*
 * lua/kv.h -- the key-value methods of the store and the scan iterator
 * (kv.c).
 */
#ifndef LLS_LUA_KV_H
#define LLS_LUA_KV_H

#include <lauxlib.h>
#include <lua.h>

/* The store's key-value methods (get, set, delete, exists, list_keys,
 * scan, get_batch, set_batch, delete_batch, batch, clear), for the Store
 * class core.c assembles. */
extern const luaL_Reg lls_kv_methods[];

/* Defines the Scan class behind db:scan(). */
void lls_open_kv(lua_State *L);

#endif
