/*
 * sessions.c -- the PostgreSQL backend's sessions slots (lls_session_ops)
 * over the sessions table, and the cascade that removes a session's
 * artifacts.
 *
 * Table (migration 4, schema.c), with row-level security on tenant_id as
 * every table has:
 *
 *   CREATE TABLE llmspell.sessions (
 *     tenant_id        text NOT NULL,
 *     session_id       text COLLATE "C" NOT NULL, -- byte order, as list() sorts
 *     row_id           text NOT NULL,     -- UUID made at create: export's "id"
 *     status           text NOT NULL CHECK (status IN
 *                        ('active', 'completed', 'expired', 'archived')),
 *     data             jsonb NOT NULL,    -- comes back normalised (key order)
 *     created_at       timestamptz NOT NULL,
 *     updated_at       timestamptz NOT NULL,  -- create, update
 *     last_accessed_at timestamptz NOT NULL,  -- create, touch
 *     expires_at       timestamptz,           -- NULL = never
 *     artifact_count   bigint NOT NULL DEFAULT 0, -- raised by the artifacts code
 *     next_sequence    bigint NOT NULL DEFAULT 0, -- raised by the artifacts code
 *     PRIMARY KEY (tenant_id, session_id)
 *   );
 *   CREATE INDEX sessions_status_idx
 *     ON llmspell.sessions (tenant_id, status, created_at, session_id);
 *   CREATE INDEX sessions_created_idx
 *     ON llmspell.sessions (tenant_id, created_at, session_id);
 *   CREATE INDEX sessions_expires_idx ON llmspell.sessions (tenant_id, expires_at)
 *     WHERE expires_at IS NOT NULL;
 *
 * list() walks sessions_status_idx or sessions_created_idx backwards
 * (newest first, ties by id) and resumes after a page with the row
 * comparison (created_at, session_id) < (..), an index condition: no sort,
 * no offset. cleanup() finds expired rows through sessions_expires_idx.
 *
 * Removing sessions (del, cleanup, create or load over an expired one) is
 * one unit that takes its locks in the order the artifacts code takes
 * them too (its delete: the artifact, the session, the content; its put:
 * the session, the content), so they do not deadlock one another (but for
 * an artifact that others put and delete while the removal runs, which
 * PostgreSQL detects: one of them then fails with `busy`):
 *   1. the session's artifact rows, in artifact_id order;
 *   2. the session rows, by deleting them: an artifact put racing on the
 *      session either committed before (its artifact is then seen by the
 *      next statements, each with a fresh READ COMMITTED snapshot) or
 *      waits and then finds no session;
 *   3. the content rows those artifacts refer to, in content_hash order
 *      (two cascades sharing content cannot deadlock);
 *   4. one statement deletes the artifacts, lowers each content's
 *      reference_count by the number that referred to it and deletes
 *      content reaching 0 (its chunks go by ON DELETE CASCADE). The
 *      content rows are locked and current, so that statement's snapshot
 *      sees their true counts.
 */
#include "backends/postgres/sessions.h"

#include <stdlib.h>
#include <string.h>

#include "backends/postgres/component.h"
#include "backends/postgres/conn.h"

/* Sessions cleanup() removes per round. */
#define CLEANUP_BATCH 1000

#define VIS(now) "(expires_at IS NULL OR expires_at > " now ")"
#define COLS "row_id, status, data::text, created_at, updated_at, last_accessed_at, " \
             "expires_at, artifact_count"
#define T_ID_NOW {OID_TEXT, OID_TEXT, OID_TSTZ}

/* $3 row_id, $4 status, $5 data, $6 now, $7 expires_at */
static const pg_stmt SS_INSERT = {
    "lls_sessions_insert",
    "INSERT INTO @S.sessions (tenant_id, session_id, row_id, status, data, created_at,"
    " updated_at, last_accessed_at, expires_at) VALUES ($1, $2, $3, $4, $5::jsonb, $6, $6, $6,"
    " $7) ON CONFLICT (tenant_id, session_id) DO NOTHING RETURNING 1",
    7, {OID_TEXT, OID_TEXT, OID_TEXT, OID_TEXT, OID_TEXT, OID_TSTZ, OID_TSTZ}};
