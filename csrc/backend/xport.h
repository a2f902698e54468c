/*
 * backend/xport.h -- the export/import op table of the backend contract.
 *
 * Reads page through the data in a fixed order so an export holds a
 * bounded amount in memory and is the same bytes every time; writes happen
 * inside a transaction the importer opened (the backend's begin/commit/
 * rollback).
 */
#ifndef LLS_BACKEND_XPORT_H
#define LLS_BACKEND_XPORT_H

#include <stddef.h>
#include <stdint.h>

#include "backend/vectors.h"
#include "base/buf.h"
#include "base/error.h"

typedef struct lls_backend lls_backend;

/* What an import does with a record whose key or id already exists. */
typedef enum lls_conflict {
  LLS_CONFLICT_REPLACE, /* the record wins */
  LLS_CONFLICT_SKIP,    /* the stored row wins; the record is not written */
  LLS_CONFLICT_ERROR    /* LLS_ECONFLICT naming the key or id; nothing written */
} lls_conflict;

/* A key-value record as export/import carries it: everything the row
 * holds, including what the KV API does not show (metadata, kv_id). */
typedef struct lls_kv_rec {
  lls_str key, value;
  lls_str metadata; /* JSON text; len 0 = none */
  lls_str kv_id;    /* rs-llmspell's record id; len 0 = none */
  int64_t created_at, updated_at, expires_at; /* µs; expires 0 = never */
} lls_kv_rec;

typedef struct lls_xport_ops {
  /* Appends up to `limit` visible KV rows with key > after (after.ptr NULL:
   * from the first), in key order, with value, metadata (lls_row moff/mlen),
   * kv_id (ioff/ilen) and times. */
  int (*kv_dump)(lls_backend *b, lls_str after, int64_t now, size_t limit, lls_rows *out,
                 lls_error *err);

  /* Writes records keeping their times, metadata and kv_id, resolving
   * existing visible keys by on_conflict; *written counts records written.
   * With LLS_CONFLICT_ERROR nothing is written when any key exists. */
  int (*kv_load)(lls_backend *b, const lls_kv_rec *recs, size_t n, lls_conflict on_conflict,
                 int64_t now, size_t *written, lls_error *err);

  /* Streams up to `limit` live rows with id > after_id (after_id.ptr NULL:
   * from the first) in id order (bytes), for a deterministic export. */
  int (*vec_dump)(lls_backend *b, int64_t coll_id, lls_str after_id, size_t limit,
                  lls_vec_sink sink, void *ud, lls_error *err);

  /* present[i] = 1 when ids[i] has a row (for on_conflict skip/error). */
  int (*vec_has)(lls_backend *b, int64_t coll_id, const lls_str *ids, size_t n,
                 unsigned char *present, lls_error *err);

  /* Stores n records of passthrough sections (rs-llmspell's agent_state,
   * sessions, ...), replacing any with the same (section, ord). json[i] is
   * one JSON value; ord -1 means the section is that one value (an object
   * such as knowledge_graph) rather than an array of records. */
  int (*sec_put)(lls_backend *b, const lls_str *sections, const int64_t *ords,
                 const lls_str *json, size_t n, lls_error *err);

  /* Appends up to `limit` stored section records after (after_section,
   * after_ord) in (section, ord) order: key = section, value = JSON text,
   * created_at = ord. after_section.ptr NULL: from the first. */
  int (*sec_dump)(lls_backend *b, lls_str after_section, int64_t after_ord, size_t limit,
                  lls_rows *out, lls_error *err);

  /* Removes the stored records of one section (section.len 0: of all). */
  int (*sec_clear)(lls_backend *b, lls_str section, lls_error *err);
} lls_xport_ops;

#endif
