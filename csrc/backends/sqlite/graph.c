/*
 * graph.c -- the SQLite backend's knowledge-graph slots (lls_graph_ops,
 * backend/graph.h), also behind the memory backend's components. The
 * tables (migration 10, schema.c; times in µs, an open end 2^63 - 1):
 *
 *   entities (
 *     tenant_id, entity_id, entity_type, name TEXT NOT NULL,
 *     properties TEXT NOT NULL,                      -- JSON object
 *     valid_time_start, valid_time_end INTEGER NOT NULL,
 *     transaction_time_start, transaction_time_end INTEGER NOT NULL,
 *     created_at INTEGER NOT NULL)
 *   entities_version  UNIQUE (tenant_id, entity_id, transaction_time_start,
 *                     valid_time_start): get_entity, updates, dump, import
 *   entities_open     UNIQUE (tenant_id, entity_id) WHERE both ends are
 *                     open: at most one open version per entity
 *   entities_type     (tenant_id, entity_type, name): query{type=}
 *   entities_name     (tenant_id, name): query{name=}
 *   entities_valid    (tenant_id, valid_time_start, valid_time_end)
 *   entities_superseded (tenant_id, transaction_time_end) WHERE
 *                     transaction_time_end < 2^63 - 1: purge (partial, so
 *                     no lookup of current versions is tempted by it)
 *
 *   relationships (
 *     tenant_id, relationship_id, source_entity_id, target_entity_id,
 *     relationship_type TEXT NOT NULL, properties TEXT NOT NULL,
 *     the same four times and created_at)
 *   relationships_version UNIQUE (tenant_id, relationship_id,
 *                         transaction_time_start, valid_time_start)
 *   relationships_from (tenant_id, source_entity_id, relationship_type,
 *                      target_entity_id, the four times): covering, so a
 *                      hop of a walk reads the index only
 *   relationships_to   the same from the target's side
 *   relationships_valid, relationships_superseded as for entities
 *
 * The statements put a unary + on time columns they only filter by:
 * without statistics SQLite would otherwise answer "tenant and time" with
 * a time index (a range over every current row) instead of the id index.
 *
 * Traversal is one recursive query: walk(id, depth, parent) joined to
 * relationships_from/_to, UNION (not UNION ALL) keeping each row once, so
 * a cycle cannot grow it (its size is bounded by relationships x depth);
 * each entity's smallest depth and a parent at the depth before come from
 * the walk, the versions from entities_version.
 */
#include "backends/sqlite/graph.h"

#include <string.h>

#include "backends/sqlite/conn.h"

#define OPEN "9223372036854775807"

/* The columns every read selects, in lls_graph_row's order. */
#define E_SEL(t)                                                               \
  t "entity_id, " t "entity_type, " t "name, NULL, NULL, " t "properties, "    \
  t "valid_time_start, " t "valid_time_end, " t "transaction_time_start, "     \
  t "transaction_time_end, " t "created_at"
#define R_SEL(t)                                                               \
  t "relationship_id, " t "relationship_type, NULL, " t "source_entity_id, "   \
  t "target_entity_id, " t "properties, " t "valid_time_start, "               \
  t "valid_time_end, " t "transaction_time_start, " t "transaction_time_end, " \
  t "created_at"
#define NCOLS 11

/* Valid at ?5 and believed at ?6 (alias t). The unary + keeps SQLite
 * from answering these with a time index (a range over every current
 * row): the id and end indexes, equalities, are the ones to use. */
#define LIVE(t)                                                                \
  "+" t ".valid_time_start <= ?5 AND ?5 < +" t ".valid_time_end AND +"         \
  t ".transaction_time_start <= ?6 AND ?6 < +" t ".transaction_time_end"

/* ------------------------------------------------------------ entities */

static const char SQL_E_GET[] =
    "SELECT " E_SEL("e.") " FROM entities e WHERE e.tenant_id = ?1 AND e.entity_id = ?2"
    " AND " LIVE("e") " ORDER BY e.transaction_time_start DESC LIMIT 1";
static const char SQL_E_OPEN[] =
    "SELECT " E_SEL("") " FROM entities WHERE tenant_id = ?1 AND entity_id = ?2"
    " AND +valid_time_end = " OPEN " AND +transaction_time_end = " OPEN
    " ORDER BY transaction_time_start DESC LIMIT 1";
static const char SQL_E_LAST[] =
    "SELECT max(transaction_time_start) FROM entities WHERE tenant_id = ?1 AND entity_id = ?2";
static const char SQL_E_EXISTS_AT[] =
    "SELECT 1 FROM entities WHERE tenant_id = ?1 AND entity_id = ?2"
    " AND +valid_time_start <= ?3 AND ?3 < +valid_time_end AND +transaction_time_end = " OPEN;

