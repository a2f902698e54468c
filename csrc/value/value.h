/*
 * value.h -- metadata values in C: the tree a Lua metadata table becomes,
 * that filters are evaluated against (without Lua, so searches can run on
 * several threads) and that JSON text (json.h) is read from and written to.
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

#endif
