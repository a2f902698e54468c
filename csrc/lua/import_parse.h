/*
 * import_parse.h -- the parser side of an import: the yajl callbacks that
 * drive a run (their context is the lls_ijob), and the scan for unpaired
 * UTF-16 surrogate escapes.
 */
#ifndef LLS_LUA_IMPORT_PARSE_H
#define LLS_LUA_IMPORT_PARSE_H

#include <stdint.h>

#include <yajl/yajl_parse.h>

#include "lua/import_job.h"

/* yajl's callbacks: each event goes to the run's state machine. */
extern const yajl_callbacks lls_import_callbacks;

/* yajl turns an unpaired UTF-16 surrogate escape into '?' and pairs a
 * high surrogate with any following \u escape, silently changing the
 * text (json.c checks whole texts the same way); this checks the stream
 * as it passes, across chunk boundaries. Start from all zeros. */
typedef struct lls_esc_scan {
  int st;          /* 0 text, 1 after '\', 2 in \u digits, 3 want '\', 4 want 'u' */
  int left, low;   /* hex digits still to read; reading a low surrogate */
  unsigned cp;
  uint64_t start;  /* offset of the escape being read */
} lls_esc_scan;

/* The offset of an unpaired surrogate escape in p[0..n) (at offset base
 * of the stream), or -1. */
int64_t lls_import_esc_check(lls_esc_scan *s, const unsigned char *p, size_t n, uint64_t base);

/* Feeds n bytes of the document to the run's parser; raises the run's
 * failure or the syntax error, saying at which byte. */
void lls_import_parse_chunk(lua_State *L, lls_ijob *j, lls_esc_scan *esc,
                            const unsigned char *buf, size_t n);

/* Ends the document: raises when it is truncated, empty, or has no
 * "version". */
void lls_import_parse_end(lua_State *L, lls_ijob *j);

/* Raises the run's recorded failure; format errors say where (byte at). */
int lls_import_raise(lua_State *L, lls_ijob *j, uint64_t at);

#endif
