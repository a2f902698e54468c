/*
 * sqlite.c -- the SQLite backend (libsqlite3): its vtable, which joins the
 * handle's slots (open.c, conn.c) and the op tables of kv.c, vectors.c and
 * xport.c. The schema is documented in schema.c.
 *
 * The vtable lives apart from conn.c so that the op-table files depend on
 * conn.c and nothing depends back on them.
 */
#include "backends/sqlite/sqlite.h"

#include "backends/sqlite/agent_states.h"
#include "backends/sqlite/artifacts.h"
#include "backends/sqlite/conn.h"
#include "backends/sqlite/events.h"
#include "backends/sqlite/hook_history.h"
#include "backends/sqlite/kv.h"
#include "backends/sqlite/open.h"
#include "backends/sqlite/graph.h"
#include "backends/sqlite/patterns.h"
#include "backends/sqlite/sessions.h"
#include "backends/sqlite/vectors.h"
#include "backends/sqlite/workflows.h"
#include "backends/sqlite/xport.h"

const lls_backend_vt lls_sqlite_vt = {
    .name = "sqlite",
    .traits = {.persistent = 1,
               .transactional = 1,
               .supports_prefix_scan = 1,
               .supports_atomic_ops = 1,
               .nominal_read_us = 5.0,
               .nominal_write_us = 50.0},
    .open = lls_sqlite_open,
    .check_options = lls_sqlite_check_options,
    .close = lls_sqlite_close,
    .location = lls_sqlite_location,
    .begin = lls_sqlite_begin,
    .begin_read = lls_sqlite_begin_read,
    .commit = lls_sqlite_commit,
    .rollback = lls_sqlite_rollback,
    .migrations = lls_sqlite_migrations,
    .check = lls_sqlite_check,
    .kv = &lls_sqlite_kv_ops,
    .vec = &lls_sqlite_vec_ops,
    .xport = &lls_sqlite_xport_ops,
    .sessions = &lls_sqlite_session_ops,
    .artifacts = &lls_sqlite_artifact_ops,
    .agent_states = &lls_sqlite_agent_state_ops,
    .workflows = &lls_sqlite_workflow_ops,
    .patterns = &lls_sqlite_pattern_ops,
    .graph = &lls_sqlite_graph_ops,
    .hook_history = &lls_sqlite_hook_ops,
    .events = &lls_sqlite_event_ops,
};