#define E_INSERT                                                               \
  "INSERT INTO entities (tenant_id, entity_id, entity_type, name, properties,"  \
  " valid_time_start, valid_time_end, transaction_time_start,"                  \
  " transaction_time_end, created_at)"
static const char SQL_E_INSERT[] =
    E_INSERT " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

/* Superseding from ?3 at ?4 (backend/graph.h): copies of the versions that
 * started before ?3, cut at ?3, then the closing. KEY selects the rows. */
#define E_COPY(KEY)                                                            \
  E_INSERT " SELECT tenant_id, entity_id, entity_type, name, properties,"       \
  " valid_time_start, ?3, ?4, " OPEN ", created_at FROM entities"               \
  " WHERE tenant_id = ?1 AND " KEY " AND +transaction_time_end = " OPEN         \
  " AND +valid_time_end > ?3 AND +valid_time_start < ?3"
#define CLOSE(T, KEY)                                                          \
  "UPDATE " T " SET transaction_time_end = ?4 WHERE tenant_id = ?1 AND " KEY    \
  " AND +transaction_time_end = " OPEN " AND +valid_time_end > ?3"              \
  " AND +transaction_time_start < ?4"
static const char SQL_E_COPY[] = E_COPY("entity_id = ?2");
static const char SQL_E_CLOSE[] = CLOSE("entities", "entity_id = ?2");

/* ------------------------------------------------------- relationships */

#define R_INSERT                                                               \
  "INSERT INTO relationships (tenant_id, relationship_id, relationship_type,"   \
  " source_entity_id, target_entity_id, properties, valid_time_start,"          \
  " valid_time_end, transaction_time_start, transaction_time_end, created_at)"
static const char SQL_R_INSERT[] =
    R_INSERT " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
#define R_COPY(KEY)                                                            \
  R_INSERT " SELECT tenant_id, relationship_id, relationship_type,"             \
  " source_entity_id, target_entity_id, properties, valid_time_start, ?3, ?4, " \
  OPEN ", created_at FROM relationships WHERE tenant_id = ?1 AND " KEY          \
  " AND +transaction_time_end = " OPEN " AND +valid_time_end > ?3"              \
  " AND +valid_time_start < ?3"
#define R_OF "relationship_id = ?2"
#define R_TOUCHING "(source_entity_id = ?2 OR target_entity_id = ?2)"
static const char SQL_R_COPY[] = R_COPY(R_OF);
static const char SQL_R_CLOSE[] = CLOSE("relationships", R_OF);
static const char SQL_R_COPY_TOUCHING[] = R_COPY(R_TOUCHING);
static const char SQL_R_CLOSE_TOUCHING[] = CLOSE("relationships", R_TOUCHING);
static const char SQL_R_LAST[] =
    "SELECT max(transaction_time_start) FROM relationships WHERE tenant_id = ?1 AND " R_OF;
static const char SQL_R_LAST_TOUCHING[] =
    "SELECT max(transaction_time_start) FROM relationships WHERE tenant_id = ?1 AND "
    R_TOUCHING;
static const char SQL_R_OPEN[] =
    "SELECT 1 FROM relationships WHERE tenant_id = ?1 AND " R_OF
    " AND +valid_time_end = " OPEN " AND +transaction_time_end = " OPEN;

/* relationships(): ?2 the entity, ?4 the type or NULL, ?5/?6 the time. */
/* INDEXED BY: left to itself SQLite reads relationships_version whole to
 * save the sort (the ORDER BY is its order). */
#define R_LIST(IDX, END)                                                       \
  "SELECT " R_SEL("r.") " FROM relationships r INDEXED BY " IDX                 \
  " WHERE r.tenant_id = ?1 AND " END                                            \
  " AND (?4 IS NULL OR r.relationship_type = ?4) AND " LIVE("r")
#define R_OUT R_LIST("relationships_from", "r.source_entity_id = ?2")
#define R_IN R_LIST("relationships_to", "r.target_entity_id = ?2")
static const char SQL_R_OUT[] = R_OUT " ORDER BY r.relationship_id, r.valid_time_start";
static const char SQL_R_IN[] = R_IN " ORDER BY r.relationship_id, r.valid_time_start";
static const char SQL_R_BOTH[] = R_OUT " UNION " R_IN " ORDER BY 1, 7";

/* ---------------------------------------------------------- traversal */

