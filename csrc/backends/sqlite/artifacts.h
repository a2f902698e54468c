/*
 * artifacts.h -- the SQLite backend's artifact op table (artifacts.c),
 * which the memory backend's private store uses too.
 */
#ifndef LLS_BACKENDS_SQLITE_ARTIFACTS_H
#define LLS_BACKENDS_SQLITE_ARTIFACTS_H

#include "backend/artifacts.h"

extern const lls_artifact_ops lls_sqlite_artifact_ops;

#endif
