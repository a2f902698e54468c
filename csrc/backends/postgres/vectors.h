/*
 * vectors.h -- the PostgreSQL backend's vector-collection op table
 * (vectors.c), over collections, vectors, vector_tombstones and
 * vector_snapshots (schema.c), and what xport.c shares of it.
 */
#ifndef LLS_BACKENDS_POSTGRES_VECTORS_H
#define LLS_BACKENDS_POSTGRES_VECTORS_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/vectors.h"
#include "base/buf.h"
#include "base/error.h"

extern const lls_vec_ops lls_postgres_vec_ops;

/* Fills err with LLS_ENOTFOUND for a collection that was dropped or
 * belongs to another tenant. Returns -1. */
int lls_pg_coll_missing(lls_error *err, int64_t coll_id);

/* Fills row from row i of a result whose first columns are a vector row's
 * (id, scope, vector, metadata::text, created_at, updated_at, event_time,
 * expires_at, seq: schema.c's VEC_COLS); deleted = 0. Strings are borrowed
 * from r. */
void lls_pg_vec_row_at(const PGresult *r, int i, lls_vec_row *row);

/* A string and its position in a batch, for sorting a batch by string
 * (lls_pg_cmp_id_ref: by bytes, then by position) to find repeats. */
typedef struct lls_pg_id_ref {
  lls_str id;
  size_t i;
} lls_pg_id_ref;

int lls_pg_cmp_id_ref(const void *a, const void *b);

#endif
