/*
 * kv.c -- the PostgreSQL backend's key-value slots (lls_kv_ops) over
 * kv_store: point reads and writes, batches as one statement, range scans.
 */
#include "backends/postgres/kv.h"

#include <stdint.h>
#include <stdlib.h>

#include "backends/postgres/conn.h"
#include "base/utf8.h"

/* Point read; the value stays in pg->held until the next call. */
static int pg_get(lls_backend *b, lls_str key, int64_t now, lls_str *out, int *found,
                  lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_bytes(&p, key.ptr, key.len);
  lls_pg_param_time(&p, now);
  *found = 0;
  PGresult *r = lls_pg_run(pg, ST_GET, &p, 1, err);
  if (r == NULL) return -1;
  if (PQntuples(r) > 0) {
    out->ptr = PQgetvalue(r, 0, 0);
    out->len = (size_t)PQgetlength(r, 0, 0);
    *found = 1;
  }
  pg->held = r;
  return 0;
}

/* Upsert; created_at survives only when a visible row existed. */
static int pg_set(lls_backend *b, lls_str key, lls_str value, int64_t expires_at, int64_t now,
                  lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_bytes(&p, key.ptr, key.len);
  lls_pg_param_bytes(&p, value.ptr, value.len);
  lls_pg_param_time(&p, now);
  lls_pg_param_expiry(&p, expires_at);
  PGresult *r = lls_pg_run(pg, ST_SET, &p, 0, err);
  if (r == NULL) return -1;
  PQclear(r);
  return 0;
}

/* Deletes the row even when expired (it is garbage anyway); *existed says
 * whether it was visible. */
static int pg_del(lls_backend *b, lls_str key, int64_t now, int *existed, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_bytes(&p, key.ptr, key.len);
  lls_pg_param_time(&p, now);
  *existed = 0;
  PGresult *r = lls_pg_run(pg, ST_DEL, &p, 0, err);
  if (r == NULL) return -1;
  if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)) *existed = PQgetvalue(r, 0, 0)[0] != 0;
  PQclear(r);
  return 0;
}

typedef struct op_ref {
  const lls_op *op;
  size_t i;
} op_ref;

/* By key, then by position, so each key's ops form one run in batch order. */
static int cmp_op_ref(const void *a, const void *b) {
  const op_ref *x = a, *y = b;
  int c = lls_str_cmp(x->op->key, y->op->key);
  if (c != 0) return c;
  return x->i < y->i ? -1 : x->i > y->i;
}

/* What a key's run of ops leaves behind, tracked while replaying it. */
enum { KEY_UNKNOWN, KEY_PRESENT, KEY_ABSENT };

/* Reduces ops to one final action per key and fills the array parameters
 * of ST_APPLY. *fixed receives the delete ops known to remove a visible row
 * without asking the database (those that follow a set of the same key).
 *
 * Definition of *deleted (the ops replayed in order): a delete counts when
 * the key was visible just before it. For the first op on a key that
 * depends on the database (counted by the statement, via A_CONT); after a
 * set it is known; after a delete it is 0. So "set k; delete k" counts 1,
 * "delete k; delete k" counts at most 1. */
