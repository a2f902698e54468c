/*
 * buf.h -- byte strings, growable buffers and row sets shared by the core
 * and the backends. Plain C, no Lua: backends fill lls_rows and the core
 * turns them into Lua values afterwards, so a Lua error (which longjmps)
 * can never strike while a backend holds a statement or a result open.
 */
#ifndef LLS_BUF_H
#define LLS_BUF_H

#include <stddef.h>
#include <stdint.h>

/* A borrowed byte string: not NUL-terminated, not owned. */
typedef struct lls_str {
  const char *ptr;
  size_t len;
} lls_str;

/* Byte order (memcmp, shorter first on a tie): the order keys, ids and
 * names sort in everywhere. <0, 0, >0. */
int lls_bytes_cmp(const void *a, size_t alen, const void *b, size_t blen);

static inline int lls_str_cmp(lls_str a, lls_str b) {
  return lls_bytes_cmp(a.ptr, a.len, b.ptr, b.len);
}

/* A growable byte buffer. Zero-initialised is an empty buffer. */
typedef struct lls_buf {
  char *data;
  size_t len, cap;
} lls_buf;

/* Ensures room for `extra` more bytes. 0, or -1 when out of memory. */
int lls_buf_reserve(lls_buf *b, size_t extra);
int lls_buf_append(lls_buf *b, const void *p, size_t n);
/* Appends a NUL-terminated copy and returns its offset, or (size_t)-1. */
size_t lls_buf_append_cstr(lls_buf *b, const char *s);
void lls_buf_free(lls_buf *b);

/* One row of a result set: offsets into lls_rows.bytes (offsets, not
 * pointers, because the byte buffer moves as it grows). */
typedef struct lls_row {
  size_t koff, klen, voff, vlen;
  size_t moff, mlen; /* metadata (JSON text); mlen 0 = none (export only) */
  size_t ioff, ilen; /* kv_id; ilen 0 = none (export only) */
  int64_t created_at, updated_at, expires_at; /* microseconds; 0 = unknown/never */
} lls_row;

typedef struct lls_rows {
  lls_row *rows;
  size_t count, cap;
  lls_buf bytes;
} lls_rows;

/* Appends a row (copies key and value). Returns a pointer to the new row so
 * the caller can set its timestamps, or NULL when out of memory. */
lls_row *lls_rows_add(lls_rows *r, const char *key, size_t klen, const char *val,
                      size_t vlen);
/* Like lls_rows_add, with metadata and kv_id as well (either may be empty). */
lls_row *lls_rows_add_ext(lls_rows *r, lls_str key, lls_str val, lls_str meta, lls_str kv_id);

static inline lls_str lls_row_meta(const lls_rows *r, size_t i) {
  lls_str s = {r->bytes.data + r->rows[i].moff, r->rows[i].mlen};
  return s;
}

static inline lls_str lls_row_kv_id(const lls_rows *r, size_t i) {
  lls_str s = {r->bytes.data + r->rows[i].ioff, r->rows[i].ilen};
  return s;
}

/* Forgets the rows but keeps the memory for reuse. */
void lls_rows_reset(lls_rows *r);
void lls_rows_free(lls_rows *r);

static inline lls_str lls_row_key(const lls_rows *r, size_t i) {
  lls_str s = {r->bytes.data + r->rows[i].koff, r->rows[i].klen};
  return s;
}

static inline lls_str lls_row_value(const lls_rows *r, size_t i) {
  lls_str s = {r->bytes.data + r->rows[i].voff, r->rows[i].vlen};
  return s;
}

#endif