/* ?2 start, ?3 depth, ?4 type or NULL, ?5/?6 the time. NEXT is the far end
 * of relationship r from w.id, JOIN what finds r, IDX the index to find it
 * by. walk keeps (entity, depth, parent) rows once each; hop takes, per
 * entity, the least of "depth as two digits" || parent: its smallest depth
 * and, at that depth, its smallest parent, in one GROUP BY (depth is at
 * most 32). SQLite has no statistics here, so the plan is spelled out: the
 * walk's index, and CROSS JOIN for hop-then-entities (the other order
 * scans every entity). */
#define R_OK "(?4 IS NULL OR r.relationship_type = ?4) AND " LIVE("r")
#define TRAVERSE(NEXT, JOIN, IDX)                                              \
  "WITH RECURSIVE walk(id, depth, parent) AS (SELECT ?2, 0, NULL UNION"         \
  " SELECT " NEXT ", w.depth + 1, w.id FROM walk w JOIN relationships r" IDX    \
  " ON r.tenant_id = ?1 AND " JOIN " WHERE w.depth < ?3 AND " R_OK "),"         \
  " hop(id, k) AS (SELECT id, min(printf('%02d', depth) || coalesce(parent, ''))" \
  " FROM walk GROUP BY id)"                                                     \
  " SELECT CAST(substr(h.k, 1, 2) AS INTEGER), substr(h.k, 3), " E_SEL("e.")    \
  " FROM hop h CROSS JOIN entities e INDEXED BY entities_version"               \
  " WHERE e.tenant_id = ?1 AND e.entity_id = h.id AND " LIVE("e")               \
  " AND h.k >= '01' ORDER BY 1, h.id, e.transaction_time_start DESC"
static const char SQL_WALK_OUT[] =
    TRAVERSE("r.target_entity_id", "r.source_entity_id = w.id", " INDEXED BY relationships_from");
static const char SQL_WALK_IN[] =
    TRAVERSE("r.source_entity_id", "r.target_entity_id = w.id", " INDEXED BY relationships_to");
static const char SQL_WALK_BOTH[] =
    TRAVERSE("(CASE WHEN r.source_entity_id = w.id THEN r.target_entity_id"
             " ELSE r.source_entity_id END)",
             "(r.source_entity_id = w.id OR r.target_entity_id = w.id)", "");

/* ------------------------------------------------------------- queries */

/* ?2 type, ?3 name or NULL, valid overlapping [?4, ?5], recorded [?6, ?7]. */
#define Q_TIMES                                                                \
  " AND valid_time_start <= ?5 AND valid_time_end > ?4"                         \
  " AND transaction_time_start <= ?7 AND transaction_time_end > ?6"             \
  " ORDER BY entity_id, transaction_time_start, valid_time_start"
static const char SQL_Q_TYPE[] =
    "SELECT " E_SEL("") " FROM entities INDEXED BY entities_type WHERE tenant_id = ?1"
    " AND entity_type = ?2 AND (?3 IS NULL OR name = ?3)" Q_TIMES;
static const char SQL_Q_NAME[] =
    "SELECT " E_SEL("") " FROM entities INDEXED BY entities_name WHERE tenant_id = ?1"
    " AND name = ?3" Q_TIMES;
static const char SQL_Q_ALL[] =
    "SELECT " E_SEL("") " FROM entities WHERE tenant_id = ?1" Q_TIMES;

/* The literal bound matches the partial indexes' WHERE, so SQLite uses them. */
static const char SQL_E_PURGE[] =
    "DELETE FROM entities WHERE tenant_id = ?1 AND transaction_time_end < ?2"
    " AND transaction_time_end < " OPEN;
static const char SQL_R_PURGE[] =
    "DELETE FROM relationships WHERE tenant_id = ?1 AND transaction_time_end < ?2"
    " AND transaction_time_end < " OPEN;
static const char SQL_E_COUNT[] = "SELECT count(*) FROM entities WHERE tenant_id = ?1";
static const char SQL_R_COUNT[] = "SELECT count(*) FROM relationships WHERE tenant_id = ?1";

/* ---------------------------------------------------------- export/import */

#define E_ORDER " ORDER BY entity_id, transaction_time_start, valid_time_start LIMIT ?5"
#define R_ORDER " ORDER BY relationship_id, transaction_time_start, valid_time_start LIMIT ?5"
static const char SQL_E_DUMP_FIRST[] =
    "SELECT tenant_id, " E_SEL("") " FROM entities WHERE tenant_id = ?1" E_ORDER;
static const char SQL_E_DUMP_AFTER[] =
    "SELECT tenant_id, " E_SEL("") " FROM entities WHERE tenant_id = ?1"
    " AND (entity_id, transaction_time_start, valid_time_start) > (?2, ?3, ?4)" E_ORDER;
static const char SQL_R_DUMP_FIRST[] =
    "SELECT tenant_id, " R_SEL("") " FROM relationships WHERE tenant_id = ?1" R_ORDER;
