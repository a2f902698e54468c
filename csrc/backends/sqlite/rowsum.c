/*
 * rowsum.c -- the per-record checksums of the SQLite backend (the encoding
 * is described in rowsum.h).
 *
 * Each field is length-prefixed and tagged, so moving bytes from one field
 * to the next ("ab" + "c" against "a" + "bc") or turning a NULL into an
 * empty string changes the checksum. Writes and reads encode the fields as
 * the library stores them (text, blob, integer or NULL), from the values
 * they bind or read back, so a read sums the bytes it returns with no
 * second pass over the columns; the SQL function encodes its arguments by
 * their storage type, which for rows the library wrote is the same.
 */
#include "backends/sqlite/rowsum.h"

#include "base/crc32c.h"

#include <stdio.h>
#include <string.h>

enum { TAG_NULL = 0, TAG_INT = 1, TAG_BYTES = 2, TAG_FLOAT = 3 };

/* Tag and 8 bytes of v, little-endian whatever the host's order. */
static uint32_t tagged64(uint32_t crc, unsigned char tag, uint64_t v) {
  unsigned char b[9];
  b[0] = tag;
  for (int i = 0; i < 8; i++) b[1 + i] = (unsigned char)(v >> (8 * i));
  return lls_crc32c(crc, b, sizeof b);
}

uint32_t lls_rowsum_bytes(uint32_t crc, lls_str s) {
  unsigned char h[5];
  uint32_t n = (uint32_t)s.len; /* SQLite caps a value well below 4 GiB */
  h[0] = TAG_BYTES;
  for (int i = 0; i < 4; i++) h[1 + i] = (unsigned char)(n >> (8 * i));
  crc = lls_crc32c(crc, h, sizeof h);
  return s.len ? lls_crc32c(crc, s.ptr, s.len) : crc;
}

uint32_t lls_rowsum_int(uint32_t crc, int64_t v) { return tagged64(crc, TAG_INT, (uint64_t)v); }

uint32_t lls_rowsum_null(uint32_t crc) {
  unsigned char t = TAG_NULL;
  return lls_crc32c(crc, &t, 1);
}

uint32_t lls_rowsum_value(uint32_t crc, sqlite3_value *v) {
  switch (sqlite3_value_type(v)) {
  case SQLITE_NULL: return lls_rowsum_null(crc);
  case SQLITE_INTEGER: return lls_rowsum_int(crc, sqlite3_value_int64(v));
  case SQLITE_FLOAT: {
    double d = sqlite3_value_double(v);
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    return tagged64(crc, TAG_FLOAT, bits);
  }
  default: { /* TEXT and BLOB: the bytes as stored (the database is UTF-8) */
    lls_str s = {sqlite3_value_blob(v), (size_t)sqlite3_value_bytes(v)};
    if (s.ptr == NULL) s.ptr = "";
    return lls_rowsum_bytes(crc, s);
  }
  }
}

/* A checksum being built from many small fields: they are gathered in buf
 * and summed in one call, so a row costs a few CRC calls rather than two
 * per field; long fields (values, vectors) are summed in place. */
#define BUILDER_CAP 320
#define SHORT_FIELD 160

typedef struct builder {
  uint32_t crc;
  size_t n;
  unsigned char buf[BUILDER_CAP];
} builder;

/* Not an initializer: that would zero the whole buffer on every row. */
static inline void start(builder *b, uint32_t crc) {
  b->crc = crc;
  b->n = 0;
}

/* Sums what buf holds into crc and empties it. */
static void flush(builder *b) {
  if (b->n) b->crc = lls_crc32c(b->crc, b->buf, b->n);
  b->n = 0;
}

/* Room for n more bytes (n <= BUILDER_CAP) at the end of buf. */
static inline unsigned char *room(builder *b, size_t n) {
  if (n > BUILDER_CAP - b->n) flush(b);
  return b->buf + b->n;
}

/* Stores the low `bytes` bytes of v little-endian (the compiler makes one
 * store of it on a little-endian machine). */
static inline void store_le(unsigned char *w, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; i++) w[i] = (unsigned char)(v >> (8 * i));
}

/* The encodings of rowsum.h's top, into a builder. */
static void put_bytes(builder *b, lls_str s) {
  unsigned char *w = room(b, 5 + (s.len <= SHORT_FIELD ? s.len : 0));
  w[0] = TAG_BYTES;
  store_le(w + 1, (uint32_t)s.len, 4);
  b->n += 5;
  if (s.len <= SHORT_FIELD) {
    if (s.len) memcpy(w + 5, s.ptr, s.len);
    b->n += s.len;
  } else {
    flush(b);
    b->crc = lls_crc32c(b->crc, s.ptr, s.len);
  }
}

static void put_int(builder *b, int64_t v) {
  unsigned char *w = room(b, 9);
  w[0] = TAG_INT;
  store_le(w + 1, (uint64_t)v, 8);
  b->n += 9;
}

static void put_null(builder *b) {
  *room(b, 1) = TAG_NULL;
  b->n++;
}

static void put_expiry(builder *b, int64_t expires_at) {
  if (expires_at == 0)
    put_null(b);
  else
    put_int(b, expires_at);
}

uint32_t lls_rowsum_kv(uint32_t tenant_sum, lls_str key, lls_str value, int64_t expires_at) {
  builder b;
  start(&b, tenant_sum);
  put_bytes(&b, key);
  put_bytes(&b, value);
  put_expiry(&b, expires_at);
  flush(&b);
  return b.crc;
}

