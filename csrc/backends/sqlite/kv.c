/*
 * kv.c -- the SQLite backend's key-value slots (lls_kv_ops) over kv_store.
 * Every row carries a checksum (rowsum.h): written with it, checked on
 * every read that returns its value.
 */
#include "backends/sqlite/kv.h"

#include "backends/sqlite/conn.h"
#include "backends/sqlite/rowsum.h"
#include "base/utf8.h"

/* Point read; the value is copied into b->value because the statement is
 * reset (and its memory reused) before returning. A row that fails its
 * checksum is LLS_EINTEGRITY, never a value. */
static int sqlite_get(lls_backend *base, lls_str key, int64_t now, lls_str *out, int *found,
                      lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  sqlite3_stmt *s = lls_sqlite_stmt(b, ST_GET, err);
  if (s == NULL) return -1;
  int rc = bind_tenant(b, s);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 2, key, 1);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 3, now);
  if (rc != SQLITE_OK) {
    done(s);
    return lls_sqlite_fail(b->db, rc, "get", err);
  }
  rc = sqlite3_step(s);
  *found = 0;
  if (rc == SQLITE_ROW) {
    lls_str v;
    b->value.len = 0;
    if (column_bytes(s, 0, &v, 0) != 0 || lls_buf_append(&b->value, v.ptr, v.len) != 0) {
      done(s);
      return lls_error_oom(err);
    }
    if (lls_rowsum_check_kv(b->tenant_sum, key, v, sqlite3_column_int64(s, 1), s, 2, "get",
                            err) != 0) {
      done(s);
      return -1;
    }
    out->ptr = b->value.len ? b->value.data : "";
    out->len = b->value.len;
    *found = 1;
    /* (tenant_id, key) is the primary key: no second row can follow, so
     * the statement is reset here instead of stepped to its end. */
    rc = SQLITE_DONE;
  }
  if (rc != SQLITE_DONE) {
    lls_sqlite_fail(b->db, rc, "get", err);
    done(s);
    return -1;
  }
  done(s);
  return 0;
}

/* Upsert without transaction handling; shared by set() and apply(). */
static int do_set(sqlite_backend *b, lls_str key, lls_str value, int64_t expires_at,
                  int64_t now, lls_error *err) {
  sqlite3_stmt *s = lls_sqlite_stmt(b, ST_SET, err);
  if (s == NULL) return -1;
  int rc = bind_tenant(b, s);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 2, key, 1);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 3, now);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 4, value, 0);
  if (rc == SQLITE_OK) rc = bind_expiry(s, 5, expires_at);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_int64(s, 6, lls_rowsum_kv(b->tenant_sum, key, value, expires_at));
  if (rc == SQLITE_OK) rc = sqlite3_step(s);
  if (rc != SQLITE_DONE) {
    lls_sqlite_fail(b->db, rc, "set", err);
    done(s);
    return -1;
  }
  done(s);
  return 0;
}

/* Delete without transaction handling; *existed = a visible row went. */
static int do_del(sqlite_backend *b, lls_str key, int64_t now, int *existed, lls_error *err) {
  sqlite3_stmt *s = lls_sqlite_stmt(b, ST_DEL, err);
  if (s == NULL) return -1;
  int rc = bind_tenant(b, s);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 2, key, 1);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 3, now);
  if (rc == SQLITE_OK) rc = sqlite3_step(s);
  if (rc != SQLITE_DONE) {
    lls_sqlite_fail(b->db, rc, "delete", err);
    done(s);
    return -1;
  }
  *existed = sqlite3_changes(b->db) > 0;
  done(s);
  return 0;
}

/* One statement is atomic by itself, so set() needs no transaction. */
static int sqlite_set(lls_backend *base, lls_str key, lls_str value, int64_t expires_at,
                      int64_t now, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  if (lls_sqlite_check_txn(b, err) != 0) return -1;
  return do_set(b, key, value, expires_at, now, err);
}

static int sqlite_del(lls_backend *base, lls_str key, int64_t now, int *existed,
                      lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  if (lls_sqlite_check_txn(b, err) != 0) return -1;
  return do_del(b, key, now, existed, err);
}

