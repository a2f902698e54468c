/*
 * patterns.h -- the SQLite backend's procedural-memory op table
 * (patterns.c), which the memory backend's components use too.
 */
#ifndef LLS_BACKENDS_SQLITE_PATTERNS_H
#define LLS_BACKENDS_SQLITE_PATTERNS_H

#include "backend/patterns.h"

extern const lls_pattern_ops lls_sqlite_pattern_ops;

#endif
