/*
 * backend/artifacts.h -- the artifact op table of the backend contract
 * (COMPONENTS.md "Artifacts"), and what its callers and both
 * implementations share (artifacts.c): the row sets results come back in,
 * the chunk source content is stored from, and chunk decoding.
 *
 * Content is addressed by its SHA-256 (lowercase hex of the original
 * bytes) and kept once per tenant in artifact_content, with a reference
 * count: the number of artifacts rows that name it. Its bytes are cut into
 * chunks of LLS_ARTIFACT_CHUNK raw bytes (the last may be shorter; empty
 * content has none) in artifact_chunks; content over
 * LLS_ARTIFACT_COMPRESS_MIN bytes has each chunk LZ4-compressed when that
 * makes it smaller. A chunk is compressed exactly when its stored length
 * is below its raw_size, so each chunk says how to read it.
 *
 * Conventions (as for every op table, see backend.h): return 0 on success,
 * -1 with *err filled; times are int64 microseconds passed in as `now`;
 * ids are checked by the core (UTF-8, limits.h); a backend never reads or
 * writes another tenant's rows. Strings in results are copied into the
 * caller's row set, so they outlive the call.
 */
#ifndef LLS_BACKEND_ARTIFACTS_H
#define LLS_BACKEND_ARTIFACTS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "backend/backend.h"
#include "base/limits.h"
#include "base/sha256.h"

/* Raw bytes per chunk: what one statement carries and one read decodes. */
#define LLS_ARTIFACT_CHUNK ((size_t)1 << 20)
/* Content over this many bytes is compressed where that saves space. */
#define LLS_ARTIFACT_COMPRESS_MIN 10240
/* The artifact types, in the order messages list them. */
#define LLS_ARTIFACT_TYPES "code, data, image, document, binary"

/* 1 when s is one of the artifact types. */
int lls_artifact_type_ok(lls_str s);

/* ------------------------------------------------------------ row sets */

/* The text fields of an artifact row. */
enum {
  LLS_ART_ID,         /* artifact_id: "<session_id>:<sequence>:<content_hash>" */
  LLS_ART_SESSION,    /* session_id */
  LLS_ART_HASH,       /* content_hash */
  LLS_ART_METADATA,   /* JSON text */
  LLS_ART_NAME,
  LLS_ART_TYPE,       /* code | data | image | document | binary */
  LLS_ART_MIME,
  LLS_ART_CREATED_BY, /* may be NULL */
  LLS_ART_PARENT,     /* parent_artifact_id; may be NULL */
  LLS_ART_TAGS,       /* JSON array of strings */
  LLS_ART_TENANT,     /* tenant_id (dump; the rows of every read are the tenant's) */
  LLS_ART_NSTR
};

/* One artifacts row (texts as offsets into the set's bytes, which move as
 * they grow) and what info/list read of its content. */
typedef struct lls_artifact_row {
  size_t off[LLS_ART_NSTR], len[LLS_ART_NSTR];
  unsigned nulls; /* bit f set: text f is NULL */
  int64_t sequence, size_bytes, version;
  int64_t created_at, stored_at, updated_at;
  /* The content row (info, list): chunk_count -1 when it is missing
   * (an import brought the artifact without its content). dump leaves
   * these zero. */
  int64_t chunk_count, stored_bytes;
  int is_compressed;
} lls_artifact_row;

typedef struct lls_artifact_rows {
  lls_artifact_row *rows;
  size_t count, cap;
  lls_buf bytes;
} lls_artifact_rows;

/* Appends a zeroed row; NULL when out of memory. */
lls_artifact_row *lls_artifact_rows_add(lls_artifact_rows *r);

/* Sets text field f of row (the last one added): a copy of p[0..n), or
 * NULL when p is NULL. 0, or -1 when out of memory. */
int lls_artifact_rows_set(lls_artifact_rows *r, lls_artifact_row *row, int f, const char *p,
                          size_t n);

/* Text field f of row i; .ptr is NULL for NULL. Valid until the set
 * changes. */
lls_str lls_artifact_rows_get(const lls_artifact_rows *r, size_t i, int f);

