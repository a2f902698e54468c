/*
 * lua/error.h -- the error objects operational failures raise (error.c).
 * Wrong arguments are not error objects: they raise luaL_argerror strings.
 */
#ifndef LLS_LUA_ERROR_H
#define LLS_LUA_ERROR_H

#include <lua.h>

#include "base/error.h"

#define LLS_ERROR_MT "llmspell.storage.Error"

/* Pushes an error object built from err and raises it. backend: the
 * name of the backend of the store involved ("memory", "sqlite",
 * "postgres"), NULL only where no store is (reading an export file,
 * json_decode). The object's `where` is the position of the Lua code that
 * called the running C function, when there is one. Never returns. */
int lls_raise(lua_State *L, const lls_error *err, const char *backend);

/* Raises an error object with code and a printf-style message, naming
 * backend as lls_raise does. Never returns. */
int lls_raisef(lua_State *L, const char *backend, lls_code code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* Raises the value at the top again (after a lua_pcall of the library's
 * own C code caught it). An error object without `where` (it was raised
 * where no Lua code called, inside that protected call) gets the position
 * of the Lua code that called the running C function. Never returns. */
int lls_rethrow(lua_State *L);

/* 1 when the value at idx is an error object of this library. */
int lls_is_error(lua_State *L, int idx);

/* Registers the error metatable and sets storage.error_codes,
 * storage.error and storage.is_error in the module table at the top of
 * the stack. */
void lls_open_errors(lua_State *L);

#endif
