/*
 * patterns.h -- the PostgreSQL backend's procedural-memory op table
 * (patterns.c).
 */
#ifndef LLS_BACKENDS_POSTGRES_PATTERNS_H
#define LLS_BACKENDS_POSTGRES_PATTERNS_H

#include "backend/patterns.h"

extern const lls_pattern_ops lls_postgres_pattern_ops;

#endif
