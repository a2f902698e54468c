/*
 * value.h -- metadata values in C: the tree a Lua metadata table becomes,
 * that filters are evaluated against (without Lua, so searches can run on
 * several threads) and that JSON text is read from and written to.
 *
 * Integers and floats are distinct types, as in Lua 5.4: an integer stays
 * an int64 (never a double) through JSON and back, and a float stays a
 * float even when it has no fractional part (JSON "1.0", not "1").
 */
#ifndef LLS_VALUE_H
#define LLS_VALUE_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/limits.h"

typedef enum lls_vtype {
  LLS_VNULL,
  LLS_VBOOL,
  LLS_VINT,
  LLS_VFLOAT,
  LLS_VSTRING,
  LLS_VARRAY,
  LLS_VOBJECT
} lls_vtype;

typedef struct lls_value lls_value;

/* An object member. Members are kept sorted by key (byte order) and unique,
 * so lookups are binary searches and JSON output is deterministic. */
typedef struct lls_member {
  char *key; /* NUL-terminated; keys never contain NUL */
  size_t klen;
  lls_value *value;
} lls_member;

struct lls_value {
  lls_vtype type;
  union {
    int b;
    int64_t i;
    double f; /* finite: NaN and infinities are refused on the way in */
    struct {
      char *ptr; /* NUL-terminated copy; may contain NUL bytes before len */
      size_t len;
    } s;
    struct {
      lls_value **items;
      size_t n;
    } a;
    struct {
      lls_member *members;
      size_t n;
    } o;
  } u;
};

/* Constructors return NULL when out of memory. Strings are copied. */
lls_value *lls_value_null(void);
lls_value *lls_value_bool(int b);
lls_value *lls_value_int(int64_t i);
lls_value *lls_value_float(double f);
lls_value *lls_value_string(const char *p, size_t len);
lls_value *lls_value_array(void);
lls_value *lls_value_object(void);

/* Appends item to an array (taking ownership). 0, or -1 when out of
 * memory (item is then freed). A NULL item (a constructor that ran out of
 * memory) gives -1, so constructors can be passed straight in. */
int lls_value_push(lls_value *array, lls_value *item);

/* Sets key in an object (taking ownership of v, replacing an existing
 * member). 0, or -1 when out of memory or when the key contains a NUL
 * byte (v is then freed); a NULL v gives -1 as for lls_value_push.
 * Appending keys in increasing order is O(1) amortised. */
int lls_value_set(lls_value *object, const char *key, size_t klen, lls_value *v);

/* The member value for key, or NULL. */
const lls_value *lls_value_get(const lls_value *object, const char *key, size_t klen);

/* Follows a dotted path ("a.b.c") through nested objects; NULL when any
 * step is missing or not an object. A member whose key itself contains a
 * '.' cannot be reached this way. */
const lls_value *lls_value_path(const lls_value *root, const char *path, size_t len);

/* Deep copy, or NULL when out of memory. */
lls_value *lls_value_copy(const lls_value *v);

/* Structural equality; an int and a float are equal when numerically
 * equal (1 == 1.0), as Lua's == says. */
int lls_value_equal(const lls_value *a, const lls_value *b);

/* Ordering for comparison operators: numbers among numbers (int/float
 * mixed exactly), strings among strings (byte order). Sets *cmp to
 * <0, 0, >0 and returns 1 when the two are comparable, 0 otherwise. */
int lls_value_compare(const lls_value *a, const lls_value *b, int *cmp);

void lls_value_free(lls_value *v);

/* Approximate heap bytes held by v (for stats). */
size_t lls_value_bytes(const lls_value *v);

/* JSON (json.c). Arrays and objects may nest at most LLS_JSON_MAX_DEPTH
 * (base/limits.h) deep, both ways, so whatever lls_json_encode writes
 * lls_json_decode reads back. */

/* JSON (json.c). Encoding is compact (no spaces) and deterministic
 * (members sorted), integers are written as integers, floats always with
 * a '.' or exponent so they read back as floats, with the fewest of 15, 16
 * or 17 significant digits that round-trips exactly (0.1 -> "0.1").
 * Strings and keys must be valid UTF-8 (strict: no overlongs, surrogates
 * or code points past U+10FFFF); NaN, infinities, invalid UTF-8 and
 * nesting deeper than LLS_JSON_MAX_DEPTH are errors whose message names
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
 * "\u0000", nesting deeper than LLS_JSON_MAX_DEPTH. Messages start with
 * "invalid JSON at byte N: ". */
lls_value *lls_json_decode(const char *text, size_t len, char *err, size_t errlen);

/* A value built from parser events (json.c), for callers that run their
 * own streaming parser and want one part of the stream as a value: the
 * same checks and results as lls_json_decode (strict UTF-8, int64 kept,
 * sorted members, last duplicate wins, at most LLS_JSON_MAX_DEPTH deep).
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
