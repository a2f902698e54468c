/*
 * vec_scan.h -- the SQLite backend's vector scan slot (vec_scan.c), which
 * vectors.c puts in its op table.
 */
#ifndef LLS_BACKENDS_SQLITE_VEC_SCAN_H
#define LLS_BACKENDS_SQLITE_VEC_SCAN_H

#include "backend/vectors.h"

/* lls_vec_ops.scan for SQLite. */
int lls_sqlite_vec_scan(lls_backend *b, int64_t coll_id, const lls_vec_scan *q,
                        lls_vec_sink sink, void *ud, lls_error *err);

/* The statement text scan runs for order (lls_vec_order) with or without
 * a scope (NULL for an unknown order): for the specs' EXPLAIN. */
const char *lls_sqlite_vec_scan_sql(int order, int scoped);

#endif
