/*
 * xport.h -- the SQLite backend's export/import op table (xport.c).
 */
#ifndef LLS_BACKENDS_SQLITE_XPORT_H
#define LLS_BACKENDS_SQLITE_XPORT_H

#include "backend/xport.h"

extern const lls_xport_ops lls_sqlite_xport_ops;

#endif
