/*
 * vec_scan.h -- the memory backend's vector scan slot (vec_scan.c), which
 * vectors.c puts in its op table.
 */
#ifndef LLS_BACKENDS_MEMORY_VEC_SCAN_H
#define LLS_BACKENDS_MEMORY_VEC_SCAN_H

#include "backend/vectors.h"

/* lls_vec_ops.scan for memory. */
int lls_memory_vec_scan(lls_backend *b, int64_t id, const lls_vec_scan *q, lls_vec_sink sink,
                        void *ud, lls_error *err);

#endif
