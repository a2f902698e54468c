/*
 * artifacts.h -- the PostgreSQL backend's artifact op table (artifacts.c).
 */
#ifndef LLS_BACKENDS_POSTGRES_ARTIFACTS_H
#define LLS_BACKENDS_POSTGRES_ARTIFACTS_H

#include "backend/artifacts.h"

extern const lls_artifact_ops lls_postgres_artifact_ops;

#endif
