/*
 * backends/memory/components.h -- where the memory backend keeps its
 * components (sessions, artifacts, agent states, workflows, ...): a
 * private ":memory:" SQLite database, driven by the SQLite backend's
 * component code, as COMPONENTS.md allows. One implementation of each
 * component's queries serves both backends, with the engine's indexes;
 * the store's transactions cover it (store.c forwards begin, commit and
 * rollback to it once it is open).
 */
#ifndef LLS_BACKENDS_MEMORY_COMPONENTS_H
#define LLS_BACKENDS_MEMORY_COMPONENTS_H

#include "backend/backend.h"

/* lls_memory_vt.components: the private store, opened on first use (for
 * the handle's tenant, at the transaction depth the handle is at); NULL +
 * err when SQLite cannot open it. */
lls_backend *lls_memory_components(lls_backend *b, lls_error *err);

#endif
