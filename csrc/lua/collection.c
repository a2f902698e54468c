/*
 * collection.c -- vector collections in Lua: db:create_collection() and
 * friends, and the life of the `col` object (ready, close, snapshot).
 * Its writes are in collection_write.c, its reads in collection_read.c.
 *
 * This layer checks arguments and converts between Lua and C; the state of
 * an open collection and how it keeps up with the backend's rows live in
 * collection/state.c, query answering in collection/search.c.
 *
 * Every write goes to the backend first and to memory after it succeeded.
 * The store owns its open collections (lls_store_own), so a rolled-back
 * transaction marks them stale (they reload on next use) and closing the
 * store closes them. Snapshots are written on close (col:close, db:close,
 * garbage collection) and by col:snapshot().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/limits.h"
#include "lua/args.h"
#include "lua/class.h"
#include "lua/collection.h"
#include "lua/error.h"
#include "vector/cpus.h"
#include "vector/distance.h"

/* The userdata: c is NULL once closed. Uservalue 1 is the db handle. */
typedef struct coll_ud {
  coll *c;
} coll_ud;

static void close_ud(lua_State *L, int idx);
static void invalidate_ud(lua_State *L, int idx);

/* How the store closes and invalidates the collections it owns. */
static const lls_owned_type COLL_KIND = {"collection", close_ud, invalidate_ud};

/* The CPUs this process may use (affinity mask, cgroup quota: cpus.h),
 * not the machine's count. */
static int default_threads(void) {
  int n = hnsw_usable_cpus();
  return n > LLS_MAX_THREADS ? LLS_MAX_THREADS : n;
}

const char *lls_coll_metric_name(int metric) {
  const char *name = lls_metric_name((lls_metric)metric);
  return name ? name : "?";
}

const char *lls_coll_id_problem(lua_State *L, int idx, const char *what) {
  if (lua_type(L, idx) != LUA_TSTRING)
    return lua_pushfstring(L, "%s: string id expected, got %s", what, luaL_typename(L, idx));
  lls_str id;
  id.ptr = lua_tolstring(L, idx, &id.len);
  if (lls_text_ok(id, 1, LLS_MAX_ID)) return NULL;
  return lls_text_arg_problem(L, id, 1, LLS_MAX_ID, lua_pushfstring(L, "%s: id", what));
}

int64_t lls_coll_scope_arg(lua_State *L, const coll *c, int arg) {
  lls_str s;
  s.ptr = luaL_checklstring(L, arg, &s.len);
  lls_check_text(L, arg, s, 1, LLS_MAX_SCOPE, "scope");
  return coll_scope_lookup(c, s.ptr, s.len);
}

/* ----------------------------------------------------- the col userdata */

const char *lls_coll_backend(lua_State *L, int idx) {
  lua_getiuservalue(L, idx, 1);
  lls_handle *h = lls_test_handle(L, -1);
  lua_pop(L, 1);
  return h != NULL ? h->vt->name : NULL;
}

/* Closes the collection at idx without a snapshot (it no longer exists)
 * and removes it from its store's registry. */
static void forget_coll(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  coll_ud *u = lls_class_check(L, idx, LLS_COLL_MT);
  if (u->c == NULL) return;
  lua_getiuservalue(L, idx, 1);
  lls_store_disown(L, -1, &COLL_KIND, u->c->info.name, idx);
  lua_pop(L, 1);
  coll_free(u->c);
  u->c = NULL;
}

