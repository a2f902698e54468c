/*
 * lua/component.h -- what every component object (db:sessions(),
 * db:artifacts(), db:agent_states(), db:workflows(), ...) shares
 * (component.c): the store makes one per kind and hands out the same
 * object while it is referenced; it prints its kind, backend, tenant and
 * row count; it closes with its store (or by itself: close(), <close>),
 * and refuses use after that with `closed`.
 *
 * A component's binding file (lua/sessions.c, ...) defines its
 * lls_component_class and its methods, and calls lls_component_check at
 * the top of each method: that gives the store handle and the backend
 * holding the component (the store's own, or the memory backend's private
 * SQLite store: backend.h, components).
 */
#ifndef LLS_LUA_COMPONENT_H
#define LLS_LUA_COMPONENT_H

#include <stdint.h>

#include <lauxlib.h>
#include <lua.h>

#include "backend/backend.h"
#include "lua/store.h"

typedef struct lls_component_class {
  /* The store's registry kind; set its name to the kind and its close to
   * lls_component_owned_close (invalidate may be NULL). Its address is
   * the registry key, so it must be the first member. */
  lls_owned_type owned;
  const char *mt;    /* metatable name, "llmspell.storage.Sessions" */
  const char *what;  /* for messages: "sessions" ("sessions is closed") */
  /* The tenant's row count for __tostring; -1 + err on failure. */
  int (*count)(lls_backend *cb, int64_t now, int64_t *n, lls_error *err);
} lls_component_class;

/* The userdata behind a component object. Uservalue 1 is the store. */
typedef struct lls_component {
  const lls_component_class *cls;
  int closed;
} lls_component;

/* Defines cls's metatable: its methods (NULL-ended luaL_Reg array) plus
 * close, __close, __tostring and __name, shared by every component. */
void lls_component_define(lua_State *L, const lls_component_class *cls, const luaL_Reg *methods);

/* The body of db:<kind>() (the store at index 1): pushes the store's
 * object of cls, making it the first time. Returns 1. */
int lls_component_get(lua_State *L, const lls_component_class *cls);

/* Checks that argument idx is an open component of cls whose store is
 * open (raising `closed` otherwise); returns the store handle and sets
 * *cb to the backend holding the component (raising when it cannot be
 * opened). */
lls_handle *lls_component_check(lua_State *L, int idx, const lls_component_class *cls,
                                lls_backend **cb);

/* For lls_owned_type.close: marks the component at idx closed. */
void lls_component_owned_close(lua_State *L, int idx);

/* Converts the Lua table (or other JSON-like value) at idx to JSON text
 * in out (emptied first); raises a bad-argument error for argument arg
 * naming `what` when the value cannot be stored. */
void lls_component_json_arg(lua_State *L, int idx, int arg, const char *what, lls_buf *out);

/* Pushes the JSON text as a Lua value (arrays marked as storage.array
 * makes them); raises `integrity` naming what when it is not JSON. */
void lls_component_push_json(lua_State *L, const lls_handle *h, lls_str json, const char *what);

/* Pushes the keys of h->rows (a list op's ids) as a Lua array and
 * empties the rows. Returns 1. */
int lls_component_push_ids(lua_State *L, lls_handle *h);

/* A new random UUID v4 ("xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx") in out
 * (37 bytes with the NUL); raises when the system has no randomness. */
void lls_component_uuid(lua_State *L, char out[37]);

#endif
