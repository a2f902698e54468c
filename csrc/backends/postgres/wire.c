/*
 * wire.c -- PostgreSQL's binary wire format (see wire.h): parameters,
 * one-dimensional arrays and result columns.
 */
#include "backends/postgres/wire.h"

#include <limits.h>

/* Binary timestamptz counts microseconds from 2000-01-01, not 1970-01-01. */
#define PG_EPOCH_OFFSET_US UINT64_C(946684800000000)

/* ------------------------------------------------------- byte encoding */

/* Network byte order, as the binary wire format wants. */
static void put_be32(unsigned char *p, uint32_t x) {
  p[0] = (unsigned char)(x >> 24);
  p[1] = (unsigned char)(x >> 16);
  p[2] = (unsigned char)(x >> 8);
  p[3] = (unsigned char)x;
}

/* put_be32 for 64 bits. */
static void put_be64(unsigned char *p, uint64_t x) {
  put_be32(p, (uint32_t)(x >> 32));
  put_be32(p + 4, (uint32_t)x);
}

/* Reads a big-endian 32-bit integer (int4 results). */
static uint32_t get_be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Reads a big-endian 64-bit integer (int8 and timestamptz results). */
static uint64_t get_be64(const unsigned char *p) {
  uint64_t x = 0;
  for (int i = 0; i < 8; i++) x = (x << 8) | p[i];
  return x;
}

/* Unix microseconds -> binary timestamptz; unsigned arithmetic so that no
 * input can overflow (out-of-range times are the server's to reject).
 * INT64_MAX and INT64_MIN, the library's open ends (backend/graph.h), are
 * the server's 'infinity' and '-infinity', which it encodes the same. */
static void enc_time(unsigned char *p, int64_t us) {
  if (us == INT64_MAX || us == INT64_MIN) put_be64(p, (uint64_t)us);
  else put_be64(p, (uint64_t)us - PG_EPOCH_OFFSET_US);
}

/* Binary timestamptz -> Unix microseconds ('infinity' -> INT64_MAX). */
static int64_t dec_time(const unsigned char *p) {
  uint64_t x = get_be64(p);
  if (x == (uint64_t)INT64_MAX || x == (uint64_t)INT64_MIN) return (int64_t)x;
  return (int64_t)(x + PG_EPOCH_OFFSET_US);
}

/* ------------------------------------------------------------ parameters */

void lls_pg_param_bytes(pg_params *p, const char *s, size_t n) {
  if (n > INT_MAX) p->toobig = 1;
  p->v[p->n] = s ? s : "";
  p->len[p->n] = n > INT_MAX ? 0 : (int)n;
  p->fmt[p->n] = 1;
  p->n++;
}

void lls_pg_param_null(pg_params *p) {
  p->v[p->n] = NULL;
  p->len[p->n] = 0;
  p->fmt[p->n] = 1;
  p->n++;
}

void lls_pg_param_time(pg_params *p, int64_t us) {
  enc_time((unsigned char *)p->scratch[p->n], us);
  lls_pg_param_bytes(p, p->scratch[p->n], 8);
}

void lls_pg_param_expiry(pg_params *p, int64_t us) {
  if (us == 0)
    lls_pg_param_null(p);
  else
    lls_pg_param_time(p, us);
}

void lls_pg_param_int8(pg_params *p, int64_t x) {
  put_be64((unsigned char *)p->scratch[p->n], (uint64_t)x);
  lls_pg_param_bytes(p, p->scratch[p->n], 8);
}

void lls_pg_param_int4(pg_params *p, int32_t x) {
  put_be32((unsigned char *)p->scratch[p->n], (uint32_t)x);
  lls_pg_param_bytes(p, p->scratch[p->n], 4);
}

void lls_pg_param_bool(pg_params *p, int x) {
  p->scratch[p->n][0] = (char)(x != 0);
  lls_pg_param_bytes(p, p->scratch[p->n], 1);
}

void lls_pg_param_buf(pg_params *p, const lls_buf *b) { lls_pg_param_bytes(p, b->data, b->len); }

void lls_pg_param_limit(pg_params *p, size_t limit) {
  if (limit > 0 && limit <= INT64_MAX)
    lls_pg_param_int8(p, (int64_t)limit);
  else
    lls_pg_param_null(p);
}

/* ------------------------------------------- binary one-dimensional arrays */

/* PostgreSQL's binary array format: ndim, has-null flag, element type,
 * then per dimension its length and lower bound, then each element as a
 * length (-1 for NULL) and its bytes. The header is patched at the end. */
#define ARR_HEADER 20

int lls_pg_arr_init(lls_buf *a) {
  a->len = 0;
  if (lls_buf_reserve(a, ARR_HEADER) != 0) return -1;
  a->len = ARR_HEADER;
  return 0;
}

int lls_pg_arr_add(lls_buf *a, const char *p, size_t n) {
  unsigned char len[4];
  if (n > INT32_MAX) return -1;
  put_be32(len, (uint32_t)n);
  if (lls_buf_append(a, len, 4) != 0) return -1;
  return lls_buf_append(a, p, n);
}

int lls_pg_arr_add_null(lls_buf *a) {
  unsigned char len[4];
  put_be32(len, UINT32_MAX);
  return lls_buf_append(a, len, 4);
}

int lls_pg_arr_add_time(lls_buf *a, int64_t us) {
  unsigned char v[8];
  enc_time(v, us);
  return lls_pg_arr_add(a, (const char *)v, 8);
}

int lls_pg_arr_add_expiry(lls_buf *a, int64_t us) {
  unsigned char v[8];
  if (us == 0) return lls_pg_arr_add_null(a);
  enc_time(v, us);
  return lls_pg_arr_add(a, (const char *)v, 8);
}

int lls_pg_arr_add_int8(lls_buf *a, int64_t x) {
  unsigned char v[8];
  put_be64(v, (uint64_t)x);
  return lls_pg_arr_add(a, (const char *)v, 8);
}

int lls_pg_arr_add_opt(lls_buf *a, lls_str s) {
  return s.len == 0 ? lls_pg_arr_add_null(a) : lls_pg_arr_add(a, s.ptr, s.len);
}

void lls_pg_arr_finish(lls_buf *a, Oid elem, size_t n, int hasnull) {
  unsigned char *h = (unsigned char *)a->data;
  put_be32(h, n ? 1 : 0);
  put_be32(h + 4, hasnull ? 1 : 0);
  put_be32(h + 8, (uint32_t)elem);
  if (n == 0) {
    a->len = 12;
    return;
  }
  put_be32(h + 12, (uint32_t)n);
  put_be32(h + 16, 1);
}

/* --------------------------------------------------------- result columns */

int64_t lls_pg_time_or_zero(const PGresult *r, int row, int col) {
  if (PQgetisnull(r, row, col) || PQgetlength(r, row, col) != 8) return 0;
  return dec_time((const unsigned char *)PQgetvalue(r, row, col));
}

int64_t lls_pg_int8_at(const PGresult *r, int row, int col) {
  if (PQgetisnull(r, row, col) || PQgetlength(r, row, col) != 8) return 0;
  return (int64_t)get_be64((const unsigned char *)PQgetvalue(r, row, col));
}

int lls_pg_int4_at(const PGresult *r, int row, int col) {
  if (PQgetisnull(r, row, col) || PQgetlength(r, row, col) != 4) return 0;
  return (int)(int32_t)get_be32((const unsigned char *)PQgetvalue(r, row, col));
}

lls_str lls_pg_str_at(const PGresult *r, int row, int col) {
  lls_str s = {PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col)};
  return s;
}
