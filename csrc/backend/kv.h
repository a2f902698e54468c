/*
 * backend/kv.h -- the key-value op table of the backend contract.
 *
 * Conventions (as for every op table, see backend.h): return 0 on success,
 * -1 with *err filled; times are int64 microseconds passed in by the core
 * as `now`; expires_at == 0 means "never expires"; a row is visible iff
 * expires_at == 0 || expires_at > now; keys are valid UTF-8 without NUL
 * (checked by the core against base/limits.h) ordered by bytes (memcmp);
 * values are arbitrary bytes; a backend never reads or writes another
 * tenant's rows.
 */
#ifndef LLS_BACKEND_KV_H
#define LLS_BACKEND_KV_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/error.h"

typedef struct lls_backend lls_backend;

/* One key-value operation of an atomic batch. */
typedef enum lls_op_kind { LLS_OP_SET, LLS_OP_DELETE } lls_op_kind;

typedef struct lls_op {
  lls_op_kind kind;
  lls_str key;
  lls_str value;      /* LLS_OP_SET only */
  int64_t expires_at; /* LLS_OP_SET only; 0 = never */
} lls_op;

/* What stats() reports; the core adds the handle-level figures. */
typedef struct lls_kv_stats {
  int64_t keys;  /* visible keys of this tenant */
  int64_t bytes; /* sum of key + value lengths of those keys */
} lls_kv_stats;

typedef struct lls_kv_ops {
  /* Point read. *found = 0/1. On found, *out points at the value bytes and
   * stays valid until the next call on b. */
  int (*get)(lls_backend *b, lls_str key, int64_t now, lls_str *out, int *found,
             lls_error *err);

  /* Upsert one key. created_at is kept when a visible row already exists. */
  int (*set)(lls_backend *b, lls_str key, lls_str value, int64_t expires_at,
             int64_t now, lls_error *err);

  /* Deletes one key; *existed = 1 when a visible row was removed. */
  int (*del)(lls_backend *b, lls_str key, int64_t now, int *existed, lls_error *err);

  /* Applies ops in order, all or nothing (a savepoint when a transaction is
   * open, its own transaction otherwise). *deleted counts delete ops that
   * removed a visible row. On failure the store is exactly as before. */
  int (*apply)(lls_backend *b, const lls_op *ops, size_t n, int64_t now,
               size_t *deleted, lls_error *err);

  /* Looks up n keys; appends one row per visible key found (any order). */
  int (*get_many)(lls_backend *b, const lls_str *keys, size_t n, int64_t now,
                  lls_rows *out, lls_error *err);

  /* Appends visible rows whose key starts with prefix (literally: no
   * wildcards) and is > after (when after.ptr != NULL), in key order, at
   * most limit rows (0 = no limit). keys_only: values may be left empty.
   * Rows carry created_at/updated_at/expires_at for export. */
  int (*scan)(lls_backend *b, lls_str prefix, lls_str after, int64_t now, size_t limit,
              int keys_only, lls_rows *out, lls_error *err);

  /* Removes every row of this tenant. */
  int (*clear)(lls_backend *b, lls_error *err);

  int (*stats)(lls_backend *b, int64_t now, lls_kv_stats *out, lls_error *err);

  /* Physically removes up to `limit` expired rows (an indexed range, never
   * a full scan); *removed says how many. Called by the core outside
   * transactions, at most about once a second. */
  int (*sweep)(lls_backend *b, int64_t now, size_t limit, size_t *removed,
               lls_error *err);
} lls_kv_ops;

#endif
