/*
 * error.c -- filling lls_error and naming codes.
 */
#include "base/error.h"

#include <stdarg.h>
#include <stdio.h>

int lls_error_set(lls_error *err, lls_code code, const char *fmt, ...) {
  va_list ap;
  err->code = code;
  err->sqlstate[0] = '\0';
  err->sqlite_code = 0;
  va_start(ap, fmt);
  vsnprintf(err->message, sizeof err->message, fmt, ap);
  va_end(ap);
  return -1;
}

int lls_error_oom(lls_error *err) { return lls_error_set(err, LLS_EIO, "out of memory"); }

int lls_error_stopped(lls_error *err) {
  if (err->code == LLS_OK || err->message[0] == '\0')
    lls_error_set(err, LLS_EIO, "the consumer stopped the stream");
  return -1;
}

const char *lls_code_name(lls_code code) {
  switch (code) {
  case LLS_OK: return "ok";
  case LLS_ECLOSED: return "closed";
  case LLS_ENOTFOUND: return "not_found";
  case LLS_ECONFLICT: return "conflict";
  case LLS_EBUSY: return "busy";
  case LLS_EIO: return "io";
  case LLS_ECONNECTION: return "connection";
  case LLS_EQUOTA: return "quota";
  case LLS_EFORMAT: return "format";
  case LLS_EVERSION: return "version";
  case LLS_EINVALID: return "invalid";
  case LLS_EINTEGRITY: return "integrity";
  case LLS_EPERMISSION: return "permission";
  }
  return "io";
}