static const pg_stmt SS_DEL_EXPIRED = {
    "lls_sessions_del_expired",
    "DELETE FROM @S.sessions WHERE tenant_id = $1 AND session_id = $2 AND expires_at <= $3"
    " RETURNING 1",
    3, T_ID_NOW};
static const pg_stmt SS_GET = {
    "lls_sessions_get",
    "SELECT " COLS " FROM @S.sessions WHERE tenant_id = $1 AND session_id = $2"
    " AND " VIS("$3"),
    3, T_ID_NOW};
/* $4 data or NULL, $5 status or NULL, $6 lls_expiry_change, $7 expires_at */
static const pg_stmt SS_UPDATE = {
    "lls_sessions_update",
    "UPDATE @S.sessions SET data = coalesce($4::jsonb, data), status = coalesce($5, status),"
    " expires_at = CASE $6 WHEN 0 THEN expires_at WHEN 1 THEN $7 END, updated_at = $3"
    " WHERE tenant_id = $1 AND session_id = $2 AND " VIS("$3"),
    7, {OID_TEXT, OID_TEXT, OID_TSTZ, OID_TEXT, OID_TEXT, OID_INT4, OID_TSTZ}};
static const pg_stmt SS_TOUCH = {
    "lls_sessions_touch",
    "UPDATE @S.sessions SET last_accessed_at = $3"
    " WHERE tenant_id = $1 AND session_id = $2 AND " VIS("$3"),
    3, T_ID_NOW};
static const pg_stmt SS_DELETE = {
    "lls_sessions_delete",
    "DELETE FROM @S.sessions WHERE tenant_id = $1 AND session_id = $2 RETURNING " VIS("$3"),
    3, T_ID_NOW};
static const pg_stmt SS_EXISTS = {
    "lls_sessions_exists",
    "SELECT 1 FROM @S.sessions WHERE tenant_id = $1 AND session_id = $2", 2,
    {OID_TEXT, OID_TEXT}};
static const pg_stmt SS_COUNT = {
    "lls_sessions_count",
    "SELECT count(*) FROM @S.sessions WHERE tenant_id = $1 AND " VIS("$2"), 2,
    {OID_TEXT, OID_TSTZ}};
/* cleanup(): $2 batch size, $3 now. expires_at <= $3 implies the partial
 * index's predicate, so the pick is a range of sessions_expires_idx; the
 * picked ids then go in as an array ($2 of the delete), so the delete
 * probes the primary key for each instead of joining every expired row
 * of the tenant (a round costs its batch, not the backlog). */
static const pg_stmt SS_CLEANUP_PICK = {
    "lls_sessions_cleanup_pick",
    "SELECT session_id FROM @S.sessions WHERE tenant_id = $1 AND expires_at <= $3"
    " ORDER BY expires_at LIMIT $2",
    3, {OID_TEXT, OID_INT8, OID_TSTZ}};
static const pg_stmt SS_CLEANUP_DELETE = {
    "lls_sessions_cleanup_delete",
    "DELETE FROM @S.sessions WHERE tenant_id = $1 AND session_id = ANY ($2)"
    " AND expires_at <= $3 RETURNING session_id",
    3, {OID_TEXT, OID_TEXT_ARR, OID_TSTZ}};
static const pg_stmt SS_DUMP = {
    "lls_sessions_dump",
    "SELECT session_id, " COLS " FROM @S.sessions WHERE tenant_id = $1 AND session_id > $2"
    " AND " VIS("$3") " ORDER BY session_id LIMIT $4",
    4, {OID_TEXT, OID_TEXT, OID_TSTZ, OID_INT8}};

/* list(): $2 status, $3 now, $4 after, $5 limit (NULL: none); one statement
 * per shape, so each is a plain index range whatever plan is cached. */
#define LIST_HEAD "SELECT session_id FROM @S.sessions WHERE tenant_id = $1 AND " VIS("$3")
#define LIST_AFTER                                                                 \
  " AND (created_at, session_id) < ((SELECT created_at FROM @S.sessions"           \
  " WHERE tenant_id = $1 AND session_id = $4), $4)"
#define LIST_TAIL " ORDER BY created_at DESC, session_id DESC LIMIT $5"
#define T_LIST {OID_TEXT, OID_TEXT, OID_TSTZ, OID_TEXT, OID_INT8}
static const pg_stmt SS_LIST = {"lls_sessions_list", LIST_HEAD LIST_TAIL, 5, T_LIST};
static const pg_stmt SS_LIST_AFTER = {"lls_sessions_list_after", LIST_HEAD LIST_AFTER LIST_TAIL,
                                      5, T_LIST};