static const char SQL_R_DUMP_AFTER[] =
    "SELECT tenant_id, " R_SEL("") " FROM relationships WHERE tenant_id = ?1"
    " AND (relationship_id, transaction_time_start, valid_time_start) > (?2, ?3, ?4)" R_ORDER;

#define E_PUT                                                                  \
  E_INSERT " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"                   \
  " ON CONFLICT (tenant_id, entity_id, transaction_time_start, valid_time_start)"
static const char SQL_E_PUT_REPLACE[] =
    E_PUT " DO UPDATE SET entity_type = excluded.entity_type, name = excluded.name,"
    " properties = excluded.properties, valid_time_end = excluded.valid_time_end,"
    " transaction_time_end = excluded.transaction_time_end, created_at = excluded.created_at";
static const char SQL_E_PUT_KEEP[] = E_PUT " DO NOTHING";
#define R_PUT                                                                  \
  R_INSERT " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"              \
  " ON CONFLICT (tenant_id, relationship_id, transaction_time_start, valid_time_start)"
static const char SQL_R_PUT_REPLACE[] =
    R_PUT " DO UPDATE SET relationship_type = excluded.relationship_type,"
    " source_entity_id = excluded.source_entity_id,"
    " target_entity_id = excluded.target_entity_id, properties = excluded.properties,"
    " valid_time_end = excluded.valid_time_end,"
    " transaction_time_end = excluded.transaction_time_end, created_at = excluded.created_at";
static const char SQL_R_PUT_KEEP[] = R_PUT " DO NOTHING";

/* ------------------------------------------------------------- helpers */

/* The cached statement for sql with ?1 = tenant and, when id.ptr is set,
 * ?2 = id; NULL + err. */
static sqlite3_stmt *start(sqlite_backend *b, const char *sql, lls_str id, lls_error *err) {
  sqlite3_stmt *s = lls_sqlite_sql_stmt(b, sql, err);
  if (s == NULL) return NULL;
  int rc = bind_tenant(b, s);
  if (rc == SQLITE_OK && id.ptr) rc = bind_bytes(s, 2, id, 1);
  if (rc != SQLITE_OK) {
    lls_sqlite_fail(b->db, rc, "graph", err);
    done(s);
    return NULL;
  }
  return s;
}

/* The row at s's step, NCOLS columns from col on; strings borrowed from s.
 * -1 when SQLite ran out of memory. */
static int read_row(sqlite3_stmt *s, int col, lls_graph_row *v) {
  lls_str *str[] = {&v->id, &v->type, &v->name, &v->from, &v->to, &v->properties};
  for (int i = 0; i < 6; i++)
    if (column_bytes(s, col + i, str[i], 1) != 0) return -1;
  int64_t *t[] = {&v->valid_from, &v->valid_to, &v->recorded_at, &v->superseded_at,
                  &v->created_at};
  for (int i = 0; i < 5; i++) *t[i] = sqlite3_column_int64(s, col + 6 + i);
  return 0;
}

/* Steps s (bound, rc the binding result) to its end or until sink stops,
 * each row (NCOLS from col; tenant_id at 0 when col is 1) to sink; *n
 * counts them (n may be NULL). Resets s. */
static int each_row(sqlite_backend *b, sqlite3_stmt *s, int rc, int col, lls_graph_sink sink,
                    void *ud, size_t *n, lls_error *err) {
  while (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
    lls_graph_row v = {0};
    if ((col > 0 && column_bytes(s, 0, &v.tenant_id, 1) != 0) || read_row(s, col, &v) != 0) {
      done(s);
      return lls_error_oom(err);
    }
    int go = sink(ud, &v, err);
    if (go < 0) {
      done(s);
      return lls_error_stopped(err);
    }
    if (n) (*n)++;
    if (go > 0) {
      rc = SQLITE_DONE;
      break;
    }
    rc = SQLITE_OK;
  }
  int out = rc == SQLITE_DONE ? 0 : lls_sqlite_fail(b->db, rc, "graph read", err);
  done(s);
  return out;
}

/* Runs s (bound) for at most one row: 1 with column 0 in *x, 0 when
 * there is none (or it is NULL), -1 + err. Resets s. */
static int one_int(sqlite_backend *b, sqlite3_stmt *s, int64_t *x, lls_error *err) {
  int rc = sqlite3_step(s);
  int got = rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL;
  if (got) *x = sqlite3_column_int64(s, 0);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) got = lls_sqlite_fail(b->db, rc, "graph", err);
  done(s);
  return got;
}

/* Raises *now past the newest recorded_at that sql (?1 tenant, ?2 id)
 * finds, so versions stay strictly ordered in transaction time. */
