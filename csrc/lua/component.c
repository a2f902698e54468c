/*
 * component.c -- the life every component object shares (component.h):
 * made by the store once per kind, printed, closed with the store or by
 * itself, refused after that.
 */
#include "lua/component.h"

#include <string.h>

#include "base/clock.h"
#include "base/uuid.h"
#include "lua/class.h"
#include "lua/error.h"
#include "lua/luavalue.h"
#include "value/json.h"

/* The component at idx, open or closed; raises for anything else. */
static lls_component *to_component(lua_State *L, int idx) {
  lls_component *c = lua_touserdata(L, idx);
  if (c != NULL && lua_getmetatable(L, idx)) {
    /* any component class: its metatable carries the marker field */
    int ok = lua_getfield(L, -1, "__lls_component") == LUA_TBOOLEAN;
    lua_pop(L, 2);
    if (ok) return c;
  }
  luaL_typeerror(L, idx, "llmspell.storage component");
  return NULL;
}

/* The store handle of the component at idx (NULL when collected). */
static lls_handle *store_of(lua_State *L, int idx) {
  lua_getiuservalue(L, idx, 1);
  lls_handle *h = lls_test_handle(L, -1);
  lua_pop(L, 1);
  return h;
}

void lls_component_owned_close(lua_State *L, int idx) {
  lls_component *c = lua_touserdata(L, idx);
  if (c != NULL) c->closed = 1;
}

lls_handle *lls_component_check(lua_State *L, int idx, const lls_component_class *cls,
                                lls_backend **cb) {
  lls_component *c = lls_class_check(L, idx, cls->mt);
  lls_handle *h = store_of(L, idx);
  if (c->closed || h == NULL || h->b == NULL)
    lls_class_closed(L, cls->what, h != NULL ? h->vt->name : NULL);
  lls_error err;
  *cb = lls_backend_components(h->b, &err);
  if (*cb == NULL) lls_raise(L, &err, h->vt->name);
  return h;
}

/** comp:close() -- idempotent; later calls raise `closed`. db:<kind>()
 * then makes a new object. Also __close. */
static int component_close(lua_State *L) {
  lls_component *c = to_component(L, 1);
  if (!c->closed) {
    c->closed = 1;
    lua_getiuservalue(L, 1, 1);
    if (lls_test_handle(L, -1) != NULL)
      lls_store_disown(L, -1, &c->cls->owned, c->cls->owned.name, 1);
    lua_pop(L, 1);
  }
  return 0;
}

/* "llmspell.storage.Sessions (sqlite data/app.db, tenant acme, 3 rows)" */
static int component_tostring(lua_State *L) {
  lls_component *c = to_component(L, 1);
  lls_handle *h = store_of(L, 1);
  const char *mt = c->cls->mt;
  if (c->closed || h == NULL || h->b == NULL) {
    lua_pushfstring(L, "%s (closed)", mt);
    return 1;
  }
  lls_error err;
  int64_t n = 0;
  lls_backend *cb = lls_backend_components(h->b, &err);
  if (cb == NULL || c->cls->count(cb, lls_now_us(), &n, &err) != 0)
    lua_pushfstring(L, "%s (%s %s, tenant %s, rows unknown: %s)", mt, h->vt->name,
                    h->vt->location(h->b), h->tenant, err.message);
  else
    lua_pushfstring(L, "%s (%s %s, tenant %s, %I rows)", mt, h->vt->name, h->vt->location(h->b),
                    h->tenant, (lua_Integer)n);
  return 1;
}

void lls_component_define(lua_State *L, const lls_component_class *cls, const luaL_Reg *methods) {
  static const luaL_Reg common[] = {{"close", component_close}, {NULL, NULL}};
  static const luaL_Reg meta[] = {
      {"__close", component_close}, {"__tostring", component_tostring}, {NULL, NULL}};
  const luaL_Reg *const lists[] = {common, methods, NULL};
  lls_class_define(L, cls->mt, lists, meta);
  luaL_getmetatable(L, cls->mt);
  lua_pushboolean(L, 1);
  lua_setfield(L, -2, "__lls_component");
  lua_pop(L, 1);
}

int lls_component_get(lua_State *L, const lls_component_class *cls) {
  lls_check_handle(L, 1);
  lls_store_owned(L, 1, &cls->owned, cls->owned.name);
  if (!lua_isnil(L, -1)) return 1;
  lua_pop(L, 1);
  lls_component *c = lls_class_new(L, cls->mt, sizeof *c, 1);
  c->cls = cls;
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  lls_store_own(L, 1, &cls->owned, cls->owned.name, -1);
  return 1;
}

void lls_component_json_arg(lua_State *L, int idx, int arg, const char *what, lls_buf *out) {
  /* out is the caller's (a handle's scratch buffer, which outlives an
   * error): the tree is freed before any raise */
  char msg[256];
  lls_value *v = lls_lua_to_value(L, idx, what, msg, sizeof msg);
  if (v == NULL) luaL_argerror(L, arg, msg);
  out->len = 0;
  int rc = lls_json_encode(v, out, msg, sizeof msg);
  lls_value_free(v);
  if (rc != 0) luaL_argerror(L, arg, lua_pushfstring(L, "%s: %s", what, msg));
}

#define JSON_SCRATCH_MT "llmspell.storage.component_json"

static int json_scratch_gc(lua_State *L) {
  lls_value **slot = lua_touserdata(L, 1);
  lls_value_free(*slot);
  *slot = NULL;
  return 0;
}

void lls_component_push_json(lua_State *L, const lls_handle *h, lls_str json, const char *what) {
  char msg[256];
  lls_value *v = lls_json_decode(json.ptr, json.len, msg, sizeof msg);
  if (v == NULL)
    lls_raisef(L, h->vt->name, LLS_EINTEGRITY, "%s: stored JSON cannot be read: %s", what, msg);
  /* pushing may raise (stack, memory): the scratch's __gc frees the tree
   * then */
  lls_value **slot = lls_class_scratch(L, JSON_SCRATCH_MT, sizeof *slot, json_scratch_gc);
  *slot = v;
  lls_push_json(L, v);
  lls_value_free(v);
  *slot = NULL;
  lua_remove(L, -2);
}

int lls_component_push_ids(lua_State *L, lls_handle *h) {
  lua_createtable(L, (int)h->rows.count, 0);
  for (size_t i = 0; i < h->rows.count; i++) {
    lls_str k = lls_row_key(&h->rows, i);
    lua_pushlstring(L, k.ptr, k.len);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lls_rows_reset(&h->rows);
  return 1;
}

void lls_component_uuid(lua_State *L, char out[37]) {
  if (lls_uuid_v4(out) != 0) luaL_error(L, "no randomness for a UUID (RAND_bytes failed)");
}
