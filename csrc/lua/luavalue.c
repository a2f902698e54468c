/*
 * luavalue.c -- Lua values <-> C values: lls_value trees (metadata,
 * filters) and float32 vectors.
 *
 * A Lua table becomes an array when its keys are exactly 1..n (n >= 1) and
 * an object when every key is a string; the empty table is an empty
 * object. Integers stay integers and floats stay floats, as Lua 5.4 keeps
 * them apart. What JSON cannot carry is refused at the door, naming where
 * it sits: NaN and infinities, strings that are not UTF-8 text, mixed or
 * sparse tables, cycles, nesting past LLS_MAX_DEPTH. A table whose
 * metatable is storage.array's (LLS_ARRAY_MT) is an array even when empty.
 *
 * Both directions recurse into tables and push as they go, so each level
 * makes room on the Lua stack first: a coroutine's stack starts at about
 * 40 slots, and C code must never push past what it was given.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base/limits.h"
#include "lua/luavalue.h"

/* 1 when s[0..len) is UTF-8 without NUL bytes (what JSON and PostgreSQL's
 * jsonb can store), of any length. */
static int utf8_text(const char *s, size_t len) {
  lls_str t = {s, len};
  return lls_text_ok(t, 0, SIZE_MAX);
}

/* Lua stack slots one level of convert_table uses: a key and a value
 * (lua_next), or two metatables; one more for an error message. */
#define CONV_SLOTS 4

#define STR_(x) #x
#define STR(x) STR_(x)

/* Conversion state: the path so far, for messages ("metadata.tags[2]"),
 * and the tables on it, which is how a cycle is told from deep nesting. */
typedef struct conv {
  char path[256];
  const void *open[LLS_MAX_DEPTH];
  char *err;
  size_t errlen;
} conv;

/* Writes "<path>: <what>" into err; a path too long for the message is
 * cut short ("metadata.a.a.a...") so the reason always shows. */
static lls_value *fail(conv *c, const char *what) {
  size_t plen = strlen(c->path), wlen = strlen(what);
  size_t room = c->errlen > wlen + 6 ? c->errlen - wlen - 6 : 0;
  int cut = plen >= sizeof c->path - 1 || plen > room;
  if (plen > room) plen = room;
  snprintf(c->err, c->errlen, "%.*s%s: %s", (int)plen, c->path, cut ? "..." : "", what);
  return NULL;
}

static lls_value *oom(conv *c) { return fail(c, "out of memory"); }

static lls_value *convert(lua_State *L, int idx, conv *c, int depth);

/* Appends ".key" or "[i]" to the path for the duration of a child. */
static size_t path_push_key(conv *c, const char *key) {
  size_t len = strlen(c->path);
  snprintf(c->path + len, sizeof c->path - len, ".%s", key);
  return len;
}

static size_t path_push_index(conv *c, lua_Integer i) {
  size_t len = strlen(c->path);
  snprintf(c->path + len, sizeof c->path - len, "[%lld]", (long long)i);
  return len;
}

/* Why the table at idx (depth levels below the root) cannot be entered:
 * it is one of the tables it sits in, it is nested too deeply, or the Lua
 * stack cannot grow. NULL when it can, and then it is recorded. */
static const char *enter_problem(lua_State *L, int idx, conv *c, int depth) {
  const void *t = lua_topointer(L, idx);
  for (int i = 0; i < depth; i++)
    if (c->open[i] == t) return "table contains itself (a cycle cannot be stored)";
  if (depth >= LLS_MAX_DEPTH) return "tables nested too deeply (at most " STR(LLS_MAX_DEPTH) " levels)";
  if (!lua_checkstack(L, CONV_SLOTS)) return "out of Lua stack space";
  c->open[depth] = t;
  return NULL;
}

static lls_value *convert_table(lua_State *L, int idx, conv *c, int depth) {
  const char *problem = enter_problem(L, idx, c, depth);
  if (problem != NULL) return fail(c, problem);
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
  /* Count keys and sort them into "array" or "object" shape. */
  lua_Integer total = 0, strings = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    total++;
    if (lua_type(L, -2) == LUA_TSTRING) strings++;
    lua_pop(L, 1);
  }
  if (total == 0 && lua_getmetatable(L, idx)) { /* storage.array{}: an empty array */
    luaL_getmetatable(L, LLS_ARRAY_MT);
    int marked = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    if (marked) {
      lls_value *arr = lls_value_array();
      return arr != NULL ? arr : oom(c);
    }
  }
  if (total > 0 && strings == 0 && n == total) {
    lls_value *arr = lls_value_array();
    if (arr == NULL) return oom(c);
    for (lua_Integer i = 1; i <= n; i++) {
      size_t mark = path_push_index(c, i);
      lua_rawgeti(L, idx, i);
      lls_value *item = convert(L, lua_gettop(L), c, depth + 1);
      lua_pop(L, 1);
      c->path[mark] = '\0';
      if (item == NULL || lls_value_push(arr, item) != 0) {
        lls_value_free(arr);
        return item == NULL ? NULL : oom(c);
      }
    }
    return arr;
  }
  if (strings != total)
    return fail(c, "table mixes array and string keys, or has non-string keys "
                   "(expected an array 1..n or string keys)");
  lls_value *obj = lls_value_object();
  if (obj == NULL) return oom(c);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    size_t klen;
    const char *key = lua_tolstring(L, -2, &klen);
    if (!utf8_text(key, klen)) {
      lls_value_free(obj);
      lua_pop(L, 2);
      return fail(c, "keys must be UTF-8 text without NUL bytes");
    }
    size_t mark = path_push_key(c, key);
    lls_value *v = convert(L, lua_gettop(L), c, depth + 1);
    c->path[mark] = '\0';
    if (v == NULL || lls_value_set(obj, key, klen, v) != 0) {
      lls_value_free(obj);
      lua_pop(L, 2);
      return v == NULL ? NULL : oom(c);
    }
    lua_pop(L, 1);
  }
  return obj;
}