static int after_last(sqlite_backend *b, const char *sql, lls_str id, int64_t *now,
                      lls_error *err) {
  sqlite3_stmt *s = start(b, sql, id, err);
  if (s == NULL) return -1;
  int64_t last = 0;
  int got = one_int(b, s, &last, err);
  if (got < 0) return -1;
  if (got && last >= *now) *now = last + 1;
  return 0;
}

/* Runs copy then close (?1 tenant, ?2 id, ?3 t, ?4 now): superseding from
 * t. *changed += the versions closed. */
static int supersede(sqlite_backend *b, const char *copy, const char *close, lls_str id,
                     int64_t t, int64_t now, int *changed, lls_error *err) {
  const char *sql[2] = {copy, close};
  for (int i = 0; i < 2; i++) {
    sqlite3_stmt *s = start(b, sql[i], id, err);
    if (s == NULL) return -1;
    int rc = sqlite3_bind_int64(s, 3, t);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 4, now);
    if (lls_sqlite_run(b, s, rc, "graph supersede", err) != 0) return -1;
    if (i == 1) *changed += sqlite3_changes(b->db);
  }
  return 0;
}

/* Binds version v's values to s (an E_INSERT or R_INSERT, ?1 tenant). */
static int bind_row(sqlite_backend *b, sqlite3_stmt *s, int part, const lls_graph_row *v) {
  int rc = bind_tenant(b, s), i = 2;
  if (rc == SQLITE_OK) rc = bind_bytes(s, i++, v->id, 1);
  if (rc == SQLITE_OK) rc = bind_bytes(s, i++, v->type, 1);
  if (part == 0) {
    if (rc == SQLITE_OK) rc = bind_bytes(s, i++, v->name, 1);
  } else {
    if (rc == SQLITE_OK) rc = bind_bytes(s, i++, v->from, 1);
    if (rc == SQLITE_OK) rc = bind_bytes(s, i++, v->to, 1);
  }
  if (rc == SQLITE_OK) rc = bind_bytes(s, i++, v->properties, 1);
  const int64_t t[] = {v->valid_from, v->valid_to, v->recorded_at, v->superseded_at,
                       v->created_at};
  for (int j = 0; j < 5 && rc == SQLITE_OK; j++) rc = sqlite3_bind_int64(s, i++, t[j]);
  return rc;
}

/* Inserts v as a new version (an exact key clash is a bug upstream). */
static int insert(sqlite_backend *b, int part, const lls_graph_row *v, lls_error *err) {
  sqlite3_stmt *s = lls_sqlite_sql_stmt(b, part == 0 ? SQL_E_INSERT : SQL_R_INSERT, err);
  if (s == NULL) return -1;
  return lls_sqlite_run(b, s, bind_row(b, s, part, v), "graph insert", err);
}

/* 1 when the entity or relationship (sql: ?1 tenant, ?2 id, ?3 time) has
 * a matching row, 0 when not, -1 + err. */
static int exists(sqlite_backend *b, const char *sql, lls_str id, int64_t t, lls_error *err) {
  sqlite3_stmt *s = start(b, sql, id, err);
  if (s == NULL) return -1;
  int rc = sql == SQL_E_EXISTS_AT ? sqlite3_bind_int64(s, 3, t) : SQLITE_OK;
  if (rc == SQLITE_OK) rc = sqlite3_step(s);
  int got = rc == SQLITE_ROW;
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) got = lls_sqlite_fail(b->db, rc, "graph", err);
  done(s);
  return got;
}

static int conflict(lls_error *err, const char *what, lls_str id) {
  return lls_error_set(err, LLS_ECONFLICT, "%s '%.*s' exists (update it, or delete it first)",
                       what, QUOTE_LEN(id), id.ptr);
}

/* ------------------------------------------------------------- entities */

static int sq_add_entity(lls_backend *base, const lls_graph_row *e, int64_t now,
                         lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  int nested, changed = 0;
  if (lls_sqlite_unit_begin(b, &nested, "add entity", err) != 0) return -1;
  lls_graph_row v = *e;
  v.valid_to = v.superseded_at = LLS_GRAPH_OPEN;
  int open = exists(b, SQL_E_OPEN, e->id, 0, err);
  if (open < 0 || (open && conflict(err, "entity", e->id)) ||
      after_last(b, SQL_E_LAST, e->id, &now, err) != 0 ||
      supersede(b, SQL_E_COPY, SQL_E_CLOSE, e->id, e->valid_from, now, &changed, err) != 0)
    goto fail;
  v.recorded_at = v.created_at = now;
  if (insert(b, 0, &v, err) != 0 || lls_sqlite_unit_commit(b, nested, "add entity", err) != 0)
    goto fail;
  return 0;
fail:
  lls_sqlite_unit_abort(b, nested);
  return -1;
}

