/*
 * backend/hook_history.h -- the hook-history op table of the backend
 * contract (COMPONENTS.md "Hook history", docs/hook_history.md).
 *
 * One row per hook execution of a tenant, keyed by execution_id: which
 * hook ran (hook_id, hook_type), the correlation id tying it to the
 * request, its context (compressed), its result, how long it took and how
 * long the row is to be kept (retention_priority). The backends store the
 * context bytes as the core hands them over: rs-llmspell's compressed
 * form (a 4-byte little-endian original size, then one LZ4 block), or
 * empty for an empty context; context_size is the original size. They
 * never compress or decompress: the binding and the export codec do.
 *
 * Conventions (as for every op table, see backend.h): return 0 on
 * success, -1 with *err filled; times are int64 microseconds; texts are
 * checked by the core (base/limits.h).
 */
#ifndef LLS_BACKEND_HOOK_HISTORY_H
#define LLS_BACKEND_HOOK_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"

/* One execution's row. Strings point into the backend's row (valid during
 * the sink call only) or the caller's buffers. An optional text with a
 * NULL ptr is absent (SQL NULL): result, triggering_component,
 * component_id. */
typedef struct lls_hook_exec {
  lls_str tenant_id; /* filled by reads, ignored by put */
  lls_str id;        /* the row's own UUID (rs-llmspell's `id`) */
  lls_str execution_id, hook_id, hook_type, correlation_id;
  lls_str context;   /* the stored (compressed) bytes */
  lls_str result;    /* JSON text, or NULL ptr */
  lls_str triggering_component, component_id; /* or NULL ptr */
  lls_str tags;      /* JSON array of strings */
  lls_str metadata;  /* JSON object */
  int64_t timestamp, created_at;
  int64_t duration_ms, retention_priority, context_size;
  int modified_operation, contains_sensitive_data;
} lls_hook_exec;

/* Receives one row; 0, or -1 + err to stop. */
typedef int (*lls_hook_sink)(void *ud, const lls_hook_exec *e, lls_error *err);

/* Which index a list reads. */
typedef enum lls_hook_by {
  LLS_HOOK_BY_CORRELATION,
  LLS_HOOK_BY_HOOK,
  LLS_HOOK_BY_TYPE
} lls_hook_by;

/* The totals of stats(); avg_duration_ms is 0 and oldest/newest 0 when
 * there is no row. */
typedef struct lls_hook_totals {
  int64_t executions, bytes, compressed_bytes, oldest, newest;
  double avg_duration_ms;
} lls_hook_totals;

/* Receives one group of stats(): by_type 0 for a hook_id, 1 for a
 * hook_type, with its row count. 0, or -1 + err to stop. */
typedef int (*lls_hook_group_sink)(void *ud, int by_type, lls_str name, int64_t n,
                                   lls_error *err);

struct lls_hook_ops {
  /* Writes e as given (record and import alike). An existing row of the
   * same execution_id is replaced, kept (*written = 0) or refused with
   * LLS_ECONFLICT, as on_conflict says. */
  int (*put)(lls_backend *b, const lls_hook_exec *e, lls_conflict on_conflict, int *written,
             lls_error *err);

  /* Sends the row of execution_id to sink; *found = 0 when none. */
  int (*get)(lls_backend *b, lls_str execution_id, lls_hook_sink sink, void *ud, int *found,
             lls_error *err);

  /* Sends up to limit (0: no limit) rows whose correlation_id, hook_id or
   * hook_type (by) is key to sink, newest first (timestamp, then
   * execution_id, both descending): one range of the matching index,
   * in its order (no sort). */
  int (*list)(lls_backend *b, lls_hook_by by, lls_str key, size_t limit, lls_hook_sink sink,
              void *ud, lls_error *err);

  /* Deletes the rows older than before (timestamp < before) whose
   * retention_priority is at most max_priority, in one statement;
   * *removed counts them. */
  int (*archive)(lls_backend *b, int64_t before, int64_t max_priority, int64_t *removed,
                 lls_error *err);

  /* The tenant's totals, and every hook_id's and hook_type's row count to
   * group, all from one statement (one snapshot). */
  int (*stats)(lls_backend *b, lls_hook_totals *t, lls_hook_group_sink group, void *ud,
               lls_error *err);

  /* The tenant's number of rows. */
  int (*count)(lls_backend *b, int64_t *n, lls_error *err);

  /* Sends up to limit rows after execution_id after (ptr NULL: from the
   * first) to sink in execution_id byte order, tenant_id filled in; *n
   * counts them. For export, page by page. */
  int (*dump)(lls_backend *b, lls_str after, size_t limit, lls_hook_sink sink, void *ud,
              size_t *n, lls_error *err);
};

#endif
