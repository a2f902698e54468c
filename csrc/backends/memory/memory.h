/*
 * memory.h -- the memory backend. Its vtable, lls_memory_vt, is declared
 * with the others in backend/backend.h and defined in memory.c.
 */
#ifndef LLS_BACKENDS_MEMORY_MEMORY_H
#define LLS_BACKENDS_MEMORY_MEMORY_H

#include "backend/backend.h"

#endif
