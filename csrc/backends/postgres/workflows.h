/*
 * workflows.h -- the PostgreSQL backend's workflow-state op table
 * (workflows.c).
 */
#ifndef LLS_BACKENDS_POSTGRES_WORKFLOWS_H
#define LLS_BACKENDS_POSTGRES_WORKFLOWS_H

#include "backend/workflows.h"

extern const lls_workflow_ops lls_postgres_workflow_ops;

#endif
