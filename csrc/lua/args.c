/*
 * args.c -- argument checks the binding files share. Messages are built
 * only on failure: formatting a label for every key of a batch up front
 * would cost more than storing it.
 */
#include <math.h>
#include <string.h>

#include "base/limits.h"
#include "lua/args.h"

void lls_check_fields(lua_State *L, int tbl, int arg, const char *const *allowed,
                      const char *label_fmt, int n) {
  lua_pushnil(L);
  while (lua_next(L, tbl)) {
    int ok = 0;
    if (lua_type(L, -2) == LUA_TSTRING) {
      const char *k = lua_tostring(L, -2);
      for (int i = 0; allowed[i]; i++)
        if (strcmp(k, allowed[i]) == 0) ok = 1;
    }
    if (!ok) {
      lua_pop(L, 1);
      const char *name = luaL_tolstring(L, -1, NULL);
      const char *label = label_fmt ? lua_pushfstring(L, label_fmt, n) : "";
      luaL_argerror(L, arg, lua_pushfstring(L, "%sunknown option '%s'", label, name));
    }
    lua_pop(L, 1);
  }
}

const char *lls_text_arg_problem(lua_State *L, lls_str s, size_t min, size_t max,
                                 const char *what) {
  char buf[128];
  const char *p = lls_text_problem(s, min, max, buf, sizeof buf);
  if (p == NULL) return NULL;
  /* The ranged form is what ids, scopes and tenants have always said. */
  if (min > 0 && (s.len < min || s.len > max))
    return lua_pushfstring(L, "%s must be %d..%d bytes", what, (int)min, (int)max);
  return lua_pushfstring(L, "%s %s", what, p);
}

void lls_check_text(lua_State *L, int arg, lls_str s, size_t min, size_t max,
                    const char *what) {
  const char *msg = lls_text_arg_problem(L, s, min, max, what);
  if (msg != NULL) luaL_argerror(L, arg, msg);
}

lua_Number lls_number_at(lua_State *L, int vi, const char *name, int arg) {
  if (lua_type(L, vi) != LUA_TNUMBER)
    luaL_argerror(L, arg, lua_pushfstring(L, "option '%s': number expected, got %s", name,
                                          luaL_typename(L, vi)));
  return lua_tonumber(L, vi);
}

int lls_int_at(lua_State *L, int vi, const char *name, int arg, long lo, long hi) {
  lua_Number x = lls_number_at(L, vi, name, arg);
  if (x != floor(x) || x < lo || x > hi)
    luaL_argerror(L, arg, lua_pushfstring(L, "option '%s' must be an integer in [%d, %d]",
                                          name, (int)lo, (int)hi));
  return (int)x;
}

int lls_bool_at(lua_State *L, int vi, const char *name, int arg) {
  if (lua_type(L, vi) != LUA_TBOOLEAN)
    luaL_argerror(L, arg, lua_pushfstring(L, "option '%s': boolean expected, got %s", name,
                                          luaL_typename(L, vi)));
  return lua_toboolean(L, vi);
}

int lls_opt_number(lua_State *L, int tbl, const char *name, int arg, lua_Number *out) {
  int present = lua_getfield(L, tbl, name) != LUA_TNIL;
  if (present) *out = lls_number_at(L, lua_gettop(L), name, arg);
  lua_pop(L, 1);
  return present;
}

int lls_opt_int(lua_State *L, int tbl, const char *name, int arg, long lo, long hi, long def) {
  int v = (int)def;
  if (lua_getfield(L, tbl, name) != LUA_TNIL)
    v = lls_int_at(L, lua_gettop(L), name, arg, lo, hi);
  lua_pop(L, 1);
  return v;
}

int lls_opt_bool(lua_State *L, int tbl, const char *name, int arg, int def) {
  int v = def;
  if (lua_getfield(L, tbl, name) != LUA_TNIL) v = lls_bool_at(L, lua_gettop(L), name, arg);
  lua_pop(L, 1);
  return v;
}

int lls_ttl_ok(lua_Number t) { return t > 0 && t <= LLS_MAX_TTL_S; }

int lls_time_ok(lua_Number t) { return isfinite(t) && fabs(t) <= LLS_MAX_TIME_S; }

int64_t lls_seconds_to_us(lua_Number s) {
  /* Converting NaN or a double past int64 is undefined in C; callers
   * refuse such times first, and this keeps the conversion defined
   * whatever slips through. */
  double x = (double)s;
  if (x != x) return 0;
  if (x > LLS_MAX_TIME_S) x = LLS_MAX_TIME_S;
  if (x < -LLS_MAX_TIME_S) x = -LLS_MAX_TIME_S;
  return (int64_t)llround(x * 1e6);
}

void lls_push_time(lua_State *L, int64_t us) {
  if (us % 1000000 == 0)
    lua_pushinteger(L, us / 1000000);
  else
    lua_pushnumber(L, (lua_Number)us / 1e6);
}
