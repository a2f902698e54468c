/*
 * lua/import.h -- storage.importer (import.c).
 */
#ifndef LLS_LUA_IMPORT_H
#define LLS_LUA_IMPORT_H

#include <lua.h>

/* Registers the Importer type and sets storage.importer in the module
 * table at the top of the stack. */
void lls_open_import(lua_State *L);

#endif