coll *lls_coll_ready(lua_State *L, int idx, lls_handle **hp) {
  coll_ud *u = lls_class_check(L, idx, LLS_COLL_MT);
  if (u->c == NULL) lls_class_closed(L, "collection", lls_coll_backend(L, idx));
  lua_getiuservalue(L, idx, 1);
  lls_handle *h = lls_check_handle(L, -1);
  lua_pop(L, 1);
  lls_error err;
  int rc = 0;
  /* A private store (memory, sqlite::memory:) has no other writer, so
   * there is never anything to catch up with. */
  if (u->c->stale)
    rc = coll_load(h->b, u->c, &err);
  else if (!h->b->ephemeral)
    rc = coll_catch_up(h->b, u->c, &err);
  if (rc != 0) {
    if (err.code == LLS_ENOTFOUND) {
      /* Gone (dropped elsewhere, or its creation rolled back): this object
       * is closed and leaves the store's registry, so db:collection and
       * create_collection start afresh. */
      lls_error_set(&err, LLS_ENOTFOUND, "collection '%s' was dropped", u->c->info.name);
      forget_coll(L, idx);
    }
    lls_store_fail(L, h, &err);
  }
  *hp = h;
  return u->c;
}

/* Pushes a userdata around c (taking ownership) and gives it to the store
 * at hidx. */
static void push_coll(lua_State *L, int hidx, coll *c) {
  coll_ud *u = lls_class_new(L, LLS_COLL_MT, sizeof *u, 1);
  u->c = c;
  lua_pushvalue(L, hidx);
  lua_setiuservalue(L, -2, 1);
  lls_store_own(L, hidx, &COLL_KIND, c->info.name, -1);
}

/* Saves a snapshot (best effort) and frees the collection at idx; the
 * store's close hook for collections. */
static void close_ud(lua_State *L, int idx) {
  coll_ud *u = luaL_testudata(L, idx, LLS_COLL_MT);
  if (u == NULL || u->c == NULL) return;
  idx = lua_absindex(L, idx);
  coll *c = u->c;
  u->c = NULL;
  lua_getiuservalue(L, idx, 1);
  lls_handle *h = lls_test_handle(L, -1);
  if (h != NULL && h->b != NULL) {
    lls_error err;
    coll_save_snapshot(h->b, c, h->txdepth > 0, &err); /* lost: costs a rebuild */
    lls_store_disown(L, -1, &COLL_KIND, c->info.name, idx);
  }
  lua_pop(L, 1);
  coll_free(c);
}

/* The store's invalidate hook: after a rollback, memory may hold undone
 * writes, so the collection reloads on next use. */
static void invalidate_ud(lua_State *L, int idx) {
  coll_ud *u = luaL_testudata(L, idx, LLS_COLL_MT);
  if (u != NULL && u->c != NULL) u->c->stale = 1;
}

/** col:count() (also #col) --> number of unexpired entries */
static int col_count(lua_State *L) {
  lls_handle *h;
  coll *c = lls_coll_ready(L, 1, &h);
  lua_pushinteger(L, coll_live_count(c, lls_now_us()));
  return 1;
}

/** col:snapshot() --> seq: stores the index now (when the backend keeps
 * snapshots and anything changed), so the next open does not rebuild. */
static int col_snapshot(lua_State *L) {
  lls_handle *h;
  coll *c = lls_coll_ready(L, 1, &h);
  lls_error err;
  if (coll_save_snapshot(h->b, c, h->txdepth > 0, &err) != 0) return lls_store_fail(L, h, &err);
  lua_pushinteger(L, c->snap_seq);
  return 1;
}

/** col:seq() --> the collection's change sequence, after catching up with
 * other handles: it moves with every write, so a caller can tell cheaply
 * whether anything changed since it last looked (unlike stats(), which
 * walks the entries). */
static int col_seq(lua_State *L) {
  lls_handle *h;
  coll *c = lls_coll_ready(L, 1, &h);
  lua_pushinteger(L, c->seq);
  return 1;
}

/** col:name() --> the collection's name */
static int col_name(lua_State *L) {
  coll_ud *u = lls_class_check(L, 1, LLS_COLL_MT);
  if (u->c == NULL) return lls_class_closed(L, "collection", lls_coll_backend(L, 1));
  lua_pushstring(L, u->c->info.name);
  return 1;
}

/** col:close() -- idempotent; also __close and __gc. Stores a snapshot
 * first when the collection changed. */
static int col_close(lua_State *L) {
  lls_class_check(L, 1, LLS_COLL_MT);
  close_ud(L, 1);
  return 0;
}