static const pg_stmt SS_LIST_ST = {"lls_sessions_list_st", LIST_HEAD " AND status = $2" LIST_TAIL,
                                   5, T_LIST};
static const pg_stmt SS_LIST_ST_AFTER = {
    "lls_sessions_list_st_after", LIST_HEAD " AND status = $2" LIST_AFTER LIST_TAIL, 5, T_LIST};

/* The cascade for the sessions in $2 (text[]); see the top of the file. */
#define SESSION_ARTIFACTS "@S.artifacts WHERE tenant_id = $1 AND session_id = ANY ($2)"
static const pg_stmt SS_LOCK_ARTIFACTS = {
    "lls_sessions_lock_artifacts",
    "SELECT count(*) FROM (SELECT 1 FROM " SESSION_ARTIFACTS " ORDER BY artifact_id"
    " FOR UPDATE) AS l",
    2, {OID_TEXT, OID_TEXT_ARR}};
static const pg_stmt SS_LOCK_CONTENT = {
    "lls_sessions_lock_content",
    "SELECT count(*) FROM (SELECT 1 FROM @S.artifact_content WHERE tenant_id = $1"
    " AND content_hash IN (SELECT content_hash FROM " SESSION_ARTIFACTS ")"
    " ORDER BY content_hash FOR UPDATE) AS l",
    2, {OID_TEXT, OID_TEXT_ARR}};
static const pg_stmt SS_CASCADE = {
    "lls_sessions_cascade",
    "WITH n AS (SELECT content_hash AS h, count(*) AS c FROM " SESSION_ARTIFACTS
    " GROUP BY content_hash),"
    " d AS (DELETE FROM " SESSION_ARTIFACTS "),"
    " u AS (UPDATE @S.artifact_content ac SET reference_count = ac.reference_count - n.c"
    " FROM n WHERE ac.tenant_id = $1 AND ac.content_hash = n.h AND ac.reference_count > n.c)"
    " DELETE FROM @S.artifact_content ac USING n"
    " WHERE ac.tenant_id = $1 AND ac.content_hash = n.h AND ac.reference_count <= n.c",
    2, {OID_TEXT, OID_TEXT_ARR}};

/* load(): $3 now, $4 row_id, $5 status, $6 data, $7 created, $8 updated,
 * $9 accessed, $10 expires_at. artifact_count is the number of the
 * session's artifact rows already stored, whatever the file says (the
 * artifacts' load counts those that come later). */
#define LOAD_COUNT                                                                 \
  "(SELECT count(*) FROM @S.artifacts WHERE tenant_id = $1 AND session_id = $2)"
#define LOAD_NEXT                                                                  \
  "(SELECT coalesce(max(sequence) + 1, 0) FROM @S.artifacts"                       \
  " WHERE tenant_id = $1 AND session_id = $2)"
#define T_LOAD                                                                     \
  {OID_TEXT, OID_TEXT, OID_TSTZ, OID_TEXT, OID_TEXT, OID_TEXT, OID_TSTZ, OID_TSTZ, \
   OID_TSTZ, OID_TSTZ}
static const pg_stmt SS_LOAD_PROBE = {
    "lls_sessions_load_probe",
    "SELECT " VIS("$3") " FROM @S.sessions WHERE tenant_id = $1 AND session_id = $2"
    " FOR UPDATE",
    3, T_ID_NOW};
static const pg_stmt SS_LOAD_INSERT = {
    "lls_sessions_load_insert",
    "INSERT INTO @S.sessions (tenant_id, session_id, row_id, status, data, created_at,"
    " updated_at, last_accessed_at, expires_at, artifact_count, next_sequence)"
    " VALUES ($1, $2, $4, $5, $6::jsonb, $7, $8, $9, $10, " LOAD_COUNT ", " LOAD_NEXT ")",
    10, T_LOAD};
static const pg_stmt SS_LOAD_REPLACE = {
    "lls_sessions_load_replace",
    "UPDATE @S.sessions SET row_id = $4, status = $5, data = $6::jsonb, created_at = $7,"
    " updated_at = $8, last_accessed_at = $9, expires_at = $10,"
    " artifact_count = " LOAD_COUNT ", next_sequence = greatest(next_sequence, " LOAD_NEXT ")"
    " WHERE tenant_id = $1 AND session_id = $2",
    10, T_LOAD};

