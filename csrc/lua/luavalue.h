/*
 * luavalue.h -- converting Lua values to and from lls_value trees.
 */
#ifndef LLS_LUAVALUE_H
#define LLS_LUAVALUE_H

#include <lauxlib.h>
#include <lua.h>

#include "value/value.h"

/* Converts the Lua value at idx. On failure returns NULL with a message in
 * err naming the path from `what` ("metadata.tags[2]: ..."). Leaves the
 * stack as it was. */
lls_value *lls_lua_to_value(lua_State *L, int idx, const char *what, char *err,
                            size_t errlen);

/* Pushes v as a Lua value (objects and arrays become tables). */
void lls_push_value(lua_State *L, const lls_value *v);

#endif