static int col_len(lua_State *L) { return col_count(L); }

static int col_tostring(lua_State *L) {
  coll_ud *u = lls_class_check(L, 1, LLS_COLL_MT);
  if (u->c == NULL) {
    lua_pushliteral(L, "llmspell.storage.Collection (closed)");
    return 1;
  }
  const coll *c = u->c;
  lua_pushfstring(L, "llmspell.storage.Collection (%s, %d-d %s, %I vectors)", c->info.name,
                  c->info.dimension, lls_coll_metric_name(c->info.metric),
                  (lua_Integer)coll_live_count(c, lls_now_us()));
  return 1;
}

/* ------------------------------------------------------ db-level methods */

/* Collection names follow lls_name_problem (limits.h). NULL or a message. */
static const char *name_problem(lua_State *L, int idx) {
  if (lua_type(L, idx) != LUA_TSTRING)
    return lua_pushfstring(L, "string name expected, got %s", luaL_typename(L, idx));
  char buf[LLS_MAX_NAME + 128];
  lls_str s;
  s.ptr = lua_tolstring(L, idx, &s.len);
  const char *p = lls_name_problem(s, buf, sizeof buf);
  return p ? lua_pushstring(L, p) : NULL;
}

static coll *new_coll(lua_State *L, const lls_coll_info *info) {
  coll *c = calloc(1, sizeof *c);
  if (c == NULL) luaL_error(L, "out of memory");
  c->info = *info;
  c->threads = default_threads();
  c->snap_seq = -1;
  return c;
}

static const char *const CREATE_FIELDS[] = {"dimension", "metric",    "m",      "ef_construction",
                                            "ef_search", "preset",    NULL};
static const char *const OPEN_FIELDS[] = {"dimension", "metric",    "m",      "ef_construction",
                                          "ef_search", "preset",    "create", NULL};

/* The parameters an options table gave (a preset gives m, ef_construction
 * and ef_search), so db:collection compares only what was asked. */
enum { GAVE_DIM = 1, GAVE_METRIC = 2, GAVE_M = 4, GAVE_EFC = 8, GAVE_EFS = 16 };

/* Reads the collection parameters of the options table at argument 3
 * into info (defaults for what is absent) and returns which were given
 * (GAVE_*). need_dim: NULL when dimension may be absent, else what the
 * message adds to "option 'dimension' is required". */
static int create_options(lua_State *L, const char *const *fields, const char *need_dim,
                          lls_coll_info *info) {
  luaL_checktype(L, 3, LUA_TTABLE);
  lls_check_fields(L, 3, 3, fields, NULL, 0);
  int gave = 0;
  if (lua_getfield(L, 3, "dimension") == LUA_TNIL && need_dim != NULL)
    luaL_argerror(L, 3, lua_pushfstring(L, "option 'dimension' is required%s (1..%d)",
                                        need_dim, LLS_MAX_DIM));
  if (!lua_isnil(L, -1)) gave |= GAVE_DIM;
  lua_pop(L, 1);
  info->dimension = lls_opt_int(L, 3, "dimension", 3, 1, LLS_MAX_DIM, 0);
  lua_getfield(L, 3, "metric");
  info->metric = LLS_METRIC_COSINE;
  if (!lua_isnil(L, -1)) {
    size_t len;
    const char *m = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : "";
    info->metric = lls_metric_parse(m, lua_type(L, -1) == LUA_TSTRING ? len : 0);
    gave |= GAVE_METRIC;
  }
  if (info->metric < 0)
    luaL_argerror(L, 3, "option 'metric' must be \"cosine\", \"l2\", \"ip\" or \"l1\" (or "
                        "rs-llmspell's \"euclidean\", \"inner_product\", \"manhattan\")");
  lua_pop(L, 1);
  int m = 16, efc = 200, efs = 50;
  if (lua_getfield(L, 3, "preset") != LUA_TNIL) {
    const char *p = lua_tostring(L, -1);
    if (p && strcmp(p, "fast") == 0) m = 12, efc = 100, efs = 50;
    /* "production": the seeds' HNSWConfig::production(), which their
     * README sets to m 16 / ef_construction 200: balanced. */
    else if (p && (strcmp(p, "balanced") == 0 || strcmp(p, "production") == 0))
      m = 16, efc = 200, efs = 100;
    else if (p && strcmp(p, "accurate") == 0) m = 32, efc = 400, efs = 200;
    else
      luaL_argerror(L, 3, "option 'preset' must be \"fast\", \"balanced\", \"production\" "
                          "or \"accurate\"");
    gave |= GAVE_M | GAVE_EFC | GAVE_EFS;
  }
  lua_pop(L, 1);
  static const struct {
    const char *name;
    int bit;
  } tuning[] = {{"m", GAVE_M}, {"ef_construction", GAVE_EFC}, {"ef_search", GAVE_EFS}};
  for (size_t i = 0; i < sizeof tuning / sizeof tuning[0]; i++) {
    if (lua_getfield(L, 3, tuning[i].name) != LUA_TNIL) gave |= tuning[i].bit;
    lua_pop(L, 1);
  }
  info->m = lls_opt_int(L, 3, "m", 3, LLS_MIN_M, LLS_MAX_M, m);
  info->ef_construction =
      lls_opt_int(L, 3, "ef_construction", 3, 1, LLS_MAX_EF_CONSTRUCTION, efc);
  info->ef_search = lls_opt_int(L, 3, "ef_search", 3, 1, LLS_MAX_EF_SEARCH, efs);
  return gave;
}

