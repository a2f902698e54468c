/*
 * collection_read.c -- the reads of a `col`: get, search, search_many,
 * stats and stats_for_scope. Searches are answered from memory
 * (collection/search.c) after catching up with the backend.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/limits.h"
#include "collection/search.h"
#include "lua/args.h"
#include "lua/class.h"
#include "lua/collection.h"
#include "lua/collection_read.h"
#include "lua/error.h"
#include "lua/luavalue.h"

#define FILTER_MT "llmspell.storage.CompiledFilter"

/* --------------------------------------------------------------- get */

static const char *const GET_FIELDS[] = {"exclude_expired", NULL};

/** col:get(id [, {exclude_expired = true}]) --> entry | nil
 * entry = { id=, vector=, metadata=, scope=, created_at=, updated_at=,
 *           event_time=, expires_at= } (times in seconds) */
static int col_get(lua_State *L) {
  lls_handle *h;
  coll *c = lls_coll_ready(L, 1, &h);
  int exclude = 1;
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    lls_check_fields(L, 3, 3, GET_FIELDS, NULL, 0);
    exclude = lls_opt_bool(L, 3, "exclude_expired", 3, 1);
  }
  const char *msg = lls_coll_id_problem(L, 2, "id");
  if (msg) return luaL_argerror(L, 2, msg);
  size_t len;
  const char *id = lua_tolstring(L, 2, &len);
  int64_t slot = coll_find_slot(c, id, len);
  if (slot < 0 || (exclude && coll_expired(&c->entries[slot], lls_now_us()))) {
    lua_pushnil(L);
    return 1;
  }
  const entry *e = &c->entries[slot];
  lua_createtable(L, 0, 8);
  lua_pushlstring(L, e->id, e->idlen);
  lua_setfield(L, -2, "id");
  lls_push_vector(L, hnsw_vector(c->ix, (uint32_t)slot), (size_t)c->info.dimension);
  lua_setfield(L, -2, "vector");
  lls_push_value(L, e->meta);
  lua_setfield(L, -2, "metadata");
  lua_pushlstring(L, c->scopes[e->scope].name, c->scopes[e->scope].len);
  lua_setfield(L, -2, "scope");
  lls_push_time(L, e->created_at);
  lua_setfield(L, -2, "created_at");
  lls_push_time(L, e->updated_at);
  lua_setfield(L, -2, "updated_at");
  if (e->has_event_time) {
    lls_push_time(L, e->event_time);
    lua_setfield(L, -2, "event_time");
  }
  if (e->expires_at) {
    lls_push_time(L, e->expires_at);
    lua_setfield(L, -2, "expires_at");
  }
  return 1;
}

/* ------------------------------------------------------------ search */

/* A {from, to} time range in seconds (either end may be nil). */
static range range_at(lua_State *L, int vi, const char *name, int arg) {
  range r = {1, INT64_MIN, INT64_MAX};
  if (!lua_istable(L, vi))
    luaL_argerror(L, arg, lua_pushfstring(L, "option '%s': {from, to} expected", name));
  for (int i = 1; i <= 2; i++) {
    int tt = lua_rawgeti(L, vi, i);
    if (tt == LUA_TNUMBER) {
      lua_Number t = lua_tonumber(L, -1);
      if (!lls_time_ok(t))
        luaL_argerror(L, arg, lua_pushfstring(L, "option '%s': times must be " LLS_TIME_RULE
                                                 " (nil leaves an end open)", name));
      if (i == 1) r.from = lls_seconds_to_us(t);
      else r.to = lls_seconds_to_us(t);
    } else if (tt != LUA_TNIL) {
      luaL_argerror(L, arg, lua_pushfstring(L, "option '%s': times must be numbers "
                                               "(seconds)", name));
    }
    lua_pop(L, 1);
  }
  return r;
}

typedef struct search_opts {
  size_t k, ef;
  int include_metadata, include_vector, has_threshold, threads;
  double threshold;
  pred p;
} search_opts;


