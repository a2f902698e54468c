/*
 * backend/graph.h -- the semantic-memory op table of the backend contract:
 * a bi-temporal knowledge graph (COMPONENTS.md "Semantic memory",
 * docs/graph.md).
 *
 * Every entity and relationship is a set of versions. A version holds its
 * values, a valid-time range [valid_from, valid_to) (when it was true in
 * the world) and a transaction-time range [recorded_at, superseded_at)
 * (when the store believed it). An open end is LLS_GRAPH_OPEN. Writes
 * never change a version's values: they close the versions they replace
 * in transaction time (superseded_at = now) and record new ones, so any
 * past belief can be read back.
 *
 * "Superseding from t" (add, update, delete all do it): each believed
 * version (superseded_at open) whose valid range reaches past t is closed
 * at now, and when it started before t a copy of it is recorded (at now)
 * with valid_to = t. So after an update at t the store believes the old
 * values until t and the new ones from t, and still knows that before now
 * it believed the old values for all time.
 *
 * Within one entity or relationship, recorded_at strictly increases: a
 * write in the same microsecond as the one before is recorded one
 * microsecond later, so versions never collide on their key (id,
 * recorded_at, valid_from).
 *
 * Conventions (as for every op table, see backend.h): return 0 on
 * success, -1 with *err filled; times are int64 microseconds; ids, types
 * and names are checked by the core (base/limits.h). Each write runs as
 * one unit (its own transaction, or a savepoint in the caller's).
 */
#ifndef LLS_BACKEND_GRAPH_H
#define LLS_BACKEND_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"

/* An open end of a time range ("infinity"; PostgreSQL stores 'infinity'). */
#define LLS_GRAPH_OPEN INT64_MAX

/* Which relationships of an entity: leaving it, reaching it, or either. */
typedef enum lls_graph_dir { LLS_GRAPH_OUT = 1, LLS_GRAPH_IN = 2, LLS_GRAPH_BOTH = 3 } lls_graph_dir;

/* One version of an entity or a relationship. Strings point into the
 * backend's row (valid during the sink call only) or the caller's buffer.
 * from and to are set for relationships only; properties is JSON text. */
typedef struct lls_graph_row {
  lls_str tenant_id; /* filled by dump only */
  lls_str id, type, name, from, to, properties;
  int64_t valid_from, valid_to, recorded_at, superseded_at, created_at;
} lls_graph_row;

/* A point in both times: the versions valid at `at` and believed at
 * `as_of` (valid_from <= at < valid_to, recorded_at <= as_of <
 * superseded_at). */
typedef struct lls_graph_when {
  int64_t at, as_of;
} lls_graph_when;

/* Receives one version; returns 0 to go on, 1 to stop (no error), or -1
 * + err to fail. */
typedef int (*lls_graph_sink)(void *ud, const lls_graph_row *v, lls_error *err);

/* Receives one entity reached by traverse: its version at the walk's
 * time, its smallest depth (>= 1), and the entity one hop nearer the
 * start through which it was reached at that depth (parent). 0, 1 or -1
 * as for lls_graph_sink. */
typedef int (*lls_graph_hop_sink)(void *ud, const lls_graph_row *v, int depth, lls_str parent,
                                  lls_error *err);

/* Computes an update's new values from the entity's open version (valid_to
 * and superseded_at open): next arrives as a copy of cur (strings pointing
 * into cur) and the function overwrites what changes, keeping its strings
 * alive until the op returns (its own buffer, ud). Pure C, no Lua: it runs
 * inside the write's unit. 0, or -1 + err (the update is undone). */
typedef int (*lls_graph_revise)(void *ud, const lls_graph_row *cur, lls_graph_row *next,
                                lls_error *err);

/* What query selects: type and name when their ptr is set; versions whose
 * valid range overlaps [valid_lo, valid_hi] and whose transaction range
 * overlaps [recorded_lo, recorded_hi] (a point when lo == hi). */
typedef struct lls_graph_query {
  lls_str type, name;
  int64_t valid_lo, valid_hi, recorded_lo, recorded_hi;
} lls_graph_query;

