/*
 * backend/sessions.h -- the sessions op table of the backend contract
 * (COMPONENTS.md "Sessions"): a session's lifecycle row, keyed by
 * (tenant, session_id), and the cascade that removes its artifacts.
 *
 * Conventions (as for every op table, see backend.h): return 0 on success,
 * -1 with *err filled; times are int64 microseconds passed in by the core
 * as `now`; expires_at == 0 means "never expires"; a session is visible iff
 * expires_at == 0 || expires_at > now, and an expired one counts as absent
 * everywhere (get, update, touch, list, count, dump; create replaces it).
 * Ids are UTF-8 without NUL, 1..LLS_MAX_ID bytes, and status one of
 * "active", "completed", "expired", "archived": both checked by the core.
 * data is JSON text made by the core (lls_json_encode).
 *
 * Removing a session (del, cleanup, a create or load over an expired one)
 * removes its artifacts in the same unit: their `artifacts` rows go, each
 * content's reference_count drops by the number of them that referred to
 * it, and content reaching 0 goes with its chunks. Lock order (where
 * rows are locked, PostgreSQL), the one the artifacts code follows too:
 * the session's artifact rows (artifact_id order), the session row, then
 * content rows (content_hash order).
 *
 * artifact_count and next_sequence belong to the artifacts code, which
 * raises them with `artifact_count = artifact_count + 1` in its own SQL:
 * update and touch never write them, so no session write loses one.
 */
#ifndef LLS_BACKEND_SESSIONS_H
#define LLS_BACKEND_SESSIONS_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "backend/xport.h"

/* One session row. Results (get, dump) point into memory the backend owns,
 * valid until the next call on b (for dump: until the sink returns). */
typedef struct lls_session {
  lls_str id;             /* session_id */
  lls_str row_id;         /* the row's own id, a UUID made at create (export "id") */
  lls_str tenant;         /* dump only: the tenant the row belongs to */
  lls_str status;
  lls_str data;           /* JSON text */
  int64_t created_at, updated_at, last_accessed_at;
  int64_t expires_at;     /* 0 = never */
  int64_t artifact_count; /* not read by load (see there) */
} lls_session;

/* What update changes: a NULL ptr keeps the column. */
typedef enum lls_expiry_change {
  LLS_EXPIRY_KEEP,
  LLS_EXPIRY_SET,   /* to expires_at */
  LLS_EXPIRY_CLEAR  /* never expires */
} lls_expiry_change;

typedef struct lls_session_change {
  lls_str data;   /* JSON text; ptr NULL: keep */
  lls_str status; /* ptr NULL: keep */
  lls_expiry_change expiry;
  int64_t expires_at; /* LLS_EXPIRY_SET only */
} lls_session_change;

/* Receives dump's rows; 0 to go on, -1 + err to stop the dump. */
typedef int (*lls_session_sink)(void *ud, const lls_session *s, lls_error *err);

struct lls_session_ops {
  /* Inserts s (id, row_id, status, data, expires_at; created_at,
   * updated_at and last_accessed_at = now, artifact_count 0).
   * LLS_ECONFLICT when a visible session has the id; an expired one is
   * removed first, with its artifacts, in the same unit. */
  int (*create)(lls_backend *b, const lls_session *s, int64_t now, lls_error *err);

  /* Point read of a visible session. *found = 0/1; on found, *out is
   * filled (tenant left empty). */
  int (*get)(lls_backend *b, lls_str id, int64_t now, lls_session *out, int *found,
             lls_error *err);

  /* Applies c and sets updated_at = now; LLS_ENOTFOUND when no visible
   * session has the id. One statement: artifact_count, next_sequence,
   * created_at and last_accessed_at are not written. */
  int (*update)(lls_backend *b, lls_str id, const lls_session_change *c, int64_t now,
                lls_error *err);

  /* Sets last_accessed_at = now; LLS_ENOTFOUND when no visible session
   * has the id. */
  int (*touch)(lls_backend *b, lls_str id, int64_t now, lls_error *err);

  /* Removes the session, visible or expired, and its artifacts, in one
   * unit; *existed = 1 when it was visible. */
  int (*del)(lls_backend *b, lls_str id, int64_t now, int *existed, lls_error *err);

  /* Appends (as keys of out) the ids of visible sessions with status
   * (ptr NULL: any), newest first: created_at descending, then
   * session_id descending; when after.ptr != NULL, only those that come
   * after the session `after` in that order (keyset pagination: after
   * is the last id of the previous page), LLS_ENOTFOUND when no row
   * (visible or expired) has that id. At most limit (0 = no limit). */
  int (*list)(lls_backend *b, lls_str status, lls_str after, int64_t now, size_t limit,
              lls_rows *out, lls_error *err);

  /* Removes every expired session of the tenant (found through the
   * expires index) with its artifacts, in one unit; *removed counts them. */
  int (*cleanup)(lls_backend *b, int64_t now, int64_t *removed, lls_error *err);

  /* The tenant's visible sessions. */
  int (*count)(lls_backend *b, int64_t now, int64_t *n, lls_error *err);

  /* Sends up to limit (0 = no limit) visible sessions with session_id >
   * after (after.ptr NULL: from the first), in session_id byte order, to
   * sink, tenant filled; *n counts them. The sink must not call into b. */
  int (*dump)(lls_backend *b, lls_str after, int64_t now, size_t limit, lls_session_sink sink,
              void *ud, size_t *n, lls_error *err);

  /* Import: writes s as given, every column but artifact_count, which
   * becomes the number of the session's artifact rows already stored (so
   * the count stays true whatever the file says, and in either order:
   * the artifacts' load adds those that come later). A visible
   * session with the id is resolved by on_conflict (replace overwrites
   * its columns and keeps its artifacts and next_sequence; skip sets
   * *written = 0; error is LLS_ECONFLICT); an expired one is removed
   * with its artifacts first. next_sequence becomes at least one past
   * the highest sequence of the session's stored artifacts. The caller
   * refuses expired records (s->expires_at must be 0 or > now). */
  int (*load)(lls_backend *b, const lls_session *s, lls_conflict on_conflict, int64_t now,
              int *written, lls_error *err);
};

#endif