/* The compiled filter lives in a userdata so a later Lua error frees it. */
static int filter_gc(lua_State *L) {
  lls_filter **f = lls_class_check(L, 1, FILTER_MT);
  lls_filter_free(*f);
  *f = NULL;
  return 0;
}

/* Compiles the filter table at vi into a userdata stored at stack slot
 * `keep` (which frees it when the call ends, even by an error). */
static lls_filter *compile_filter(lua_State *L, int vi, int arg, int keep) {
  char err[300];
  if (!lua_istable(L, vi))
    luaL_argerror(L, arg, lua_pushfstring(L, "option 'filter': table expected, got %s",
                                          luaL_typename(L, vi)));
  lls_value *spec = lls_lua_to_value(L, vi, "filter", err, sizeof err);
  if (spec == NULL) luaL_argerror(L, arg, err);
  lls_filter **slot = lls_class_scratch(L, FILTER_MT, sizeof *slot, filter_gc);
  lua_replace(L, keep);
  *slot = lls_filter_compile(spec, err, sizeof err);
  lls_value_free(spec);
  if (*slot == NULL) luaL_argerror(L, arg, err);
  return *slot;
}

/* Reads search options from the table at arg in one pass over the keys the
 * caller gave (searches are hot; a lookup per known option is not free).
 * Pushes one stack slot, which owns a compiled filter. */
static void parse_search_opts(lua_State *L, coll *c, int arg, search_opts *o) {
  memset(o, 0, sizeof *o);
  o->k = 10;
  o->ef = (size_t)c->info.ef_search;
  o->include_metadata = 1;
  o->threads = c->threads;
  o->p.c = c;
  o->p.now = lls_now_us();
  o->p.exclude_expired = 1;
  o->p.scope = -1;
  lua_pushnil(L); /* the slot for the compiled filter */
  int keep = lua_gettop(L);
  if (lua_isnoneornil(L, arg)) return;
  luaL_checktype(L, arg, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, arg)) {
    int vi = lua_gettop(L);
    const char *key = lua_type(L, vi - 1) == LUA_TSTRING ? lua_tostring(L, vi - 1) : "";
    if (strcmp(key, "k") == 0) {
      o->k = (size_t)lls_int_at(L, vi, key, arg, 1, LLS_MAX_K);
    } else if (strcmp(key, "ef_search") == 0) {
      o->ef = (size_t)lls_int_at(L, vi, key, arg, 1, LLS_MAX_EF_SEARCH);
    } else if (strcmp(key, "include_metadata") == 0) {
      o->include_metadata = lls_bool_at(L, vi, key, arg);
    } else if (strcmp(key, "include_vector") == 0) {
      o->include_vector = lls_bool_at(L, vi, key, arg);
    } else if (strcmp(key, "filter") == 0) {
      o->p.filter = compile_filter(L, vi, arg, keep);
    } else if (strcmp(key, "scope") == 0) {
      if (lua_type(L, vi) != LUA_TSTRING)
        luaL_argerror(L, arg, lua_pushfstring(L, "option 'scope': string expected, got %s",
                                              luaL_typename(L, vi)));
      lls_str sc;
      sc.ptr = lua_tolstring(L, vi, &sc.len);
      lls_check_text(L, arg, sc, 1, LLS_MAX_SCOPE, "option 'scope'");
      o->p.scope = coll_scope_lookup(c, sc.ptr, sc.len);
      if (o->p.scope < 0 || c->scopes[o->p.scope].count == 0) o->p.scope = -2;
    } else if (strcmp(key, "threshold") == 0) {
      o->threshold = lls_number_at(L, vi, key, arg);
      /* NaN compares false with every score: it would match nothing,
       * silently */
      if (o->threshold != o->threshold)
        luaL_argerror(L, arg, "option 'threshold' must be a number, not NaN");
      o->has_threshold = 1;
    } else if (strcmp(key, "exclude_expired") == 0) {
      o->p.exclude_expired = lls_bool_at(L, vi, key, arg);
    } else if (strcmp(key, "event_time") == 0) {
      o->p.event = range_at(L, vi, key, arg);
    } else if (strcmp(key, "ingestion_time") == 0) {
      o->p.ingest = range_at(L, vi, key, arg);
    } else if (strcmp(key, "threads") == 0) {
      o->threads = lls_int_at(L, vi, key, arg, 1, LLS_MAX_THREADS);
    } else if (strcmp(key, "strategy") == 0) {
      const char *st = lua_type(L, vi) == LUA_TSTRING ? lua_tostring(L, vi) : "";
      if (strcmp(st, "auto") == 0) o->p.strat = STRAT_AUTO;
      else if (strcmp(st, "graph") == 0) o->p.strat = STRAT_GRAPH;
      else if (strcmp(st, "exact") == 0) o->p.strat = STRAT_EXACT;
      else luaL_argerror(L, arg, "option 'strategy' must be \"auto\", \"graph\" or \"exact\"");
    } else {
      const char *name = luaL_tolstring(L, vi - 1, NULL);
      luaL_argerror(L, arg, lua_pushfstring(L, "unknown option '%s'", name));
    }
    lua_settop(L, vi - 1);
  }
}