/* Creates the collection info describes (its name set) and pushes its
 * object, owned by the store at 1. -1 + err (nothing pushed) when the
 * backend refuses, "conflict" when the name is taken. */
static int create_new(lua_State *L, lls_handle *h, lls_coll_info *info, lls_error *err) {
  if (h->vt->vec->coll_create(h->b, info, lls_now_us(), err) != 0) return -1;
  coll *c = new_coll(L, info);
  if (coll_reset(c, err) != 0) {
    coll_free(c);
    return -1;
  }
  c->seq = info->seq;
  push_coll(L, 1, c);
  return 0;
}

/** db:create_collection(name, { dimension=, metric="cosine", m=16,
 *   ef_construction=200, ef_search=50 } | { dimension=, preset=
 *   "fast"|"balanced"|"production"|"accurate" }) --> col
 * metric also takes "euclidean" (l2), "inner_product"/"innerproduct" (ip)
 * and "manhattan" (l1); the canonical name is what is stored.
 * Raises "conflict" when the tenant already has a collection of that name. */
static int db_create_collection(lua_State *L) {
  lls_handle *h = lls_check_handle(L, 1);
  const char *msg = name_problem(L, 2);
  if (msg) return luaL_argerror(L, 2, msg);
  lls_coll_info info;
  memset(&info, 0, sizeof info);
  create_options(L, CREATE_FIELDS, "", &info);
  snprintf(info.name, sizeof info.name, "%s", lua_tostring(L, 2));
  lls_error err;
  if (create_new(L, h, &info, &err) != 0) return lls_store_fail(L, h, &err);
  return 1;
}

/* Opens the existing collection `name` (the same object while it stays
 * open) and pushes it: 1, or 0 (nothing pushed) when there is none. */
static int open_existing(lua_State *L, lls_handle *h, const char *name) {
  lls_store_owned(L, 1, &COLL_KIND, name);
  if (lua_type(L, -1) == LUA_TUSERDATA) {
    coll_ud *u = lls_class_check(L, -1, LLS_COLL_MT);
    if (u->c != NULL && !u->c->stale) return 1;
    if (u->c != NULL) {
      /* After a rollback: reload now; if the collection is gone, forget
       * this object and look the name up afresh below. */
      lls_error err;
      if (coll_load(h->b, u->c, &err) == 0) return 1;
      if (err.code != LLS_ENOTFOUND) return lls_store_fail(L, h, &err);
      forget_coll(L, -1);
    }
  }
  lua_pop(L, 1);
  lls_coll_info info;
  int found;
  lls_error err;
  if (h->vt->vec->coll_get(h->b, name, &info, &found, &err) != 0)
    return lls_store_fail(L, h, &err);
  if (!found) return 0;
  coll *c = new_coll(L, &info);
  push_coll(L, 1, c); /* owned by the userdata from here: errors free it by GC */
  if (coll_load(h->b, c, &err) != 0) return lls_store_fail(L, h, &err);
  return 1;
}