static int reduce_ops(pg_backend *pg, const lls_op *ops, size_t n, int64_t now,
                      size_t *fixed, size_t counts[A_COUNT], int *keep_null,
                      int *fresh_null) {
  op_ref *refs = malloc(n * sizeof *refs);
  int rc = -1;
  if (refs == NULL) return -1;
  for (size_t i = 0; i < n; i++) refs[i].op = &ops[i], refs[i].i = i;
  qsort(refs, n, sizeof *refs, cmp_op_ref);
  for (int a = 0; a < A_COUNT; a++) {
    counts[a] = 0;
    if (lls_pg_arr_init(&pg->arr[a]) != 0) goto done;
  }
  *fixed = 0;
  *keep_null = *fresh_null = 0;
  for (size_t g = 0, e; g < n; g = e) {
    lls_str key = refs[g].op->key;
    int state = KEY_UNKNOWN, fresh = 0;
    for (e = g; e < n && lls_str_cmp(refs[e].op->key, key) == 0; e++) {
      const lls_op *op = refs[e].op;
      if (op->kind == LLS_OP_DELETE) {
        if (state == KEY_UNKNOWN) {
          if (lls_pg_arr_add(&pg->arr[A_CONT], key.ptr, key.len) != 0) goto done;
          counts[A_CONT]++;
        } else if (state == KEY_PRESENT) {
          (*fixed)++;
        }
        state = KEY_ABSENT;
      } else {
        /* A set onto an absent key starts a new row (new created_at); onto
         * an unknown one it keeps the database row's if that is visible. */
        if (state == KEY_ABSENT) fresh = 1;
        int visible = op->expires_at == 0 || op->expires_at > now;
        state = visible ? KEY_PRESENT : KEY_ABSENT;
      }
    }
    const lls_op *last = refs[e - 1].op;
    if (last->kind == LLS_OP_DELETE) {
      if (lls_pg_arr_add(&pg->arr[A_DEL], key.ptr, key.len) != 0) goto done;
      counts[A_DEL]++;
      continue;
    }
    int base = fresh ? A_FRESH_K : A_KEEP_K;
    if (lls_pg_arr_add(&pg->arr[base], key.ptr, key.len) != 0 ||
        lls_pg_arr_add(&pg->arr[base + 1], last->value.ptr, last->value.len) != 0 ||
        lls_pg_arr_add_expiry(&pg->arr[base + 2], last->expires_at) != 0)
      goto done;
    if (last->expires_at == 0) *(fresh ? fresh_null : keep_null) = 1;
    counts[base]++, counts[base + 1]++, counts[base + 2]++;
  }
  rc = 0;
done:
  free(refs);
  return rc;
}

/* Applies ops atomically in one statement (see ST_APPLY); inside a
 * transaction a savepoint keeps a failed batch from aborting it. */
static int pg_apply(lls_backend *b, const lls_op *ops, size_t n, int64_t now, size_t *deleted,
                    lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  size_t counts[A_COUNT], fixed;
  int keep_null, fresh_null;
  static const Oid elem[A_COUNT] = {OID_TEXT, OID_TEXT,  OID_TEXT, OID_BYTEA,
                                    OID_TSTZ, OID_TEXT, OID_BYTEA, OID_TSTZ};
  *deleted = 0;
  if (n == 0) return 0;
  if (reduce_ops(pg, ops, n, now, &fixed, counts, &keep_null, &fresh_null) != 0)
    return lls_error_set(err, LLS_EIO, "out of memory (or an element over 2 GB)");
  for (int a = 0; a < A_COUNT; a++) {
    int hasnull = (a == A_KEEP_E && keep_null) || (a == A_FRESH_E && fresh_null);
    lls_pg_arr_finish(&pg->arr[a], elem[a], counts[a], hasnull);
  }
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_time(&p, now);
  for (int a = 0; a < A_COUNT; a++) lls_pg_param_buf(&p, &pg->arr[a]);

  int in_tx = pg->txdepth > 0;
  if (in_tx && lls_pg_command(pg, "SAVEPOINT lls_batch", NULL, err) != 0) return -1;
  PGresult *r = lls_pg_run(pg, ST_APPLY, &p, 0, err);
  if (r == NULL) {
    if (in_tx && !lls_pg_conn_lost(pg))
      PQclear(PQexec(pg->conn, "ROLLBACK TO SAVEPOINT lls_batch; RELEASE SAVEPOINT lls_batch"));
    return -1;
  }
  size_t cont = 0;
  if (PQntuples(r) > 0) cont = (size_t)lls_pg_int8_at(r, 0, 0);
  PQclear(r);
  if (in_tx && lls_pg_command(pg, "RELEASE SAVEPOINT lls_batch", NULL, err) != 0) {
    if (!lls_pg_conn_lost(pg))
      PQclear(PQexec(pg->conn, "ROLLBACK TO SAVEPOINT lls_batch; RELEASE SAVEPOINT lls_batch"));
    return -1;
  }
  *deleted = fixed + cont;
  return 0;
}

