/*
 * import_feed.h -- the stream side of an import (and of storage.records):
 * input chunks go through the strict lexical pass (value/json_scan.h) to
 * yajl, tokens that span chunks reach yajl whole, and the base64 of kv
 * values and embeddings is decoded as it streams instead of being parsed.
 */
#ifndef LLS_LUA_IMPORT_FEED_H
#define LLS_LUA_IMPORT_FEED_H

#include <stddef.h>

#include <lua.h>

#include "lua/import_job.h"

/* Sets up the run's scan (after its parser and builder exist). */
void lls_import_feed_init(lls_ijob *j);

/* Feeds the next n bytes of the document; raises the run's failure or the
 * syntax error, saying at which byte. Chunks must follow one another in
 * the stream; with j->text set they are consecutive slices of it. */
void lls_import_feed(lua_State *L, lls_ijob *j, const unsigned char *buf, size_t n);

/* Ends the document: raises when it is truncated, empty, or has no
 * "version". */
void lls_import_feed_end(lua_State *L, lls_ijob *j);

#endif
