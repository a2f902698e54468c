/*
 * backends/memory/vectors.h -- the memory backend's vector-collection op
 * table, and the layout of its records, which export (xport.c) reads too.
 *
 * Records in the handle's vec map, all under one-byte prefixes:
 *   "N" name               -> collection id (8 bytes)
 *   "I" id (8 bytes, BE)   -> lls_coll_info
 *   "R" id (8 bytes, BE) row id -> packed row (row_head, scope, metadata,
 *                                   vector)
 * Big-endian ids keep one collection's rows together in key order. A
 * memory store belongs to one handle, so no other handle ever needs the
 * change history: vec_load(since > 0) answers LLS_EVERSION and the caller
 * reloads; snapshots are not kept (the graph is rebuilt on reopen, which
 * for a store that dies with its handle means never).
 */
#ifndef LLS_BACKENDS_MEMORY_VECTORS_H
#define LLS_BACKENDS_MEMORY_VECTORS_H

#include <stddef.h>
#include <stdint.h>

#include "backend/vectors.h"
#include "backends/memory/map.h"
#include "base/buf.h"
#include "base/error.h"

extern const lls_vec_ops lls_memory_vec_ops;

/* Bytes of "R" id that start every row key of a collection. */
#define LLS_MEMORY_ROW_PREFIX 9

/* Reads the record of collection id from the vec map v into *out. 0, or
 * -1 with LLS_ENOTFOUND when there is none (dropped, or never made). */
int lls_memory_coll_find(const lls_memory_map *v, int64_t id, lls_coll_info *out,
                         lls_error *err);

/* Builds in out the key of row rid of collection id ("R" id rid); an empty
 * rid gives the prefix of all the collection's rows. 0, or -1 when out of
 * memory. */
int lls_memory_row_key(lls_buf *out, int64_t id, lls_str rid);

/* Sets *exists to whether collection id has a row rid, expired or not,
 * building its key in k. 0, or -1 with LLS_EIO when out of memory. */
int lls_memory_row_exists(const lls_memory_map *v, lls_buf *k, int64_t id, lls_str rid,
                          int *exists, lls_error *err);

/* A row record (key k, value v) as an lls_vec_row borrowing the record's
 * bytes. */
void lls_memory_unpack_row(lls_str k, lls_str v, lls_vec_row *r);

#endif