static lls_value *convert(lua_State *L, int idx, conv *c, int depth) {
  lls_value *v;
  switch (lua_type(L, idx)) {
  case LUA_TBOOLEAN:
    v = lls_value_bool(lua_toboolean(L, idx));
    break;
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx)) {
      v = lls_value_int((int64_t)lua_tointeger(L, idx));
    } else {
      double d = (double)lua_tonumber(L, idx);
      if (!isfinite(d)) return fail(c, "NaN and infinities cannot be stored");
      v = lls_value_float(d);
    }
    break;
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    if (!utf8_text(s, len))
      return fail(c, "strings must be UTF-8 text without NUL bytes");
    v = lls_value_string(s, len);
    break;
  }
  case LUA_TTABLE:
    return convert_table(L, idx, c, depth);
  default:
    return fail(c, lua_pushfstring(L, "%s cannot be stored (expected a string, number, "
                                      "boolean or table)", luaL_typename(L, idx)));
  }
  return v ? v : oom(c);
}

lls_value *lls_lua_to_value(lua_State *L, int idx, const char *what, char *err,
                            size_t errlen) {
  conv c;
  snprintf(c.path, sizeof c.path, "%s", what);
  c.err = err;
  c.errlen = errlen;
  int top = lua_gettop(L);
  lls_value *v = convert(L, lua_absindex(L, idx), &c, 0);
  lua_settop(L, top);
  return v;
}

/* Pushes v; containers take three slots per level (the table, a key, a
 * value), checked before each level. Values are at most LLS_MAX_DEPTH
 * deep (they were converted or decoded), so the stack stays small. */
static void push(lua_State *L, const lls_value *v, int mark) {
  luaL_checkstack(L, 4, "metadata nested too deeply");
  switch (v->type) {
  case LLS_VNULL:
    lua_pushnil(L);
    break;
  case LLS_VBOOL:
    lua_pushboolean(L, v->u.b);
    break;
  case LLS_VINT:
    lua_pushinteger(L, (lua_Integer)v->u.i);
    break;
  case LLS_VFLOAT:
    lua_pushnumber(L, (lua_Number)v->u.f);
    break;
  case LLS_VSTRING:
    lua_pushlstring(L, v->u.s.ptr, v->u.s.len);
    break;
  case LLS_VARRAY:
    lua_createtable(L, (int)v->u.a.n, 0);
    for (size_t i = 0; i < v->u.a.n; i++) {
      push(L, v->u.a.items[i], mark);
      lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    if (mark) luaL_setmetatable(L, LLS_ARRAY_MT);
    break;
  case LLS_VOBJECT:
    lua_createtable(L, 0, (int)v->u.o.n);
    for (size_t i = 0; i < v->u.o.n; i++) {
      /* JSON null members (only from imported files) have no Lua value. */
      if (v->u.o.members[i].value->type == LLS_VNULL) continue;
      lua_pushlstring(L, v->u.o.members[i].key, v->u.o.members[i].klen);
      push(L, v->u.o.members[i].value, mark);
      lua_rawset(L, -3);
    }
    break;
  }
}

void lls_push_value(lua_State *L, const lls_value *v) { push(L, v, 0); }

void lls_push_json(lua_State *L, const lls_value *v) { push(L, v, 1); }

const char *lls_lua_to_vector(lua_State *L, int idx, size_t dim, float *out,
                              const char *what) {
  if (lua_type(L, idx) == LUA_TSTRING) {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    if (len != dim * 4)
      return lua_pushfstring(L, "%s is a %d-byte string, collection expects %d float32 "
                                "values (%d bytes)", what, (int)len, (int)dim,
                             (int)(dim * 4));
    memcpy(out, s, len);
  } else if (lua_type(L, idx) == LUA_TTABLE) {
    size_t n = (size_t)lua_rawlen(L, idx);
    if (n != dim)
      return lua_pushfstring(L, "%s has %d numbers, collection expects %d", what, (int)n,
                             (int)dim);
    for (size_t i = 0; i < dim; i++) {
      lua_rawgeti(L, idx, (lua_Integer)i + 1);
      int isnum = lua_type(L, -1) == LUA_TNUMBER;
      lua_Number x = lua_tonumber(L, -1);
      lua_pop(L, 1);
      if (!isnum) return lua_pushfstring(L, "%s[%d] is not a number", what, (int)i + 1);
      out[i] = (float)x;
    }
  } else {
    return lua_pushfstring(L, "%s: table of numbers or packed float32 string expected, "
                              "got %s", what, luaL_typename(L, idx));
  }
  for (size_t i = 0; i < dim; i++)
    if (!isfinite(out[i]))
      return lua_pushfstring(L, "%s[%d] is %s", what, (int)i + 1,
                             isnan(out[i]) ? "NaN" : "infinite (or too large for float32)");
  return NULL;
}

int lls_floats_finite(const char *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    float f;
    memcpy(&f, p + 4 * i, 4);
    if (!isfinite(f)) return 0;
  }
  return 1;
}

void lls_push_vector(lua_State *L, const float *v, size_t dim) {
  lua_createtable(L, (int)dim, 0);
  for (size_t i = 0; i < dim; i++) {
    lua_pushnumber(L, (lua_Number)v[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
}
