/*
 * backend/patterns.h -- the procedural-memory op table of the backend
 * contract (COMPONENTS.md "Procedural memory", docs/patterns.md).
 *
 * A pattern is one row per (tenant, scope, key, value): how often that
 * transition was seen (frequency), when first and last, and a pattern_id
 * (a UUID v4 made at its first record, for the export). record counts one
 * more sighting in ONE statement (an UPSERT whose update is
 * `frequency = frequency + 1`), so concurrent writers serialise on the row
 * and never lose a count; it returns the frequency that statement wrote.
 *
 * Conventions (as for every op table, see backend.h): return 0 on success,
 * -1 with *err filled; times are int64 microseconds passed in as `now`;
 * scope, key and value are checked by the core (base/limits.h:
 * LLS_MAX_SCOPE, LLS_MAX_PATTERN_KEY, LLS_MAX_PATTERN_VALUE).
 */
#ifndef LLS_BACKEND_PATTERNS_H
#define LLS_BACKEND_PATTERNS_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"

/* One pattern's row. Strings point into the backend's row (valid during
 * the sink call only) or the caller's buffer. */
typedef struct lls_pattern {
  lls_str tenant_id; /* filled by dump only */
  lls_str pattern_id, scope, key, value;
  int64_t frequency;
  int64_t first_seen, last_seen, created_at, updated_at;
} lls_pattern;

/* Receives one row of learned or dump; 0, or -1 + err to stop. */
typedef int (*lls_pattern_sink)(void *ud, const lls_pattern *p, lls_error *err);

struct lls_pattern_ops {
  /* One more sighting of (scope, key, value), in one statement: a new
   * row gets pattern_id new_id, frequency 1 and every time = now; an
   * existing one frequency + 1, last_seen = updated_at = now (its
   * pattern_id and first_seen kept). *frequency is the count written. */
  int (*record)(lls_backend *b, lls_str scope, lls_str key, lls_str value, lls_str new_id,
                int64_t now, int64_t *frequency, lls_error *err);

  /* The stored frequency, 0 when the pattern is unknown. */
  int (*frequency)(lls_backend *b, lls_str scope, lls_str key, lls_str value, int64_t *n,
                   lls_error *err);

  /* Sends up to limit (0: no limit) rows with frequency >= min_frequency,
   * of scope scope only when scope.ptr is set, to sink: frequency highest
   * first, then last_seen newest, then scope, key, value in byte order.
   * Served by procedural_patterns_frequency / _scope (no full sort). */
  int (*learned)(lls_backend *b, lls_str scope, int64_t min_frequency, size_t limit,
                 lls_pattern_sink sink, void *ud, lls_error *err);

  /* Deletes the pattern; *existed = 1 when there was one. */
  int (*del)(lls_backend *b, lls_str scope, lls_str key, lls_str value, int *existed,
             lls_error *err);

  /* The tenant's number of patterns. */
  int (*count)(lls_backend *b, int64_t *n, lls_error *err);

  /* Sends up to limit rows after the pattern (after->scope, key, value)
   * (after NULL: from the first) to sink in (scope, key, value) byte
   * order, tenant_id filled in; *n counts them. For export, page by page. */
  int (*dump)(lls_backend *b, const lls_pattern *after, size_t limit, lls_pattern_sink sink,
              void *ud, size_t *n, lls_error *err);

  /* Writes p exactly as given (import: frequency and times kept). An
   * existing row of the same (scope, key, value) is replaced, kept
   * (*written = 0) or refused with LLS_ECONFLICT, as on_conflict says. */
  int (*put)(lls_backend *b, const lls_pattern *p, lls_conflict on_conflict, int *written,
             lls_error *err);
};

#endif