/* Pushes the result array for hits. */
static void push_hits(lua_State *L, const coll *c, const hnsw_hit *hits, int n,
                      const search_opts *o) {
  lua_createtable(L, n > 0 ? n : 0, 0);
  int out = 0;
  for (int i = 0; i < n; i++) {
    const entry *e = &c->entries[hits[i].slot];
    double score = coll_score(c->info.metric, hits[i].distance);
    if (o->has_threshold && score < o->threshold) continue;
    lua_createtable(L, 0, 4 + o->include_metadata + o->include_vector + e->has_event_time);
    lua_pushlstring(L, e->id, e->idlen);
    lua_setfield(L, -2, "id");
    lua_pushnumber(L, score);
    lua_setfield(L, -2, "score");
    lua_pushnumber(L, (lua_Number)hits[i].distance);
    lua_setfield(L, -2, "distance");
    lua_pushlstring(L, c->scopes[e->scope].name, c->scopes[e->scope].len);
    lua_setfield(L, -2, "scope");
    if (o->include_metadata) {
      lls_push_value(L, e->meta);
      lua_setfield(L, -2, "metadata");
    }
    if (o->include_vector) {
      lls_push_vector(L, hnsw_vector(c->ix, hits[i].slot), (size_t)c->info.dimension);
      lua_setfield(L, -2, "vector");
    }
    if (e->has_event_time) {
      lls_push_time(L, e->event_time);
      lua_setfield(L, -2, "event_time");
    }
    lua_rawseti(L, -2, ++out);
  }
}

/** col:search(vector, opts) --> { { id=, score=, distance=, scope=, metadata= }, ... }
 * best first. opts: k, ef_search, filter, scope, threshold, event_time =
 * {from, to}, ingestion_time = {from, to}, include_metadata,
 * include_vector, exclude_expired, strategy = "auto" | "graph" | "exact"
 * ("auto": exact over the matches when a filter leaves few, else the graph). */
static int col_search(lua_State *L) {
  lls_handle *h;
  coll *c = lls_coll_ready(L, 1, &h);
  size_t dim = (size_t)c->info.dimension;
  lua_settop(L, 3);
  /* A packed query is used where it lies (the kernels load unaligned);
   * a table of numbers is converted into a scratch userdata. */
  const float *q;
  const char *packed = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : NULL;
  if (packed && lua_rawlen(L, 2) == dim * 4 && (uintptr_t)packed % sizeof(float) == 0 &&
      lls_floats_finite(packed, dim)) {
    q = (const float *)(const void *)packed;
  } else {
    float *buf = lua_newuserdatauv(L, dim * sizeof(float), 0); /* stays on the stack */
    const char *msg = lls_lua_to_vector(L, 2, dim, buf, "query vector");
    if (msg) return luaL_argerror(L, 2, msg);
    q = buf;
  }
  search_opts o;
  parse_search_opts(L, c, 3, &o);
  hnsw_hit small[64];
  hnsw_hit *hits = o.k <= 64 ? small : lua_newuserdatauv(L, o.k * sizeof *hits, 0);
  int n = coll_query(c, q, o.k, o.ef, &o.p, hits);
  if (n < 0)
    return lls_raisef(L, h->vt->name, LLS_EIO, "search failed: %s", hnsw_strerror(n));
  push_hits(L, c, hits, n, &o);
  return 1;
}

