/*
 * lua_guard.h -- Lua states for the fuzz targets whose allocator fences
 * every block (lua_guard.c). The Lua library is not built with ASan, so a
 * C function that pushes past the stack space Lua guarantees
 * (LUA_MINSTACK without lua_checkstack) would scribble over the heap
 * unseen; here the fence after the stack block is checked whenever Lua
 * grows, shrinks or frees it, and a damaged fence aborts.
 */
#ifndef LLS_FUZZ_LUA_GUARD_H
#define LLS_FUZZ_LUA_GUARD_H

#include <lua.h>

/* A new state with the standard libraries open; aborts when out of
 * memory (a fuzz input never needs more than libFuzzer's limits allow). */
lua_State *fuzz_lua_new(void);

/* Closes L (checking every block it frees) and frees the allocator's
 * state. */
void fuzz_lua_close(lua_State *L);

#endif