/* Raises "conflict" naming every parameter `gave` asked for that the
 * existing collection `have` does not have. */
static void check_same(lua_State *L, lls_handle *h, const lls_coll_info *want, int gave,
                       const lls_coll_info *have) {
  char diff[400] = "";
  size_t used = 0;
  const struct {
    int bit;
    const char *name;
    int have, want;
  } p[] = {{GAVE_DIM, "dimension", have->dimension, want->dimension},
           {GAVE_METRIC, "metric", have->metric, want->metric},
           {GAVE_M, "m", have->m, want->m},
           {GAVE_EFC, "ef_construction", have->ef_construction, want->ef_construction},
           {GAVE_EFS, "ef_search", have->ef_search, want->ef_search}};
  for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) {
    if (!(gave & p[i].bit) || p[i].have == p[i].want || used >= sizeof diff) continue;
    int w = p[i].bit == GAVE_METRIC
                ? snprintf(diff + used, sizeof diff - used, "%smetric \"%s\" (asked \"%s\")",
                           used ? ", " : "", lls_coll_metric_name(p[i].have),
                           lls_coll_metric_name(p[i].want))
                : snprintf(diff + used, sizeof diff - used, "%s%s %d (asked %d)",
                           used ? ", " : "", p[i].name, p[i].have, p[i].want);
    if (w > 0) used += (size_t)w;
  }
  if (used > 0)
    lls_raisef(L, h->vt->name, LLS_ECONFLICT, "collection '%s' exists with %s", have->name,
               diff);
}

/** db:collection(name [, { create = true, dimension=, metric=, m=,
 *   ef_construction=, ef_search=, preset= }]) --> col (the same object
 * while it stays open). With create = true an absent collection is
 * created with those options (dimension required); the options given
 * must match an existing collection's parameters ("conflict" naming those
 * that differ). Raises "not_found" when there is no such collection and
 * create is not set. */
static int db_collection(lua_State *L) {
  lls_handle *h = lls_check_handle(L, 1);
  const char *msg = name_problem(L, 2);
  if (msg) return luaL_argerror(L, 2, msg);
  const char *name = lua_tostring(L, 2);
  lls_coll_info want;
  memset(&want, 0, sizeof want);
  int gave = 0, create = 0;
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    create = lls_opt_bool(L, 3, "create", 3, 0);
    gave = create_options(L, OPEN_FIELDS, create ? " with create = true" : NULL, &want);
  }
  lua_settop(L, 3);
  lls_error err;
  for (int tries = 0;; tries++) {
    if (open_existing(L, h, name)) {
      coll_ud *u = lua_touserdata(L, -1);
      check_same(L, h, &want, gave, &u->c->info);
      return 1;
    }
    if (!create) return lls_raisef(L, h->vt->name, LLS_ENOTFOUND, "no collection '%s'", name);
    snprintf(want.name, sizeof want.name, "%s", name);
    if (create_new(L, h, &want, &err) == 0) return 1;
    /* Another handle created it meanwhile: open that one (once; inside a
     * transaction a failed statement may have aborted it, so not there). */
    if (err.code != LLS_ECONFLICT || tries > 0 || h->txdepth > 0)
      return lls_store_fail(L, h, &err);
  }
}

typedef struct coll_list {
  lls_coll_info *items;
  size_t n, cap;
} coll_list;

static int list_sink(void *ud, const lls_coll_info *info, lls_error *err) {
  coll_list *l = ud;
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 16;
    lls_coll_info *p = realloc(l->items, cap * sizeof *p);
    if (p == NULL) return lls_error_oom(err);
    l->items = p;
    l->cap = cap;
  }
  l->items[l->n++] = *info;
  return 0;
}

