/*
 * backend/agent_states.h -- the agent state op table of the backend
 * contract (COMPONENTS.md "Agent state"): one snapshot of state per agent
 * id and tenant, with a SHA-256 checksum of its stored bytes and a
 * data_version that counts the saves which changed them.
 *
 * Conventions (as for every op table, see backend.h): return 0 on success,
 * -1 with *err filled; times are int64 microseconds passed in by the core
 * as `now`; ids are valid UTF-8 without NUL (checked by the core against
 * base/limits.h) ordered by bytes; a backend never reads or writes another
 * tenant's rows. The core computes checksums and verifies them on every
 * read that returns state (lua/agent_states.c): a backend stores and
 * returns bytes, it never judges them.
 */
#ifndef LLS_BACKEND_AGENT_STATES_H
#define LLS_BACKEND_AGENT_STATES_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "backend/xport.h"

/* The agent_type of a first save that names none (what rs-llmspell's
 * SQLite backend writes when it is not told). */
#define LLS_AGENT_TYPE_DEFAULT "unknown"

/* The schema_version of a first save that names none. */
#define LLS_AGENT_SCHEMA_DEFAULT 1

/* One row. Strings are borrowed: from the caller on the way in, from the
 * backend (valid during the callback that receives the row) on the way
 * out. */
typedef struct lls_agent_state {
  lls_str agent_id;
  lls_str state_id;   /* UUID made at the first save; kept by later saves */
  lls_str agent_type; /* save(): ptr NULL = keep the row's (default for a new one) */
  lls_str state_data; /* the stored bytes: JSON text when is_json, else as given */
  int is_json;
  int64_t schema_version; /* save(): 0 = keep the row's (default for a new one) */
  int64_t data_version;   /* ignored by save() */
  lls_str checksum;       /* SHA-256 hex of state_data, as the core computed it */
  int64_t created_at, updated_at; /* ignored by save() */
  lls_str tenant_id; /* the row's tenant: set by load() and dump(), ignored by writes */
} lls_agent_state;

/* Receives rows. Returning -1 (err filled) stops the read, which then
 * fails with that error. Must not call back into the backend. */
typedef int (*lls_agent_state_fn)(void *ud, const lls_agent_state *st, lls_error *err);

struct lls_agent_state_ops {
  /* Upserts st->agent_id in ONE statement, so concurrent savers (other
   * handles, other processes) never lose an update: a new row gets
   * data_version 1, created_at = updated_at = now and st->state_id; an
   * existing row keeps its state_id and created_at, takes the new bytes,
   * checksum, is_json and updated_at = now, and its data_version grows by
   * one when the bytes or is_json changed (a save of the same state leaves
   * it). agent_type and schema_version are replaced only when given.
   * *data_version receives the row's version after the save. */
  int (*save)(lls_backend *b, const lls_agent_state *st, int64_t now, int64_t *data_version,
              lls_error *err);

  /* Point read: fn receives the row once when it exists; *found = 0/1. */
  int (*load)(lls_backend *b, lls_str agent_id, lls_agent_state_fn fn, void *ud, int *found,
              lls_error *err);

  /* Appends the ids (lls_rows keys; values empty) in byte order, of the
   * rows whose agent_type is agent_type (ptr NULL: every row; an index
   * range either way) and whose id is > after (ptr NULL: from the first),
   * at most limit (0 = no limit). */
  int (*list)(lls_backend *b, lls_str agent_type, lls_str after, size_t limit, lls_rows *out,
              lls_error *err);

  /* Deletes one row; *existed = 1 when it was there. */
  int (*del)(lls_backend *b, lls_str agent_id, int *existed, lls_error *err);

  /* The tenant's row count. */
  int (*count)(lls_backend *b, int64_t *n, lls_error *err);

  /* Export: fn receives up to limit rows (limit > 0) with agent_id > after
   * (ptr NULL: from the first), in agent_id byte order, every column. */
  int (*dump)(lls_backend *b, lls_str after, size_t limit, lls_agent_state_fn fn, void *ud,
              lls_error *err);

  /* Import: writes the row exactly as given (every field of *st, times and
   * versions included). A row with the same agent_id is resolved by
   * on_conflict: replaced, kept (*written = 0), or LLS_ECONFLICT naming the
   * id with nothing written. */
  int (*put)(lls_backend *b, const lls_agent_state *st, lls_conflict on_conflict, int *written,
             lls_error *err);
};

#endif
