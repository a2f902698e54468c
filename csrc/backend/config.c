/*
 * config.c -- the options storage.open passes to a backend.
 */
#include "backend/config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char *lls_config_get(lls_config *cfg, const char *name) {
  for (size_t i = 0; i < cfg->nopts; i++) {
    if (strcmp(cfg->opts[i].name, name) == 0) {
      cfg->opts[i].used = 1;
      return cfg->opts[i].value;
    }
  }
  return NULL;
}

int lls_config_int(lls_config *cfg, const char *name, long long def, long long lo,
                   long long hi, long long *out, lls_error *err) {
  const char *v = lls_config_get(cfg, name);
  if (v == NULL) {
    *out = def;
    return 0;
  }
  char *end;
  errno = 0;
  long long n = strtoll(v, &end, 10);
  if (errno != 0 || end == v || *end != '\0' || n < lo || n > hi)
    return lls_error_set(err, LLS_EINVALID,
                         "option '%s' must be an integer in [%lld, %lld], got '%s'", name, lo,
                         hi, v);
  *out = n;
  return 0;
}
