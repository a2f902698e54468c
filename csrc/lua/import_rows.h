/*
 * import_rows.h -- the records of an import: each function checks one
 * assembled value and buffers it, writing a batch when it is full. All
 * return 1 when fine, 0 after recording the failure in the run.
 */
#ifndef LLS_LUA_IMPORT_ROWS_H
#define LLS_LUA_IMPORT_ROWS_H

#include "lua/import_job.h"

/* One data.kv_store entry. */
int lls_import_take_kv(lls_ijob *j, const lls_value *rec);

/* One vector of data.vector_embeddings.<dimension>. */
int lls_import_take_vec(lls_ijob *j, const lls_value *rec);

/* One collection of data.vector_collections: created unless the store
 * has it (then it must have the same dimension). */
int lls_import_take_coll(lls_ijob *j, const lls_value *rec);

/* A passthrough section starts (its key is in j->secname). */
int lls_import_begin_section(lls_ijob *j);

/* One item of a passthrough section (or the section, when it is one value). */
int lls_import_take_sec(lls_ijob *j, const lls_value *v);

/* Reads pgvector text "[1,2.5,-3e-2]" into j->floats (packed float32).
 * The count of numbers; -1 when malformed, -2 when out of memory. */
int64_t lls_import_pgvector(lls_ijob *j, const char *s, size_t n);

/* Writes every buffered batch. */
int lls_import_flush_all(lls_ijob *j);

#endif