/* Keeps a copy of the open version's row (the statement is reset before
 * the writes that follow). */
typedef struct held_row {
  lls_graph_row v;
  lls_buf bytes;
} held_row;

static int hold(void *ud, const lls_graph_row *v, lls_error *err) {
  held_row *h = ud;
  const lls_str *src[] = {&v->id, &v->type, &v->name, &v->properties};
  lls_str *dst[] = {&h->v.id, &h->v.type, &h->v.name, &h->v.properties};
  h->v = *v;
  size_t at[4];
  for (int i = 0; i < 4; i++) {
    at[i] = h->bytes.len;
    if (lls_buf_append(&h->bytes, src[i]->ptr, src[i]->len) != 0) return lls_error_oom(err);
  }
  for (int i = 0; i < 4; i++) *dst[i] = (lls_str){h->bytes.data + at[i], src[i]->len};
  return 1;
}

static int sq_update_entity(lls_backend *base, lls_str id, int64_t valid_from, int64_t now,
                            lls_graph_revise revise, void *ud, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  int nested, changed = 0;
  held_row cur;
  memset(&cur, 0, sizeof cur);
  if (lls_sqlite_unit_begin(b, &nested, "update entity", err) != 0) return -1;
  sqlite3_stmt *s = start(b, SQL_E_OPEN, id, err);
  size_t n = 0;
  if (s == NULL || each_row(b, s, SQLITE_OK, 0, hold, &cur, &n, err) != 0) goto fail;
  if (n == 0) {
    lls_error_set(err, LLS_ENOTFOUND, "entity '%.*s' not found (no current version)",
                  QUOTE_LEN(id), id.ptr);
    goto fail;
  }
  lls_graph_row next = cur.v;
  if (revise(ud, &cur.v, &next, err) != 0 || after_last(b, SQL_E_LAST, id, &now, err) != 0 ||
      supersede(b, SQL_E_COPY, SQL_E_CLOSE, id, valid_from, now, &changed, err) != 0)
    goto fail;
  next.valid_from = valid_from;
  next.valid_to = next.superseded_at = LLS_GRAPH_OPEN;
  next.recorded_at = next.created_at = now;
  if (insert(b, 0, &next, err) != 0 ||
      lls_sqlite_unit_commit(b, nested, "update entity", err) != 0)
    goto fail;
  lls_buf_free(&cur.bytes);
  return 0;
fail:
  lls_sqlite_unit_abort(b, nested);
  lls_buf_free(&cur.bytes);
  return -1;
}

static int sq_delete_entity(lls_backend *base, lls_str id, int64_t now, int *existed,
                            lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  int nested, changed = 0;
  if (lls_sqlite_unit_begin(b, &nested, "delete entity", err) != 0) return -1;
  if (after_last(b, SQL_E_LAST, id, &now, err) != 0 ||
      after_last(b, SQL_R_LAST_TOUCHING, id, &now, err) != 0 ||
      supersede(b, SQL_E_COPY, SQL_E_CLOSE, id, now, now, &changed, err) != 0)
    goto fail;
  *existed = changed > 0;
  if (supersede(b, SQL_R_COPY_TOUCHING, SQL_R_CLOSE_TOUCHING, id, now, now, &changed, err) !=
          0 ||
      lls_sqlite_unit_commit(b, nested, "delete entity", err) != 0)
    goto fail;
  return 0;
fail:
  lls_sqlite_unit_abort(b, nested);
  return -1;
}

/* Binds the walk's time (?5 at, ?6 as_of). */
static int bind_when(sqlite3_stmt *s, lls_graph_when w) {
  int rc = sqlite3_bind_int64(s, 5, w.at);
  return rc == SQLITE_OK ? sqlite3_bind_int64(s, 6, w.as_of) : rc;
}

static int sq_get_entity(lls_backend *base, lls_str id, lls_graph_when w, lls_graph_sink sink,
                         void *ud, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  sqlite3_stmt *s = start(b, SQL_E_GET, id, err);
  if (s == NULL) return -1;
  return each_row(b, s, bind_when(s, w), 0, sink, ud, NULL, err);
}

/* -------------------------------------------------------- relationships */

