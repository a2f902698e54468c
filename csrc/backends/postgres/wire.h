/*
 * wire.h -- PostgreSQL's binary wire format, for the PostgreSQL backend:
 * statement parameters, one-dimensional arrays and result columns. Nothing
 * here knows a table.
 *
 * All parameters and results are binary, so keys, values and arrays never
 * go through text escaping; times travel as binary timestamptz (int8
 * microseconds since 2000-01-01), which is exact, unlike arithmetic on
 * intervals (float8 multiplication).
 */
#ifndef LLS_BACKENDS_POSTGRES_WIRE_H
#define LLS_BACKENDS_POSTGRES_WIRE_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

/* Type OIDs from pg_type.h (server headers are not a build dependency). */
#define OID_BOOL 16
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_INT4 23
#define OID_TEXT 25
#define OID_BYTEA_ARR 1001
#define OID_INT8_ARR 1016
#define OID_TEXT_ARR 1009
#define OID_TSTZ 1184
#define OID_TSTZ_ARR 1185

/* The most parameters one statement takes. */
#define MAX_PARAMS 12

/* Rows per put statement are cut at about this many bytes: one bytea[]
 * value may not exceed 1 GB, nor a libpq parameter 2 GB, and the server
 * holds each array whole. */
#define PUT_CHUNK_BYTES ((size_t)64 << 20)

/* Parameters of one statement execution, all in binary format. */
typedef struct pg_params {
  int n;
  int toobig;
  const char *v[MAX_PARAMS];
  int len[MAX_PARAMS];
  int fmt[MAX_PARAMS];
  char scratch[MAX_PARAMS][8];
} pg_params;

/* ------------------------------------------------------------ parameters */

/* Appends a binary parameter (text, bytea, arrays); over 2 GB is refused
 * by lls_pg_run, since libpq lengths are int. */
void lls_pg_param_bytes(pg_params *p, const char *s, size_t n);

/* Appends SQL NULL. */
void lls_pg_param_null(pg_params *p);

/* Appends a timestamptz (Unix microseconds). */
void lls_pg_param_time(pg_params *p, int64_t us);

/* expires_at: 0 means "never", stored as NULL. */
void lls_pg_param_expiry(pg_params *p, int64_t us);

/* Appends an int8. */
void lls_pg_param_int8(pg_params *p, int64_t x);

/* Appends an int4. */
void lls_pg_param_int4(pg_params *p, int32_t x);

/* Appends a bool. */
void lls_pg_param_bool(pg_params *p, int x);

/* Appends a built array. */
void lls_pg_param_buf(pg_params *p, const lls_buf *b);

/* A limit as the int8 LIMIT parameter: 0 means none (LIMIT NULL). */
void lls_pg_param_limit(pg_params *p, size_t limit);

/* ------------------------------------------- binary one-dimensional arrays */

/* An array parameter is built in an lls_buf (wire.c describes the
 * format): lls_pg_arr_init, one lls_pg_arr_add* per element, then
 * lls_pg_arr_finish with the element type and count. */

/* Empties a and reserves the header. 0, or -1 when out of memory. */
int lls_pg_arr_init(lls_buf *a);

/* Appends one element. -1 when out of memory or over 2 GB. */
int lls_pg_arr_add(lls_buf *a, const char *p, size_t n);

/* Appends a NULL element (length -1). */
int lls_pg_arr_add_null(lls_buf *a);

/* Appends a timestamptz element (never NULL). */
int lls_pg_arr_add_time(lls_buf *a, int64_t us);

/* Appends a timestamptz element; 0 (never expires) becomes NULL. */
int lls_pg_arr_add_expiry(lls_buf *a, int64_t us);

/* Appends an int8 array element. */
int lls_pg_arr_add_int8(lls_buf *a, int64_t x);

/* Appends text, or NULL when empty (absent metadata or kv_id). */
int lls_pg_arr_add_opt(lls_buf *a, lls_str s);

/* Writes the header for n elements of type elem. An empty array has
 * ndim 0 and no dimension fields. */
void lls_pg_arr_finish(lls_buf *a, Oid elem, size_t n, int hasnull);

/* --------------------------------------------------------- result columns */

/* A timestamptz column as Unix microseconds; NULL is 0. */
int64_t lls_pg_time_or_zero(const PGresult *r, int row, int col);

/* An int8 column; NULL is 0. */
int64_t lls_pg_int8_at(const PGresult *r, int row, int col);

/* An int4 column; NULL is 0. */
int lls_pg_int4_at(const PGresult *r, int row, int col);

/* A column as a borrowed string (valid while r lives); NULL is empty. */
lls_str lls_pg_str_at(const PGresult *r, int row, int col);

#endif
