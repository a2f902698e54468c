/*
 * lua/core.h -- the C module's loader (core.c): what `require
 * "llmspell.storage.core"` calls.
 */
#ifndef LLS_LUA_CORE_H
#define LLS_LUA_CORE_H

#include <lua.h>

/* Registers every class and returns the module table: open, limits,
 * exporter, importer, error, error_codes, is_error, _VERSION. Safe to run
 * twice in one interpreter. */
LUALIB_API int luaopen_llmspell_storage_core(lua_State *L);

#endif
