/*
 * postgres.c -- the PostgreSQL backend (libpq): its vtable, which joins the
 * handle's slots (conn.c) and the op tables of kv.c, vectors.c and
 * xport.c. The schema is documented in schema.c.
 *
 * The vtable lives apart from conn.c so that the op-table files depend on
 * conn.c and nothing depends back on them.
 */
#include "backends/postgres/postgres.h"

#include "backends/postgres/agent_states.h"
#include "backends/postgres/artifacts.h"
#include "backends/postgres/conn.h"
#include "backends/postgres/events.h"
#include "backends/postgres/hook_history.h"
#include "backends/postgres/kv.h"
#include "backends/postgres/graph.h"
#include "backends/postgres/patterns.h"
#include "backends/postgres/sessions.h"
#include "backends/postgres/vectors.h"
#include "backends/postgres/workflows.h"
#include "backends/postgres/xport.h"

const lls_backend_vt lls_postgres_vt = {
    .name = "postgres",
    /* nominal latencies: the seed's figures for a server on the network */
    .traits = {.persistent = 1,
               .transactional = 1,
               .supports_prefix_scan = 1,
               .supports_atomic_ops = 1,
               .nominal_read_us = 500.0,
               .nominal_write_us = 1000.0},
    .open = lls_pg_open,
    .check_options = lls_pg_check_options,
    .close = lls_pg_close,
    .location = lls_pg_location,
    .begin = lls_pg_begin,
    .begin_read = lls_pg_begin_read,
    .commit = lls_pg_commit,
    .rollback = lls_pg_rollback,
    .migrations = lls_pg_migrations,
    .check = lls_pg_check,
    .kv = &lls_postgres_kv_ops,
    .vec = &lls_postgres_vec_ops,
    .xport = &lls_postgres_xport_ops,
    .sessions = &lls_postgres_session_ops,
    .artifacts = &lls_postgres_artifact_ops,
    .agent_states = &lls_postgres_agent_state_ops,
    .workflows = &lls_postgres_workflow_ops,
    .patterns = &lls_postgres_pattern_ops,
    .graph = &lls_postgres_graph_ops,
    .hook_history = &lls_postgres_hook_ops,
    .events = &lls_postgres_event_ops,
};
