/*
 * vec_scan.h -- the statements of the SQLite backend's vector scan slot
 * (vec_scan.c), which vectors.c runs.
 */
#ifndef LLS_BACKENDS_SQLITE_VEC_SCAN_H
#define LLS_BACKENDS_SQLITE_VEC_SCAN_H

#include "backend/vectors.h"

/* The statement text scan runs for order (lls_vec_order) with or without
 * a scope (NULL for an unknown order). */
const char *lls_sqlite_vec_scan_sql(int order, int scoped);

#endif
