/*
 * backend.h -- the contract every storage backend implements.
 *
 * The Lua-facing core (kv.c) never talks to SQLite or libpq directly: it
 * checks arguments, computes times, and calls through an lls_backend_vt.
 * Backends contain no Lua code, so each can be read (and tested) alone.
 *
 * Conventions for every function pointer below:
 *   - return 0 on success, -1 on failure with *err filled (lls_error_set);
 *   - times are int64 microseconds since the Unix epoch, computed by the core
 *     and passed in as `now`, so every backend agrees on what "expired" means;
 *     expires_at == 0 means "never expires";
 *   - a row is visible iff expires_at == 0 || expires_at > now;
 *   - keys are valid UTF-8 without NUL bytes (checked by the core), ordered
 *     by bytes (memcmp), which for UTF-8 is code point order;
 *   - values are arbitrary bytes (NUL, invalid UTF-8, empty);
 *   - every row belongs to the tenant given at open; a backend never reads
 *     or writes another tenant's rows.
 *
 * Later features (export/import) extend this file by appending slots to
 * lls_backend_vt; the core treats a NULL slot as "not supported by this
 * backend".
 */
#ifndef LLS_BACKEND_H
#define LLS_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* ---------------------------------------------------------------- errors */

/* The documented error codes; lls_code_name gives the Lua-visible string. */
typedef enum lls_code {
  LLS_OK = 0,
  LLS_ECLOSED,     /* "closed": handle used after close */
  LLS_ENOTFOUND,   /* "not_found" */
  LLS_ECONFLICT,   /* "conflict": constraint / uniqueness violation */
  LLS_EBUSY,       /* "busy": lock timeout, serialisation failure */
  LLS_EIO,         /* "io": disk, corruption, anything unexpected */
  LLS_ECONNECTION, /* "connection": lost or refused server connection */
  LLS_EQUOTA,      /* "quota" */
  LLS_EFORMAT,     /* "format": malformed input data */
  LLS_EVERSION,    /* "version": unsupported format or schema version */
  LLS_EINVALID     /* "invalid": a request the backend cannot honour */
} lls_code;

typedef struct lls_error {
  lls_code code;
  char message[512];
  char sqlstate[6];  /* PostgreSQL SQLSTATE, "" when not from PostgreSQL */
  int sqlite_code;   /* SQLite extended result code, 0 when not from SQLite */
} lls_error;

/* Fills *err (printf-style message) and returns -1, so backends can write
 * `return lls_error_set(err, LLS_EIO, "...")`. */
