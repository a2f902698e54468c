/*
 * buf.c -- growable buffers and row sets (see buf.h).
 */
#include "base/buf.h"

#include <stdlib.h>
#include <string.h>

int lls_bytes_cmp(const void *a, size_t alen, const void *b, size_t blen) {
  size_t n = alen < blen ? alen : blen;
  int c = n ? memcmp(a, b, n) : 0;
  return c ? c : (alen > blen) - (alen < blen);
}

int lls_buf_reserve(lls_buf *b, size_t extra) {
  if (extra <= b->cap - b->len) return 0;
  if (extra > SIZE_MAX / 2 - b->len) return -1;
  size_t cap = b->cap ? b->cap : 64;
  while (cap - b->len < extra) cap *= 2;
  char *p = realloc(b->data, cap);
  if (p == NULL) return -1;
  b->data = p;
  b->cap = cap;
  return 0;
}

int lls_buf_append(lls_buf *b, const void *p, size_t n) {
  if (lls_buf_reserve(b, n) != 0) return -1;
  if (n > 0) memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}

size_t lls_buf_append_cstr(lls_buf *b, const char *s) {
  size_t off = b->len;
  if (lls_buf_append(b, s, strlen(s) + 1) != 0) return (size_t)-1;
  return off;
}

void lls_buf_free(lls_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

lls_row *lls_rows_add(lls_rows *r, const char *key, size_t klen, const char *val,
                      size_t vlen) {
  if (r->count == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 16;
    lls_row *p = realloc(r->rows, cap * sizeof *p);
    if (p == NULL) return NULL;
    r->rows = p;
    r->cap = cap;
  }
  lls_row *row = &r->rows[r->count];
  row->koff = r->bytes.len;
  row->klen = klen;
  if (lls_buf_append(&r->bytes, key, klen) != 0) return NULL;
  row->voff = r->bytes.len;
  row->vlen = vlen;
  if (lls_buf_append(&r->bytes, val, vlen) != 0) return NULL;
  row->moff = row->ioff = r->bytes.len;
  row->mlen = row->ilen = 0;
  row->created_at = row->updated_at = row->expires_at = 0;
  r->count++;
  return row;
}

lls_row *lls_rows_add_ext(lls_rows *r, lls_str key, lls_str val, lls_str meta, lls_str kv_id) {
  lls_row *row = lls_rows_add(r, key.ptr, key.len, val.ptr, val.len);
  if (row == NULL) return NULL;
  row->moff = r->bytes.len;
  row->mlen = meta.len;
  if (lls_buf_append(&r->bytes, meta.ptr, meta.len) != 0) return NULL;
  row->ioff = r->bytes.len;
  row->ilen = kv_id.len;
  if (lls_buf_append(&r->bytes, kv_id.ptr, kv_id.len) != 0) return NULL;
  return row;
}

void lls_rows_reset(lls_rows *r) {
  r->count = 0;
  r->bytes.len = 0;
}

void lls_rows_free(lls_rows *r) {
  free(r->rows);
  r->rows = NULL;
  r->count = r->cap = 0;
  lls_buf_free(&r->bytes);
}
