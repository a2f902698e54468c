/*
 * graph.c -- the PostgreSQL backend's knowledge-graph slots
 * (lls_graph_ops, backend/graph.h). The tables (migration 9, schema.c),
 * with row-level security on app.current_tenant_id, follow the seed's
 * llmspell.entities:
 *
 *   entities (tenant_id text, entity_id text COLLATE "C", entity_type text,
 *     name text, properties jsonb, valid_time_start, valid_time_end,
 *     transaction_time_start, transaction_time_end timestamptz ('infinity'
 *     for an open end), created_at timestamptz,
 *     PRIMARY KEY (tenant_id, entity_id, transaction_time_start,
 *                  valid_time_start))
 *   entities_type_idx (tenant_id, entity_type, name), entities_name_idx
 *   entities_temporal_idx GiST (tstzrange(valid), tstzrange(transaction))
 *   entities_superseded_idx (tenant_id, transaction_time_end), partial:
 *     closed versions only, for purge
 *   relationships (... source_entity_id, target_entity_id,
 *     relationship_type ...), the same key and time indexes, plus
 *   relationships_from_idx (tenant_id, source_entity_id, relationship_type)
 *     INCLUDE (target_entity_id and the times), relationships_to_idx the
 *     same from the target: a hop of a walk reads the index only.
 *
 * Each write first locks the rows of its id's believed versions (FOR
 * UPDATE), so two writers of one id serialise (the second sees the
 * first's versions, as under SQLite's write lock); entities_open_idx and
 * relationships_open_idx, unique over open versions, refuse a second
 * concurrent add of a new id.
 * Traversal is one recursive query as on SQLite (see its graph.c).
 */
#include "backends/postgres/graph.h"

#include <stdlib.h>
#include <string.h>

#include "backends/postgres/component.h"
#include "backends/postgres/conn.h"

#define INF "'infinity'"

#define E_SEL(t)                                                               \
  t "entity_id, " t "entity_type, " t "name, NULL, NULL, " t "properties::text, " \
  t "valid_time_start, " t "valid_time_end, " t "transaction_time_start, "     \
  t "transaction_time_end, " t "created_at"
#define R_SEL(t)                                                               \
  t "relationship_id, " t "relationship_type, NULL, " t "source_entity_id, "   \
  t "target_entity_id, " t "properties::text, " t "valid_time_start, "         \
  t "valid_time_end, " t "transaction_time_start, " t "transaction_time_end, " \
  t "created_at"

/* Valid at $5 and believed at $6. */
#define LIVE(t)                                                                \
  t ".valid_time_start <= $5 AND $5 < " t ".valid_time_end AND "               \
  t ".transaction_time_start <= $6 AND $6 < " t ".transaction_time_end"

#define T2 OID_TEXT, OID_TEXT
#define T_WHEN OID_TEXT, OID_TEXT, OID_INT8, OID_TEXT, OID_TSTZ, OID_TSTZ

/* Row locks on the believed versions of an entity or relationship: two
 * writers of one id take turns (row locks live in the rows, so a
 * transaction may write any number of ids). A new id has no row to lock:
 * the partial unique indexes on open versions (schema.c) stop a second
 * concurrent add. */
static const pg_stmt ST_E_LOCK = {
    "lls_graph_e_lock",
    "SELECT 1 FROM @S.entities WHERE tenant_id = $1 AND entity_id = $2"
    " AND transaction_time_end = 'infinity' FOR UPDATE",
    2, {T2}};
static const pg_stmt ST_R_LOCK = {
    "lls_graph_r_lock",
    "SELECT 1 FROM @S.relationships WHERE tenant_id = $1 AND relationship_id = $2"
    " AND transaction_time_end = 'infinity' FOR UPDATE",
    2, {T2}};

/* ------------------------------------------------------------ entities */

static const pg_stmt ST_E_GET = {
    "lls_graph_e_get",
    "SELECT " E_SEL("e.") " FROM @S.entities e WHERE e.tenant_id = $1 AND e.entity_id = $2"
    " AND $3::int8 IS NULL AND $4::text IS NULL AND " LIVE("e")
    " ORDER BY e.transaction_time_start DESC LIMIT 1",
    6, {T_WHEN}};
static const pg_stmt ST_E_OPEN = {
    "lls_graph_e_open",
    "SELECT " E_SEL("") " FROM @S.entities WHERE tenant_id = $1 AND entity_id = $2"
    " AND valid_time_end = " INF " AND transaction_time_end = " INF
    " ORDER BY transaction_time_start DESC LIMIT 1",
    2, {T2}};
static const pg_stmt ST_E_LAST = {
    "lls_graph_e_last",
    "SELECT max(transaction_time_start) FROM @S.entities WHERE tenant_id = $1"
    " AND entity_id = $2",
    2, {T2}};
