/*
 * backends/postgres/component.h -- what the PostgreSQL component files
 * (sessions.c, artifacts.c, agent_states.c, workflows.c) share beyond
 * conn.h: the statements every component has in the same shape.
 */
#ifndef LLS_BACKENDS_POSTGRES_COMPONENT_H
#define LLS_BACKENDS_POSTGRES_COMPONENT_H

#include "backends/postgres/conn.h"

/* A component's count: def takes the tenant ($1) and returns one int8. */
int lls_pg_tenant_count(pg_backend *pg, const pg_stmt *def, int64_t *n, lls_error *err);

/* A component's delete by id: def takes the tenant ($1) and the id ($2);
 * *existed = it removed a row. */
int lls_pg_delete_id(pg_backend *pg, const pg_stmt *def, lls_str id, int *existed,
                     lls_error *err);

/* A component's list: runs read def with p and appends column 0 of each
 * row (an id) to out as a key. Returns the rows appended, or -1 + err. */
int lls_pg_id_rows(pg_backend *pg, const pg_stmt *def, const pg_params *p, lls_rows *out,
                   lls_error *err);

#endif