/* All-or-nothing batch, in one unit (see lls_sqlite_unit_begin). */
static int sqlite_apply(lls_backend *base, const lls_op *ops, size_t n, int64_t now,
                        size_t *deleted, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  int nested;
  if (lls_sqlite_unit_begin(b, &nested, "batch", err) != 0) return -1;
  size_t count = 0;
  for (size_t i = 0; i < n; i++) {
    const lls_op *op = &ops[i];
    if (op->kind == LLS_OP_SET) {
      if (do_set(b, op->key, op->value, op->expires_at, now, err) != 0) goto fail;
    } else {
      int existed;
      if (do_del(b, op->key, now, &existed, err) != 0) goto fail;
      count += (size_t)existed;
    }
  }
  if (lls_sqlite_unit_commit(b, nested, nested ? "batch" : "batch commit", err) != 0) goto fail;
  *deleted = count;
  return 0;

fail:
  lls_sqlite_unit_abort(b, nested);
  return -1;
}

/* Appends the row at the current step of s (columns: value, created_at,
 * updated_at, expires_at, crc starting at column `vcol`) under key k,
 * after checking its checksum unless keys_only (the value was not read). */
static int add_row(sqlite_backend *b, lls_rows *out, lls_str k, sqlite3_stmt *s, int vcol,
                   int keys_only, const char *what, lls_error *err) {
  lls_str v;
  if (column_bytes(s, vcol, &v, 0) != 0) return lls_error_oom(err);
  int64_t expires_at = sqlite3_column_int64(s, vcol + 3); /* NULL reads as 0 */
  if (!keys_only &&
      lls_rowsum_check_kv(b->tenant_sum, k, v, expires_at, s, vcol + 4, what, err) != 0)
    return -1;
  lls_row *row = lls_rows_add(out, k.ptr, k.len, v.ptr, v.len);
  if (row == NULL) return lls_error_oom(err);
  row->created_at = sqlite3_column_int64(s, vcol + 1);
  row->updated_at = sqlite3_column_int64(s, vcol + 2);
  row->expires_at = expires_at;
  return 0;
}

/* Point reads inside one read transaction, so the result is a snapshot
 * (and the WAL read lock is taken once rather than per key). */
static int sqlite_get_many(lls_backend *base, const lls_str *keys, size_t n, int64_t now,
                           lls_rows *out, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  if (n == 0) return 0;
  sqlite3_stmt *s = lls_sqlite_stmt(b, ST_GET_ROW, err);
  if (s == NULL) return -1;
  int own = sqlite3_get_autocommit(b->db);
  if (own && lls_sqlite_exec_cached(b, ST_BEGIN_READ, "get_many", err) != 0) return -1;
  for (size_t i = 0; i < n; i++) {
    int rc = bind_tenant(b, s);
    if (rc == SQLITE_OK) rc = bind_bytes(s, 2, keys[i], 1);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 3, now);
    if (rc == SQLITE_OK) rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
      if (add_row(b, out, keys[i], s, 0, 0, "get_many", err) != 0) goto fail;
      rc = sqlite3_step(s);
    }
    if (rc != SQLITE_DONE) {
      lls_sqlite_fail(b->db, rc, "get_many", err);
      goto fail;
    }
    done(s);
  }
  if (own && lls_sqlite_exec_cached(b, ST_COMMIT, "get_many", err) != 0) goto fail_txn;
  return 0;
fail:
  done(s);
fail_txn:
  if (own) lls_sqlite_abort_txn(b);
  return -1;
}

/* Literal prefix scan as an index range: [prefix, upper) where upper is the
 * smallest string above every extension of prefix, tightened to (after, ..)
 * when resuming past a key. No LIKE, so '%', '_' and '\' mean themselves. */
static int sqlite_scan(lls_backend *base, lls_str prefix, lls_str after, int64_t now,
                       size_t limit, int keys_only, lls_rows *out, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  int has_upper;
  if (lls_prefix_upper(prefix, &b->upper, &has_upper) != 0) return lls_error_oom(err);
  lls_str lower = prefix;
  int strict = 0;
  if (after.ptr != NULL && lls_str_cmp(after, prefix) >= 0) {
    lower = after;
    strict = 1;
  }
  int id = strict ? (has_upper ? ST_SCAN_GT_LT : ST_SCAN_GT)
                  : (has_upper ? ST_SCAN_GE_LT : ST_SCAN_GE);
  sqlite3_stmt *s = lls_sqlite_stmt(b, id, err);
  if (s == NULL) return -1;
  lls_str upper = {b->upper.data, b->upper.len};
  int rc = bind_tenant(b, s);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 2, lower, 1);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 3, now);
  if (rc == SQLITE_OK && has_upper) rc = bind_bytes(s, 4, upper, 1);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int(s, 5, keys_only != 0);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 6, limit ? clamp_limit(limit) : -1);
  if (rc != SQLITE_OK) {
    done(s);
    return lls_sqlite_fail(b->db, rc, "scan", err);
  }
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    lls_str k;
    if (column_bytes(s, 0, &k, 1) != 0) {
      done(s);
      return lls_error_oom(err);
    }
    if (add_row(b, out, k, s, 1, keys_only, "scan", err) != 0) {
      done(s);
      return -1;
    }
  }
  if (rc != SQLITE_DONE) {
    lls_sqlite_fail(b->db, rc, "scan", err);
    done(s);
    return -1;
  }
  done(s);
  return 0;
}

