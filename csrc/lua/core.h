/*
 * core.h -- what the Lua-facing C files (core.c, errors.c, kv.c, ...) share.
 * Backends never include this: they see only backend.h.
 */
#ifndef LLS_CORE_H
#define LLS_CORE_H

#include <lauxlib.h>
#include <lua.h>

#include "backend/backend.h"
#include "base/clock.h"

#define LLS_HANDLE_MT "llmspell.storage.Store"
#define LLS_ERROR_MT "llmspell.storage.Error"
#define LLS_SCAN_MT "llmspell.storage.Scan"

/* Sampled call latency: timing every call would cost two clock reads, a
 * large share of an in-memory get, so one call in 16 is timed. */
typedef struct lls_latency {
  double us;       /* summed over sampled calls */
  int64_t samples; /* calls timed */
  int64_t calls;   /* calls made */
} lls_latency;

/* A key-value handle: the userdata behind `db`. */
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

/* errors.c */

/* Pushes an error object built from err and raises it. Never returns. */
int lls_raise(lua_State *L, const lls_error *err, const char *backend);
/* Raises an error object with code and a formatted message. */
int lls_raisef(lua_State *L, lls_code code, const char *fmt, ...);
/* Registers the error metatable and storage.error_codes. */
void lls_open_errors(lua_State *L);

/* kv.c */

/* Checks that argument idx is an open handle; raises "closed" otherwise. */
lls_handle *lls_check_handle(lua_State *L, int idx);
/* Pushes a new handle around an opened backend (takes ownership of b). */
void lls_push_handle(lua_State *L, const lls_backend_vt *vt, lls_backend *b,
                     const char *tenant);
void lls_open_kv(lua_State *L);
/* Raises a bad-argument error (for argument arg) when table tbl has a
 * field not in allowed (NULL-ended); the message starts with label_fmt
 * formatted with n (e.g. "entry %d: "), built only on failure. */
void lls_check_fields(lua_State *L, int tbl, int arg, const char *const *allowed,
                      const char *label_fmt, int n);

/* collection.c */

/* Registers the Collection type and adds the collection methods to the
 * store's method table (after lls_open_kv). */
void lls_open_collections(lua_State *L);
/* Marks the open collections of the handle at idx stale (after a
 * rollback: their in-memory state may hold undone writes). */
void lls_collections_invalidate(lua_State *L, int idx);
/* Closes the open collections of the handle at idx (snapshots first). */
void lls_collections_close(lua_State *L, int idx);

/* export.c, import.c */

/* Register the Exporter / Importer types and set storage.exporter /
 * storage.importer in the module table at the top of the stack. */
void lls_open_export(lua_State *L);
void lls_open_import(lua_State *L);

#endif
