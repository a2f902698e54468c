/*
 * filter.h -- metadata filters (Chroma/MongoDB style), compiled once from
 * an lls_value spec and then evaluated against metadata values without
 * Lua, so filtered searches can run on several threads.
 *
 * The spec is an object. Its members are ANDed:
 *
 *   field = value                  equality ($eq), value of any type
 *   field = { ["$op"] = operand, ... }   every operator must hold (AND)
 *   ["$and"] = { filter, ... }     all hold      (a non-empty array)
 *   ["$or"]  = { filter, ... }     at least one  (a non-empty array)
 *   ["$not"] = filter              does not hold
 *
 * A field is a member name, or a dotted path into nested objects
 * ("author.name"; a key that itself contains '.' cannot be addressed).
 * Operators:
 *
 *   $eq $ne         any operand; tables compare deeply (lls_value_equal)
 *   $gt $gte $lt $lte  a number or a string operand; numbers compare with
 *                   numbers (integers and floats exactly, 2^53 + 1 > 2^53.0)
 *                   and strings with strings (byte order); any other pair
 *                   is incomparable and the condition is false
 *   $in $nin        an array operand: equal to one of its elements / none
 *   $exists         a boolean operand: the field is present (any value,
 *                   JSON null included) / absent
 *
 * Semantics, as in MongoDB:
 *   - a missing field fails $eq $gt $gte $lt $lte $in and $exists = true,
 *     and passes $ne, $nin and $exists = false;
 *   - a field holding an array matches $eq (and $in) when the whole array
 *     is equal to the operand or any one of its elements is; $ne and $nin
 *     are exactly the negations. The comparisons ($gt ...) do not look
 *     into arrays: an array is incomparable, so they are false;
 *   - booleans and null are equal only to themselves and incomparable;
 *     1 and 1.0 are equal (as in Lua);
 *   - an empty spec (or a NULL one) matches everything.
 * Because an empty Lua table has no shape, an empty array is accepted
 * wherever a filter object is expected and an empty object wherever an
 * array operand is ($in = {} matches nothing, $nin = {} everything).
 */
#ifndef LLS_FILTER_H
#define LLS_FILTER_H

#include <stddef.h>

#include "value/value.h"

typedef struct lls_filter lls_filter;

/* Compiles spec into a filter that owns everything it needs (spec may be
 * freed afterwards). On failure returns NULL with a message in err that
 * names the path of the bad part from the root "filter", e.g.
 *   filter.year.$gtx: unknown operator (expected $eq $ne $gt $gte $lt
 *   $lte $in $nin $exists)
 *   filter.$or[2]: table expected, got number
 * Array positions count from 1, as Lua's do. Running out of memory gives
 * the message "out of memory". */
lls_filter *lls_filter_compile(const lls_value *spec, char *err, size_t errlen);

/* 1 when metadata (an object; NULL counts as an empty one) passes the
 * filter, else 0. Read-only: any number of threads may evaluate one
 * filter at the same time. */
int lls_filter_match(const lls_filter *f, const lls_value *metadata);

/* 1 when the filter accepts every metadata value (an empty spec), so a
 * caller can skip filtering altogether. */
int lls_filter_matches_all(const lls_filter *f);

/* Approximate heap bytes held by the compiled filter. */
size_t lls_filter_bytes(const lls_filter *f);

/* Frees f (NULL is a no-op). */
void lls_filter_free(lls_filter *f);

#endif
