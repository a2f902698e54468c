/*
 * import_parse.h -- the parser side of an import: the yajl callbacks that
 * drive a run (their context is the lls_ijob).
 */
#ifndef LLS_LUA_IMPORT_PARSE_H
#define LLS_LUA_IMPORT_PARSE_H

#include <stdint.h>

#include <yajl/yajl_parse.h>

#include "lua/import_job.h"

/* yajl's callbacks: each event goes to the run's state machine. */
extern const yajl_callbacks lls_import_callbacks;

/* Raises the run's recorded failure; format errors say where (byte at). */
int lls_import_raise(lua_State *L, lls_ijob *j, uint64_t at);

#endif
