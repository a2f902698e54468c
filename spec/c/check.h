/*
 * check.h -- the assertions the standalone C tests share. Each test is one
 * translation unit built by spec/support/ctest.lua; a failed check prints
 * its place and message and exits 1, and g_checks counts what passed for
 * the test's closing "ok: N checks passed" line.
 */
#ifndef LLS_SPEC_CHECK_H
#define LLS_SPEC_CHECK_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static int g_checks;

static inline void failf(const char *file, int line, const char *fmt, ...) {
  va_list ap;
  fflush(stdout); /* the test's progress lines first, then the failure */
  fprintf(stderr, "FAIL %s:%d: ", file, line);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  exit(1);
}

#define CHECK(cond, ...)                                                                     \
  do {                                                                                       \
    g_checks++;                                                                              \
    if (!(cond)) failf(__FILE__, __LINE__, __VA_ARGS__);                                     \
  } while (0)

#endif
