/*
 * backend.c -- opening a backend through its vtable, and finding the one
 * that holds its components.
 */
#include "backend/backend.h"

lls_backend *lls_backend_open(const lls_backend_vt *vt, lls_config *cfg, lls_error *err) {
  lls_backend *b = vt->open(cfg, err);
  if (b != NULL) b->vt = vt;
  return b;
}

lls_backend *lls_backend_components(lls_backend *b, lls_error *err) {
  return b->vt->components != NULL ? b->vt->components(b, err) : b;
}