/* ------------------------------------------------------------- helpers */

/* $1 tenant, $2 id, $3 now: the start of most statements here. */
static void id_now(pg_params *p, const pg_backend *pg, lls_str id, int64_t now) {
  lls_pg_param_tenant(p, pg);
  lls_pg_param_bytes(p, id.ptr, id.len);
  lls_pg_param_time(p, now);
}

/* jsonb refuses "\u0000" (which SQLite stores): said in the caller's terms. */
static void data_error(lls_error *err) {
  if (strcmp(err->sqlstate, "22P05") != 0) return;
  char msg[sizeof err->message];
  snprintf(msg, sizeof msg, "%s", err->message);
  lls_error_set(err, LLS_EINVALID,
                "session data contains \\u0000, which PostgreSQL jsonb cannot store (%s)", msg);
  memcpy(err->sqlstate, "22P05", 6);
}

static int conflict(lls_str id, lls_error *err) {
  return lls_error_set(err, LLS_ECONFLICT, "session '%.*s' already exists",
                       lls_pg_msg_len(id, 200), id.ptr);
}

static int not_found(lls_str id, lls_error *err) {
  return lls_error_set(err, LLS_ENOTFOUND, "no session '%.*s'", lls_pg_msg_len(id, 200), id.ptr);
}

/* Rows a command changed (UPDATE, DELETE without RETURNING). */
static long changed(PGresult *r) { return strtol(PQcmdTuples(r), NULL, 10); }

/* Runs one of the cascade's statements over the sessions in the text[]
 * array ids. */
static int over_ids(pg_backend *pg, const pg_stmt *st, const lls_buf *ids, lls_error *err) {
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_buf(&p, ids);
  PGresult *r = lls_pg_run_stmt(pg, st, &p, 0, err);
  if (r == NULL) return -1;
  PQclear(r);
  return 0;
}

/* The content lock and the cascade for the sessions in ids, whose rows
 * this unit has deleted; inside the caller's unit. */
static int cascade(pg_backend *pg, const lls_buf *ids, lls_error *err) {
  return over_ids(pg, &SS_LOCK_CONTENT, ids, err) == 0 && over_ids(pg, &SS_CASCADE, ids, err) == 0
             ? 0
             : -1;
}

/* pg->arr[A_CONT] as the text[] of the one id. */
static lls_buf *one_id(pg_backend *pg, lls_str id, lls_error *err) {
  lls_buf *a = &pg->arr[A_CONT];
  if (lls_pg_arr_init(a) != 0 || lls_pg_arr_add(a, id.ptr, id.len) != 0) {
    lls_error_oom(err);
    return NULL;
  }
  lls_pg_arr_finish(a, OID_TEXT, 1, 0);
  return a;
}

/* Deletes the row of id (any expiry) and its artifacts, inside the
 * caller's unit; *visible = 1 when the row was visible. The artifact rows
 * are locked first (see the top of the file). */
static int remove_one(pg_backend *pg, lls_str id, int64_t now, int *visible, lls_error *err) {
  *visible = 0;
  lls_buf *ids = one_id(pg, id, err);
  if (ids == NULL || over_ids(pg, &SS_LOCK_ARTIFACTS, ids, err) != 0) return -1;
  pg_params p = {0};
  id_now(&p, pg, id, now);
  PGresult *r = lls_pg_run_stmt(pg, &SS_DELETE, &p, 0, err);
  if (r == NULL) return -1;
  *visible = PQntuples(r) > 0 && !PQgetisnull(r, 0, 0) && PQgetvalue(r, 0, 0)[0] != 0;
  PQclear(r);
  return cascade(pg, ids, err);
}

/* Runs SS_INSERT for s; *inserted = 0 when the id was taken. Inside a
 * unit (in_unit) the statement runs as it is, else as one write. */