static const pg_stmt ST_E_EXISTS_AT = {
    "lls_graph_e_exists_at",
    "SELECT 1 FROM @S.entities WHERE tenant_id = $1 AND entity_id = $2"
    " AND valid_time_start <= $3 AND $3 < valid_time_end AND transaction_time_end = " INF,
    3, {T2, OID_TSTZ}};

#define E_INSERT                                                               \
  "INSERT INTO @S.entities (tenant_id, entity_id, entity_type, name, properties," \
  " valid_time_start, valid_time_end, transaction_time_start,"                  \
  " transaction_time_end, created_at)"
#define T_E_ROW                                                                \
  {OID_TEXT, OID_TEXT, OID_TEXT, OID_TEXT, OID_TEXT, OID_TSTZ, OID_TSTZ, OID_TSTZ, \
   OID_TSTZ, OID_TSTZ}
static const pg_stmt ST_E_INSERT = {
    "lls_graph_e_insert", E_INSERT " VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $10)",
    10, T_E_ROW};

/* Superseding from $3 at $4: copies cut at $3, then the closing. */
#define T_SUPERSEDE {T2, OID_TSTZ, OID_TSTZ}
#define CLOSE(T, KEY)                                                          \
  "UPDATE @S." T " SET transaction_time_end = $4 WHERE tenant_id = $1 AND " KEY \
  " AND transaction_time_end = " INF " AND valid_time_end > $3"                 \
  " AND transaction_time_start < $4"
static const pg_stmt ST_E_COPY = {
    "lls_graph_e_copy",
    E_INSERT " SELECT tenant_id, entity_id, entity_type, name, properties,"
    " valid_time_start, $3, $4, " INF ", created_at FROM @S.entities"
    " WHERE tenant_id = $1 AND entity_id = $2 AND transaction_time_end = " INF
    " AND valid_time_end > $3 AND valid_time_start < $3",
    4, T_SUPERSEDE};
static const pg_stmt ST_E_CLOSE = {"lls_graph_e_close", CLOSE("entities", "entity_id = $2"), 4,
                                   T_SUPERSEDE};

/* ------------------------------------------------------- relationships */

#define R_INSERT                                                               \
  "INSERT INTO @S.relationships (tenant_id, relationship_id, relationship_type," \
  " source_entity_id, target_entity_id, properties, valid_time_start,"          \
  " valid_time_end, transaction_time_start, transaction_time_end, created_at)"
#define T_R_ROW                                                                \
  {OID_TEXT, OID_TEXT, OID_TEXT, OID_TEXT, OID_TEXT, OID_TEXT, OID_TSTZ, OID_TSTZ, \
   OID_TSTZ, OID_TSTZ, OID_TSTZ}
static const pg_stmt ST_R_INSERT = {
    "lls_graph_r_insert",
    R_INSERT " VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10, $11)", 11, T_R_ROW};
#define R_COPY(KEY)                                                            \
  R_INSERT " SELECT tenant_id, relationship_id, relationship_type,"             \
  " source_entity_id, target_entity_id, properties, valid_time_start, $3, $4, " \
  INF ", created_at FROM @S.relationships WHERE tenant_id = $1 AND " KEY        \
  " AND transaction_time_end = " INF " AND valid_time_end > $3"                 \
  " AND valid_time_start < $3"
#define R_OF "relationship_id = $2"
#define R_TOUCHING "(source_entity_id = $2 OR target_entity_id = $2)"
static const pg_stmt ST_R_COPY = {"lls_graph_r_copy", R_COPY(R_OF), 4, T_SUPERSEDE};
static const pg_stmt ST_R_CLOSE = {"lls_graph_r_close", CLOSE("relationships", R_OF), 4,
                                   T_SUPERSEDE};
static const pg_stmt ST_R_COPY_TOUCHING = {"lls_graph_r_copy_touching", R_COPY(R_TOUCHING), 4,
                                           T_SUPERSEDE};
static const pg_stmt ST_R_CLOSE_TOUCHING = {"lls_graph_r_close_touching",
                                            CLOSE("relationships", R_TOUCHING), 4,
                                            T_SUPERSEDE};
static const pg_stmt ST_R_LAST = {
    "lls_graph_r_last",
    "SELECT max(transaction_time_start) FROM @S.relationships WHERE tenant_id = $1 AND " R_OF,
    2, {T2}};
static const pg_stmt ST_R_LAST_TOUCHING = {
    "lls_graph_r_last_touching",
    "SELECT max(transaction_time_start) FROM @S.relationships WHERE tenant_id = $1 AND "
    R_TOUCHING,
    2, {T2}};
