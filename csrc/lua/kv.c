/*
 * kv.c -- the key-value methods of the store (`db:get`, `db:set`, ...) and
 * the scan iterator.
 *
 * Every method follows the same order: check the handle is open, check
 * every argument (so a bad argument raises before anything is written),
 * then make one call into the backend, then convert its result to Lua.
 * Results come back as lls_rows in C memory and are pushed afterwards, so
 * a Lua error never interrupts a backend mid-call.
 */
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/limits.h"
#include "lua/args.h"
#include "lua/class.h"
#include "lua/kv.h"
#include "lua/store.h"

#define LLS_SCAN_MT "llmspell.storage.Scan"
#define SCAN_PAGE 256    /* rows fetched per round trip by scan() */
#define SWEEP_EVERY_US 1000000
#define SWEEP_LIMIT 1000

/* ------------------------------------------------------ argument checks */

static int key_ok(lls_str k) { return lls_text_ok(k, 0, LLS_MAX_KEY); }

/* Raises the bad-argument error for a key (or prefix) that failed key_ok.
 * Messages are built only here, on failure: formatting a label for every
 * key of a batch up front would cost more than storing it. */
static void key_argerror(lua_State *L, int arg, lls_str k, const char *what) {
  lls_check_text(L, arg, k, 0, LLS_MAX_KEY, what);
}

static lls_str check_key(lua_State *L, int arg) {
  lls_str k;
  if (lua_type(L, arg) != LUA_TSTRING)
    luaL_argerror(L, arg, lua_pushfstring(L, "string key expected, got %s",
                                          luaL_typename(L, arg)));
  k.ptr = lua_tolstring(L, arg, &k.len);
  if (!key_ok(k)) key_argerror(L, arg, k, "key");
  return k;
}

static lls_str opt_prefix(lua_State *L, int arg) {
  lls_str p = {"", 0};
  if (lua_isnoneornil(L, arg)) return p;
  if (lua_type(L, arg) != LUA_TSTRING)
    luaL_argerror(L, arg, lua_pushfstring(L, "string prefix expected, got %s",
                                          luaL_typename(L, arg)));
  p.ptr = lua_tolstring(L, arg, &p.len);
  if (!key_ok(p)) key_argerror(L, arg, p, "prefix");
  return p;
}

static lls_str check_value(lua_State *L, int arg, const char *what) {
  lls_str v;
  if (lua_type(L, arg) != LUA_TSTRING)
    luaL_argerror(L, arg, lua_pushfstring(L, "string %s expected, got %s", what,
                                          luaL_typename(L, arg)));
  v.ptr = lua_tolstring(L, arg, &v.len);
  return v;
}

/* Pushes "op N: " for messages about op N of a batch, "" when opno is 0. */
static const char *op_label(lua_State *L, int opno) {
  return opno ? lua_pushfstring(L, "op %d: ", opno) : "";
}

/* Reads a ttl from the value at the top of the stack (popped); 0 = none.
 * opno: the batch op it belongs to (0 = none), for the message. */
static int64_t ttl_to_expiry(lua_State *L, int arg, int opno, int64_t now) {
  int64_t exp = 0;
  if (!lua_isnil(L, -1)) {
    lua_Number t = lua_tonumber(L, -1);
    if (lua_type(L, -1) != LUA_TNUMBER || !lls_ttl_ok(t))
      luaL_argerror(L, arg, lua_pushfstring(L, "%sttl must be a positive number of seconds",
                                            op_label(L, opno)));
    exp = now + lls_seconds_to_us(t);
  }
  lua_pop(L, 1);
  return exp;
}

/* Optional options table with just a ttl; returns the expiry (0 = none). */
static int64_t opt_ttl(lua_State *L, int arg, int64_t now) {
  static const char *const allowed[] = {"ttl", NULL};
  if (lua_isnoneornil(L, arg)) return 0;
  luaL_checktype(L, arg, LUA_TTABLE);
  lls_check_fields(L, arg, arg, allowed, NULL, 0);
  lua_getfield(L, arg, "ttl");
  return ttl_to_expiry(L, arg, 0, now);
}

/* --------------------------------------------------------- the methods */

