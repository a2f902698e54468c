/*
 * config.c -- the options storage.open passes to a backend.
 */
#include "backend/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const lls_option *lls_config_unused(const lls_config *cfg) {
  for (size_t i = 0; i < cfg->nopts; i++)
    if (!cfg->opts[i].used) return &cfg->opts[i];
  return NULL;
}

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

int lls_config_choice(lls_config *cfg, const char *name, const char *const *names, size_t n,
                      int def, int *out, lls_error *err) {
  const char *v = lls_config_get(cfg, name);
  *out = def;
  if (v == NULL) return 0;
  char list[256] = "";
  size_t used = 0;
  for (size_t i = 0; i < n; i++) {
    if (strcasecmp(v, names[i]) == 0) {
      *out = (int)i;
      return 0;
    }
    int w = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", names[i]);
    if (w > 0 && (size_t)w < sizeof list - used) used += (size_t)w;
  }
  return lls_error_set(err, LLS_EINVALID, "option '%s' must be one of %s; got '%s'", name,
                       list, v);
}