static int sqlite_clear(lls_backend *base, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  if (lls_sqlite_check_txn(b, err) != 0) return -1;
  sqlite3_stmt *s = lls_sqlite_stmt(b, ST_CLEAR, err);
  if (s == NULL) return -1;
  int rc = bind_tenant(b, s);
  if (rc == SQLITE_OK) rc = sqlite3_step(s);
  if (rc != SQLITE_DONE) {
    lls_sqlite_fail(b->db, rc, "clear", err);
    done(s);
    return -1;
  }
  done(s);
  return 0;
}

static int sqlite_stats(lls_backend *base, int64_t now, lls_kv_stats *out, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  sqlite3_stmt *s = lls_sqlite_stmt(b, ST_STATS, err);
  if (s == NULL) return -1;
  int rc = bind_tenant(b, s);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 3, now);
  if (rc == SQLITE_OK) rc = sqlite3_step(s);
  if (rc != SQLITE_ROW) {
    lls_sqlite_fail(b->db, rc, "stats", err);
    done(s);
    return -1;
  }
  out->keys = sqlite3_column_int64(s, 0);
  out->bytes = sqlite3_column_int64(s, 1);
  done(s);
  return 0;
}

/* Runs the sweep probe: 1 when this tenant has an expired row, 0 when not,
 * -1 + err on failure. */
static int has_expired(sqlite_backend *b, int64_t now, lls_error *err) {
  sqlite3_stmt *s = lls_sqlite_stmt(b, ST_SWEEP_PROBE, err);
  if (s == NULL) return -1;
  int rc = bind_tenant(b, s);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 3, now);
  if (rc == SQLITE_OK) rc = sqlite3_step(s);
  int found = rc == SQLITE_ROW;
  if (!found && rc != SQLITE_DONE) lls_sqlite_fail(b->db, rc, "sweep", err);
  done(s);
  return (found || rc == SQLITE_DONE) ? found : -1;
}

/* Bounded delete of expired rows, found through the partial index on
 * (tenant_id, expires_at); one autocommit statement. Sweeping is
 * housekeeping the core runs before a write, so it must not add latency:
 * a read probe first (the usual answer, "nothing expired", then costs no
 * write lock at all), and no waiting for a lock another connection holds
 * (the caller's own write would otherwise wait twice). */
static int sqlite_sweep(lls_backend *base, int64_t now, size_t limit, size_t *removed,
                        lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  *removed = 0;
  if (limit == 0) return 0;
  if (lls_sqlite_check_txn(b, err) != 0) return -1;
  int any = has_expired(b, now, err);
  if (any <= 0) return any;
  sqlite3_stmt *s = lls_sqlite_stmt(b, ST_SWEEP, err);
  if (s == NULL) return -1;
  int rc = bind_tenant(b, s);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 2, clamp_limit(limit));
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 3, now);
  if (rc == SQLITE_OK) {
    sqlite3_busy_timeout(b->db, 0);
    rc = sqlite3_step(s);
    sqlite3_busy_timeout(b->db, b->busy_ms);
  }
  if (rc != SQLITE_DONE) {
    lls_sqlite_fail(b->db, rc, "sweep", err);
    done(s);
    return -1;
  }
  *removed = (size_t)sqlite3_changes(b->db);
  done(s);
  return 0;
}

const lls_kv_ops lls_sqlite_kv_ops = {
    .get = sqlite_get,
    .set = sqlite_set,
    .del = sqlite_del,
    .apply = sqlite_apply,
    .get_many = sqlite_get_many,
    .scan = sqlite_scan,
    .clear = sqlite_clear,
    .stats = sqlite_stats,
    .sweep = sqlite_sweep,
};
