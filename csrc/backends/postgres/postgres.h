/*
 * postgres.h -- the PostgreSQL backend. Its vtable, lls_postgres_vt, is
 * declared with the others in backend/backend.h and defined in postgres.c.
 */
#ifndef LLS_BACKENDS_POSTGRES_POSTGRES_H
#define LLS_BACKENDS_POSTGRES_POSTGRES_H

#include "backend/backend.h"

#endif