/* Pushes the list_collections entry for in. */
static void push_info(lua_State *L, const lls_coll_info *in) {
  lua_createtable(L, 0, 8);
  lua_pushstring(L, in->name);
  lua_setfield(L, -2, "name");
  lua_pushinteger(L, in->dimension);
  lua_setfield(L, -2, "dimension");
  lua_pushstring(L, lls_coll_metric_name(in->metric));
  lua_setfield(L, -2, "metric");
  lua_pushinteger(L, in->count);
  lua_setfield(L, -2, "count");
  lua_pushinteger(L, in->m);
  lua_setfield(L, -2, "m");
  lua_pushinteger(L, in->ef_construction);
  lua_setfield(L, -2, "ef_construction");
  lua_pushinteger(L, in->ef_search);
  lua_setfield(L, -2, "ef_search");
  lls_push_time(L, in->created_at);
  lua_setfield(L, -2, "created_at");
}

/** db:list_collections([prefix]) --> { { name=, dimension=, metric=, count=,
 *   m=, ef_construction=, ef_search=, created_at= }, ... } in name order.
 * prefix: at most LLS_MAX_NAME bytes of UTF-8 text without NUL. */
static int db_list_collections(lua_State *L) {
  lls_handle *h = lls_check_handle(L, 1);
  lls_str prefix = {"", 0};
  if (!lua_isnoneornil(L, 2)) {
    prefix.ptr = luaL_checklstring(L, 2, &prefix.len);
    lls_check_text(L, 2, prefix, 0, LLS_MAX_NAME, "prefix");
  }
  coll_list *l = lua_newuserdatauv(L, sizeof *l, 0);
  memset(l, 0, sizeof *l);
  lls_error err;
  int rc = h->vt->vec->coll_list(h->b, prefix, list_sink, l, &err);
  if (rc != 0) {
    free(l->items);
    return lls_store_fail(L, h, &err);
  }
  lua_createtable(L, (int)l->n, 0);
  for (size_t i = 0; i < l->n; i++) {
    push_info(L, &l->items[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  free(l->items);
  return 1;
}

/** db:drop_collection(name) --> true if it existed. Its open `col` objects
 * are closed. */
static int db_drop_collection(lua_State *L) {
  lls_handle *h = lls_check_handle(L, 1);
  const char *msg = name_problem(L, 2);
  if (msg) return luaL_argerror(L, 2, msg);
  const char *name = lua_tostring(L, 2);
  int dropped;
  lls_error err;
  if (h->vt->vec->coll_drop(h->b, name, &dropped, &err) != 0)
    return lls_store_fail(L, h, &err);
  lls_store_owned(L, 1, &COLL_KIND, name);
  if (lua_type(L, -1) == LUA_TUSERDATA) {
    coll_ud *u = lls_class_check(L, -1, LLS_COLL_MT);
    coll_free(u->c);
    u->c = NULL;
    lls_store_disown(L, 1, &COLL_KIND, name, -1);
  }
  lua_pushboolean(L, dropped);
  return 1;
}

const luaL_Reg lls_coll_db_methods[] = {
    {"create_collection", db_create_collection},
    {"collection", db_collection},
    {"list_collections", db_list_collections},
    {"drop_collection", db_drop_collection},
    {NULL, NULL},
};

const luaL_Reg lls_coll_methods[] = {
    {"count", col_count},
    {"snapshot", col_snapshot},
    {"seq", col_seq},
    {"name", col_name},
    {"close", col_close},
    {NULL, NULL},
};

void lls_open_collections(lua_State *L, const luaL_Reg *const *methods) {
  static const luaL_Reg meta[] = {
      {"__gc", col_close},
      {"__close", col_close},
      {"__len", col_len},
      {"__tostring", col_tostring},
      {NULL, NULL},
  };
  lls_class_define(L, LLS_COLL_MT, methods, meta);
}
