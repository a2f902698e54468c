/*
 * lua/artifact_reader.h -- the reader a:open(artifact_id) returns
 * (artifact_reader.c): the artifact's bytes chunk by chunk, one decoded
 * chunk in memory at a time, checked against the content hash at the end.
 */
#ifndef LLS_LUA_ARTIFACT_READER_H
#define LLS_LUA_ARTIFACT_READER_H

#include <lua.h>

#include "backend/artifacts.h"
#include "lua/component.h"

/* Pushes a reader over row 0 of rows (from the info op), whose chunk 0 the
 * caller decoded into *first (taken over: *first is left empty). comp is
 * the stack index of the Artifacts object (class cls), which the reader
 * keeps, so it refuses use once that or its store is closed. */
void lls_artifact_reader_push(lua_State *L, int comp, const lls_component_class *cls,
                              const lls_handle *h, const lls_artifact_rows *rows,
                              lls_buf *first);

/* Defines the reader class. */
void lls_open_artifact_reader(lua_State *L);

#endif