/* One statement with the keys as an array (one round trip). */
static int pg_get_many(lls_backend *b, const lls_str *keys, size_t n, int64_t now,
                       lls_rows *out, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  if (n == 0) return 0;
  lls_buf *a = &pg->arr[A_CONT];
  if (lls_pg_arr_init(a) != 0) return lls_error_oom(err);
  for (size_t i = 0; i < n; i++)
    if (lls_pg_arr_add(a, keys[i].ptr, keys[i].len) != 0) return lls_error_oom(err);
  lls_pg_arr_finish(a, OID_TEXT, n, 0);
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_buf(&p, a);
  lls_pg_param_time(&p, now);
  PGresult *r = lls_pg_run(pg, ST_GET_MANY, &p, 1, err);
  if (r == NULL) return -1;
  for (int i = 0, rows = PQntuples(r); i < rows; i++) {
    if (lls_rows_add(out, PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0),
                     PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1)) == NULL) {
      PQclear(r);
      return lls_error_oom(err);
    }
  }
  PQclear(r);
  return 0;
}

/* Literal prefix range [prefix, upper), starting after `after` when that
 * lies inside it; an index range scan in key order. */
static int pg_scan(lls_backend *b, lls_str prefix, lls_str after, int64_t now, size_t limit,
                   int keys_only, lls_rows *out, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  int has_upper;
  if (lls_prefix_upper(prefix, &pg->upper, &has_upper) != 0) return lls_error_oom(err);
  lls_str upper = {pg->upper.data, pg->upper.len};
  /* key > after && key >= prefix is key > after when after >= prefix. */
  int strict = after.ptr != NULL && lls_str_cmp(after, prefix) >= 0;
  lls_str lower = strict ? after : prefix;
  if (has_upper && lls_str_cmp(lower, upper) >= 0) return 0;
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_bytes(&p, lower.ptr, lower.len);
  if (has_upper)
    lls_pg_param_bytes(&p, upper.ptr, upper.len);
  else
    lls_pg_param_null(&p);
  lls_pg_param_time(&p, now);
  lls_pg_param_bool(&p, keys_only);
  lls_pg_param_limit(&p, limit);
  int st = has_upper ? (strict ? ST_SCAN_GT_U : ST_SCAN_GE_U) : (strict ? ST_SCAN_GT : ST_SCAN_GE);
  PGresult *r = lls_pg_run(pg, st, &p, 1, err);
  if (r == NULL) return -1;
  for (int i = 0, rows = PQntuples(r); i < rows; i++) {
    lls_row *row = lls_rows_add(out, PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0),
                                PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1));
    if (row == NULL) {
      PQclear(r);
      return lls_error_oom(err);
    }
    row->created_at = lls_pg_time_or_zero(r, i, 2);
    row->updated_at = lls_pg_time_or_zero(r, i, 3);
    row->expires_at = lls_pg_time_or_zero(r, i, 4);
  }
  PQclear(r);
  return 0;
}

/* Deletes every row of this tenant (and only this tenant). */
static int pg_clear(lls_backend *b, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  PGresult *r = lls_pg_run(pg, ST_CLEAR, &p, 0, err);
  if (r == NULL) return -1;
  PQclear(r);
  return 0;
}

/* Visible keys of this tenant and their key + value bytes. */
static int pg_stats(lls_backend *b, int64_t now, lls_kv_stats *out, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_time(&p, now);
  PGresult *r = lls_pg_run(pg, ST_STATS, &p, 1, err);
  if (r == NULL) return -1;
  out->keys = PQntuples(r) > 0 ? lls_pg_int8_at(r, 0, 0) : 0;
  out->bytes = PQntuples(r) > 0 ? lls_pg_int8_at(r, 0, 1) : 0;
  PQclear(r);
  return 0;
}

/* Removes up to limit expired rows, oldest expiry first, through the
 * partial (tenant_id, expires_at) index. */
static int pg_sweep(lls_backend *b, int64_t now, size_t limit, size_t *removed,
                    lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  *removed = 0;
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_time(&p, now);
  lls_pg_param_int8(&p, limit > 0 && limit <= INT64_MAX ? (int64_t)limit : INT64_MAX);
  PGresult *r = lls_pg_run(pg, ST_SWEEP, &p, 0, err);
  if (r == NULL) return -1;
  *removed = (size_t)strtoull(PQcmdTuples(r), NULL, 10);
  PQclear(r);
  return 0;
}

const lls_kv_ops lls_postgres_kv_ops = {
    .get = pg_get,
    .set = pg_set,
    .del = pg_del,
    .apply = pg_apply,
    .get_many = pg_get_many,
    .scan = pg_scan,
    .clear = pg_clear,
    .stats = pg_stats,
    .sweep = pg_sweep,
};