static const pg_stmt ST_R_OPEN = {
    "lls_graph_r_open",
    "SELECT 1 FROM @S.relationships WHERE tenant_id = $1 AND " R_OF
    " AND valid_time_end = " INF " AND transaction_time_end = " INF,
    2, {T2}};

/* relationships(): $2 the entity, $4 the type or NULL, $5/$6 the time ($3
 * unused, so every read of the graph binds the same six). */
#define R_LIST(END)                                                            \
  "SELECT " R_SEL("r.") " FROM @S.relationships r WHERE r.tenant_id = $1 AND "  \
  END " AND $3::int8 IS NULL AND ($4::text IS NULL OR r.relationship_type = $4) AND " \
  LIVE("r")
static const pg_stmt ST_R_OUT = {
    "lls_graph_r_out",
    R_LIST("r.source_entity_id = $2") " ORDER BY r.relationship_id, r.valid_time_start", 6,
    {T_WHEN}};
static const pg_stmt ST_R_IN = {
    "lls_graph_r_in",
    R_LIST("r.target_entity_id = $2") " ORDER BY r.relationship_id, r.valid_time_start", 6,
    {T_WHEN}};
static const pg_stmt ST_R_BOTH = {
    "lls_graph_r_both",
    R_LIST("r.source_entity_id = $2") " UNION " R_LIST("r.target_entity_id = $2")
    " ORDER BY 1, 7",
    6, {T_WHEN}};

/* ---------------------------------------------------------- traversal */

/* As on SQLite (its graph.c): walk keeps (entity, depth, parent) rows once
 * each; hop takes per entity the least "depth as two digits" || parent
 * (byte order): its smallest depth and that depth's smallest parent. */
#define R_OK "($4::text IS NULL OR r.relationship_type = $4) AND " LIVE("r")
#define TRAVERSE(NEXT, JOIN)                                                   \
  "WITH RECURSIVE walk(id, depth, parent) AS (SELECT $2::text COLLATE \"C\", 0," \
  " NULL::text COLLATE \"C\" UNION SELECT " NEXT ", w.depth + 1, w.id"           \
  " FROM walk w JOIN @S.relationships r ON r.tenant_id = $1 AND " JOIN           \
  " WHERE w.depth < $3 AND " R_OK "),"                                          \
  " hop(id, k) AS (SELECT id, min((lpad(depth::text, 2, '0')"                   \
  " || coalesce(parent, '')) COLLATE \"C\") FROM walk GROUP BY id)"              \
  " SELECT substr(h.k, 1, 2)::int4, substr(h.k, 3), " E_SEL("e.")               \
  " FROM hop h JOIN @S.entities e"                                              \
  " ON e.tenant_id = $1 AND e.entity_id = h.id AND " LIVE("e")                  \
  " WHERE h.k >= '01' ORDER BY 1, h.id, e.transaction_time_start DESC"
static const pg_stmt ST_WALK_OUT = {
    "lls_graph_walk_out", TRAVERSE("r.target_entity_id", "r.source_entity_id = w.id"), 6,
    {T_WHEN}};
static const pg_stmt ST_WALK_IN = {
    "lls_graph_walk_in", TRAVERSE("r.source_entity_id", "r.target_entity_id = w.id"), 6,
    {T_WHEN}};
static const pg_stmt ST_WALK_BOTH = {
    "lls_graph_walk_both",
    TRAVERSE("(CASE WHEN r.source_entity_id = w.id THEN r.target_entity_id"
             " ELSE r.source_entity_id END)",
             "(r.source_entity_id = w.id OR r.target_entity_id = w.id)"),
    6, {T_WHEN}};

/* ------------------------------------------------------------- queries */

/* $2 type or NULL, $3 name or NULL, valid overlapping [$4, $5], recorded
 * [$6, $7]: range operators, which the GiST index serves. */
#define Q(WHERE)                                                               \
  "SELECT " E_SEL("") " FROM @S.entities WHERE tenant_id = $1 AND " WHERE       \
  " AND tstzrange(valid_time_start, valid_time_end) && tstzrange($4, $5, '[]')" \
  " AND tstzrange(transaction_time_start, transaction_time_end)"                \
  " && tstzrange($6, $7, '[]')"                                                 \
  " ORDER BY entity_id, transaction_time_start, valid_time_start"
#define T_Q {OID_TEXT, OID_TEXT, OID_TEXT, OID_TSTZ, OID_TSTZ, OID_TSTZ, OID_TSTZ}
static const pg_stmt ST_Q_TYPE = {
    "lls_graph_q_type", Q("entity_type = $2 AND ($3::text IS NULL OR name = $3)"), 7, T_Q};
