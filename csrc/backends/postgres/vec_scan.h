/*
 * vec_scan.h -- the statements of the PostgreSQL backend's vector scan
 * slot (vec_scan.c), which vectors.c runs.
 */
#ifndef LLS_BACKENDS_POSTGRES_VEC_SCAN_H
#define LLS_BACKENDS_POSTGRES_VEC_SCAN_H

#include "backend/vectors.h"
#include "backends/postgres/schema.h"

/* The statement scan prepares for order (lls_vec_order) with or without a
 * scope; NULL for an unknown order. */
const pg_stmt *lls_pg_vec_scan_stmt(int order, int scoped);

#endif
