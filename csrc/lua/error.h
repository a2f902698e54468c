/*
 * lua/error.h -- the error objects operational failures raise (error.c).
 * Wrong arguments are not error objects: they raise luaL_argerror strings.
 */
#ifndef LLS_LUA_ERROR_H
#define LLS_LUA_ERROR_H

#include <lua.h>

#include "base/error.h"

#define LLS_ERROR_MT "llmspell.storage.Error"

/* Pushes an error object built from err (backend: the backend's name, or
 * NULL) and raises it. Never returns. */
int lls_raise(lua_State *L, const lls_error *err, const char *backend);

/* Raises an error object with code and a printf-style message. Never
 * returns. */
int lls_raisef(lua_State *L, lls_code code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Registers the error metatable and sets storage.error_codes,
 * storage.error and storage.is_error in the module table at the top of
 * the stack. */
void lls_open_errors(lua_State *L);

#endif