static int sq_add_relationship(lls_backend *base, const lls_graph_row *r, int64_t now,
                               lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  int nested, changed = 0;
  if (lls_sqlite_unit_begin(b, &nested, "add relationship", err) != 0) return -1;
  const lls_str ends[2] = {r->from, r->to};
  for (int i = 0; i < 2; i++) {
    int there = exists(b, SQL_E_EXISTS_AT, ends[i], r->valid_from, err);
    if (there < 0) goto fail;
    if (!there) {
      lls_error_set(err, LLS_ENOTFOUND,
                    "relationship %s: entity '%.*s' does not exist at valid_from",
                    i == 0 ? "from" : "to", QUOTE_LEN(ends[i]), ends[i].ptr);
      goto fail;
    }
  }
  int open = exists(b, SQL_R_OPEN, r->id, 0, err);
  lls_graph_row v = *r;
  if (open < 0 || (open && conflict(err, "relationship", r->id)) ||
      after_last(b, SQL_R_LAST, r->id, &now, err) != 0 ||
      supersede(b, SQL_R_COPY, SQL_R_CLOSE, r->id, r->valid_from, now, &changed, err) != 0)
    goto fail;
  v.valid_to = v.superseded_at = LLS_GRAPH_OPEN;
  v.recorded_at = v.created_at = now;
  if (insert(b, 1, &v, err) != 0 ||
      lls_sqlite_unit_commit(b, nested, "add relationship", err) != 0)
    goto fail;
  return 0;
fail:
  lls_sqlite_unit_abort(b, nested);
  return -1;
}

static int sq_delete_relationship(lls_backend *base, lls_str id, int64_t now, int *existed,
                                  lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  int nested, changed = 0;
  if (lls_sqlite_unit_begin(b, &nested, "delete relationship", err) != 0) return -1;
  if (after_last(b, SQL_R_LAST, id, &now, err) != 0 ||
      supersede(b, SQL_R_COPY, SQL_R_CLOSE, id, now, now, &changed, err) != 0 ||
      lls_sqlite_unit_commit(b, nested, "delete relationship", err) != 0) {
    lls_sqlite_unit_abort(b, nested);
    return -1;
  }
  *existed = changed > 0;
  return 0;
}

static int sq_relationships(lls_backend *base, lls_str id, lls_graph_dir dir, lls_str type,
                            lls_graph_when w, lls_graph_sink sink, void *ud, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  const char *sql = dir == LLS_GRAPH_OUT ? SQL_R_OUT : dir == LLS_GRAPH_IN ? SQL_R_IN : SQL_R_BOTH;
  sqlite3_stmt *s = start(b, sql, id, err);
  if (s == NULL) return -1;
  int rc = type.ptr ? bind_bytes(s, 4, type, 1) : SQLITE_OK;
  if (rc == SQLITE_OK) rc = bind_when(s, w);
  return each_row(b, s, rc, 0, sink, ud, NULL, err);
}

static int sq_traverse(lls_backend *base, lls_str start_id, lls_graph_dir dir, lls_str type,
                       int depth, lls_graph_when w, lls_graph_hop_sink sink, void *ud,
                       lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  const char *sql =
      dir == LLS_GRAPH_OUT ? SQL_WALK_OUT : dir == LLS_GRAPH_IN ? SQL_WALK_IN : SQL_WALK_BOTH;
  sqlite3_stmt *s = start(b, sql, start_id, err);
  if (s == NULL) return -1;
  int rc = sqlite3_bind_int(s, 3, depth);
  if (rc == SQLITE_OK && type.ptr) rc = bind_bytes(s, 4, type, 1);
  if (rc == SQLITE_OK) rc = bind_when(s, w);
  lls_buf prev = {NULL, 0, 0}; /* the last entity sent */
  int sent = 0;
  while (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
    lls_graph_row v = {0};
    lls_str parent;
    if (column_bytes(s, 1, &parent, 1) != 0 || read_row(s, 2, &v) != 0) {
      rc = SQLITE_NOMEM;
      break;
    }
    rc = SQLITE_OK;
    /* an entity with two versions at the time (imported overlaps) comes
     * once: the newest belief, first in the order */
    if (sent && prev.len == v.id.len && memcmp(prev.data, v.id.ptr, v.id.len) == 0) continue;
    int go = sink(ud, &v, sqlite3_column_int(s, 0), parent, err);
    if (go < 0) {
      done(s);
      lls_buf_free(&prev);
      return lls_error_stopped(err);
    }
    if (go > 0) {
      rc = SQLITE_DONE;
      break;
    }
    prev.len = 0;
    if (lls_buf_append(&prev, v.id.ptr, v.id.len) != 0) {
      rc = SQLITE_NOMEM;
      break;
    }
    sent = 1;
  }
  lls_buf_free(&prev);
  int out = rc == SQLITE_DONE ? 0
            : rc == SQLITE_NOMEM ? lls_error_oom(err)
                                 : lls_sqlite_fail(b->db, rc, "graph traverse", err);
  done(s);
  return out;
}

