/*
 * workflows.h -- the SQLite backend's workflow-state op table
 * (workflows.c), which the memory backend's components use too.
 */
#ifndef LLS_BACKENDS_SQLITE_WORKFLOWS_H
#define LLS_BACKENDS_SQLITE_WORKFLOWS_H

#include "backend/workflows.h"

extern const lls_workflow_ops lls_sqlite_workflow_ops;

#endif
