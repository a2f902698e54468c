/*
 * config.h -- the options storage.open passes to a backend's open().
 */
#ifndef LLS_BACKEND_CONFIG_H
#define LLS_BACKEND_CONFIG_H

#include <stddef.h>

#include "base/error.h"

/* One `name = value` option from storage.open{...}, stringified by the core.
 * A backend that consumes an option marks it used; the core rejects any
 * option left unused, so typos are reported instead of ignored. */
typedef struct lls_option {
  const char *name;
  const char *value;
  int used;
} lls_option;

typedef struct lls_config {
  const char *location; /* sqlite: file path or ":memory:"; postgres: conninfo */
  const char *tenant;   /* never NULL; "default" unless the caller chose */
  lls_option *opts;
  size_t nopts;
} lls_config;

/* The first option no one marked used (a name the backend does not
 * take), or NULL when every option was used. */
const lls_option *lls_config_unused(const lls_config *cfg);

/* The option's value (marking it used), or NULL when absent. */
const char *lls_config_get(lls_config *cfg, const char *name);

/* Integer option in [lo, hi]; *out = def when absent. -1 + err when the
 * value is not an integer in range. */
int lls_config_int(lls_config *cfg, const char *name, long long def, long long lo,
                   long long hi, long long *out, lls_error *err);

/* A choice among names[0..n) (compared without case); *out = its index,
 * or def when the option is absent. -1 + LLS_EINVALID, listing the
 * choices, for any other value. */
int lls_config_choice(lls_config *cfg, const char *name, const char *const *names, size_t n,
                      int def, int *out, lls_error *err);

#endif
