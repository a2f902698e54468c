/*
 * xport.h -- the PostgreSQL backend's export/import op table (xport.c):
 * pages of kv_store and vectors in key order, imports that keep times,
 * metadata and kv_id, and the passthrough sections of export_sections.
 */
#ifndef LLS_BACKENDS_POSTGRES_XPORT_H
#define LLS_BACKENDS_POSTGRES_XPORT_H

#include "backend/xport.h"

extern const lls_xport_ops lls_postgres_xport_ops;

#endif
