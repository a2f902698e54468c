/*
 * patterns.c -- db:patterns(), procedural memory (COMPONENTS.md
 * "Procedural memory", docs/patterns.md): how often each (scope, key,
 * value) transition was seen. Its export section is patterns_section.c.
 *
 * The count is kept by the backends' record statement (one UPSERT, see
 * backend/patterns.h); this file checks arguments and shapes results.
 */
#include "lua/patterns.h"

#include <stdint.h>
#include <string.h>

#include "backend/patterns.h"
#include "base/clock.h"
#include "base/limits.h"
#include "lua/args.h"
#include "lua/class.h"
#include "lua/component.h"
#include "lua/error.h"
#include "lua/patterns_section.h"

static const lls_component_class CLS = {{"patterns", lls_component_owned_close, NULL},
                                        "llmspell.storage.Patterns", "patterns",
                                        lls_patterns_count};

/* ------------------------------------------------------ argument checks */

static lls_str check_text(lua_State *L, int idx, int arg, const char *what, size_t min,
                          size_t max) {
  lls_str s;
  if (lua_type(L, idx) != LUA_TSTRING)
    luaL_argerror(L, arg, lua_pushfstring(L, "%s: string expected, got %s", what,
                                          luaL_typename(L, idx)));
  s.ptr = lua_tolstring(L, idx, &s.len);
  lls_check_text(L, arg, s, min, max, what);
  return s;
}

typedef struct triple {
  lls_str scope, key, value;
} triple;

/* Arguments 2..4: scope (1..LLS_MAX_SCOPE bytes), key
 * (1..LLS_MAX_PATTERN_KEY), value (0..LLS_MAX_PATTERN_VALUE). */
static triple check_triple(lua_State *L) {
  triple t;
  t.scope = check_text(L, 2, 2, "scope", 1, LLS_MAX_SCOPE);
  t.key = check_text(L, 3, 3, "key", 1, LLS_MAX_PATTERN_KEY);
  t.value = check_text(L, 4, 4, "value", 0, LLS_MAX_PATTERN_VALUE);
  return t;
}

/* ------------------------------------------------------------- results */

/* learned's rows, copied into the handle's scratch buffer while the
 * backend reads them (nothing that may raise runs meanwhile), then
 * pushed. Each row is a header followed by the three strings' bytes. */
typedef struct row_head {
  int64_t frequency, first_seen, last_seen;
  size_t scope, key, value; /* lengths */
} row_head;

static int keep_row(void *ud, const lls_pattern *p, lls_error *err) {
  lls_buf *b = ud;
  row_head h = {p->frequency, p->first_seen, p->last_seen, p->scope.len, p->key.len,
                p->value.len};
  if (lls_buf_append(b, (const char *)&h, sizeof h) != 0 ||
      lls_buf_append(b, p->scope.ptr, p->scope.len) != 0 ||
      lls_buf_append(b, p->key.ptr, p->key.len) != 0 ||
      lls_buf_append(b, p->value.ptr, p->value.len) != 0)
    return lls_error_oom(err);
  return 0;
}

static void set_str(lua_State *L, const char *k, const char *p, size_t n) {
  lua_pushlstring(L, p, n);
  lua_setfield(L, -2, k);
}

static void set_time(lua_State *L, const char *k, int64_t us) {
  lls_push_time(L, us);
  lua_setfield(L, -2, k);
}

/* Pushes the rows keep_row wrote into b as an array of tables. */
static void push_rows(lua_State *L, const lls_buf *b) {
  lua_newtable(L);
  lua_Integer i = 0;
  for (size_t at = 0; at < b->len;) {
    row_head h;
    memcpy(&h, b->data + at, sizeof h); /* the buffer does not align it */
    const char *s = b->data + at + sizeof h;
    luaL_checkstack(L, 3, "patterns:learned");
    lua_createtable(L, 0, 6);
    set_str(L, "scope", s, h.scope);
    set_str(L, "key", s + h.scope, h.key);
    set_str(L, "value", s + h.scope + h.key, h.value);
    lua_pushinteger(L, (lua_Integer)h.frequency);
    lua_setfield(L, -2, "frequency");
    set_time(L, "first_seen", h.first_seen);
    set_time(L, "last_seen", h.last_seen);
    lua_rawseti(L, -2, ++i);
    at += sizeof h + h.scope + h.key + h.value;
  }
}

/* --------------------------------------------------------- the methods */

/** p:record(scope, key, value) --> the pattern's new frequency
 * One more sighting, counted atomically: concurrent writers never lose
 * one. */
static int pt_record(lua_State *L) {
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  triple t = check_triple(L);
  char uuid[37];
  lls_component_uuid(L, uuid);
  int64_t n;
  lls_error err;
  if (cb->vt->patterns->record(cb, t.scope, t.key, t.value, (lls_str){uuid, 36},
                               lls_now_us(), &n, &err) != 0)
    return lls_raise(L, &err, h->vt->name);
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

/** p:frequency(scope, key, value) --> integer (0 when never recorded) */
static int pt_frequency(lua_State *L) {
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  triple t = check_triple(L);
  int64_t n;
  lls_error err;
  if (cb->vt->patterns->frequency(cb, t.scope, t.key, t.value, &n, &err) != 0)
    return lls_raise(L, &err, h->vt->name);
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

/** p:learned([{min_frequency=1, scope=, limit=}]) --> array of {scope=, key=,
 * value=, frequency=, first_seen=, last_seen=}, frequency highest first
 * (then last_seen newest, then scope, key, value) */
static int pt_learned(lua_State *L) {
  static const char *const fields[] = {"min_frequency", "scope", "limit", NULL};
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  lls_str scope = {NULL, 0};
  long min = 1, limit = 0;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lls_check_fields(L, 2, 2, fields, NULL, 0);
    min = lls_opt_int(L, 2, "min_frequency", 2, 0, INT32_MAX, 1);
    limit = lls_opt_int(L, 2, "limit", 2, 1, INT32_MAX, 0);
    if (lua_getfield(L, 2, "scope") != LUA_TNIL)
      scope = check_text(L, -1, 2, "scope", 1, LLS_MAX_SCOPE);
  }
  lls_error err;
  h->scratch.len = 0;
  if (cb->vt->patterns->learned(cb, scope, min, (size_t)limit, keep_row, &h->scratch, &err) !=
      0)
    return lls_raise(L, &err, h->vt->name);
  push_rows(L, &h->scratch);
  return 1;
}

/** p:delete(scope, key, value) --> true if the pattern existed */
static int pt_delete(lua_State *L) {
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  triple t = check_triple(L);
  int existed;
  lls_error err;
  if (cb->vt->patterns->del(cb, t.scope, t.key, t.value, &existed, &err) != 0)
    return lls_raise(L, &err, h->vt->name);
  lua_pushboolean(L, existed);
  return 1;
}

/** p:count() --> the number of the tenant's patterns */
static int pt_count(lua_State *L) {
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  int64_t n;
  lls_error err;
  if (cb->vt->patterns->count(cb, &n, &err) != 0) return lls_raise(L, &err, h->vt->name);
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

/** db:patterns() --> the store's procedural-memory component */
static int db_patterns(lua_State *L) { return lls_component_get(L, &CLS); }

const luaL_Reg lls_patterns_db_methods[] = {{"patterns", db_patterns}, {NULL, NULL}};

void lls_open_patterns(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"record", pt_record}, {"frequency", pt_frequency}, {"learned", pt_learned},
      {"delete", pt_delete}, {"count", pt_count},         {NULL, NULL},
  };
  lls_component_define(L, &CLS, methods);
}
