/*
 * lua/class.h -- what every metatable of the library needs (class.c):
 * defining a class (its metatable, __name, metamethods and the method
 * table behind __index), making and checking its userdata, and the one
 * "closed" error every closable object raises.
 */
#ifndef LLS_LUA_CLASS_H
#define LLS_LUA_CLASS_H

#include <stddef.h>

#include <lauxlib.h>
#include <lua.h>

/* Defines the class `name`: creates its metatable, or takes the existing
 * one when the module is loaded again in the same interpreter (so objects
 * made before the reload keep working); sets __name, the metamethods of
 * meta (may be NULL) and an __index table holding the methods of every
 * array in methods (a NULL-ended list of luaL_Reg arrays, or NULL for a
 * class without methods; a later array's entry wins over an earlier one
 * of the same name). Leaves the stack as it was. */
void lls_class_define(lua_State *L, const char *name, const luaL_Reg *const *methods,
                      const luaL_Reg *meta);

/* Pushes a new userdata of class `name` (defined before): size bytes,
 * zeroed, with nuv user values. Returns its memory. */
void *lls_class_new(lua_State *L, const char *name, size_t size, int nuv);

/* Pushes a new zeroed userdata of size bytes whose only metamethod is gc,
 * for memory a Lua error must not leak (a parse in progress, a compiled
 * filter). The class `name` is defined on first use. */
void *lls_class_scratch(lua_State *L, const char *name, size_t size, lua_CFunction gc);

/* The userdata of class `name` at idx; raises a bad-argument error
 * (naming the class) for anything else. Open or closed alike. */
void *lls_class_check(lua_State *L, int idx, const char *name);

/* Raises the error object "closed" with the message "<what> is closed"
 * ("store", "collection", ...), naming the backend of the store the
 * object belongs to. Never returns. */
int lls_class_closed(lua_State *L, const char *what, const char *backend);

#endif
