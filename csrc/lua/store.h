/*
 * lua/store.h -- the store handle, `db` (store.c): its userdata, opening
 * and closing, transactions, introspection, and the registry of the
 * objects the store owns (collections; later components). The store's
 * method table is assembled in core.c from the arrays the binding files
 * export (lls_store_methods here, lls_kv_methods, ...).
 *
 * Backends never include this: they see only backend/backend.h.
 */
#ifndef LLS_LUA_STORE_H
#define LLS_LUA_STORE_H

#include <stdint.h>

#include <lauxlib.h>
#include <lua.h>

#include "backend/backend.h"

#define LLS_HANDLE_MT "llmspell.storage.Store"

/* Sampled call latency: timing every call would cost two clock reads, a
 * large share of an in-memory get, so one call in 16 is timed. */
typedef struct lls_latency {
  double us;       /* summed over sampled calls */
  int64_t samples; /* calls timed */
  int64_t calls;   /* calls made */
} lls_latency;

/* A store handle: the userdata behind `db`. */
typedef struct lls_handle {
  lls_backend *b;      /* NULL once closed */
  const lls_backend_vt *vt;
  char *tenant;        /* owned copy */
  int txdepth;         /* open transaction levels (0 = none) */
  int64_t last_sweep;  /* µs; when expired rows were last swept */
  lls_rows rows;       /* scratch result set, reused by every call */
  lls_buf scratch;     /* scratch for op/key arrays */
  lls_latency reads, writes; /* for characteristics() */
} lls_handle;

/* A kind of object a store owns, and what the store does to it. The
 * store finds these through the registry, so it needs no header of the
 * kinds it owns. */
typedef struct lls_owned_type {
  const char *name; /* "collection": for messages */
  /* Closes the object at idx (db:close, before the backend closes; the
   * object may save state first). Must not raise. */
  void (*close)(lua_State *L, int idx);
  /* Marks the object at idx stale after a rollback (its in-memory state
   * may hold undone writes). Must not raise. */
  void (*invalidate)(lua_State *L, int idx);
} lls_owned_type;

/* The store methods of store.c (close, transaction, stats, ...). */
extern const luaL_Reg lls_store_methods[];

/* Defines the Store class with the methods of every array in methods
 * (NULL-ended; lls_store_methods and each binding file's). */
void lls_open_store(lua_State *L, const luaL_Reg *const *methods);

/* Pushes a new handle around an opened backend (takes ownership of b:
 * closes it and raises when out of memory). */
void lls_push_handle(lua_State *L, const lls_backend_vt *vt, lls_backend *b,
                     const char *tenant);

/* Checks that argument idx is an open handle; raises "closed" otherwise. */
lls_handle *lls_check_handle(lua_State *L, int idx);

/* The handle at idx, open or closed, or NULL when idx holds something
 * else. Never raises. */
lls_handle *lls_test_handle(lua_State *L, int idx);

/* Raises err from h's backend (the error object names the backend). */
int lls_store_fail(lua_State *L, const lls_handle *h, const lls_error *err);

/* Pushes the object of kind t called name that the store at sidx owns,
 * or nil. */
void lls_store_owned(lua_State *L, int sidx, const lls_owned_type *t, const char *name);

/* Makes the store at sidx own the object at oidx under (t, name),
 * replacing any other. The store holds it weakly: an unreferenced object
 * is still collected, and its __gc runs. */
void lls_store_own(lua_State *L, int sidx, const lls_owned_type *t, const char *name,
                   int oidx);

/* Forgets the object at oidx when it is the one the store at sidx holds
 * under (t, name). */
void lls_store_disown(lua_State *L, int sidx, const lls_owned_type *t, const char *name,
                      int oidx);

/* Marks every object the store at sidx owns stale (each kind's
 * invalidate): after a rollback, or an import that wrote rows. */
void lls_store_invalidate(lua_State *L, int sidx);

#endif
