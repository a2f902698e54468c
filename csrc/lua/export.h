/*
 * lua/export.h -- storage.exporter (export.c).
 */
#ifndef LLS_LUA_EXPORT_H
#define LLS_LUA_EXPORT_H

#include <lua.h>

/* Registers the Exporter type and sets storage.exporter in the module
 * table at the top of the stack. */
void lls_open_export(lua_State *L);

#endif