static const pg_stmt ST_Q_NAME = {
    "lls_graph_q_name", Q("$2::text IS NULL AND name = $3"), 7, T_Q};
static const pg_stmt ST_Q_ALL = {
    "lls_graph_q_all", Q("$2::text IS NULL AND $3::text IS NULL"), 7, T_Q};

static const pg_stmt ST_E_PURGE = {
    "lls_graph_e_purge",
    "DELETE FROM @S.entities WHERE tenant_id = $1 AND transaction_time_end < $2"
    " AND transaction_time_end < " INF, 2,
    {OID_TEXT, OID_TSTZ}};
static const pg_stmt ST_R_PURGE = {
    "lls_graph_r_purge",
    "DELETE FROM @S.relationships WHERE tenant_id = $1 AND transaction_time_end < $2"
    " AND transaction_time_end < " INF, 2,
    {OID_TEXT, OID_TSTZ}};
static const pg_stmt ST_E_COUNT = {
    "lls_graph_e_count", "SELECT count(*) FROM @S.entities WHERE tenant_id = $1", 1, {OID_TEXT}};
static const pg_stmt ST_R_COUNT = {
    "lls_graph_r_count", "SELECT count(*) FROM @S.relationships WHERE tenant_id = $1", 1,
    {OID_TEXT}};

/* ---------------------------------------------------------- export/import */

/* Pages in key order, each after the last one's key: two texts each, so
 * the later pages are an index range whatever plan is cached. */
#define T_DUMP {T2, OID_TSTZ, OID_TSTZ, OID_INT8}
#define DUMP(SEL, T, ID, AFTER)                                                \
  "SELECT tenant_id, " SEL " FROM @S." T " WHERE tenant_id = $1" AFTER          \
  " ORDER BY " ID ", transaction_time_start, valid_time_start LIMIT $5"
#define AFTER(ID) " AND (" ID ", transaction_time_start, valid_time_start) > ($2, $3, $4)"
#define FIRST " AND $2::text IS NULL AND $3::timestamptz IS NULL AND $4::timestamptz IS NULL"
static const pg_stmt ST_E_DUMP_FIRST = {
    "lls_graph_e_dump_first", DUMP(E_SEL(""), "entities", "entity_id", FIRST), 5, T_DUMP};
static const pg_stmt ST_E_DUMP_AFTER = {
    "lls_graph_e_dump_after", DUMP(E_SEL(""), "entities", "entity_id", AFTER("entity_id")), 5,
    T_DUMP};
static const pg_stmt ST_R_DUMP_FIRST = {
    "lls_graph_r_dump_first", DUMP(R_SEL(""), "relationships", "relationship_id", FIRST), 5,
    T_DUMP};
static const pg_stmt ST_R_DUMP_AFTER = {
    "lls_graph_r_dump_after",
    DUMP(R_SEL(""), "relationships", "relationship_id", AFTER("relationship_id")), 5, T_DUMP};

#define E_PUT                                                                  \
  E_INSERT " VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $10)"            \
  " ON CONFLICT (tenant_id, entity_id, transaction_time_start, valid_time_start)"
static const pg_stmt ST_E_PUT_REPLACE = {
    "lls_graph_e_put_replace",
    E_PUT " DO UPDATE SET entity_type = EXCLUDED.entity_type, name = EXCLUDED.name,"
    " properties = EXCLUDED.properties, valid_time_end = EXCLUDED.valid_time_end,"
    " transaction_time_end = EXCLUDED.transaction_time_end, created_at = EXCLUDED.created_at",
    10, T_E_ROW};
static const pg_stmt ST_E_PUT_KEEP = {"lls_graph_e_put_keep", E_PUT " DO NOTHING", 10, T_E_ROW};
#define R_PUT                                                                  \
  R_INSERT " VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10, $11)"       \
  " ON CONFLICT (tenant_id, relationship_id, transaction_time_start, valid_time_start)"
static const pg_stmt ST_R_PUT_REPLACE = {
    "lls_graph_r_put_replace",
    R_PUT " DO UPDATE SET relationship_type = EXCLUDED.relationship_type,"
    " source_entity_id = EXCLUDED.source_entity_id,"
    " target_entity_id = EXCLUDED.target_entity_id, properties = EXCLUDED.properties,"
    " valid_time_end = EXCLUDED.valid_time_end,"
    " transaction_time_end = EXCLUDED.transaction_time_end, created_at = EXCLUDED.created_at",
    11, T_R_ROW};
static const pg_stmt ST_R_PUT_KEEP = {"lls_graph_r_put_keep", R_PUT " DO NOTHING", 11, T_R_ROW};

/* ------------------------------------------------------------- helpers */