void lls_artifact_rows_reset(lls_artifact_rows *r);
void lls_artifact_rows_free(lls_artifact_rows *r);

/* One artifact_content row (export/import). */
typedef struct lls_content_row {
  char tenant[LLS_MAX_TENANT + 1]; /* tenant_id (dump) */
  char hash[LLS_SHA256_HEX];
  int64_t size_bytes;          /* original bytes */
  int64_t stored_bytes;        /* bytes its chunks hold */
  int is_compressed;           /* some chunk is compressed */
  int64_t original_size_bytes; /* = size_bytes (rs-llmspell's column) */
  int64_t chunk_count;
  int64_t reference_count;
  int64_t created_at, last_accessed_at;
} lls_content_row;

typedef struct lls_content_rows {
  lls_content_row *rows;
  size_t count, cap;
} lls_content_rows;

/* Appends a zeroed row; NULL when out of memory. */
lls_content_row *lls_content_rows_add(lls_content_rows *r);
void lls_content_rows_free(lls_content_rows *r);

/* ------------------------------------------------------- chunk source */

/* One chunk ready to store: data is what the row holds (compressed or
 * not), raw_size what it decodes to. */
typedef struct lls_artifact_chunk {
  int64_t index;
  int64_t raw_size;
  lls_str data;
} lls_artifact_chunk;

/* Where stored content comes from: bytes in memory, or a file read a
 * second time after the caller hashed it (a file that changed in between
 * fails instead of being stored under the wrong hash). The caller fills
 * size and hash (init_*), the backend pulls chunks with next(). Holds at
 * most two chunks' worth of memory. */
typedef struct lls_artifact_src {
  const char *mem; /* content in memory, or NULL with fp */
  FILE *fp;        /* positioned at the start of the content */
  int64_t size;    /* bytes the content holds */
  char hash[LLS_SHA256_HEX];
  /* state */
  int64_t pos, index;
  int64_t stored;   /* bytes of the chunks handed out so far */
  int compressed;   /* some chunk handed out is compressed */
  lls_buf raw, packed;
  lls_sha256 *check; /* a file's second-pass hash */
} lls_artifact_src;

/* A source over n bytes at p whose SHA-256 hex is hash. */
void lls_artifact_src_mem(lls_artifact_src *s, const char *p, size_t n,
                          const char hash[LLS_SHA256_HEX]);

/* A source over the file fp (at its start) that held size bytes hashing
 * to hash when the caller read it. 0, or -1 when out of memory. */
int lls_artifact_src_file(lls_artifact_src *s, FILE *fp, int64_t size,
                          const char hash[LLS_SHA256_HEX], lls_error *err);

/* The next chunk in *c (valid until the next call), or *eof = 1 after the
 * last; at the end, a file source checks that the file still held size
 * bytes with the same hash (LLS_EINVALID otherwise: nothing may be
 * committed then). stored/compressed then describe the whole content. */
int lls_artifact_src_next(lls_artifact_src *s, lls_artifact_chunk *c, int *eof,
                          lls_error *err);

/* Frees the buffers (not the file, which is the caller's). */
void lls_artifact_src_free(lls_artifact_src *s);

/* Decodes a stored chunk (data as its row holds it, raw_size from the
 * row) into out (emptied first). LLS_EINTEGRITY when the row cannot be
 * what was stored: longer than raw_size, over a chunk, or a damaged
 * block. */
int lls_artifact_chunk_decode(lls_str data, int64_t raw_size, lls_buf *out, lls_error *err);

/* ------------------------------------------------------------ op table */

/* What put() stores besides the content. created_by.ptr NULL: none. */
typedef struct lls_artifact_new {
  lls_str session_id;
  lls_str name, type, mime_type;
  lls_str metadata; /* JSON text */
  lls_str tags;     /* JSON array of strings */
  lls_str created_by;
} lls_artifact_new;

typedef struct lls_artifact_stats {
  int64_t artifacts;       /* artifacts rows */
  int64_t unique_contents; /* distinct contents they refer to */
  int64_t bytes;           /* sum of their size_bytes */
  int64_t stored_bytes;    /* sum of stored_bytes over those contents */
} lls_artifact_stats;

