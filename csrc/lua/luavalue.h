/*
 * lua/luavalue.h -- converting Lua values to and from C values (luavalue.c):
 * lls_value trees (metadata, filters) and float32 vectors.
 */
#ifndef LLS_LUAVALUE_H
#define LLS_LUAVALUE_H

#include <stddef.h>

#include <lauxlib.h>
#include <lua.h>

#include "value/value.h"

/* The metatable storage.array and storage.json_decode give arrays, so an
 * empty one stays an array through a round trip. */
#define LLS_ARRAY_MT "llmspell.storage.array"

/* Converts the Lua value at idx. On failure returns NULL with a message in
 * err naming the path from `what` ("metadata.tags[2]: ..."). Leaves the
 * stack as it was. */
lls_value *lls_lua_to_value(lua_State *L, int idx, const char *what, char *err,
                            size_t errlen);

/* Pushes v as a Lua value (objects and arrays become tables). */
void lls_push_value(lua_State *L, const lls_value *v);

/* As lls_push_value, with every array marked by LLS_ARRAY_MT. */
void lls_push_json(lua_State *L, const lls_value *v);

/* Reads the vector at idx into out (dim floats): a Lua array of numbers or
 * a packed little-endian float32 string. Returns NULL, or an error message
 * (pushed) naming `what`; every value must be finite. */
const char *lls_lua_to_vector(lua_State *L, int idx, size_t dim, float *out,
                              const char *what);

/* 1 when the n packed float32 values at p are all finite. */
int lls_floats_finite(const char *p, size_t n);

/* Pushes dim floats as a Lua array of numbers. */
void lls_push_vector(lua_State *L, const float *v, size_t dim);

#endif