/* $1 tenant, $2 id. */
static void param_id(pg_params *p, pg_backend *pg, lls_str id) {
  lls_pg_param_tenant(p, pg);
  lls_pg_param_bytes(p, id.ptr, id.len);
}

/* Row i of r, the eleven columns from col on; strings borrowed from r. */
static void read_row(const PGresult *r, int i, int col, lls_graph_row *v) {
  lls_str *str[] = {&v->id, &v->type, &v->name, &v->from, &v->to, &v->properties};
  for (int k = 0; k < 6; k++) *str[k] = lls_pg_str_at(r, i, col + k);
  int64_t *t[] = {&v->valid_from, &v->valid_to, &v->recorded_at, &v->superseded_at,
                  &v->created_at};
  for (int k = 0; k < 5; k++) *t[k] = lls_pg_time_or_zero(r, i, col + 6 + k);
}

/* Takes r (NULL: the statement failed): rows to sink until it stops
 * (columns from col; tenant_id at 0 when col is 1); *n counts them. */
static int each_row(PGresult *r, int col, lls_graph_sink sink, void *ud, size_t *n,
                    lls_error *err) {
  if (r == NULL) return -1;
  for (int i = 0, rows = PQntuples(r); i < rows; i++) {
    lls_graph_row v = {0};
    if (col > 0) v.tenant_id = lls_pg_str_at(r, i, 0);
    read_row(r, i, col, &v);
    int go = sink(ud, &v, err);
    if (go < 0) {
      PQclear(r);
      return lls_error_stopped(err);
    }
    if (n) (*n)++;
    if (go > 0) break;
  }
  PQclear(r);
  return 0;
}

/* Runs def ($1 tenant, $2 id, further parameters from p's third on) in
 * the current unit: 1 when it returned a row (with a non-NULL first
 * column, to *t as a time when t is set), 0 when not, -1 + err. */
static int first_row(pg_backend *pg, const pg_stmt *def, pg_params *p, int64_t *t,
                     lls_error *err) {
  PGresult *r = lls_pg_run_stmt(pg, def, p, 0, err);
  if (r == NULL) return -1;
  int got = PQntuples(r) > 0 && !PQgetisnull(r, 0, 0);
  if (got && t) *t = lls_pg_time_or_zero(r, 0, 0);
  PQclear(r);
  return got;
}

/* Locks id's believed versions (lock), then raises *now past the newest
 * recorded_at that last finds (see backend/graph.h). */
static int lock_and_order(pg_backend *pg, lls_str id, const pg_stmt *lock, const pg_stmt *last,
                          int64_t *now, lls_error *err) {
  pg_params p = {0};
  param_id(&p, pg, id);
  if (first_row(pg, lock, &p, NULL, err) < 0) return -1;
  int64_t t = 0;
  int got = first_row(pg, last, &p, &t, err);
  if (got < 0) return -1;
  if (got && t >= *now) *now = t + 1;
  return 0;
}

/* Superseding from t at now (copy, then close); *changed += closed rows. */
static int supersede(pg_backend *pg, const pg_stmt *copy, const pg_stmt *close, lls_str id,
                     int64_t t, int64_t now, int *changed, lls_error *err) {
  pg_params p = {0};
  param_id(&p, pg, id);
  lls_pg_param_time(&p, t);
  lls_pg_param_time(&p, now);
  PGresult *r = lls_pg_run_stmt(pg, copy, &p, 0, err);
  if (r == NULL) return -1;
  PQclear(r);
  if ((r = lls_pg_run_stmt(pg, close, &p, 0, err)) == NULL) return -1;
  *changed += (int)strtol(PQcmdTuples(r), NULL, 10);
  PQclear(r);
  return 0;
}

/* Version v's values as the parameters of an insert of part. */
static void param_row(pg_params *p, pg_backend *pg, int part, const lls_graph_row *v) {
  param_id(p, pg, v->id);
  lls_pg_param_bytes(p, v->type.ptr, v->type.len);
  if (part == 0) {
    lls_pg_param_bytes(p, v->name.ptr, v->name.len);
  } else {
    lls_pg_param_bytes(p, v->from.ptr, v->from.len);
    lls_pg_param_bytes(p, v->to.ptr, v->to.len);
  }
  lls_pg_param_bytes(p, v->properties.ptr, v->properties.len);
  const int64_t t[] = {v->valid_from, v->valid_to, v->recorded_at, v->superseded_at,
                       v->created_at};
  for (int i = 0; i < 5; i++) lls_pg_param_time(p, t[i]);
}

static int insert(pg_backend *pg, int part, const lls_graph_row *v, lls_error *err) {
  pg_params p = {0};
  param_row(&p, pg, part, v);
  PGresult *r = lls_pg_run_stmt(pg, part == 0 ? &ST_E_INSERT : &ST_R_INSERT, &p, 0, err);
  if (r == NULL) return -1;
  PQclear(r);
  return 0;
}

