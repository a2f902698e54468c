/*
 * backends/memory/xport.h -- the memory backend's export/import op table.
 */
#ifndef LLS_BACKENDS_MEMORY_XPORT_H
#define LLS_BACKENDS_MEMORY_XPORT_H

#include "backend/xport.h"

extern const lls_xport_ops lls_memory_xport_ops;

#endif