static int sq_query(lls_backend *base, const lls_graph_query *q, lls_graph_sink sink, void *ud,
                    lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  const char *sql = q->type.ptr ? SQL_Q_TYPE : q->name.ptr ? SQL_Q_NAME : SQL_Q_ALL;
  sqlite3_stmt *s = start(b, sql, (lls_str){NULL, 0}, err);
  if (s == NULL) return -1;
  int rc = q->type.ptr ? bind_bytes(s, 2, q->type, 1) : SQLITE_OK;
  if (rc == SQLITE_OK && q->name.ptr) rc = bind_bytes(s, 3, q->name, 1);
  const int64_t t[] = {q->valid_lo, q->valid_hi, q->recorded_lo, q->recorded_hi};
  for (int i = 0; i < 4 && rc == SQLITE_OK; i++) rc = sqlite3_bind_int64(s, 4 + i, t[i]);
  return each_row(b, s, rc, 0, sink, ud, NULL, err);
}

/* ------------------------------------------------- upkeep, export, import */

static int sq_purge_before(lls_backend *base, int64_t t, int64_t *removed, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  int nested;
  *removed = 0;
  if (lls_sqlite_unit_begin(b, &nested, "purge graph", err) != 0) return -1;
  const char *sql[2] = {SQL_E_PURGE, SQL_R_PURGE};
  for (int i = 0; i < 2; i++) {
    sqlite3_stmt *s = start(b, sql[i], (lls_str){NULL, 0}, err);
    if (s == NULL ||
        lls_sqlite_run(b, s, sqlite3_bind_int64(s, 2, t), "purge graph", err) != 0) {
      lls_sqlite_unit_abort(b, nested);
      return -1;
    }
    *removed += sqlite3_changes(b->db);
  }
  if (lls_sqlite_unit_commit(b, nested, "purge graph", err) != 0) {
    lls_sqlite_unit_abort(b, nested);
    return -1;
  }
  return 0;
}

static int sq_count(lls_backend *base, int part, int64_t *n, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  sqlite3_stmt *s = start(b, part == 0 ? SQL_E_COUNT : SQL_R_COUNT, (lls_str){NULL, 0}, err);
  if (s == NULL) return -1;
  int got = one_int(b, s, n, err);
  if (got < 0) return -1;
  if (!got) *n = 0;
  return 0;
}

static int sq_dump(lls_backend *base, int part, const lls_graph_row *after, size_t limit,
                   lls_graph_sink sink, void *ud, size_t *n, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  const char *sql = part == 0 ? (after ? SQL_E_DUMP_AFTER : SQL_E_DUMP_FIRST)
                              : (after ? SQL_R_DUMP_AFTER : SQL_R_DUMP_FIRST);
  sqlite3_stmt *s = start(b, sql, after ? after->id : (lls_str){NULL, 0}, err);
  if (s == NULL) return -1;
  *n = 0;
  int rc = SQLITE_OK;
  if (after) {
    rc = sqlite3_bind_int64(s, 3, after->recorded_at);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 4, after->valid_from);
  }
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 5, clamp_limit(limit));
  return each_row(b, s, rc, 1, sink, ud, n, err);
}

static int sq_put(lls_backend *base, int part, const lls_graph_row *v, lls_conflict on_conflict,
                  int *written, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  if (lls_sqlite_check_txn(b, err) != 0) return -1;
  int replace = on_conflict == LLS_CONFLICT_REPLACE;
  const char *sql = part == 0 ? (replace ? SQL_E_PUT_REPLACE : SQL_E_PUT_KEEP)
                              : (replace ? SQL_R_PUT_REPLACE : SQL_R_PUT_KEEP);
  sqlite3_stmt *s = lls_sqlite_sql_stmt(b, sql, err);
  if (s == NULL) return -1;
  if (lls_sqlite_run(b, s, bind_row(b, s, part, v), "graph import", err) != 0) return -1;
  *written = sqlite3_changes(b->db) > 0;
  if (!*written && on_conflict == LLS_CONFLICT_ERROR)
    return lls_error_set(err, LLS_ECONFLICT, "%s '%.*s' recorded at %lld exists",
                         part == 0 ? "entity" : "relationship", QUOTE_LEN(v->id), v->id.ptr,
                         (long long)v->recorded_at);
  return 0;
}

const lls_graph_ops lls_sqlite_graph_ops = {
    .add_entity = sq_add_entity,
    .update_entity = sq_update_entity,
    .delete_entity = sq_delete_entity,
    .get_entity = sq_get_entity,
    .add_relationship = sq_add_relationship,
    .delete_relationship = sq_delete_relationship,
    .relationships = sq_relationships,
    .traverse = sq_traverse,
    .query = sq_query,
    .purge_before = sq_purge_before,
    .count = sq_count,
    .dump = sq_dump,
    .put = sq_put,
};