/* 1 when def ($1 tenant, $2 id) finds a row, 0 when not, -1 + err. */
static int has_row(pg_backend *pg, const pg_stmt *def, lls_str id, lls_error *err) {
  pg_params p = {0};
  param_id(&p, pg, id);
  return first_row(pg, def, &p, NULL, err);
}

static int conflict(lls_error *err, const char *what, lls_str id) {
  return lls_error_set(err, LLS_ECONFLICT, "%s '%.*s' exists (update it, or delete it first)",
                       what, lls_pg_msg_len(id, 200), id.ptr);
}

/* The parameters of a read at w: $1 tenant, $2 id, $3 depth (or NULL),
 * $4 type (or NULL), $5 at, $6 as_of. */
static void param_when(pg_params *p, pg_backend *pg, lls_str id, int depth, lls_str type,
                       lls_graph_when w) {
  param_id(p, pg, id);
  if (depth > 0) lls_pg_param_int8(p, depth);
  else lls_pg_param_null(p);
  if (type.ptr) lls_pg_param_bytes(p, type.ptr, type.len);
  else lls_pg_param_null(p);
  lls_pg_param_time(p, w.at);
  lls_pg_param_time(p, w.as_of);
}

/* ------------------------------------------------------------- entities */

static int pg_add_entity(lls_backend *b, const lls_graph_row *e, int64_t now, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  if (lls_pg_unit_begin(pg, 0, err) != 0) return -1;
  int changed = 0, ok = lock_and_order(pg, e->id, &ST_E_LOCK, &ST_E_LAST, &now, err) == 0;
  int open = ok ? has_row(pg, &ST_E_OPEN, e->id, err) : -1;
  ok = open == 0 || (open > 0 && conflict(err, "entity", e->id) == 0);
  ok = ok && supersede(pg, &ST_E_COPY, &ST_E_CLOSE, e->id, e->valid_from, now, &changed, err) == 0;
  lls_graph_row v = *e;
  v.valid_to = v.superseded_at = LLS_GRAPH_OPEN;
  v.recorded_at = v.created_at = now;
  ok = ok && insert(pg, 0, &v, err) == 0;
  return lls_pg_unit_end(pg, 0, ok, err);
}

static int pg_update_entity(lls_backend *b, lls_str id, int64_t valid_from, int64_t now,
                            lls_graph_revise revise, void *ud, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  if (lls_pg_unit_begin(pg, 0, err) != 0) return -1;
  int changed = 0, ok = lock_and_order(pg, id, &ST_E_LOCK, &ST_E_LAST, &now, err) == 0;
  pg_params p = {0};
  param_id(&p, pg, id);
  PGresult *r = ok ? lls_pg_run_stmt(pg, &ST_E_OPEN, &p, 0, err) : NULL;
  ok = r != NULL;
  if (ok && PQntuples(r) == 0)
    ok = lls_error_set(err, LLS_ENOTFOUND, "entity '%.*s' not found (no current version)",
                       lls_pg_msg_len(id, 200), id.ptr) == 0;
  lls_graph_row cur = {0}, next;
  if (ok) read_row(r, 0, 0, &cur); /* r lives until the insert is done */
  next = cur;
  ok = ok && revise(ud, &cur, &next, err) == 0 &&
       supersede(pg, &ST_E_COPY, &ST_E_CLOSE, id, valid_from, now, &changed, err) == 0;
  next.valid_from = valid_from;
  next.valid_to = next.superseded_at = LLS_GRAPH_OPEN;
  next.recorded_at = next.created_at = now;
  ok = ok && insert(pg, 0, &next, err) == 0;
  PQclear(r);
  return lls_pg_unit_end(pg, 0, ok, err);
}

static int pg_delete_entity(lls_backend *b, lls_str id, int64_t now, int *existed,
                            lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  if (lls_pg_unit_begin(pg, 0, err) != 0) return -1;
  int changed = 0, ok = lock_and_order(pg, id, &ST_E_LOCK, &ST_E_LAST, &now, err) == 0;
  pg_params p = {0};
  param_id(&p, pg, id);
  int64_t t = 0;
  int got = ok ? first_row(pg, &ST_R_LAST_TOUCHING, &p, &t, err) : -1;
  ok = got >= 0;
  if (got > 0 && t >= now) now = t + 1;
  ok = ok && supersede(pg, &ST_E_COPY, &ST_E_CLOSE, id, now, now, &changed, err) == 0;
  *existed = changed > 0;
  ok = ok && supersede(pg, &ST_R_COPY_TOUCHING, &ST_R_CLOSE_TOUCHING, id, now, now, &changed,
                       err) == 0;
  if (lls_pg_unit_end(pg, 0, ok, err) != 0) {
    *existed = 0;
    return -1;
  }
  return 0;
}

