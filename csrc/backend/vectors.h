/*
 * backend/vectors.h -- the vector-collection op table of the backend
 * contract: collections, their rows, change sequences and snapshots.
 */
#ifndef LLS_BACKEND_VECTORS_H
#define LLS_BACKEND_VECTORS_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/error.h"

typedef struct lls_backend lls_backend;

/* A collection's stored parameters. Collections belong to the tenant given
 * at open: two tenants may each have a collection named "docs". */
typedef struct lls_coll_info {
  int64_t id;          /* assigned by the backend, unique within the database */
  char name[256];      /* NUL-terminated */
  int dimension;       /* 1..4096 */
  int metric;          /* lls_metric from distance.h */
  int m, ef_construction, ef_search;
  int64_t created_at;  /* µs */
  int64_t seq;         /* change sequence: bumped by every write to the
                          collection; 0 for a new collection */
  int64_t count;       /* rows stored (expired or not) */
} lls_coll_info;

/* One vector row. Strings are borrowed: valid for the duration of the call
 * that passes them (to a backend, or to a sink). */
typedef struct lls_vec_row {
  lls_str id;          /* 1..512 bytes of UTF-8, unique within the collection */
  lls_str scope;       /* "global" unless the caller chose */
  lls_str vector;      /* dimension little-endian float32 values, packed */
  lls_str metadata;    /* JSON object text (value.h's encoding), "{}" if none */
  int64_t created_at, updated_at; /* µs */
  int64_t event_time;  /* µs; meaningful only when has_event_time */
  int has_event_time;
  int64_t expires_at;  /* µs; 0 = never */
  int64_t seq;         /* the collection seq of the write that made this
                          version of the row (set by the backend) */
  int deleted;         /* in change streams: 1 = the row was deleted at seq */
} lls_vec_row;

/* Receives rows streamed by load. Must not call back into the backend;
 * returning nonzero stops the stream, and load then fails with the
 * sink's own error in err (the sink fills it; LLS_EIO if it did not). */
typedef int (*lls_vec_sink)(void *ud, const lls_vec_row *row, lls_error *err);

/* What scan streams: live rows (expires_at == 0 || expires_at > now) of
 * one collection, optionally of one scope, in one of three orders, after
 * a resume point, at most limit of them. Strings are borrowed for the
 * call. Byte order for ids everywhere (memcmp). */
typedef enum lls_vec_order {
  LLS_VEC_BY_ID,      /* every row, by id */
  LLS_VEC_BY_TIME,    /* rows with an event_time, by (event_time, id) */
  LLS_VEC_UNTIMED     /* rows without an event_time, by id */
} lls_vec_order;

/* The most rows one scan call is asked for (the Lua layer's page): a
 * backend may write it into its statements, so the planner knows a page
 * is small (PostgreSQL plans a LIMIT parameter as a tenth of the table). */
#define LLS_VEC_SCAN_PAGE 256

typedef struct lls_vec_scan {
  lls_vec_order order;
  lls_str scope;       /* ptr NULL: every scope */
  int has_after;       /* 0: from the first row of the order */
  lls_str after_id;    /* has_after: rows whose id (or (event_time, id)) */
  int64_t after_time;  /* is greater; after_time only for LLS_VEC_BY_TIME */
  int64_t now;         /* µs: rows expired by then are left out */
  size_t limit;        /* 1..LLS_VEC_SCAN_PAGE */
} lls_vec_scan;

/* Receives collections listed by coll_list (same rules as lls_vec_sink). */
typedef int (*lls_coll_sink)(void *ud, const lls_coll_info *info, lls_error *err);

/* Writes follow the KV rules: atomic, part of an open transaction (a
 * savepoint inside one), the store unchanged after any failure. Every
 * write that changes something bumps the collection's seq by exactly one
 * and stamps the rows it writes (and the tombstones of rows it deletes)
 * with the new value, so another handle can catch up with load(since); an
 * empty write leaves seq alone. Every slot that takes a collection id
 * fails with LLS_ENOTFOUND when that collection was dropped or belongs to
 * another tenant. snap_save and snap_load may be NULL: a backend without
 * persistence (memory) keeps no snapshots. */
typedef struct lls_vec_ops {
  /* Creates a collection from info (name, dimension, metric, m,
   * ef_construction, ef_search); fills info->id, created_at = now, seq = 0.
   * LLS_ECONFLICT when the tenant already has one of that name. */
  int (*coll_create)(lls_backend *b, lls_coll_info *info, int64_t now, lls_error *err);

  /* Looks a collection up by name; *found = 0 when absent. */
  int (*coll_get)(lls_backend *b, const char *name, lls_coll_info *out, int *found,
                  lls_error *err);

  /* Streams the tenant's collections whose name starts with prefix (literal),
   * in name order. */
  int (*coll_list)(lls_backend *b, lls_str prefix, lls_coll_sink sink, void *ud,
                   lls_error *err);

  /* Drops a collection with its rows and snapshot; *dropped = 0 when absent. */
  int (*coll_drop)(lls_backend *b, const char *name, int *dropped, lls_error *err);

  /* The collection's current seq and row count (one indexed read: called
   * before searches to notice other handles' writes). */
  int (*coll_seq)(lls_backend *b, int64_t coll_id, int64_t *seq, int64_t *count,
                  lls_error *err);

  /* Writes n rows. insert_only: LLS_ECONFLICT (naming the id) if any id
   * already exists, nothing written; otherwise rows replace existing ones
   * with the same id. *seq receives the new collection seq. */
  int (*put)(lls_backend *b, int64_t coll_id, const lls_vec_row *rows, size_t n,
                 int insert_only, int64_t *seq, lls_error *err);

  /* Deletes the rows with the given ids (absent ids are ignored) and
   * records tombstones; *deleted counts rows removed, *seq the
   * collection's seq after the call. When nothing was deleted the seq
   * does not move, but *seq is the backend's current one, which may
   * include other handles' writes: callers must not take it as seen. */
  int (*del)(lls_backend *b, int64_t coll_id, const lls_str *ids, size_t n,
                    size_t *deleted, int64_t *seq, lls_error *err);

  /* Streams, in seq order, every row version and tombstone with seq > since
   * (since = 0: every live row, in any order, no tombstones). Rows carry
   * their seq. A backend that keeps no history that far back fails with
   * LLS_EVERSION, and the caller reloads from 0 (memory keeps none). */
  int (*load)(lls_backend *b, int64_t coll_id, int64_t since, lls_vec_sink sink,
                  void *ud, lls_error *err);

  /* Stores a snapshot of the collection's index taken at seq (replacing any
   * older one). Not part of the caller's transaction semantics beyond
   * atomicity: a stale snapshot is harmless, it is caught up from seq. */
  int (*snap_save)(lls_backend *b, int64_t coll_id, int64_t seq, const void *data,
                   size_t len, lls_error *err);

  /* Loads the latest snapshot into out (replacing its contents); *found = 0
   * when there is none. */
  int (*snap_load)(lls_backend *b, int64_t coll_id, lls_buf *out, int64_t *seq,
                   int *found, lls_error *err);

  /* Streams the rows q selects, in q's order, through an index of the
   * backend (a page of one enumeration: the caller resumes after the last
   * row it got). The sink gets each row once the page is read, so it may
   * not call back into the backend but a retried read repeats nothing. */
  int (*scan)(lls_backend *b, int64_t coll_id, const lls_vec_scan *q, lls_vec_sink sink,
              void *ud, lls_error *err);
} lls_vec_ops;

#endif
