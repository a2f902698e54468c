/*
 * json.h -- JSON text to and from metadata values (value.h), through yajl.
 *
 * The library's one JSON path: metadata in the backends' rows, export
 * files (lua/export.c writes with yajl's generator, lua/import.c reads with
 * yajl's parser and builds values here) and storage.records. Arrays and
 * objects may nest at most LLS_MAX_DEPTH (base/limits.h) levels, both
 * ways, so whatever lls_json_encode writes lls_json_decode reads back.
 */
#ifndef LLS_VALUE_JSON_H
#define LLS_VALUE_JSON_H

#include <stddef.h>

#include "base/buf.h"
#include "base/limits.h"
#include "value/value.h"

/* Encoding is compact (no spaces) and deterministic
 * (members sorted), integers are written as integers, floats always with
 * a '.' or exponent so they read back as floats, with the fewest of 15, 16
 * or 17 significant digits that round-trips exactly (0.1 -> "0.1").
 * Strings and keys must be valid UTF-8 (strict: no overlongs, surrogates
 * or code points past U+10FFFF); NaN, infinities, invalid UTF-8 and
 * nesting deeper than LLS_MAX_DEPTH levels are errors whose message names
 * the bad part's path: "$" is v itself, ".key" a member and "[n]" the
 * n-th array item counting from 1 as Lua does ("$.tags[2]: string is not
 * valid UTF-8"). Appends to out; on error out is left as it was.
 * 0, or -1 with the message in err. */
int lls_json_encode(const lls_value *v, lls_buf *out, char *err, size_t errlen);

/* Parses one JSON text (RFC 8259, any value at the top; whitespace
 * around it allowed, anything else after it is an error) into a new value
 * (NULL + message on malformed input or out of memory). Integers that fit
 * int64 become LLS_VINT, other numbers LLS_VFLOAT (an integer beyond int64
 * becomes the nearest float; a number beyond the double range is an
 * error). Duplicate keys: the last one wins. Refused: invalid or
 * non-strict UTF-8, unpaired \u surrogate escapes, keys containing
 * "\u0000", nesting deeper than LLS_MAX_DEPTH levels. Messages start with
 * "invalid JSON at byte N: ". */
lls_value *lls_json_decode(const char *text, size_t len, char *err, size_t errlen);

/* A value built from parser events (json.c), for callers that run their
 * own streaming parser and want one part of the stream as a value: the
 * same checks and results as lls_json_decode (strict UTF-8, int64 kept,
 * sorted members, last duplicate wins), with one level more than
 * lls_json_decode for the record holding the value: a record's members
 * may nest LLS_MAX_DEPTH levels.
 * Every event returns 1, or 0 on failure with the message in
 * lls_vbuild_error (the builder must then be reset). Numbers arrive as
 * their JSON text. */
typedef struct lls_vbuild lls_vbuild;

lls_vbuild *lls_vbuild_new(void); /* NULL when out of memory */
void lls_vbuild_free(lls_vbuild *b);
/* Drops whatever is half built, ready for the next value. */
void lls_vbuild_reset(lls_vbuild *b);
int lls_vbuild_null(lls_vbuild *b);
int lls_vbuild_bool(lls_vbuild *b, int v);
int lls_vbuild_number(lls_vbuild *b, const char *s, size_t len);
int lls_vbuild_string(lls_vbuild *b, const char *s, size_t len);
int lls_vbuild_start_map(lls_vbuild *b);
int lls_vbuild_map_key(lls_vbuild *b, const char *k, size_t len);
int lls_vbuild_end_map(lls_vbuild *b);
int lls_vbuild_start_array(lls_vbuild *b);
int lls_vbuild_end_array(lls_vbuild *b);
/* Containers open: 0 when nothing is under construction or a value is done. */
int lls_vbuild_depth(const lls_vbuild *b);
/* The finished value (the caller owns it), or NULL while one is still
 * open or none was started. */
lls_value *lls_vbuild_take(lls_vbuild *b);
const char *lls_vbuild_error(const lls_vbuild *b);

#endif
