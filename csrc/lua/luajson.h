/*
 * lua/luajson.h -- storage.json_encode / json_decode / array (luajson.c).
 */
#ifndef LLS_LUA_LUAJSON_H
#define LLS_LUA_LUAJSON_H

#include <lua.h>

/* Sets the three functions in the module table at the top of the stack. */
void lls_open_json(lua_State *L);

#endif