static int pg_get_entity(lls_backend *b, lls_str id, lls_graph_when w, lls_graph_sink sink,
                         void *ud, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  param_when(&p, pg, id, 0, (lls_str){NULL, 0}, w);
  return each_row(lls_pg_run_stmt(pg, &ST_E_GET, &p, 1, err), 0, sink, ud, NULL, err);
}

/* -------------------------------------------------------- relationships */

/* 0 when entity id has a version valid at t that the store believes now;
 * -1 + err (LLS_ENOTFOUND naming the end) otherwise. */
static int end_exists(pg_backend *pg, const char *end, lls_str id, int64_t t, lls_error *err) {
  pg_params p = {0};
  param_id(&p, pg, id);
  lls_pg_param_time(&p, t);
  int got = first_row(pg, &ST_E_EXISTS_AT, &p, NULL, err);
  if (got < 0) return -1;
  if (got) return 0;
  return lls_error_set(err, LLS_ENOTFOUND,
                       "relationship %s: entity '%.*s' does not exist at valid_from", end,
                       lls_pg_msg_len(id, 200), id.ptr);
}

static int pg_add_relationship(lls_backend *b, const lls_graph_row *r, int64_t now,
                               lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  if (lls_pg_unit_begin(pg, 0, err) != 0) return -1;
  int changed = 0, ok = lock_and_order(pg, r->id, &ST_R_LOCK, &ST_R_LAST, &now, err) == 0 &&
                        end_exists(pg, "from", r->from, r->valid_from, err) == 0 &&
                        end_exists(pg, "to", r->to, r->valid_from, err) == 0;
  int open = ok ? has_row(pg, &ST_R_OPEN, r->id, err) : -1;
  ok = open == 0 || (open > 0 && conflict(err, "relationship", r->id) == 0);
  ok = ok && supersede(pg, &ST_R_COPY, &ST_R_CLOSE, r->id, r->valid_from, now, &changed,
                       err) == 0;
  lls_graph_row v = *r;
  v.valid_to = v.superseded_at = LLS_GRAPH_OPEN;
  v.recorded_at = v.created_at = now;
  ok = ok && insert(pg, 1, &v, err) == 0;
  return lls_pg_unit_end(pg, 0, ok, err);
}

static int pg_delete_relationship(lls_backend *b, lls_str id, int64_t now, int *existed,
                                  lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  if (lls_pg_unit_begin(pg, 0, err) != 0) return -1;
  int changed = 0, ok = lock_and_order(pg, id, &ST_R_LOCK, &ST_R_LAST, &now, err) == 0 &&
                        supersede(pg, &ST_R_COPY, &ST_R_CLOSE, id, now, now, &changed,
                                  err) == 0;
  if (lls_pg_unit_end(pg, 0, ok, err) != 0) return -1;
  *existed = changed > 0;
  return 0;
}

static int pg_relationships(lls_backend *b, lls_str id, lls_graph_dir dir, lls_str type,
                            lls_graph_when w, lls_graph_sink sink, void *ud, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  param_when(&p, pg, id, 0, type, w);
  const pg_stmt *st = dir == LLS_GRAPH_OUT ? &ST_R_OUT : dir == LLS_GRAPH_IN ? &ST_R_IN : &ST_R_BOTH;
  return each_row(lls_pg_run_stmt(pg, st, &p, 1, err), 0, sink, ud, NULL, err);
}

static int pg_traverse(lls_backend *b, lls_str start, lls_graph_dir dir, lls_str type,
                       int depth, lls_graph_when w, lls_graph_hop_sink sink, void *ud,
                       lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  param_when(&p, pg, start, depth, type, w);
  const pg_stmt *st =
      dir == LLS_GRAPH_OUT ? &ST_WALK_OUT : dir == LLS_GRAPH_IN ? &ST_WALK_IN : &ST_WALK_BOTH;
  PGresult *r = lls_pg_run_stmt(pg, st, &p, 1, err);
  if (r == NULL) return -1;
  lls_str prev = {NULL, 0};
  for (int i = 0, rows = PQntuples(r); i < rows; i++) {
    lls_graph_row v = {0};
    read_row(r, i, 2, &v);
    /* an entity with two versions at the time comes once: the newest */
    if (prev.ptr && prev.len == v.id.len && memcmp(prev.ptr, v.id.ptr, v.id.len) == 0) continue;
    prev = v.id;
    int go = sink(ud, &v, (int)lls_pg_int4_at(r, i, 0), lls_pg_str_at(r, i, 1), err);
    if (go < 0) {
      PQclear(r);
      return lls_error_stopped(err);
    }
    if (go > 0) break;
  }
  PQclear(r);
  return 0;
}

