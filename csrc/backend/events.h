/*
 * backend/events.h -- the event-log op table of the backend contract
 * (COMPONENTS.md "Event log", docs/events.md).
 *
 * An event is one row of the tenant's append-only log: an id, a type, a
 * JSON payload (the event's data), an optional correlation id, a language
 * and a timestamp (chosen by the caller: any date of years 1..9999), plus
 * a sequence number the backend hands out. Sequences come from one counter
 * row per tenant that every append bumps by the batch's size in the
 * append's own transaction: concurrent writers queue on that row, and a
 * rolled-back append rolls its bump back too, so committed sequences are
 * strictly increasing and gap-free per tenant.
 *
 * Conventions (as for every op table, see backend.h): return 0 on success,
 * -1 with *err filled; times are int64 microseconds; texts are checked by
 * the core (base/limits.h).
 */
#ifndef LLS_BACKEND_EVENTS_H
#define LLS_BACKEND_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"

/* Timestamps an event may carry, µs: years 1 to 9999 (UTC), what every
 * backend (and PostgreSQL's monthly partition names) can hold. */
#define LLS_EVENT_MIN_US (-62135596800LL * 1000000)
#define LLS_EVENT_MAX_US (253402300800LL * 1000000) /* exclusive */

/* One event. Strings point into the backend's row (valid during the sink
 * call only) or the caller's buffers. correlation_id.ptr NULL: none.
 * data is JSON text. */
typedef struct lls_event {
  lls_str tenant_id; /* filled by dump only */
  lls_str id, type, correlation_id, language, data;
  int64_t timestamp, sequence;
} lls_event;

/* Receives one event of query or dump; 0, or -1 + err to stop. */
typedef int (*lls_event_sink)(void *ud, const lls_event *e, lls_error *err);

/* What query selects: from <= timestamp < to, after < sequence < before,
 * the correlation id when correlation_id.ptr is set, the type when
 * type.ptr is set (a glob of `*` and `?` when glob, else the literal text;
 * prefix is its literal head, the whole type when !glob), in sequence
 * order (desc: newest first), at most limit rows (0: no limit). */
typedef struct lls_event_query {
  lls_str type, prefix, correlation_id;
  int glob, desc;
  int64_t from, to, after, before;
  size_t limit;
} lls_event_query;

/* Totals of stats(). oldest/newest are 0 when there are no events. */
typedef struct lls_event_stats {
  int64_t events, bytes, oldest, newest;
} lls_event_stats;

/* Receives one (type, count) of stats' by_type. */
typedef int (*lls_event_type_sink)(void *ud, lls_str type, int64_t n, lls_error *err);

struct lls_event_ops {
  /* Appends ev[0..n) atomically (all or none) with sequences first ..
   * first + n - 1, in array order (ev[i].sequence is ignored). */
  int (*append)(lls_backend *b, const lls_event *ev, size_t n, int64_t *first, lls_error *err);

  /* Sends the events q selects to sink, in its order; runs in the engine
   * on the indexes (tenant, timestamp), (tenant, correlation_id),
   * (tenant, type, timestamp) and (tenant, sequence). */
  int (*query)(lls_backend *b, const lls_event_query *q, lls_event_sink sink, void *ud,
               lls_error *err);

  /* Removes the tenant's events older than before; *removed counts them.
   * PostgreSQL drops the tenant's partitions of months entirely older. */
  int (*cleanup)(lls_backend *b, int64_t before, int64_t *removed, lls_error *err);

  /* The totals into *st, and one call of sink per type (byte order). */
  int (*stats)(lls_backend *b, lls_event_stats *st, lls_event_type_sink sink, void *ud,
               lls_error *err);

  /* The tenant's number of events. */
  int (*count)(lls_backend *b, int64_t *n, lls_error *err);

  /* Sends up to limit events with sequence > after, in sequence order,
   * tenant_id filled in, to sink; *n counts them. For export. */
  int (*dump)(lls_backend *b, int64_t after, size_t limit, lls_event_sink sink, void *ud,
              size_t *n, lls_error *err);

  /* Writes e as given (import). The same event is the one with e's id and
   * timestamp (rs-llmspell's key): replaced, kept (*written = 0) or
   * refused with LLS_ECONFLICT as on_conflict says. e->sequence is kept
   * when no other event of the tenant holds it, else the next sequence is
   * taken; the counter is raised past it either way. */
  int (*put)(lls_backend *b, const lls_event *e, lls_conflict on_conflict, int *written,
             lls_error *err);
};

#endif
