/*
 * backends/memory/components.c -- the memory backend's components' store
 * (see components.h).
 */
#include "backends/memory/components.h"

#include "backends/memory/store.h"

lls_backend *lls_memory_components(lls_backend *b, lls_error *err) {
  lls_memory_backend *m = lls_memory_of(b);
  if (m->components != NULL) return m->components;
  lls_config cfg = {.location = ":memory:", .tenant = m->tenant, .opts = NULL, .nopts = 0};
  lls_backend *c = lls_backend_open(&lls_sqlite_vt, &cfg, err);
  if (c == NULL) return NULL;
  /* Opened inside a transaction: it joins at the same depth, so the
   * levels still open commit or roll back its writes with the rest. */
  for (int d = 0; d < m->depth; d++) {
    if (c->vt->begin(c, d, err) != 0) {
      c->vt->close(c);
      return NULL;
    }
  }
  m->components = c;
  return c;
}