/* Housekeeping before writes: removes expired rows through the backend's
 * expiry index at most once a second, never inside a transaction (a
 * rollback must not resurrect what a sweep removed). Failures are ignored:
 * expired rows are invisible anyway, and the write itself reports errors. */
static void maybe_sweep(lls_handle *h, int64_t now) {
  if (h->txdepth > 0 || now - h->last_sweep < SWEEP_EVERY_US) return;
  h->last_sweep = now;
  size_t removed;
  lls_error err;
  h->vt->kv->sweep(h->b, now, SWEEP_LIMIT, &removed, &err);
}

/* Starts timing a call when it is one of the sampled ones (-1 otherwise). */
static double lat_start(lls_latency *l) {
  return (l->calls++ & 15) == 0 ? lls_mono_us() : -1.0;
}

static void lat_end(lls_latency *l, double t0) {
  if (t0 < 0) return;
  l->us += lls_mono_us() - t0;
  l->samples++;
}

/* The point read behind get() and exists(): *found says whether key is
 * live; *out holds its value until the next backend call. */
static void lookup(lua_State *L, lls_handle *h, lls_str key, lls_str *out, int *found) {
  lls_error err;
  double t0 = lat_start(&h->reads);
  if (h->vt->kv->get(h->b, key, lls_now_us(), out, found, &err) != 0) lls_store_fail(L, h, &err);
  lat_end(&h->reads, t0);
}

/** db:get(key) --> value | nil */
static int kv_get(lua_State *L) {
  lls_handle *h = lls_check_handle(L, 1);
  lls_str out;
  int found;
  lookup(L, h, check_key(L, 2), &out, &found);
  if (found)
    lua_pushlstring(L, out.ptr, out.len);
  else
    lua_pushnil(L);
  return 1;
}

/** db:exists(key) --> boolean */
static int kv_exists(lua_State *L) {
  lls_handle *h = lls_check_handle(L, 1);
  lls_str out;
  int found;
  lookup(L, h, check_key(L, 2), &out, &found);
  lua_pushboolean(L, found);
  return 1;
}

/** db:set(key, value [, {ttl = seconds}]) */
static int kv_set(lua_State *L) {
  lls_handle *h = lls_check_handle(L, 1);
  lls_str key = check_key(L, 2);
  lls_str val = check_value(L, 3, "value");
  int64_t now = lls_now_us();
  int64_t exp = opt_ttl(L, 4, now);
  lls_error err;
  maybe_sweep(h, now);
  double t0 = lat_start(&h->writes);
  if (h->vt->kv->set(h->b, key, val, exp, now, &err) != 0) return lls_store_fail(L, h, &err);
  lat_end(&h->writes, t0);
  return 0;
}

/** db:delete(key) --> true if a visible key was removed */
static int kv_delete(lua_State *L) {
  lls_handle *h = lls_check_handle(L, 1);
  lls_str key = check_key(L, 2);
  int64_t now = lls_now_us();
  int existed;
  lls_error err;
  double t0 = lat_start(&h->writes);
  if (h->vt->kv->del(h->b, key, now, &existed, &err) != 0) return lls_store_fail(L, h, &err);
  lat_end(&h->writes, t0);
  lua_pushboolean(L, existed);
  return 1;
}