static int insert(pg_backend *pg, const lls_session *s, int64_t now, int in_unit, int *inserted,
                  lls_error *err) {
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_bytes(&p, s->id.ptr, s->id.len);
  lls_pg_param_bytes(&p, s->row_id.ptr, s->row_id.len);
  lls_pg_param_bytes(&p, s->status.ptr, s->status.len);
  lls_pg_param_bytes(&p, s->data.ptr, s->data.len);
  lls_pg_param_time(&p, now);
  lls_pg_param_expiry(&p, s->expires_at);
  PGresult *r = in_unit ? lls_pg_run_stmt(pg, &SS_INSERT, &p, 0, err)
                        : lls_pg_write_stmt(pg, &SS_INSERT, &p, err);
  if (r == NULL) {
    data_error(err);
    return -1;
  }
  *inserted = PQntuples(r) > 0;
  PQclear(r);
  return 0;
}

/* Copies nothing: out points into r, which pg->held keeps until the next
 * call. Columns from col: COLS. */
static void read_row(const PGresult *r, int row, int col, lls_session *out) {
  out->row_id = lls_pg_str_at(r, row, col);
  out->status = lls_pg_str_at(r, row, col + 1);
  out->data = lls_pg_str_at(r, row, col + 2);
  out->tenant = (lls_str){"", 0};
  out->created_at = lls_pg_time_or_zero(r, row, col + 3);
  out->updated_at = lls_pg_time_or_zero(r, row, col + 4);
  out->last_accessed_at = lls_pg_time_or_zero(r, row, col + 5);
  out->expires_at = lls_pg_time_or_zero(r, row, col + 6);
  out->artifact_count = lls_pg_int8_at(r, row, col + 7);
}

/* --------------------------------------------------------------- slots */

/* The usual case is one INSERT; only a taken id opens a unit, to replace
 * an expired session (and its artifacts) or report the conflict. */
static int pg_create(lls_backend *b, const lls_session *s, int64_t now, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  int inserted;
  if (insert(pg, s, now, 0, &inserted, err) != 0) return -1;
  if (inserted) return 0;
  if (lls_pg_unit_begin(pg, 0, err) != 0) return -1;
  lls_buf *ids = one_id(pg, s->id, err);
  int ok = ids != NULL && over_ids(pg, &SS_LOCK_ARTIFACTS, ids, err) == 0;
  pg_params p = {0};
  id_now(&p, pg, s->id, now);
  PGresult *r = ok ? lls_pg_run_stmt(pg, &SS_DEL_EXPIRED, &p, 0, err) : NULL;
  ok = r != NULL;
  int expired = ok && PQntuples(r) > 0;
  PQclear(r);
  if (ok && expired) ok = cascade(pg, ids, err) == 0;
  if (ok) ok = insert(pg, s, now, 1, &inserted, err) == 0;
  if (ok && !inserted) ok = conflict(s->id, err) == 0;
  return lls_pg_unit_end(pg, 0, ok, err);
}

static int pg_get(lls_backend *b, lls_str id, int64_t now, lls_session *out, int *found,
                  lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  id_now(&p, pg, id, now);
  *found = 0;
  PGresult *r = lls_pg_run_stmt(pg, &SS_GET, &p, 1, err);
  if (r == NULL) return -1;
  if (PQntuples(r) > 0) {
    read_row(r, 0, 0, out);
    out->id = id;
    *found = 1;
  }
  pg->held = r;
  return 0;
}

static int pg_update(lls_backend *b, lls_str id, const lls_session_change *c, int64_t now,
                     lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  id_now(&p, pg, id, now);
  if (c->data.ptr != NULL)
    lls_pg_param_bytes(&p, c->data.ptr, c->data.len);
  else
    lls_pg_param_null(&p);
  if (c->status.ptr != NULL)
    lls_pg_param_bytes(&p, c->status.ptr, c->status.len);
  else
    lls_pg_param_null(&p);
  lls_pg_param_int4(&p, (int32_t)c->expiry);
  if (c->expiry == LLS_EXPIRY_SET)
    lls_pg_param_time(&p, c->expires_at);
  else
    lls_pg_param_null(&p);
  PGresult *r = lls_pg_write_stmt(pg, &SS_UPDATE, &p, err);
  if (r == NULL) {
    data_error(err);
    return -1;
  }
  long n = changed(r);
  PQclear(r);
  return n > 0 ? 0 : not_found(id, err);
}

static int pg_touch(lls_backend *b, lls_str id, int64_t now, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  id_now(&p, pg, id, now);
  PGresult *r = lls_pg_write_stmt(pg, &SS_TOUCH, &p, err);
  if (r == NULL) return -1;
  long n = changed(r);
  PQclear(r);
  return n > 0 ? 0 : not_found(id, err);
}

