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

#endif