int lls_error_set(lls_error *err, lls_code code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

const char *lls_code_name(lls_code code);

/* ------------------------------------------------------------ open config */

/* One `name = value` option from storage.open{...}, stringified by the core.
 * A backend that consumes an option marks it used; the core rejects any
 * option left unused, so typos are reported instead of ignored. */
typedef struct lls_option {
  const char *name;
  const char *value;
  int used;
} lls_option;

typedef struct lls_config {
  const char *location; /* sqlite: file path or ":memory:"; postgres: conninfo */
  const char *tenant;   /* never NULL; "default" unless the caller chose */
  lls_option *opts;
  size_t nopts;
} lls_config;

/* The option's value (marking it used), or NULL when absent. */
const char *lls_config_get(lls_config *cfg, const char *name);

/* Integer option in [lo, hi]; *out = def when absent. -1 + err when the
 * value is not an integer in range. */
int lls_config_int(lls_config *cfg, const char *name, long long def, long long lo,
                   long long hi, long long *out, lls_error *err);

/* ----------------------------------------------------------------- data */

/* One key-value operation of an atomic batch. */
typedef enum lls_op_kind { LLS_OP_SET, LLS_OP_DELETE } lls_op_kind;

typedef struct lls_op {
  lls_op_kind kind;
  lls_str key;
  lls_str value;      /* LLS_OP_SET only */
  int64_t expires_at; /* LLS_OP_SET only; 0 = never */
} lls_op;

/* What stats() reports; the core adds the handle-level figures. */
typedef struct lls_kv_stats {
  int64_t keys;  /* visible keys of this tenant */
  int64_t bytes; /* sum of key + value lengths of those keys */
} lls_kv_stats;

/* Static facts about a backend (characteristics()). Latencies are the
 * nominal figures reported before a handle has measured its own. */
typedef struct lls_traits {
  int persistent;
  int transactional;
  int supports_prefix_scan;
  int supports_atomic_ops;
  double nominal_read_us;
  double nominal_write_us;
} lls_traits;

/* ------------------------------------------------- vector collections */

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

/* Receives rows streamed by vec_load. Must not call back into the backend;
 * returning nonzero stops the stream, and vec_load then fails with the
 * sink's own error in err (the sink fills it; LLS_EIO if it did not). */
typedef int (*lls_vec_sink)(void *ud, const lls_vec_row *row, lls_error *err);

/* Receives collections listed by coll_list (same rules as lls_vec_sink). */
typedef int (*lls_coll_sink)(void *ud, const lls_coll_info *info, lls_error *err);

/* ------------------------------------------------------- export/import */

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

/* ---------------------------------------------------------- the vtable */

typedef struct lls_backend lls_backend;

typedef struct lls_backend_vt {
  const char *name; /* "memory" | "sqlite" | "postgres" */
  lls_traits traits;

  /* Opens a backend for cfg->tenant. On failure returns NULL, err filled. */
  lls_backend *(*open)(lls_config *cfg, lls_error *err);

  /* Releases everything; b is invalid afterwards. Never fails; an open
   * transaction is rolled back. */
  void (*close)(lls_backend *b);

  /* Describes the handle for tostring(): "data/app.db", "host=... db=...". */
  const char *(*location)(lls_backend *b);

  /* Point read. *found = 0/1. On found, *out points at the value bytes and
   * stays valid until the next call on b. */
  int (*get)(lls_backend *b, lls_str key, int64_t now, lls_str *out, int *found,
             lls_error *err);

  /* Upsert one key. created_at is kept when a visible row already exists. */
  int (*set)(lls_backend *b, lls_str key, lls_str value, int64_t expires_at,
             int64_t now, lls_error *err);

  /* Deletes one key; *existed = 1 when a visible row was removed. */
  int (*del)(lls_backend *b, lls_str key, int64_t now, int *existed, lls_error *err);

  /* Applies ops in order, all or nothing (a savepoint when a transaction is
   * open, its own transaction otherwise). *deleted counts delete ops that
   * removed a visible row. On failure the store is exactly as before. */
  int (*apply)(lls_backend *b, const lls_op *ops, size_t n, int64_t now,
               size_t *deleted, lls_error *err);

  /* Looks up n keys; appends one row per visible key found (any order). */
  int (*get_many)(lls_backend *b, const lls_str *keys, size_t n, int64_t now,
                  lls_rows *out, lls_error *err);

  /* Appends visible rows whose key starts with prefix (literally: no
   * wildcards) and is > after (when after.ptr != NULL), in key order, at
   * most limit rows (0 = no limit). keys_only: values may be left empty.
   * Rows carry created_at/updated_at/expires_at for export. */
  int (*scan)(lls_backend *b, lls_str prefix, lls_str after, int64_t now, size_t limit,
              int keys_only, lls_rows *out, lls_error *err);

  /* Removes every row of this tenant. */
  int (*clear)(lls_backend *b, lls_error *err);

  int (*stats)(lls_backend *b, int64_t now, lls_kv_stats *out, lls_error *err);

  /* Physically removes up to `limit` expired rows (an indexed range, never
   * a full scan); *removed says how many. Called by the core outside
   * transactions, at most about once a second. */
  int (*sweep)(lls_backend *b, int64_t now, size_t limit, size_t *removed,
               lls_error *err);

  /* Transactions: depth 0 is the outermost (BEGIN/COMMIT/ROLLBACK), depth
   * d > 0 a savepoint nested d levels deep. The core guarantees proper
   * nesting. rollback must leave the store exactly as at the matching begin,
   * and must try its best even when the connection is broken. */
  int (*begin)(lls_backend *b, int depth, lls_error *err);
  int (*commit)(lls_backend *b, int depth, lls_error *err);
  int (*rollback)(lls_backend *b, int depth, lls_error *err);

  /* Appends one row per applied schema migration: key = "NNN_name",
   * created_at = when it was applied. Memory appends nothing. */
  int (*migrations)(lls_backend *b, lls_rows *out, lls_error *err);

  /* ---- vector collections. Writes follow the KV rules: atomic, part of an
   * open transaction (a savepoint inside one), the store unchanged after
   * any failure. Every write that changes something bumps the collection's
   * seq by exactly one and stamps the rows it writes (and the tombstones of
   * rows it deletes) with the new value, so another handle can catch up
   * with vec_load(since); an empty write leaves seq alone. Every slot that
   * takes a collection id fails with LLS_ENOTFOUND when that collection
   * was dropped or belongs to another tenant. */

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
  int (*vec_put)(lls_backend *b, int64_t coll_id, const lls_vec_row *rows, size_t n,
                 int insert_only, int64_t *seq, lls_error *err);

  /* Deletes the rows with the given ids (absent ids are ignored) and
   * records tombstones; *deleted counts rows removed, *seq the new seq
   * (unchanged when nothing was deleted). */
  int (*vec_delete)(lls_backend *b, int64_t coll_id, const lls_str *ids, size_t n,
                    size_t *deleted, int64_t *seq, lls_error *err);

  /* Streams, in seq order, every row version and tombstone with seq > since
   * (since = 0: every live row, in any order, no tombstones). Rows carry
   * their seq. A backend that keeps no history that far back fails with
   * LLS_EVERSION, and the caller reloads from 0 (memory keeps none). */
  int (*vec_load)(lls_backend *b, int64_t coll_id, int64_t since, lls_vec_sink sink,
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

  /* ---- export/import (export.c, import.c). Reads page through the data
   * in a fixed order so an export holds a bounded amount in memory and is
   * the same bytes every time; writes happen inside a transaction the
   * importer opened (begin/commit/rollback above). */

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

  /* Starts, at depth 0, a read-only transaction that sees one snapshot of
   * the data for its whole life without blocking writers (an export's
   * pages must all come from the same moment); commit or rollback at depth
   * 0 ends it. NULL: begin(b, 0) is used instead. */
  int (*begin_read)(lls_backend *b, lls_error *err);

  /* Checks the store's own integrity (SQLite: PRAGMA integrity_check):
   * appends one row per problem (key = where, value = what); none = ok. */
  int (*check)(lls_backend *b, lls_rows *problems, lls_error *err);
} lls_backend_vt;

/* Every backend struct starts with this, so the core can find the vtable. */
struct lls_backend {
  const lls_backend_vt *vt;
  int ephemeral; /* set by open when this handle's data dies with it and no
                    other handle can reach it (memory, SQLite ":memory:"):
                    characteristics() says so, and collections skip
                    looking for other writers */
};

extern const lls_backend_vt lls_memory_vt;
extern const lls_backend_vt lls_sqlite_vt;
extern const lls_backend_vt lls_postgres_vt;

/* --------------------------------------------------- helpers for backends */

/* Smallest string greater than every string that starts with prefix, for
 * literal range scans (`key >= prefix AND key < upper`). The result is valid
 * UTF-8 when prefix is (it bumps the last code point, skipping surrogates).
 * Returns 0 and sets *has_upper = 0 when no upper bound exists (empty
 * prefix, or only U+10FFFF code points). -1 on allocation failure. */
int lls_prefix_upper(lls_str prefix, lls_buf *out, int *has_upper);

/* 1 when s starts with prefix. */
int lls_has_prefix(lls_str s, lls_str prefix);

/* Position of the first byte that breaks UTF-8 or is NUL (overlongs,
 * surrogates and code points past U+10FFFF break it), or len when s[0..len)
 * is UTF-8 text without NUL. */
size_t lls_utf8_bad_at(const unsigned char *s, size_t len);

#endif
