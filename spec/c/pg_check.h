/*
 * pg_check.h -- what the PostgreSQL C tests share: checks that count
 * failures and carry on (so one run reports every broken slot), and SQL
 * run as the superuser through a second connection (`admin`). Each test is
 * one translation unit; the test sets pg_url and admin before use.
 */
#ifndef LLS_SPEC_PG_CHECK_H
#define LLS_SPEC_PG_CHECK_H

#include <libpq-fe.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "backend/backend.h"

static int checks, failures;
static const char *pg_url;
static PGconn *admin;

#define CHECK(cond, ...)                                                         \
  do {                                                                           \
    checks++;                                                                    \
    if (!(cond)) {                                                               \
      failures++;                                                                \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);            \
      fprintf(stderr, __VA_ARGS__);                                              \
      fputc('\n', stderr);                                                       \
    }                                                                            \
  } while (0)

/* A call that must succeed; err says why it did not. */
#define OK(call, err)                                                            \
  CHECK((call) == 0, "%s: %s", lls_code_name((err).code), (err).message)

/* A call that must fail with code. */
#define FAILS(call, err, want)                                                   \
  do {                                                                           \
    (err).code = LLS_OK;                                                         \
    int rc_ = (call);                                                            \
    CHECK(rc_ != 0 && (err).code == (want), "rc %d, code %s (want %s): %s", rc_, \
          lls_code_name((err).code), lls_code_name(want), (err).message);        \
  } while (0)

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "FATAL: ");
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

/* ------------------------------------------------------- admin SQL */

/* Runs SQL as the superuser; returns the first value of the last result
 * (a static buffer, "" when there is none). Dies on error. */
static const char *sql(const char *fmt, ...) {
  static char out[512];
  char q[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(q, sizeof q, fmt, ap);
  va_end(ap);
  PGresult *r = PQexec(admin, q);
  ExecStatusType s = PQresultStatus(r);
  if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
    die("admin SQL failed: %s\n%s", PQresultErrorMessage(r), q);
  out[0] = '\0';
  if (s == PGRES_TUPLES_OK && PQntuples(r) > 0 && PQnfields(r) > 0)
    snprintf(out, sizeof out, "%s", PQgetvalue(r, 0, 0));
  PQclear(r);
  return out;
}


#endif