static int pg_query(lls_backend *b, const lls_graph_query *q, lls_graph_sink sink, void *ud,
                    lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  const lls_str s[2] = {q->type, q->name};
  for (int i = 0; i < 2; i++) {
    if (s[i].ptr) lls_pg_param_bytes(&p, s[i].ptr, s[i].len);
    else lls_pg_param_null(&p);
  }
  const int64_t t[] = {q->valid_lo, q->valid_hi, q->recorded_lo, q->recorded_hi};
  for (int i = 0; i < 4; i++) lls_pg_param_time(&p, t[i]);
  const pg_stmt *st = q->type.ptr ? &ST_Q_TYPE : q->name.ptr ? &ST_Q_NAME : &ST_Q_ALL;
  return each_row(lls_pg_run_stmt(pg, st, &p, 1, err), 0, sink, ud, NULL, err);
}

/* ------------------------------------------------- upkeep, export, import */

static int pg_purge_before(lls_backend *b, int64_t t, int64_t *removed, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  *removed = 0;
  if (lls_pg_unit_begin(pg, 0, err) != 0) return -1;
  const pg_stmt *st[2] = {&ST_E_PURGE, &ST_R_PURGE};
  int ok = 1;
  for (int i = 0; i < 2 && ok; i++) {
    pg_params p = {0};
    lls_pg_param_tenant(&p, pg);
    lls_pg_param_time(&p, t);
    PGresult *r = lls_pg_run_stmt(pg, st[i], &p, 0, err);
    ok = r != NULL;
    if (ok) *removed += strtoll(PQcmdTuples(r), NULL, 10);
    PQclear(r);
  }
  if (lls_pg_unit_end(pg, 0, ok, err) != 0) {
    *removed = 0;
    return -1;
  }
  return 0;
}

static int pg_count(lls_backend *b, int part, int64_t *n, lls_error *err) {
  return lls_pg_tenant_count((pg_backend *)b, part == 0 ? &ST_E_COUNT : &ST_R_COUNT, n, err);
}

static int pg_dump(lls_backend *b, int part, const lls_graph_row *after, size_t limit,
                   lls_graph_sink sink, void *ud, size_t *n, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  if (after) {
    lls_pg_param_bytes(&p, after->id.ptr, after->id.len);
    lls_pg_param_time(&p, after->recorded_at);
    lls_pg_param_time(&p, after->valid_from);
  } else {
    lls_pg_param_null(&p);
    lls_pg_param_null(&p);
    lls_pg_param_null(&p);
  }
  lls_pg_param_limit(&p, limit);
  *n = 0;
  const pg_stmt *st = part == 0 ? (after ? &ST_E_DUMP_AFTER : &ST_E_DUMP_FIRST)
                                : (after ? &ST_R_DUMP_AFTER : &ST_R_DUMP_FIRST);
  return each_row(lls_pg_run_stmt(pg, st, &p, 1, err), 1, sink, ud, n, err);
}

static int pg_put(lls_backend *b, int part, const lls_graph_row *v, lls_conflict on_conflict,
                  int *written, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  int replace = on_conflict == LLS_CONFLICT_REPLACE;
  const pg_stmt *st = part == 0 ? (replace ? &ST_E_PUT_REPLACE : &ST_E_PUT_KEEP)
                                : (replace ? &ST_R_PUT_REPLACE : &ST_R_PUT_KEEP);
  pg_params p = {0};
  param_row(&p, pg, part, v);
  PGresult *r = lls_pg_write_stmt(pg, st, &p, err);
  if (r == NULL) return -1;
  *written = strtoull(PQcmdTuples(r), NULL, 10) > 0;
  PQclear(r);
  if (!*written && on_conflict == LLS_CONFLICT_ERROR)
    return lls_error_set(err, LLS_ECONFLICT, "%s '%.*s' recorded at %lld exists",
                         part == 0 ? "entity" : "relationship", lls_pg_msg_len(v->id, 200),
                         v->id.ptr, (long long)v->recorded_at);
  return 0;
}

const lls_graph_ops lls_postgres_graph_ops = {
    .add_entity = pg_add_entity,
    .update_entity = pg_update_entity,
    .delete_entity = pg_delete_entity,
    .get_entity = pg_get_entity,
    .add_relationship = pg_add_relationship,
    .delete_relationship = pg_delete_relationship,
    .relationships = pg_relationships,
    .traverse = pg_traverse,
    .query = pg_query,
    .purge_before = pg_purge_before,
    .count = pg_count,
    .dump = pg_dump,
    .put = pg_put,
};