struct lls_artifact_ops {
  /* Stores an artifact of the session a->session_id, all or nothing (a
   * savepoint inside a transaction, its own transaction otherwise): takes
   * the session's next sequence (sessions.next_sequence, raised in the
   * same unit, so concurrent puts get distinct ones) and bumps its
   * artifact_count; LLS_ENOTFOUND when the session does not exist or has
   * expired (expires_at <= now). The content src->hash gains a reference;
   * when it is new to the tenant its chunks are pulled from src and
   * stored, otherwise src is not read at all (*deduplicated = 1). The row's
   * artifact_id is "<session_id>:<sequence>:<content_hash>"; its times
   * are now. */
  int (*put)(lls_backend *b, const lls_artifact_new *a, lls_artifact_src *src, int64_t now,
             int64_t *sequence, int *deduplicated, lls_error *err);

  /* Appends the artifact's row to out (nothing when it does not exist),
   * with its content's chunk_count, stored_bytes and is_compressed. When
   * first is not NULL and the content has chunks, chunk 0 is read in the
   * same query and decoded into first (one round trip for small
   * content). */
  int (*info)(lls_backend *b, lls_str artifact_id, lls_artifact_rows *out, lls_buf *first,
              lls_error *err);

  /* Decodes chunk `index` of content hash into out; *found = 0 when there
   * is no such chunk (the content was deleted meanwhile). */
  int (*read_chunk)(lls_backend *b, lls_str hash, int64_t index, lls_buf *out, int *found,
                    lls_error *err);

  /* Appends up to limit rows (0 = no limit) of the session's artifacts
   * with sequence > after (-1: from the first), in sequence order, with
   * their content columns as info gives them. */
  int (*list)(lls_backend *b, lls_str session_id, int64_t after, size_t limit,
              lls_artifact_rows *out, lls_error *err);

  /* Deletes an artifact, all or nothing: its session's artifact_count
   * goes down by one and its content's reference count too; content left
   * with no reference is deleted with its chunks. *existed = 0 when there
   * was no such artifact. */
  int (*del)(lls_backend *b, lls_str artifact_id, int64_t now, int *existed, lls_error *err);

  /* Figures over the session's artifacts (session_id.ptr != NULL) or the
   * tenant's. */
  int (*stats)(lls_backend *b, lls_str session_id, lls_artifact_stats *out, lls_error *err);

  /* The tenant's artifacts rows (the component's __tostring). */
  int (*count)(lls_backend *b, int64_t now, int64_t *n, lls_error *err);

  /* Export: up to limit content rows with content_hash > after (after.len
   * 0: from the first), in hash order. */
  int (*dump_content)(lls_backend *b, lls_str after, size_t limit, lls_content_rows *out,
                      lls_error *err);

  /* Export: up to limit artifacts rows with artifact_id > after (len 0:
   * from the first), in artifact_id order, every column. */
  int (*dump_artifacts)(lls_backend *b, lls_str after, size_t limit, lls_artifact_rows *out,
                        lls_error *err);

  /* Import: stores content c->hash from src (whose hash the caller has
   * verified) with c's created_at and last_accessed_at. Its reference
   * count is the number of artifacts rows naming it (imports may bring
   * artifacts first; load_artifact counts the later ones), so counts
   * stay true whatever the file says. An existing content row is kept
   * (skip), refreshed in its times (replace) or refused (error:
   * LLS_ECONFLICT). *written = 0 when nothing was written. */
  int (*load_content)(lls_backend *b, const lls_content_row *c, lls_artifact_src *src,
                      lls_conflict on_conflict, int64_t now, int *written, lls_error *err);

  /* Import: stores row i of r as given (every column). A row with the
   * same artifact_id is kept (skip), replaced (replace) or refused
   * (error). A new row adds a reference to its content when that is
   * stored, and counts in its session's artifact_count and raises its
   * next_sequence past its sequence when the session is stored (a session
   * loaded later counts the artifacts stored by then; put() also looks at
   * the highest stored sequence). */
  int (*load_artifact)(lls_backend *b, const lls_artifact_rows *r, size_t i,
                       lls_conflict on_conflict, int64_t now, int *written, lls_error *err);
};

#endif