static int pg_del(lls_backend *b, lls_str id, int64_t now, int *existed, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  *existed = 0;
  if (lls_pg_unit_begin(pg, 0, err) != 0) return -1;
  int ok = remove_one(pg, id, now, existed, err) == 0;
  if (lls_pg_unit_end(pg, 0, ok, err) != 0) {
    *existed = 0;
    return -1;
  }
  return 0;
}

static int pg_list(lls_backend *b, lls_str status, lls_str after, int64_t now, size_t limit,
                   lls_rows *out, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  int has_after = after.ptr != NULL;
  const pg_stmt *st = status.ptr != NULL ? (has_after ? &SS_LIST_ST_AFTER : &SS_LIST_ST)
                                         : (has_after ? &SS_LIST_AFTER : &SS_LIST);
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_bytes(&p, status.ptr ? status.ptr : "", status.len);
  lls_pg_param_time(&p, now);
  lls_pg_param_bytes(&p, has_after ? after.ptr : "", after.len);
  lls_pg_param_limit(&p, limit);
  int rows = lls_pg_id_rows(pg, st, &p, out, err);
  if (rows < 0) return -1;
  /* An empty page is where a vanished `after` shows: its row gave no
   * bound, so nothing matched. Asked only then, so pages cost one query. */
  if (has_after && rows == 0) {
    pg_params q = {0};
    lls_pg_param_tenant(&q, pg);
    lls_pg_param_bytes(&q, after.ptr, after.len);
    PGresult *r = lls_pg_run_stmt(pg, &SS_EXISTS, &q, 1, err);
    if (r == NULL) return -1;
    int found = PQntuples(r) > 0;
    PQclear(r);
    if (!found)
      return lls_error_set(err, LLS_ENOTFOUND, "after: no session '%.*s'",
                           lls_pg_msg_len(after, 200), after.ptr);
  }
  return 0;
}

/* Appends column 0 of every row of r to the text[] a; -1 when out of
 * memory. */
static int ids_of(const PGresult *r, lls_buf *a) {
  int n = PQntuples(r);
  if (lls_pg_arr_init(a) != 0) return -1;
  for (int i = 0; i < n; i++)
    if (lls_pg_arr_add(a, PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0)) != 0) return -1;
  lls_pg_arr_finish(a, OID_TEXT, (size_t)n, 0);
  return 0;
}

/* One round: picks up to CLEANUP_BATCH expired sessions, locks their
 * artifacts, deletes the sessions and cascades; *picked and *removed say
 * how many (another cleanup may have taken some meanwhile). Inside the
 * caller's unit. */
static int cleanup_round(pg_backend *pg, int64_t now, int *picked, int *removed,
                         lls_error *err) {
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_int8(&p, CLEANUP_BATCH);
  lls_pg_param_time(&p, now);
  *picked = *removed = 0;
  PGresult *r = lls_pg_run_stmt(pg, &SS_CLEANUP_PICK, &p, 0, err);
  if (r == NULL) return -1;
  *picked = PQntuples(r);
  lls_buf *ids = &pg->arr[A_CONT], *gone = &pg->arr[A_DEL];
  int oom = ids_of(r, ids);
  PQclear(r);
  if (oom) return lls_error_oom(err);
  if (*picked == 0) return 0;
  if (over_ids(pg, &SS_LOCK_ARTIFACTS, ids, err) != 0) return -1;
  pg_params q = {0};
  lls_pg_param_tenant(&q, pg);
  lls_pg_param_buf(&q, ids);
  lls_pg_param_time(&q, now);
  if ((r = lls_pg_run_stmt(pg, &SS_CLEANUP_DELETE, &q, 0, err)) == NULL) return -1;
  *removed = PQntuples(r);
  oom = ids_of(r, gone);
  PQclear(r);
  if (oom) return lls_error_oom(err);
  return *removed > 0 ? cascade(pg, gone, err) : 0;
}

static int pg_cleanup(lls_backend *b, int64_t now, int64_t *removed, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  *removed = 0;
  if (lls_pg_unit_begin(pg, 0, err) != 0) return -1;
  int ok = 1, picked, n;
  int64_t total = 0;
  do {
    ok = cleanup_round(pg, now, &picked, &n, err) == 0;
    if (ok) total += n;
  } while (ok && picked == CLEANUP_BATCH);
  if (lls_pg_unit_end(pg, 0, ok, err) != 0) return -1;
  *removed = total;
  return 0;
}