/** col:search_many(vectors, opts) --> { results_1, results_2, ... }
 * Like search for each vector, answered on every core (opts.threads). */
static int col_search_many(lua_State *L) {
  lls_handle *h;
  coll *c = lls_coll_ready(L, 1, &h);
  size_t dim = (size_t)c->info.dimension;
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 3);
  size_t nq = (size_t)lua_rawlen(L, 2);
  float *qs = lua_newuserdatauv(L, (nq ? nq : 1) * dim * sizeof(float), 0); /* 4 */
  for (size_t i = 0; i < nq; i++) {
    lua_rawgeti(L, 2, (lua_Integer)i + 1);
    int top = lua_gettop(L);
    const char *label = lua_pushfstring(L, "query %d", (int)i + 1);
    const char *msg = lls_lua_to_vector(L, top, dim, qs + i * dim, label);
    if (msg) return luaL_argerror(L, 2, msg);
    lua_settop(L, top - 1);
  }
  search_opts o;
  parse_search_opts(L, c, 3, &o);
  hnsw_hit *hits = lua_newuserdatauv(L, (nq ? nq : 1) * o.k * sizeof(hnsw_hit), 0);
  int *counts = lua_newuserdatauv(L, (nq ? nq : 1) * sizeof(int), 0);
  coll_query_many(c, qs, nq, o.k, o.ef, &o.p, o.threads, hits, counts);
  lua_createtable(L, (int)nq, 0);
  for (size_t i = 0; i < nq; i++) {
    if (counts[i] < 0)
      return lls_raisef(L, h->vt->name, LLS_EIO, "search failed: %s",
                        hnsw_strerror(counts[i]));
    push_hits(L, c, hits + i * o.k, counts[i], &o);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

/* ------------------------------------------------------------- stats */

/** col:stats() --> { name=, count=, stored=, expired=, dimension=, metric=, m=,
 *   ef_construction=, ef_search=, memory_bytes=, from_snapshot=, rebuilt=,
 *   snapshot_error=, seq=, loads=, catch_ups=, scopes=, kernel=, threads= } */
static int col_stats(lua_State *L) {
  lls_handle *h;
  coll *c = lls_coll_ready(L, 1, &h);
  int64_t now = lls_now_us(), live = coll_live_count(c, now);
  size_t mem = hnsw_memory_bytes(c->ix) + c->nentries * sizeof(entry) +
               c->ids.nslots * sizeof(lls_hidx_slot);
  int64_t nscopes = 0;
  for (size_t i = 0; i < c->nentries; i++)
    if (c->entries[i].meta) mem += c->entries[i].idlen + lls_value_bytes(c->entries[i].meta);
  if (c->expiring == 0) {
    for (size_t i = 0; i < c->nscopes; i++) nscopes += c->scopes[i].count > 0;
  } else {
    /* the scopes' totals include expired entries not yet purged: a scope
     * counts when one of its entries is live */
    unsigned char *live_in = calloc(c->nscopes ? c->nscopes : 1, 1);
    if (live_in == NULL) return luaL_error(L, "out of memory");
    for (size_t k = 0; k < c->nentries; k++) {
      const entry *e = &c->entries[k];
      if (e->id && e->scope < c->nscopes && !coll_expired(e, now)) live_in[e->scope] = 1;
    }
    for (size_t i = 0; i < c->nscopes; i++) nscopes += live_in[i];
    free(live_in);
  }
  lua_createtable(L, 0, 18);
  lua_pushstring(L, c->info.name);
  lua_setfield(L, -2, "name");
  lua_pushinteger(L, live);
  lua_setfield(L, -2, "count");
  lua_pushinteger(L, (lua_Integer)hnsw_count(c->ix));
  lua_setfield(L, -2, "stored");
  lua_pushinteger(L, (lua_Integer)hnsw_count(c->ix) - live);
  lua_setfield(L, -2, "expired");
  lua_pushinteger(L, c->info.dimension);
  lua_setfield(L, -2, "dimension");
  lua_pushstring(L, lls_coll_metric_name(c->info.metric));
  lua_setfield(L, -2, "metric");
  lua_pushinteger(L, c->info.m);
  lua_setfield(L, -2, "m");
  lua_pushinteger(L, c->info.ef_construction);
  lua_setfield(L, -2, "ef_construction");
  lua_pushinteger(L, c->info.ef_search);
  lua_setfield(L, -2, "ef_search");
  lua_pushinteger(L, (lua_Integer)mem);
  lua_setfield(L, -2, "memory_bytes");
  lua_pushboolean(L, c->from_snapshot);
  lua_setfield(L, -2, "from_snapshot");
  lua_pushboolean(L, c->rebuilt);
  lua_setfield(L, -2, "rebuilt");
  if (c->snapshot_error[0]) {
    lua_pushstring(L, c->snapshot_error);
    lua_setfield(L, -2, "snapshot_error");
  }
  lua_pushinteger(L, c->seq);
  lua_setfield(L, -2, "seq");
  lua_pushinteger(L, c->loads);
  lua_setfield(L, -2, "loads");
  lua_pushinteger(L, c->catch_ups);
  lua_setfield(L, -2, "catch_ups");
  lua_pushinteger(L, nscopes);
  lua_setfield(L, -2, "scopes");
  lua_pushstring(L, hnsw_kernel_name(c->ix));
  lua_setfield(L, -2, "kernel");
  lua_pushinteger(L, c->threads);
  lua_setfield(L, -2, "threads");
  return 1;
}

/** col:stats_for_scope(scope) --> { scope=, vectors=, bytes=,
 *   vector_count=, memory_mb= }
 * Unexpired entries only, as col:count() counts them. bytes = vector
 * bytes + metadata JSON bytes of the scope's entries. vector_count (=
 * vectors) and memory_mb (= bytes / 2^20, a float) are the names
 * rs-llmspell's ScopedStats readers use. */
static int col_stats_for_scope(lua_State *L) {
  lls_handle *h;
  coll *c = lls_coll_ready(L, 1, &h);
  int64_t i = lls_coll_scope_arg(L, c, 2);
  int64_t count = i >= 0 ? c->scopes[i].count : 0, bytes = i >= 0 ? c->scopes[i].bytes : 0;
  if (count > 0 && c->expiring > 0) {
    /* The scope's totals include entries that expired but are not yet
     * purged; take those out (a walk only when anything can expire). */
    int64_t now = lls_now_us();
    for (size_t k = 0; k < c->nentries; k++) {
      const entry *e = &c->entries[k];
      if (e->id && (int64_t)e->scope == i && coll_expired(e, now)) {
        count--;
        bytes -= (int64_t)(coll_vector_bytes(c) + e->meta_len);
      }
    }
  }
  lua_createtable(L, 0, 5);
  lua_pushvalue(L, 2);
  lua_setfield(L, -2, "scope");
  lua_pushinteger(L, count);
  lua_setfield(L, -2, "vectors");
  lua_pushinteger(L, bytes);
  lua_setfield(L, -2, "bytes");
  lua_pushinteger(L, count);
  lua_setfield(L, -2, "vector_count");
  lua_pushnumber(L, (lua_Number)bytes / (1024.0 * 1024.0));
  lua_setfield(L, -2, "memory_mb");
  return 1;
}

const luaL_Reg lls_coll_read_methods[] = {
    {"get", col_get},
    {"search", col_search},
    {"search_many", col_search_many},
    {"stats", col_stats},
    {"stats_for_scope", col_stats_for_scope},
    {NULL, NULL},
};
