/*
 * vec_scan.c -- the statements of the PostgreSQL backend's vector scan
 * slot (lls_vec_ops.scan, in vectors.c): one page of a collection's live rows in id or
 * (event_time, id) order, read as one range of the primary key or of an
 * index of migration 13 (schema.c), never a sort.
 *
 * Six statements, one per (order, scoped) pair, so the plan PostgreSQL
 * caches for each is the same range whatever the parameters. The resume
 * point is a row comparison, which a btree takes as an index bound; from
 * the first row $3 = '' (every id is longer) and $4 is NULL, read as
 * -infinity. The collection row is joined first, so "no rows" means the
 * collection is gone, in the same round trip (as vec_dump does).
 */
#include "backends/postgres/vec_scan.h"


#define HEAD                                                                           \
  "SELECT v.id, v.scope, v.vector, v.metadata::text, v.created_at, v.updated_at,"      \
  " v.event_time, v.expires_at, v.seq FROM @S.collections c LEFT JOIN LATERAL"         \
  " (SELECT * FROM @S.vectors x WHERE x.collection_id = c.id AND x.tenant_id = $1"     \
  " AND (x.expires_at IS NULL OR x.expires_at > $5)"
/* LIMIT LLS_VEC_SCAN_PAGE, not $6: a generic plan takes a LIMIT
 * parameter for a tenth of the table and sorts it (18 ms a page at 50k
 * rows); the rows past $6 are not handed out. */
#define STR_(x) #x
#define STR(x) STR_(x)
#define TAIL " LIMIT " STR(LLS_VEC_SCAN_PAGE) ") v ON true WHERE c.tenant_id = $1 AND c.id = $2"
#define AFTER_TIME " AND (x.event_time, x.id) > (coalesce($4, '-infinity'), $3)"
#define BY_ID " AND x.id > $3 ORDER BY x.id" TAIL " ORDER BY v.id"
#define BY_TIME " AND x.event_time IS NOT NULL" AFTER_TIME " ORDER BY x.event_time, x.id" \
  TAIL " ORDER BY v.event_time, v.id"
/* event_time is NULL throughout, but PostgreSQL takes the index's order
 * only when the ORDER BY names its columns */
#define UNTIMED " AND x.event_time IS NULL AND x.id > $3 ORDER BY x.event_time, x.id" TAIL \
  " ORDER BY v.id"
#define SCOPED " AND x.scope = $7"

#define TYPES {OID_TEXT, OID_INT8, OID_TEXT, OID_TSTZ, OID_TSTZ, OID_INT8, OID_TEXT}

static const pg_stmt SCAN[3][2] = {
    [LLS_VEC_BY_ID] = {{"lls_vec_scan_id", HEAD BY_ID, 6, TYPES},
                       {"lls_vec_scan_id_s", HEAD SCOPED BY_ID, 7, TYPES}},
    [LLS_VEC_BY_TIME] = {{"lls_vec_scan_time", HEAD BY_TIME, 6, TYPES},
                         {"lls_vec_scan_time_s", HEAD SCOPED BY_TIME, 7, TYPES}},
    [LLS_VEC_UNTIMED] = {{"lls_vec_scan_untimed", HEAD UNTIMED, 6, TYPES},
                         {"lls_vec_scan_untimed_s", HEAD SCOPED UNTIMED, 7, TYPES}},
};

const pg_stmt *lls_pg_vec_scan_stmt(int order, int scoped) {
  if (order < 0 || order > LLS_VEC_UNTIMED) return NULL;
  return &SCAN[order][scoped != 0];
}
