/*
 * rowsum.h -- the per-record checksums of the SQLite backend: a CRC-32C
 * (base/crc32c.h) over each key-value row and each vector row, stored in
 * the row's `crc` column when it is written and checked whenever the row
 * is read back, so a damaged record raises LLS_EINTEGRITY instead of
 * returning altered data.
 *
 * A checksum covers a sequence of fields, each encoded as a tag byte and
 * its bytes: NULL is 0; an integer is 1 and 8 bytes little-endian; text or
 * blob is 2, a 4-byte little-endian length and the bytes; a float (never
 * written by this library) is 3 and its 8 bytes. The SQL function
 * lls_crc32c(...) of the same columns gives the same number, which is how
 * the migration that added the column computed it for existing rows.
 *
 *   kv_store:          tenant_id, key, value, expires_at
 *   vector_embeddings: tenant_id, collection_id, id, scope, vector,
 *                      metadata, created_at, updated_at, event_time,
 *                      expires_at, seq
 */
#ifndef LLS_BACKENDS_SQLITE_ROWSUM_H
#define LLS_BACKENDS_SQLITE_ROWSUM_H

#include <sqlite3.h>
#include <stdint.h>

#include "backend/vectors.h"
#include "base/buf.h"
#include "base/error.h"

/* Field encoders, continuing crc (0 to start). */
uint32_t lls_rowsum_bytes(uint32_t crc, lls_str s);
uint32_t lls_rowsum_int(uint32_t crc, int64_t v);
uint32_t lls_rowsum_null(uint32_t crc);
/* A value read back from SQLite, encoded by its storage type (what the
 * SQL function does with its arguments). */
uint32_t lls_rowsum_value(uint32_t crc, sqlite3_value *v);

/* An expiry as stored: 0 ("never") is NULL. */
static inline uint32_t lls_rowsum_expiry(uint32_t crc, int64_t expires_at) {
  return expires_at == 0 ? lls_rowsum_null(crc) : lls_rowsum_int(crc, expires_at);
}

/* The checksum of a key-value row about to be written; tenant_sum is
 * lls_rowsum_bytes(0, tenant). */
uint32_t lls_rowsum_kv(uint32_t tenant_sum, lls_str key, lls_str value, int64_t expires_at);

/* The checksum of a vector row about to be written with sequence seq. */
uint32_t lls_rowsum_vec(uint32_t tenant_sum, int64_t coll_id, const lls_vec_row *r,
                        int64_t seq);

/* Checks a key-value row read back (key, value and expires_at as read, 0
 * for NULL) against the checksum stored in column ccol of s. 0 when it
 * matches; else -1 + LLS_EINTEGRITY naming `what` and the key. A missing
 * checksum (NULL: a row written by hand) fails too. The fields are
 * encoded as the library writes them (text key, blob value), which is how
 * every row the library or its migration summed was stored. */
int lls_rowsum_check_kv(uint32_t tenant_sum, lls_str key, lls_str value, int64_t expires_at,
                        sqlite3_stmt *s, int ccol, const char *what, lls_error *err);

/* The same for a vector row read back into r, with its checksum in column
 * ccol of s. */
int lls_rowsum_check_vec(uint32_t tenant_sum, int64_t coll_id, const lls_vec_row *r,
                         sqlite3_stmt *s, int ccol, const char *what, lls_error *err);

/* Registers the SQL function lls_crc32c(...) (any number of arguments) on
 * db, for the migration that adds the checksum columns. SQLITE_OK or
 * SQLite's error code. */
int lls_rowsum_register(sqlite3 *db);

/* Reads every key-value and vector row of the file (all tenants) and adds
 * a problem row ("checksum", "<table> ...") for each one whose checksum
 * does not match, up to a hundred; for check(). 0, or -1 + err when the
 * reading itself fails for another reason than damage. */
int lls_rowsum_scan(sqlite3 *db, lls_rows *problems, lls_error *err);

#endif