static int pg_count(lls_backend *b, int64_t now, int64_t *n, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_time(&p, now);
  PGresult *r = lls_pg_run_stmt(pg, &SS_COUNT, &p, 1, err);
  if (r == NULL) return -1;
  *n = PQntuples(r) > 0 ? lls_pg_int8_at(r, 0, 0) : 0;
  PQclear(r);
  return 0;
}

static int pg_dump(lls_backend *b, lls_str after, int64_t now, size_t limit,
                   lls_session_sink sink, void *ud, size_t *n, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  /* every id is at least one byte, so > '' is "from the first" */
  id_now(&p, pg, after.ptr != NULL ? after : (lls_str){"", 0}, now);
  lls_pg_param_limit(&p, limit);
  *n = 0;
  PGresult *r = lls_pg_run_stmt(pg, &SS_DUMP, &p, 1, err);
  if (r == NULL) return -1;
  for (int i = 0, rows = PQntuples(r); i < rows; i++) {
    lls_session s;
    s.id = lls_pg_str_at(r, i, 0);
    read_row(r, i, 1, &s);
    s.tenant = (lls_str){pg->tenant, pg->tenant_len};
    if (sink(ud, &s, err) != 0) {
      PQclear(r);
      return -1;
    }
    (*n)++;
  }
  PQclear(r);
  return 0;
}

/* Runs SS_LOAD_INSERT or SS_LOAD_REPLACE for s, inside the unit. */
static int load_write(pg_backend *pg, const pg_stmt *st, const lls_session *s, int64_t now,
                      lls_error *err) {
  pg_params p = {0};
  id_now(&p, pg, s->id, now);
  lls_pg_param_bytes(&p, s->row_id.ptr, s->row_id.len);
  lls_pg_param_bytes(&p, s->status.ptr, s->status.len);
  lls_pg_param_bytes(&p, s->data.ptr, s->data.len);
  lls_pg_param_time(&p, s->created_at);
  lls_pg_param_time(&p, s->updated_at);
  lls_pg_param_time(&p, s->last_accessed_at);
  lls_pg_param_expiry(&p, s->expires_at);
  PGresult *r = lls_pg_run_stmt(pg, st, &p, 0, err);
  if (r == NULL) {
    data_error(err);
    return -1;
  }
  PQclear(r);
  return 0;
}

static int pg_load(lls_backend *b, const lls_session *s, lls_conflict on_conflict, int64_t now,
                   int *written, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  *written = 0;
  if (lls_pg_unit_begin(pg, 0, err) != 0) return -1;
  pg_params p = {0};
  id_now(&p, pg, s->id, now);
  /* FOR UPDATE: the row cannot change (or expire into a delete) between
   * this look and the write */
  PGresult *r = lls_pg_run_stmt(pg, &SS_LOAD_PROBE, &p, 0, err);
  int ok = r != NULL, w = 0;
  int found = ok && PQntuples(r) > 0;
  int visible = found && !PQgetisnull(r, 0, 0) && PQgetvalue(r, 0, 0)[0] != 0;
  PQclear(r);
  if (ok && visible) {
    if (on_conflict == LLS_CONFLICT_ERROR)
      ok = conflict(s->id, err) == 0;
    else if (on_conflict == LLS_CONFLICT_REPLACE)
      ok = w = load_write(pg, &SS_LOAD_REPLACE, s, now, err) == 0;
  } else if (ok) {
    int was_visible;
    if (found) ok = remove_one(pg, s->id, now, &was_visible, err) == 0;
    if (ok) ok = w = load_write(pg, &SS_LOAD_INSERT, s, now, err) == 0;
  }
  if (lls_pg_unit_end(pg, 0, ok, err) != 0) return -1;
  *written = w;
  return 0;
}

const lls_session_ops lls_postgres_session_ops = {
    .create = pg_create,
    .get = pg_get,
    .update = pg_update,
    .touch = pg_touch,
    .del = pg_del,
    .list = pg_list,
    .cleanup = pg_cleanup,
    .count = pg_count,
    .dump = pg_dump,
    .load = pg_load,
};
