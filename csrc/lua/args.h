/*
 * lua/args.h -- argument checks the binding files share (args.c): option
 * tables, texts against the rules of base/limits.h, numbers and times.
 * Every check raises a bad-argument error naming the argument and what
 * was expected, before anything is written.
 */
#ifndef LLS_LUA_ARGS_H
#define LLS_LUA_ARGS_H

#include <stddef.h>
#include <stdint.h>

#include <lauxlib.h>
#include <lua.h>

#include "base/buf.h"
#include "base/limits.h"

/* Raises a bad-argument error (for argument arg) when table tbl has a
 * field not in allowed (NULL-ended); the message starts with label_fmt
 * formatted with n (e.g. "entry %d: "), built only on failure. */
void lls_check_fields(lua_State *L, int tbl, int arg, const char *const *allowed,
                      const char *label_fmt, int n);

/* Why s fails limits.h's rule "min..max bytes of UTF-8 without NUL"
 * (lls_text_problem), as a message about `what` pushed on the stack:
 * "<what> must be min..max bytes" when the length is wrong and the rule
 * has a minimum, "<what> is N bytes, at most max allowed" when it has
 * none, "<what> must be UTF-8 text without NUL bytes (bad byte at N)".
 * NULL (nothing pushed) when s passes. */
const char *lls_text_arg_problem(lua_State *L, lls_str s, size_t min, size_t max,
                                 const char *what);

/* Raises a bad-argument error for argument arg when s fails the rule (the
 * message as lls_text_arg_problem's). */
void lls_check_text(lua_State *L, int arg, lls_str s, size_t min, size_t max,
                    const char *what);

/* The number at vi, an option called name of argument arg; raises
 * "option '<name>': number expected" for anything else. */
lua_Number lls_number_at(lua_State *L, int vi, const char *name, int arg);

/* The integer in [lo, hi] at vi (option name of argument arg). */
int lls_int_at(lua_State *L, int vi, const char *name, int arg, long lo, long hi);

/* The boolean at vi (option name of argument arg). */
int lls_bool_at(lua_State *L, int vi, const char *name, int arg);

/* Optional number field name of the table at tbl: 1 and *out set when
 * present, 0 when nil. */
int lls_opt_number(lua_State *L, int tbl, const char *name, int arg, lua_Number *out);

/* Optional integer field in [lo, hi]; def when nil. */
int lls_opt_int(lua_State *L, int tbl, const char *name, int arg, long lo, long hi, long def);

/* Optional boolean field; def when nil. */
int lls_opt_bool(lua_State *L, int tbl, const char *name, int arg, int def);

/* 1 when t is a valid ttl: positive and at most LLS_MAX_TTL_S seconds. */
int lls_ttl_ok(lua_Number t);

#define LLS_STR_(x) #x
#define LLS_STR(x) LLS_STR_(x)
/* What a time must be, for messages. */
#define LLS_TIME_RULE "finite seconds since the epoch, at most " LLS_STR(LLS_MAX_TIME_S) \
                      " either side"

/* 1 when t is a usable time in seconds: finite and at most
 * LLS_MAX_TIME_S either side of the epoch (NaN and infinities are not). */
int lls_time_ok(lua_Number t);

/* Seconds (integer or float, as the Lua API takes times) -> µs. Defined
 * for every input (NaN gives 0, others are clamped to LLS_MAX_TIME_S),
 * but a caller refuses what lls_time_ok refuses before converting. */
int64_t lls_seconds_to_us(lua_Number s);

/* Pushes µs as seconds: an integer when whole, a float otherwise. */
void lls_push_time(lua_State *L, int64_t us);

#endif
