/*
 * fuzz_luavalue.c -- Lua values to lls_value and JSON (csrc/lua/luavalue.c).
 *
 * The input is a tiny program for a stack machine that builds Lua values
 * (one opcode byte, then its operand bytes):
 *
 *   0 nil          1 boolean (1 byte)   2 integer (8 bytes)  3 small int (1 byte)
 *   4 float (8 bytes, NaN and infinities too)   5 string (length byte, bytes)
 *   6 new table    7 t[k] = v (pops v, k; t below them)   8 t[#t+1] = v
 *   9 mark t as storage.array   10 push a copy of slot (1 byte): shares, cycles
 *   11 pop         12 {v}       13 {[key byte] = v}
 *
 * Every value left on the stack is converted in a fresh coroutine, whose
 * stack holds only what Lua promises a C function, in a state whose
 * allocator fences each block (lua_guard.c): a conversion that pushes
 * past its stack without lua_checkstack aborts. A value that converts
 * must encode as JSON, decode to an equal value, encode to the same bytes
 * again, and survive lls_push_json and a second conversion unchanged;
 * lls_lua_to_vector reads it as a vector too.
 */
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#include "fuzz.h"
#include "lua/luavalue.h"
#include "lua_guard.h"
#include "value/json.h"

#define MAX_STACK 48
#define MAX_VEC 64

typedef struct prog {
  const uint8_t *p;
  size_t left;
} prog;

/* The next n operand bytes (zeros past the end). */
static void operand(prog *g, void *out, size_t n) {
  size_t k = n < g->left ? n : g->left;
  memset(out, 0, n);
  memcpy(out, g->p, k);
  g->p += k;
  g->left -= k;
}

static uint8_t byte(prog *g) {
  uint8_t b;
  operand(g, &b, 1);
  return b;
}

/* Pops v and wraps it: {v}, or {[k] = v} with a one-letter key. */
static void wrap(lua_State *L, prog *g, int keyed) {
  lua_createtable(L, 1, 1);
  lua_insert(L, -2);
  if (keyed) {
    char k = (char)('a' + byte(g) % 26);
    lua_pushlstring(L, &k, 1);
    lua_insert(L, -2);
    lua_rawset(L, -3);
  } else {
    lua_rawseti(L, -2, 1);
  }
}

/* t[k] = v with v, k on top and t below them; keys Lua refuses (nil,
 * NaN) and a t that is not a table drop the pair. */
static void set_pair(lua_State *L) {
  int ok = lua_gettop(L) >= 3 && lua_istable(L, -3) && !lua_isnil(L, -2) &&
           !(lua_type(L, -2) == LUA_TNUMBER && lua_tonumber(L, -2) != lua_tonumber(L, -2));
  if (ok)
    lua_rawset(L, -3);
  else
    lua_pop(L, 2);
}

static void step(lua_State *L, prog *g, uint8_t op) {
  int top = lua_gettop(L);
  luaL_checkstack(L, 4, "fuzz program");
  switch (op % 14) {
  case 0: lua_pushnil(L); break;
  case 1: lua_pushboolean(L, byte(g) & 1); break;
  case 2: { int64_t i; operand(g, &i, 8); lua_pushinteger(L, (lua_Integer)i); break; }
  case 3: lua_pushinteger(L, (int8_t)byte(g)); break;
  case 4: { double d; operand(g, &d, 8); lua_pushnumber(L, d); break; }
  case 5: {
    char s[32];
    size_t n = byte(g) % sizeof s;
    operand(g, s, n);
    lua_pushlstring(L, s, n);
    break;
  }
  case 6: lua_newtable(L); break;
  case 7: if (top >= 3) set_pair(L); break;
  case 8:
    if (top >= 2 && lua_istable(L, -2)) lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    break;
  case 9: if (top >= 1 && lua_istable(L, -1)) luaL_setmetatable(L, LLS_ARRAY_MT); break;
  case 10: if (top >= 1) lua_pushvalue(L, 1 + byte(g) % top); break;
  case 11: if (top >= 1) lua_pop(L, 1); break;
  case 12: if (top >= 1) wrap(L, g, 0); break;
  case 13: if (top >= 1) wrap(L, g, 1); break;
  }
}

/* JSON text of v, which must encode. */
static lls_buf encode(const lls_value *v) {
  lls_buf out = {0};
  char err[256];
  int rc = lls_json_encode(v, &out, err, sizeof err);
  if (rc != 0) fprintf(stderr, "%s\n", err);
  FUZZ_CHECK(rc == 0, "a converted value does not encode as JSON");
  return out;
}

/* The checks on one converted value (see the top of the file). */
static void check_value(lua_State *co, const lls_value *v) {
  lls_buf a = encode(v);
  char err[256];
  lls_value *back = lls_json_decode(a.data, a.len, err, sizeof err);
  FUZZ_CHECK(back != NULL, "encoded JSON does not decode");
  FUZZ_CHECK(lls_value_equal(v, back), "JSON changed the value");
  lls_buf b = encode(back);
  FUZZ_CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0, "JSON is not canonical");
  lls_push_json(co, back);
  lls_value *again = lls_lua_to_value(co, -1, "v", err, sizeof err);
  FUZZ_CHECK(again != NULL, "a pushed value does not convert back");
  FUZZ_CHECK(lls_value_equal(v, again), "Lua changed the value");
  lua_pop(co, 1);
  lls_value_free(again);
  lls_value_free(back);
  lls_buf_free(&a);
  lls_buf_free(&b);
}

/* Converts stack slot i of L in a new coroutine. */
static void convert_slot(lua_State *L, int i) {
  lua_State *co = lua_newthread(L);
  lua_pushvalue(L, i);
  lua_xmove(L, co, 1);
  char err[256] = "";
  lls_value *v = lls_lua_to_value(co, 1, "v", err, sizeof err);
  FUZZ_CHECK(lua_gettop(co) == 1, "the conversion left the stack changed");
  /* Growing the stack now moves its block, so lua_guard checks the fence
   * here and an overrun is blamed on the conversion, not on a later push. */
  luaL_checkstack(co, 2 * LUA_MINSTACK + 200, "fuzz");
  if (v) {
    check_value(co, v);
    lls_value_free(v);
  } else {
    FUZZ_CHECK(err[0] == 'v', "a refused value names no path");
  }
  float vec[MAX_VEC];
  size_t dim = lua_istable(co, 1) ? (size_t)lua_rawlen(co, 1) : 1;
  if (dim >= 1 && dim <= MAX_VEC) (void)lls_lua_to_vector(co, 1, dim, vec, "vector");
  lua_pop(L, 1); /* the coroutine */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_State *L = fuzz_lua_new();
  luaL_newmetatable(L, LLS_ARRAY_MT);
  lua_pop(L, 1);
  prog g = {data, size};
  while (g.left) {
    uint8_t op = byte(&g);
    if (lua_gettop(L) < MAX_STACK || op % 14 == 7 || op % 14 == 8 || op % 14 == 11) step(L, &g, op);
  }
  int n = lua_gettop(L);
  for (int i = 1; i <= n; i++) convert_slot(L, i);
  fuzz_lua_close(L);
  return 0;
}
