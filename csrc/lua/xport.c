/*
 * xport.c -- what the export and the import share (xport.h): the stats
 * table both return, the clock and the
 * progress call.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lua/xport.h"

int lls_xstats_add(lls_xstats *s, lls_str name, int64_t n) {
  /* sections arrive grouped, so the last one is almost always the hit */
  for (size_t i = s->nsections; i-- > 0;) {
    lls_xsection *x = &s->sections[i];
    if (x->len == name.len && memcmp(x->name, name.ptr, name.len) == 0) {
      x->count += n;
      return 0;
    }
  }
  if (s->nsections == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 8;
    lls_xsection *p = realloc(s->sections, cap * sizeof *p);
    if (p == NULL) return -1;
    s->sections = p;
    s->cap = cap;
  }
  char *copy = malloc(name.len + 1);
  if (copy == NULL) return -1;
  memcpy(copy, name.ptr, name.len);
  copy[name.len] = '\0';
  s->sections[s->nsections++] = (lls_xsection){copy, name.len, n};
  return 0;
}

static int str_is(lls_str s, const char *lit) {
  return s.len == strlen(lit) && memcmp(s.ptr, lit, s.len) == 0;
}

static int64_t array_len(const lls_value *obj, const char *key) {
  const lls_value *a = lls_value_get(obj, key, strlen(key));
  return a != NULL && a->type == LLS_VARRAY ? (int64_t)a->u.a.n : 0;
}

int64_t lls_xstats_single(lls_xstats *s, lls_str name, const lls_value *v) {
  if (v == NULL || v->type != LLS_VOBJECT) return 1;
  if (str_is(name, "knowledge_graph")) {
    int64_t e = array_len(v, "entities"), r = array_len(v, "relationships");
    s->entities += e;
    s->relationships += r;
    return e + r;
  }
  if (str_is(name, "artifacts")) {
    int64_t c = array_len(v, "content"), a = array_len(v, "artifacts");
    s->artifact_content += c;
    s->artifacts += a;
    return c + a;
  }
  return 1;
}

void lls_xstats_part(lls_xstats *s, lls_str name, const char *part, int64_t n) {
  if (str_is(name, "knowledge_graph")) {
    if (strcmp(part, "entities") == 0) s->entities += n;
    else if (strcmp(part, "relationships") == 0) s->relationships += n;
    return;
  }
  if (!str_is(name, "artifacts")) return;
  if (strcmp(part, "content") == 0) s->artifact_content += n;
  else if (strcmp(part, "artifacts") == 0) s->artifacts += n;
}

void lls_xstats_free(lls_xstats *s) {
  for (size_t i = 0; i < s->nsections; i++) free(s->sections[i].name);
  free(s->sections);
  memset(s, 0, sizeof *s);
}

/* rs-llmspell's ImportStats names for the array sections it knows. */
static const char *const STAT_NAMES[][2] = {
    {"agent_state", "agent_states"}, {"workflow_states", "workflow_states"},
    {"sessions", "sessions"},        {"procedural_memory", "patterns"},
    {"event_log", "events"},         {"hook_history", "hooks"},
};

static void set_int(lua_State *L, const char *name, int64_t v) {
  lua_pushinteger(L, (lua_Integer)v);
  lua_setfield(L, -2, name);
}

void lls_xstats_push(lua_State *L, const lls_xstats *s) {
  size_t nnamed = sizeof STAT_NAMES / sizeof STAT_NAMES[0];
  int64_t named[sizeof STAT_NAMES / sizeof STAT_NAMES[0]] = {0};
  int64_t total = s->kv_entries + s->vectors;
  lua_createtable(L, 0, 24);
  lua_createtable(L, 0, (int)s->nsections);
  for (size_t i = 0; i < s->nsections; i++) {
    const lls_xsection *x = &s->sections[i];
    lls_str nm = {x->name, x->len};
    total += x->count;
    for (size_t k = 0; k < nnamed; k++)
      if (str_is(nm, STAT_NAMES[k][0])) named[k] += x->count;
    lua_pushlstring(L, x->name, x->len);
    lua_pushinteger(L, (lua_Integer)x->count);
    lua_rawset(L, -3);
  }
  lua_setfield(L, -2, "sections");
  set_int(L, "kv_entries", s->kv_entries);
  set_int(L, "vectors", s->vectors);
  set_int(L, "collections", s->collections);
  set_int(L, "skipped", s->skipped);
  for (size_t k = 0; k < nnamed; k++) set_int(L, STAT_NAMES[k][1], named[k]);
  set_int(L, "entities", s->entities);
  set_int(L, "relationships", s->relationships);
  set_int(L, "artifact_content", s->artifact_content);
  set_int(L, "artifacts", s->artifacts);
  set_int(L, "total", total);
  set_int(L, "bytes", s->bytes);
  lua_pushnumber(L, s->seconds);
  lua_setfield(L, -2, "seconds");
}

double lls_xclock(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void lls_xprogress(lua_State *L, int fn, int64_t done, int64_t total, const char *phase,
                   int with_bytes, int64_t bytes, int64_t bytes_total) {
  luaL_checkstack(L, 6, "progress call");
  lua_pushvalue(L, fn);
  lua_pushinteger(L, (lua_Integer)done);
  if (total >= 0) lua_pushinteger(L, (lua_Integer)total);
  else lua_pushnil(L);
  lua_pushstring(L, phase);
  if (with_bytes) {
    lua_pushinteger(L, (lua_Integer)bytes);
    if (bytes_total >= 0) lua_pushinteger(L, (lua_Integer)bytes_total);
    else lua_pushnil(L);
  }
  lua_call(L, with_bytes ? 5 : 3, 0);
}