struct lls_graph_ops {
  /* Records entity e (id, type, name, properties, valid_from, created_at
   * = recorded_at = now) valid from e->valid_from on, superseding from
   * there. LLS_ECONFLICT when the entity has an open version (valid_to
   * and superseded_at open): add is for new or deleted entities. */
  int (*add_entity)(lls_backend *b, const lls_graph_row *e, int64_t now, lls_error *err);

  /* A new version of entity id from valid_from on: revise computes it
   * from the open version, which is then superseded from valid_from.
   * LLS_ENOTFOUND when the entity has no open version. */
  int (*update_entity)(lls_backend *b, lls_str id, int64_t valid_from, int64_t now,
                       lls_graph_revise revise, void *ud, lls_error *err);

  /* Supersedes the entity from now, and every relationship from or to
   * it: none is valid from now on. *existed = 1 when anything was
   * closed. */
  int (*delete_entity)(lls_backend *b, lls_str id, int64_t now, int *existed, lls_error *err);

  /* Sends the entity's version at w (at most one) to sink. */
  int (*get_entity)(lls_backend *b, lls_str id, lls_graph_when w, lls_graph_sink sink, void *ud,
                    lls_error *err);

  /* Records relationship r (id, type, from, to, properties, valid_from)
   * as add_entity does. LLS_ENOTFOUND naming the end when from or to has
   * no version valid at r->valid_from that the store believes now;
   * LLS_ECONFLICT when the relationship has an open version. */
  int (*add_relationship)(lls_backend *b, const lls_graph_row *r, int64_t now, lls_error *err);

  /* Supersedes relationship id from now. *existed as for delete_entity. */
  int (*delete_relationship)(lls_backend *b, lls_str id, int64_t now, int *existed,
                             lls_error *err);

  /* Sends entity id's relationships valid and believed at w, in dir, of
   * type type when type.ptr is set, ordered by (id, valid_from). */
  int (*relationships)(lls_backend *b, lls_str id, lls_graph_dir dir, lls_str type,
                       lls_graph_when w, lls_graph_sink sink, void *ud, lls_error *err);

  /* Walks from start along relationships valid and believed at w (in
   * dir, of type type when type.ptr is set) up to depth hops, in the
   * engine (one recursive query). Sends each entity reached (start
   * excepted) once, at its smallest depth, ordered by (depth, id), with
   * its version at w. A cycle adds nothing: the walk keeps one row per
   * (entity, depth). */
  int (*traverse)(lls_backend *b, lls_str start, lls_graph_dir dir, lls_str type, int depth,
                  lls_graph_when w, lls_graph_hop_sink sink, void *ud, lls_error *err);

  /* Sends the entity versions q selects, ordered by (id, recorded_at,
   * valid_from), until sink stops. */
  int (*query)(lls_backend *b, const lls_graph_query *q, lls_graph_sink sink, void *ud,
               lls_error *err);

  /* Removes entity and relationship versions superseded before t
   * (superseded_at < t). *removed counts them. */
  int (*purge_before)(lls_backend *b, int64_t t, int64_t *removed, lls_error *err);

  /* The tenant's version counts: part 0 entities, 1 relationships. */
  int (*count)(lls_backend *b, int part, int64_t *n, lls_error *err);

  /* Sends up to limit versions of part (0 entities, 1 relationships)
   * after after's (id, recorded_at, valid_from) (NULL: from the first) in
   * that order, tenant_id filled in; *n counts them. For export. */
  int (*dump)(lls_backend *b, int part, const lls_graph_row *after, size_t limit,
              lls_graph_sink sink, void *ud, size_t *n, lls_error *err);

  /* Writes version v of part exactly as given (import). An existing
   * version with the same (id, recorded_at, valid_from) is replaced,
   * kept (*written = 0) or refused (LLS_ECONFLICT) as on_conflict says. */
  int (*put)(lls_backend *b, int part, const lls_graph_row *v, lls_conflict on_conflict,
             int *written, lls_error *err);
};

#endif
