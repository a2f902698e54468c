/*
 * backend/artifacts.c -- what the artifact op tables and their callers
 * share (artifacts.h): row sets, the chunk source, chunk decoding.
 */
#include "backend/artifacts.h"

#include <stdlib.h>
#include <string.h>

#include "base/compress.h"

int lls_artifact_type_ok(lls_str s) {
  static const char *const types[] = {"code", "data", "image", "document", "binary", NULL};
  for (int i = 0; types[i]; i++)
    if (strlen(types[i]) == s.len && memcmp(types[i], s.ptr, s.len) == 0) return 1;
  return 0;
}

/* ------------------------------------------------------------ row sets */

lls_artifact_row *lls_artifact_rows_add(lls_artifact_rows *r) {
  if (r->count == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 16;
    lls_artifact_row *p = realloc(r->rows, cap * sizeof *p);
    if (p == NULL) return NULL;
    r->rows = p;
    r->cap = cap;
  }
  lls_artifact_row *row = &r->rows[r->count++];
  memset(row, 0, sizeof *row);
  return row;
}

int lls_artifact_rows_set(lls_artifact_rows *r, lls_artifact_row *row, int f, const char *p,
                          size_t n) {
  if (p == NULL) {
    row->nulls |= 1u << f;
    row->off[f] = row->len[f] = 0;
    return 0;
  }
  row->nulls &= ~(1u << f);
  row->off[f] = r->bytes.len;
  row->len[f] = n;
  return n ? lls_buf_append(&r->bytes, p, n) : 0;
}

lls_str lls_artifact_rows_get(const lls_artifact_rows *r, size_t i, int f) {
  const lls_artifact_row *row = &r->rows[i];
  lls_str s = {NULL, 0};
  if (row->nulls & (1u << f)) return s;
  s.ptr = row->len[f] ? r->bytes.data + row->off[f] : "";
  s.len = row->len[f];
  return s;
}

void lls_artifact_rows_reset(lls_artifact_rows *r) {
  r->count = 0;
  r->bytes.len = 0;
}

void lls_artifact_rows_free(lls_artifact_rows *r) {
  free(r->rows);
  lls_buf_free(&r->bytes);
  memset(r, 0, sizeof *r);
}

lls_content_row *lls_content_rows_add(lls_content_rows *r) {
  if (r->count == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 16;
    lls_content_row *p = realloc(r->rows, cap * sizeof *p);
    if (p == NULL) return NULL;
    r->rows = p;
    r->cap = cap;
  }
  lls_content_row *row = &r->rows[r->count++];
  memset(row, 0, sizeof *row);
  return row;
}

void lls_content_rows_free(lls_content_rows *r) {
  free(r->rows);
  memset(r, 0, sizeof *r);
}

/* -------------------------------------------------------- chunk source */

void lls_artifact_src_mem(lls_artifact_src *s, const char *p, size_t n,
                          const char hash[LLS_SHA256_HEX]) {
  memset(s, 0, sizeof *s);
  s->mem = n ? p : "";
  s->size = (int64_t)n;
  memcpy(s->hash, hash, LLS_SHA256_HEX);
}

int lls_artifact_src_file(lls_artifact_src *s, FILE *fp, int64_t size,
                          const char hash[LLS_SHA256_HEX], lls_error *err) {
  memset(s, 0, sizeof *s);
  s->fp = fp;
  s->size = size;
  memcpy(s->hash, hash, LLS_SHA256_HEX);
  s->check = lls_sha256_new();
  if (s->check == NULL) return lls_error_oom(err);
  return 0;
}

static int file_changed(lls_error *err) {
  return lls_error_set(err, LLS_EINVALID,
                       "the file changed while it was being stored (its size or content "
                       "differs from the first read); nothing was stored");
}

/* At the end of a file source: nothing may follow the size bytes read,
 * and the second pass must hash as the first did. */
static int file_end(lls_artifact_src *s, lls_error *err) {
  if (fgetc(s->fp) != EOF) return file_changed(err);
  if (ferror(s->fp)) return lls_error_set(err, LLS_EIO, "reading the file failed");
  char got[LLS_SHA256_HEX];
  if (lls_sha256_final(s->check, got) != 0) return lls_error_oom(err);
  lls_sha256_free(s->check);
  s->check = NULL;
  if (memcmp(got, s->hash, LLS_SHA256_HEX) != 0) return file_changed(err);
  return 0;
}

int lls_artifact_src_next(lls_artifact_src *s, lls_artifact_chunk *c, int *eof,
                          lls_error *err) {
  *eof = 0;
  if (s->pos >= s->size) {
    *eof = 1;
    return s->fp != NULL && s->check != NULL ? file_end(s, err) : 0;
  }
  size_t n = (size_t)(s->size - s->pos);
  if (n > LLS_ARTIFACT_CHUNK) n = LLS_ARTIFACT_CHUNK;
  const char *raw;
  if (s->fp != NULL) {
    s->raw.len = 0;
    if (lls_buf_reserve(&s->raw, n) != 0) return lls_error_oom(err);
    size_t got = fread(s->raw.data, 1, n, s->fp);
    if (got != n) {
      if (ferror(s->fp)) return lls_error_set(err, LLS_EIO, "reading the file failed");
      return file_changed(err);
    }
    if (lls_sha256_update(s->check, s->raw.data, n) != 0) return lls_error_oom(err);
    raw = s->raw.data;
  } else {
    raw = s->mem + s->pos;
  }
  c->index = s->index;
  c->raw_size = (int64_t)n;
  c->data.ptr = raw;
  c->data.len = n;
  if (s->size > LLS_ARTIFACT_COMPRESS_MIN) {
    s->packed.len = 0;
    if (lls_buf_reserve(&s->packed, lls_lz4_bound(n)) != 0) return lls_error_oom(err);
    /* room for n - 1 bytes: a block that does not fit saves nothing */
    size_t z = lls_lz4_compress(raw, n, s->packed.data, n - 1);
    if (z > 0) {
      c->data.ptr = s->packed.data;
      c->data.len = z;
      s->compressed = 1;
    }
  }
  s->stored += (int64_t)c->data.len;
  s->pos += (int64_t)n;
  s->index++;
  return 0;
}

void lls_artifact_src_free(lls_artifact_src *s) {
  lls_buf_free(&s->raw);
  lls_buf_free(&s->packed);
  lls_sha256_free(s->check);
  s->check = NULL;
}

int lls_artifact_chunk_decode(lls_str data, int64_t raw_size, lls_buf *out, lls_error *err) {
  out->len = 0;
  if (raw_size < 0 || (uint64_t)raw_size > LLS_ARTIFACT_CHUNK || data.len > (size_t)raw_size)
    return lls_error_set(err, LLS_EINTEGRITY,
                         "artifact chunk is damaged: %zu stored bytes for %lld raw bytes",
                         data.len, (long long)raw_size);
  if (lls_buf_reserve(out, (size_t)raw_size) != 0) return lls_error_oom(err);
  if (data.len == (size_t)raw_size) {
    if (raw_size > 0) memcpy(out->data, data.ptr, data.len);
  } else if (lls_lz4_decompress(data.ptr, data.len, out->data, (size_t)raw_size) != 0) {
    return lls_error_set(err, LLS_EINTEGRITY,
                         "artifact chunk is damaged: its LZ4 block does not decode to "
                         "%lld bytes", (long long)raw_size);
  }
  out->len = (size_t)raw_size;
  return 0;
}
