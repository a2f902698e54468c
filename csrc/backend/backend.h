/*
 * backend.h -- the contract every storage backend implements.
 *
 * The Lua-facing layer (csrc/lua/) never talks to SQLite or libpq
 * directly: it checks arguments, computes times, and calls through an
 * lls_backend_vt. Backends contain no Lua code, so each can be read (and
 * tested) alone.
 *
 * The contract is cut into op tables, one per kind of data: key-value
 * (backend/kv.h), vector collections (backend/vectors.h) and export/import
 * (backend/xport.h); the vtable itself holds what every backend has
 * (open, close, transactions, migrations, self-check) and points at the
 * op tables. A backend fills the tables it has.
 *
 * Conventions for every function pointer:
 *   - return 0 on success, -1 on failure with *err filled (lls_error_set);
 *   - times are int64 microseconds since the Unix epoch, computed by the core
 *     and passed in as `now`, so every backend agrees on what "expired" means;
 *   - every row belongs to the tenant given at open; a backend never reads
 *     or writes another tenant's rows.
 */
#ifndef LLS_BACKEND_H
#define LLS_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "backend/config.h"
#include "backend/kv.h"
#include "backend/vectors.h"
#include "backend/xport.h"
#include "base/buf.h"
#include "base/error.h"

/* The components' op tables (COMPONENTS.md), one header each:
 * backend/sessions.h, artifacts.h, agent_states.h, workflows.h,
 * patterns.h, graph.h, hook_history.h, events.h. */
typedef struct lls_session_ops lls_session_ops;
typedef struct lls_artifact_ops lls_artifact_ops;
typedef struct lls_agent_state_ops lls_agent_state_ops;
typedef struct lls_workflow_ops lls_workflow_ops;
typedef struct lls_pattern_ops lls_pattern_ops;
typedef struct lls_graph_ops lls_graph_ops;
typedef struct lls_hook_ops lls_hook_ops;
typedef struct lls_event_ops lls_event_ops;

/* Static facts about a backend (characteristics()). Latencies are the
 * nominal figures reported before a handle has measured its own. */
typedef struct lls_traits {
  int persistent;
  int transactional;
  int supports_prefix_scan;
  int supports_atomic_ops;
  double nominal_read_us;
  double nominal_write_us;
} lls_traits;

typedef struct lls_backend_vt {
  const char *name; /* "memory" | "sqlite" | "postgres" */
  lls_traits traits;

  /* Opens a backend for cfg->tenant. On failure returns NULL, err filled.
   * Callers go through lls_backend_open, which sets the result's vt (so a
   * backend's files never refer to their own vtable). */
  lls_backend *(*open)(lls_config *cfg, lls_error *err);

  /* Reads and checks every option open() takes (marking each used in
   * cfg) and touches nothing: no file, no server. The core calls it
   * before open, so a typo or a bad value is refused before a file or a
   * schema exists. 0, or -1 + err (LLS_EINVALID naming the option). NULL:
   * the backend takes no options. */
  int (*check_options)(lls_config *cfg, lls_error *err);

  /* Releases everything; b is invalid afterwards. Never fails; an open
   * transaction is rolled back. */
  void (*close)(lls_backend *b);

  /* Describes the handle for tostring(): "data/app.db", "host=... db=...". */
  const char *(*location)(lls_backend *b);

  /* Transactions: depth 0 is the outermost (BEGIN/COMMIT/ROLLBACK), depth
   * d > 0 a savepoint nested d levels deep. The core guarantees proper
   * nesting. rollback must leave the store exactly as at the matching begin,
   * and must try its best even when the connection is broken. */
  int (*begin)(lls_backend *b, int depth, lls_error *err);
  int (*commit)(lls_backend *b, int depth, lls_error *err);
  int (*rollback)(lls_backend *b, int depth, lls_error *err);

  /* Starts, at depth 0, a read-only transaction that sees one snapshot of
   * the data for its whole life without blocking writers (an export's
   * pages must all come from the same moment); commit or rollback at depth
   * 0 ends it. NULL: begin(b, 0) is used instead. */
  int (*begin_read)(lls_backend *b, lls_error *err);

  /* Appends one row per applied schema migration: key = "NNN_name",
   * created_at = when it was applied. Memory appends nothing. */
  int (*migrations)(lls_backend *b, lls_rows *out, lls_error *err);

  /* Checks the store's own integrity (SQLite: PRAGMA integrity_check):
   * appends one row per problem (key = where, value = what); none = ok. */
  int (*check)(lls_backend *b, lls_rows *problems, lls_error *err);

  /* The backend whose component op tables serve b's components, in b's
   * transactions: NULL means b itself. The memory backend keeps its
   * components in a private in-memory SQLite database driven by the
   * SQLite backend's component code (one implementation of each
   * component's queries, with the engine's indexes); it opens on first use
   * and follows the memory store's transactions. NULL + err on failure. */
  lls_backend *(*components)(lls_backend *b, lls_error *err);

  /* The op tables. */
  const lls_kv_ops *kv;
  const lls_vec_ops *vec;
  const lls_xport_ops *xport;
  const lls_session_ops *sessions;
  const lls_artifact_ops *artifacts;
  const lls_agent_state_ops *agent_states;
  const lls_workflow_ops *workflows;
  const lls_pattern_ops *patterns;
  const lls_graph_ops *graph;
  const lls_hook_ops *hook_history;
  const lls_event_ops *events;
} lls_backend_vt;

/* Every backend struct starts with this, so the core can find the vtable. */
struct lls_backend {
  const lls_backend_vt *vt;
  int ephemeral; /* set by open when this handle's data dies with it and no
                    other handle can reach it (memory, SQLite ":memory:"):
                    characteristics() says so, and collections skip
                    looking for other writers */
};

/* Opens a backend through vt and points the result at vt: the one way to
 * open one. NULL + err on failure. */
lls_backend *lls_backend_open(const lls_backend_vt *vt, lls_config *cfg, lls_error *err);

/* The backend that holds b's components (vt->components, or b itself);
 * NULL + err when it cannot be opened. */
lls_backend *lls_backend_components(lls_backend *b, lls_error *err);

extern const lls_backend_vt lls_memory_vt;
extern const lls_backend_vt lls_sqlite_vt;
extern const lls_backend_vt lls_postgres_vt;

#endif
