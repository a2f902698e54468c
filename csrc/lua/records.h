/*
 * lua/records.h -- storage.records, the reader of export files (records.c).
 */
#ifndef LLS_LUA_RECORDS_H
#define LLS_LUA_RECORDS_H

#include <lua.h>

/* Sets storage.records in the module table at the top of the stack. */
void lls_open_records(lua_State *L);

#endif