/** db:list_keys([prefix]) --> array of keys in byte order */
static int kv_list_keys(lua_State *L) {
  lls_handle *h = lls_check_handle(L, 1);
  lls_str prefix = opt_prefix(L, 2);
  lls_str none = {NULL, 0};
  lls_error err;
  lls_rows_reset(&h->rows);
  if (h->vt->kv->scan(h->b, prefix, none, lls_now_us(), 0, 1, &h->rows, &err) != 0)
    return lls_store_fail(L, h, &err);
  lua_createtable(L, (int)h->rows.count, 0);
  for (size_t i = 0; i < h->rows.count; i++) {
    lls_str k = lls_row_key(&h->rows, i);
    lua_pushlstring(L, k.ptr, k.len);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lls_rows_reset(&h->rows);
  return 1;
}

/* Room for n items of size sz in the handle's scratch buffer (reused by
 * every call, freed at close, so a Lua error in between leaks nothing). */
static void *scratch(lua_State *L, lls_handle *h, size_t n, size_t sz) {
  h->scratch.len = 0;
  if (n > (SIZE_MAX - 1) / sz || lls_buf_reserve(&h->scratch, n * sz + 1) != 0)
    luaL_error(L, "out of memory");
  return h->scratch.data;
}

/* Reads the array of keys at arg into the scratch buffer, checking each;
 * the array keeps the strings alive for the call. */
static lls_str *check_key_array(lua_State *L, lls_handle *h, int arg, size_t *n) {
  luaL_checktype(L, arg, LUA_TTABLE);
  *n = (size_t)lua_rawlen(L, arg);
  lls_str *keys = scratch(L, h, *n, sizeof *keys);
  for (size_t i = 0; i < *n; i++) {
    if (lua_rawgeti(L, arg, (lua_Integer)i + 1) != LUA_TSTRING)
      luaL_argerror(L, arg, lua_pushfstring(L, "key %d: string expected, got %s",
                                            (int)i + 1, luaL_typename(L, -1)));
    keys[i].ptr = lua_tolstring(L, -1, &keys[i].len);
    if (!key_ok(keys[i])) key_argerror(L, arg, keys[i], lua_pushfstring(L, "key %d", (int)i + 1));
    lua_pop(L, 1);
  }
  return keys;
}

/** db:get_batch{k1, k2, ...} --> { k1 = v1, ... } (missing keys absent) */
static int kv_get_batch(lua_State *L) {
  lls_handle *h = lls_check_handle(L, 1);
  size_t n;
  lls_str *keys = check_key_array(L, h, 2, &n);
  lls_error err;
  lls_rows_reset(&h->rows);
  double t0 = lat_start(&h->reads);
  if (h->vt->kv->get_many(h->b, keys, n, lls_now_us(), &h->rows, &err) != 0)
    return lls_store_fail(L, h, &err);
  lat_end(&h->reads, t0);
  lua_createtable(L, 0, (int)h->rows.count);
  for (size_t i = 0; i < h->rows.count; i++) {
    lls_str k = lls_row_key(&h->rows, i), v = lls_row_value(&h->rows, i);
    lua_pushlstring(L, k.ptr, k.len);
    lua_pushlstring(L, v.ptr, v.len);
    lua_rawset(L, -3);
  }
  lls_rows_reset(&h->rows);
  return 1;
}

static int op_key_cmp(const void *a, const void *b) {
  return lls_str_cmp(((const lls_op *)a)->key, ((const lls_op *)b)->key);
}

/* set_batch and delete_batch have no order of their own (a Lua table's
 * iteration order is arbitrary), so their ops are sorted by key first:
 * B-tree and skip-list inserts then walk forward through neighbouring pages
 * instead of jumping at random, which makes large batches several times
 * cheaper. `batch` keeps the caller's order. */
static void sort_ops(lls_op *ops, size_t n) {
  if (n > 1) qsort(ops, n, sizeof *ops, op_key_cmp);
}

static int apply_ops(lua_State *L, lls_handle *h, const lls_op *ops, size_t n,
                     int64_t now) {
  size_t deleted = 0;
  lls_error err;
  maybe_sweep(h, now);
  double t0 = lat_start(&h->writes);
  if (n > 0 && h->vt->kv->apply(h->b, ops, n, now, &deleted, &err) != 0)
    return lls_store_fail(L, h, &err);
  lat_end(&h->writes, t0);
  return (int)deleted;
}

/** db:set_batch{ k1 = v1, ... } [, {ttl = seconds}] --> keys written; all or nothing */
static int kv_set_batch(lua_State *L) {
  lls_handle *h = lls_check_handle(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  int64_t now = lls_now_us();
  int64_t exp = opt_ttl(L, 3, now);
  /* One pass checks and collects; nothing is written before it completes. */
  size_t n = 0;
  h->scratch.len = 0;
  lua_pushnil(L);
  while (lua_next(L, 2)) {
    if (lua_type(L, -2) != LUA_TSTRING)
      luaL_argerror(L, 2, lua_pushfstring(L, "string keys expected, got a %s key",
                                          luaL_typename(L, -2)));
    lls_op op;
    op.kind = LLS_OP_SET;
    op.key.ptr = lua_tolstring(L, -2, &op.key.len);
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_argerror(L, 2, lua_pushfstring(L, "value of '%s': string expected, got %s",
                                          op.key.ptr, luaL_typename(L, -1)));
    if (!key_ok(op.key))
      key_argerror(L, 2, op.key, lua_pushfstring(L, "key '%s'", op.key.ptr));
    op.value.ptr = lua_tolstring(L, -1, &op.value.len);
    op.expires_at = exp;
    if (lls_buf_append(&h->scratch, &op, sizeof op) != 0) return luaL_error(L, "out of memory");
    n++;
    lua_pop(L, 1);
  }
  lls_op *ops = (lls_op *)(void *)h->scratch.data;
  sort_ops(ops, n);
  apply_ops(L, h, ops, n, now);
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

/** db:delete_batch{ k1, k2, ... } --> number of keys removed; all or nothing */
static int kv_delete_batch(lua_State *L) {
  lls_handle *h = lls_check_handle(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  size_t n = (size_t)lua_rawlen(L, 2);
  lls_op *ops = scratch(L, h, n, sizeof *ops);
  for (size_t i = 0; i < n; i++) {
    if (lua_rawgeti(L, 2, (lua_Integer)i + 1) != LUA_TSTRING)
      luaL_argerror(L, 2, lua_pushfstring(L, "key %d: string expected, got %s", (int)i + 1,
                                          luaL_typename(L, -1)));
    ops[i].kind = LLS_OP_DELETE;
    ops[i].key.ptr = lua_tolstring(L, -1, &ops[i].key.len);
    if (!key_ok(ops[i].key))
      key_argerror(L, 2, ops[i].key, lua_pushfstring(L, "key %d", (int)i + 1));
    lua_pop(L, 1);
  }
  sort_ops(ops, n);
  lua_pushinteger(L, apply_ops(L, h, ops, n, lls_now_us()));
  return 1;
}

/* Reads string field `name` of the op table at t into *out; raises naming
 * the op when it is missing or not a string. */
static void op_string(lua_State *L, int t, int opno, const char *name, lls_str *out) {
  if (lua_getfield(L, t, name) != LUA_TSTRING)
    luaL_argerror(L, 2, lua_pushfstring(L, "op %d: string %s expected, got %s", opno, name,
                                        luaL_typename(L, -1)));
  out->ptr = lua_tolstring(L, -1, &out->len);
  lua_pop(L, 1); /* the op table keeps the string alive */
}

/** db:batch{ {op="set", key=, value=, ttl=}, {op="delete", key=}, ... }
 *  --> number of keys the delete ops removed; all or nothing */
static int kv_batch(lua_State *L) {
  static const char *const set_fields[] = {"op", "key", "value", "ttl", NULL};
  static const char *const del_fields[] = {"op", "key", NULL};
  lls_handle *h = lls_check_handle(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  int64_t now = lls_now_us();
  size_t n = (size_t)lua_rawlen(L, 2);
  lls_op *ops = scratch(L, h, n, sizeof *ops);
  /* Every op is checked before the store is touched. */
  for (size_t i = 0; i < n; i++) {
    int opno = (int)i + 1;
    lua_rawgeti(L, 2, opno);
    int t = lua_gettop(L);
    if (!lua_istable(L, t))
      luaL_argerror(L, 2, lua_pushfstring(L, "op %d: table expected, got %s", opno,
                                          luaL_typename(L, t)));
    lua_getfield(L, t, "op");
    const char *op = lua_tostring(L, -1);
    int is_set = op && strcmp(op, "set") == 0;
    if (!is_set && !(op && strcmp(op, "delete") == 0))
      luaL_argerror(L, 2, lua_pushfstring(L, "op %d: field 'op' must be \"set\" or "
                                             "\"delete\"", opno));
    lua_pop(L, 1);
    lls_check_fields(L, t, 2, is_set ? set_fields : del_fields, "op %d: ", opno);
    ops[i].kind = is_set ? LLS_OP_SET : LLS_OP_DELETE;
    op_string(L, t, opno, "key", &ops[i].key);
    if (!key_ok(ops[i].key))
      key_argerror(L, 2, ops[i].key, lua_pushfstring(L, "op %d: key", opno));
    if (is_set) {
      op_string(L, t, opno, "value", &ops[i].value);
      lua_getfield(L, t, "ttl");
      ops[i].expires_at = ttl_to_expiry(L, 2, opno, now);
    }
    lua_pop(L, 1);
  }
  lua_pushinteger(L, apply_ops(L, h, ops, n, now));
  return 1;
}

/** db:clear() -- removes every key of this handle's tenant */
static int kv_clear(lua_State *L) {
  lls_handle *h = lls_check_handle(L, 1);
  lls_error err;
  if (h->vt->kv->clear(h->b, &err) != 0) return lls_store_fail(L, h, &err);
  return 0;
}

/* ------------------------------------------------------------------ scan */

typedef struct lls_scan {
  lls_rows page;
  size_t next;   /* index of the next row in page */
  lls_buf after; /* last key returned (resume point) */
  lls_buf prefix;
  int started, done;
} lls_scan;

static lls_scan *check_scan(lua_State *L, int idx) {
  return lls_class_check(L, idx, LLS_SCAN_MT);
}

static void scan_finish(lls_scan *s) {
  s->done = 1;
  lls_rows_free(&s->page);
  lls_buf_free(&s->after);
  lls_buf_free(&s->prefix);
}

static int scan_close(lua_State *L) {
  scan_finish(check_scan(L, 1));
  return 0;
}

/* The generic-for iterator: (scan, _) --> key, value | nil */
static int scan_next(lua_State *L) {
  lls_scan *s = check_scan(L, 1);
  if (s->done) return 0;
  lua_getiuservalue(L, 1, 1);
  lls_handle *h = lls_check_handle(L, -1);
  if (s->next >= s->page.count) {
    lls_str prefix = {s->prefix.data ? s->prefix.data : "", s->prefix.len};
    lls_str after = {s->started ? s->after.data : NULL, s->after.len};
    lls_error err;
    lls_rows_reset(&s->page);
    s->next = 0;
    if (h->vt->kv->scan(h->b, prefix, after, lls_now_us(), SCAN_PAGE, 0, &s->page, &err) != 0)
      return lls_store_fail(L, h, &err);
    if (s->page.count == 0) {
      scan_finish(s);
      return 0;
    }
  }
  lls_str k = lls_row_key(&s->page, s->next), v = lls_row_value(&s->page, s->next);
  s->next++;
  s->after.len = 0;
  if (lls_buf_append(&s->after, k.ptr, k.len) != 0) return luaL_error(L, "out of memory");
  s->started = 1;
  lua_pushlstring(L, k.ptr, k.len);
  lua_pushlstring(L, v.ptr, v.len);
  return 2;
}

/** for key, value in db:scan([prefix]) do ... end
 * Streams rows in key order, SCAN_PAGE at a time, resuming after the last
 * key seen, so writes inside the loop are safe and memory stays bounded.
 * The fourth value closes the scan when the loop is left by break. */
static int kv_scan(lua_State *L) {
  lls_check_handle(L, 1);
  lls_str prefix = opt_prefix(L, 2);
  lua_pushcfunction(L, scan_next);
  lls_scan *s = lls_class_new(L, LLS_SCAN_MT, sizeof *s, 1);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  if (lls_buf_append(&s->prefix, prefix.ptr, prefix.len) != 0)
    return luaL_error(L, "out of memory");
  lua_pushnil(L);
  lua_pushvalue(L, -2);
  return 4;
}

static int scan_tostring(lua_State *L) {
  lls_scan *s = check_scan(L, 1);
  lua_pushfstring(L, "llmspell.storage.Scan (%s)", s->done ? "finished" : "open");
  return 1;
}

const luaL_Reg lls_kv_methods[] = {
    {"get", kv_get},
    {"set", kv_set},
    {"delete", kv_delete},
    {"exists", kv_exists},
    {"list_keys", kv_list_keys},
    {"scan", kv_scan},
    {"get_batch", kv_get_batch},
    {"set_batch", kv_set_batch},
    {"delete_batch", kv_delete_batch},
    {"batch", kv_batch},
    {"clear", kv_clear},
    {NULL, NULL},
};

void lls_open_kv(lua_State *L) {
  static const luaL_Reg meta[] = {
      {"__gc", scan_close},
      {"__close", scan_close},
      {"__tostring", scan_tostring},
      {NULL, NULL},
  };
  lls_class_define(L, LLS_SCAN_MT, NULL, meta);
}
