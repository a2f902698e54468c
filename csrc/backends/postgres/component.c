/*
 * backends/postgres/component.c -- the statements every PostgreSQL
 * component file runs in the same shape (component.h).
 */
#include "backends/postgres/component.h"

#include <stdlib.h>

int lls_pg_tenant_count(pg_backend *pg, const pg_stmt *def, int64_t *n, lls_error *err) {
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  PGresult *r = lls_pg_run_stmt(pg, def, &p, 1, err);
  if (r == NULL) return -1;
  *n = lls_pg_int8_at(r, 0, 0);
  PQclear(r);
  return 0;
}

int lls_pg_delete_id(pg_backend *pg, const pg_stmt *def, lls_str id, int *existed,
                     lls_error *err) {
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_bytes(&p, id.ptr, id.len);
  PGresult *r = lls_pg_write_stmt(pg, def, &p, err);
  if (r == NULL) return -1;
  /* DELETE's command tag counts the rows, RETURNING or not */
  *existed = strtoull(PQcmdTuples(r), NULL, 10) > 0;
  PQclear(r);
  return 0;
}

int lls_pg_id_rows(pg_backend *pg, const pg_stmt *def, const pg_params *p, lls_rows *out,
                   lls_error *err) {
  PGresult *r = lls_pg_run_stmt(pg, def, p, 1, err);
  if (r == NULL) return -1;
  int n = PQntuples(r);
  for (int i = 0; i < n; i++) {
    if (lls_rows_add(out, PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0), "", 0) == NULL) {
      PQclear(r);
      return lls_error_oom(err);
    }
  }
  PQclear(r);
  return n;
}
