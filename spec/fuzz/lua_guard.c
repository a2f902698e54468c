/*
 * lua_guard.c -- a fenced allocator for Lua states (see lua_guard.h).
 *
 * Block layout: a 16-byte header holding the user size, the user bytes,
 * then FENCE bytes of a fixed pattern. Lua's stack is one such block, and
 * Lua keeps only EXTRA_STACK spare slots past the space it promised, so
 * pushing much beyond it lands in the fence.
 */
#include "lua_guard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#define HEAD 16
#define FENCE 64
#define PATTERN 0xA5

/* The allocator's state: live bytes, so a leak inside Lua shows up at
 * close as well. */
typedef struct guard {
  size_t live;
} guard;

static unsigned char *base_of(void *p) { return (unsigned char *)p - HEAD; }

static size_t size_of(void *p) {
  size_t n;
  memcpy(&n, base_of(p), sizeof n);
  return n;
}

/* Aborts unless the fence after p's user bytes is intact. */
static void check_fence(void *p) {
  const unsigned char *f = (const unsigned char *)p + size_of(p);
  for (size_t i = 0; i < FENCE; i++)
    if (f[i] != PATTERN) {
      fprintf(stderr, "lua_guard: a write ran %zu bytes past a %zu-byte Lua block "
                      "(a C function pushed past the Lua stack without lua_checkstack?)\n",
              i + 1, size_of(p));
      abort();
    }
}

static void *seal(unsigned char *base, size_t n) {
  memcpy(base, &n, sizeof n);
  memset(base + HEAD + n, PATTERN, FENCE);
  return base + HEAD;
}

/* lua_Alloc: frees when nsize is 0, else (re)allocates. */
static void *guard_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  guard *g = ud;
  (void)osize;
  if (ptr) {
    check_fence(ptr);
    g->live -= size_of(ptr);
  }
  if (nsize == 0) {
    if (ptr) free(base_of(ptr));
    return NULL;
  }
  unsigned char *b = realloc(ptr ? base_of(ptr) : NULL, HEAD + nsize + FENCE);
  if (!b) {
    if (ptr) g->live += size_of(ptr);
    return NULL;
  }
  g->live += nsize;
  return seal(b, nsize);
}

lua_State *fuzz_lua_new(void) {
  guard *g = calloc(1, sizeof *g);
  lua_State *L = g ? lua_newstate(guard_alloc, g) : NULL;
  if (!L) {
    fprintf(stderr, "lua_guard: out of memory\n");
    abort();
  }
  luaL_openlibs(L);
  return L;
}

void fuzz_lua_close(lua_State *L) {
  void *ud;
  lua_getallocf(L, &ud);
  lua_close(L);
  guard *g = ud;
  if (g->live != 0) {
    fprintf(stderr, "lua_guard: %zu bytes still allocated after lua_close\n", g->live);
    abort();
  }
  free(g);
}