uint32_t lls_rowsum_vec(uint32_t tenant_sum, int64_t coll_id, const lls_vec_row *r,
                        int64_t seq) {
  builder b;
  start(&b, tenant_sum);
  put_int(&b, coll_id);
  put_bytes(&b, r->id);
  put_bytes(&b, r->scope);
  put_bytes(&b, r->vector);
  put_bytes(&b, r->metadata);
  put_int(&b, r->created_at);
  put_int(&b, r->updated_at);
  if (r->has_event_time)
    put_int(&b, r->event_time);
  else
    put_null(&b);
  put_expiry(&b, r->expires_at);
  put_int(&b, seq);
  flush(&b);
  return b.crc;
}

/* 1 when column ccol of s holds the checksum sum. NULL reads as 0, so
 * the type is asked only for a sum of 0: one call per row, not two. */
static int matches(sqlite3_stmt *s, int ccol, uint32_t sum) {
  if (sqlite3_column_int64(s, ccol) != (sqlite3_int64)sum) return 0;
  return sum != 0 || sqlite3_column_type(s, ccol) == SQLITE_INTEGER;
}

int lls_rowsum_check_kv(uint32_t tenant_sum, lls_str key, lls_str value, int64_t expires_at,
                        sqlite3_stmt *s, int ccol, const char *what, lls_error *err) {
  if (matches(s, ccol, lls_rowsum_kv(tenant_sum, key, value, expires_at))) return 0;
  return lls_error_set(err, LLS_EINTEGRITY,
                       "%s: key '%.*s': the stored record fails its checksum (CRC-32C):"
                       " the database file is damaged or was changed outside this library",
                       what, (int)(key.len > 200 ? 200 : key.len), key.ptr);
}

int lls_rowsum_check_vec(uint32_t tenant_sum, int64_t coll_id, const lls_vec_row *r,
                         sqlite3_stmt *s, int ccol, const char *what, lls_error *err) {
  if (matches(s, ccol, lls_rowsum_vec(tenant_sum, coll_id, r, r->seq))) return 0;
  return lls_error_set(err, LLS_EINTEGRITY,
                       "%s: collection %lld, id '%.*s': the stored row fails its checksum"
                       " (CRC-32C): the database file is damaged or was changed outside"
                       " this library",
                       what, (long long)coll_id, (int)(r->id.len > 200 ? 200 : r->id.len),
                       r->id.ptr);
}

/* lls_crc32c(...): the checksum of its arguments, as a non-negative
 * integer. */
static void sql_crc32c(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  uint32_t c = 0;
  for (int i = 0; i < argc; i++) c = lls_rowsum_value(c, argv[i]);
  sqlite3_result_int64(ctx, (sqlite3_int64)c);
}

int lls_rowsum_register(sqlite3 *db) {
  return sqlite3_create_function_v2(db, "lls_crc32c", -1,
                                    SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_DIRECTONLY,
                                    NULL, sql_crc32c, NULL, NULL, NULL);
}

/* ------------------------------------------------------------ the scan */

#define SCAN_MAX_PROBLEMS 100

/* Rows whose checksum does not match, through the SQL function: columns
 * tenant, collection id (NULL for a key-value row) and key or entry id. */
static const char *const SCAN_SQL =
    "SELECT tenant_id, NULL, key FROM kv_store"
    " WHERE crc IS NOT lls_crc32c(tenant_id, key, value, expires_at)"
    " UNION ALL "
    "SELECT tenant_id, collection_id, id FROM vector_embeddings"
    " WHERE crc IS NOT lls_crc32c(tenant_id, collection_id, id, scope, vector, metadata,"
    " created_at, updated_at, event_time, expires_at, seq)";

/* Appends one problem row under "checksum". */
static int add_problem(lls_rows *out, const char *what, lls_error *err) {
  static const char where[] = "checksum";
  if (lls_rows_add(out, where, sizeof where - 1, what, strlen(what)) == NULL)
    return lls_error_oom(err);
  return 0;
}

int lls_rowsum_scan(sqlite3 *db, lls_rows *problems, lls_error *err) {
  sqlite3_stmt *s;
  int rc = sqlite3_prepare_v2(db, SCAN_SQL, -1, &s, NULL), n = 0;
  char msg[512];
  if (rc == SQLITE_OK) rc = SQLITE_ROW;
  while (rc == SQLITE_ROW && (rc = sqlite3_step(s)) == SQLITE_ROW) {
    if (++n > SCAN_MAX_PROBLEMS) continue; /* counted, not listed */
    const unsigned char *tenant = sqlite3_column_text(s, 0), *name = sqlite3_column_text(s, 2);
    const char *t = tenant ? (const char *)tenant : "", *k = name ? (const char *)name : "";
    if (sqlite3_column_type(s, 1) == SQLITE_NULL)
      snprintf(msg, sizeof msg, "kv_store: tenant '%.100s', key '%.200s': the stored record"
               " fails its checksum", t, k);
    else
      snprintf(msg, sizeof msg, "vector_embeddings: tenant '%.100s', collection %lld, id"
               " '%.200s': the stored row fails its checksum", t,
               (long long)sqlite3_column_int64(s, 1), k);
    if (add_problem(problems, msg, err) != 0) {
      sqlite3_finalize(s);
      return -1;
    }
  }
  sqlite3_finalize(s);
  if (n > SCAN_MAX_PROBLEMS) {
    snprintf(msg, sizeof msg, "%d more records fail their checksums", n - SCAN_MAX_PROBLEMS);
    if (add_problem(problems, msg, err) != 0) return -1;
  }
  if (rc == SQLITE_DONE) return 0;
  int primary = rc & 0xff;
  if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB) {
    snprintf(msg, sizeof msg, "the scan could not finish: %s", sqlite3_errmsg(db));
    return add_problem(problems, msg, err);
  }
  return lls_error_set(err, LLS_EIO, "checksum scan: %s", sqlite3_errmsg(db));
}
