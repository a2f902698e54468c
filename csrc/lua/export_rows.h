/*
 * export_rows.h -- the sections of an export document, written by one run
 * (export_job.h). Each raises on failure; the run cleans up.
 */
#ifndef LLS_LUA_EXPORT_ROWS_H
#define LLS_LUA_EXPORT_ROWS_H

#include "lua/export_job.h"

/* Lists the collections to export into j->colls, in name order.
 * names (stack index, 0 = all): the array of names the caller chose. */
void lls_export_list_collections(lua_State *L, lls_xjob *j, lls_handle *h, int names);

/* The number of records the export will write, for progress. */
int64_t lls_export_count_total(lua_State *L, lls_xjob *j, lls_handle *h, lls_str prefix,
                               int sections);

/* "kv_store": [...] -- the keys with the prefix (all when empty). */
void lls_export_kv(lua_State *L, lls_xjob *j, lls_handle *h, lls_str prefix);

/* "vector_collections": [...] -- every listed collection's parameters. */
void lls_export_collection_list(lls_xjob *j);

/* "vector_embeddings": {dimension: [...]} -- the listed collections' rows. */
void lls_export_vectors(lua_State *L, lls_xjob *j, lls_handle *h);

/* The passthrough sections, by name. */
void lls_export_sections(lua_State *L, lls_xjob *j, lls_handle *h);

#endif
