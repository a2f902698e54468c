/*
 * fuzz.h -- what the fuzz targets in spec/fuzz/ share: libFuzzer's entry
 * point (driven by libFuzzer in `make fuzz`, by replay_main.c over the
 * committed corpora in spec/fuzz_replay_spec.lua) and FUZZ_CHECK, which
 * turns a broken invariant into an abort, so both drivers report it with
 * the input and a stack like any sanitizer finding.
 */
#ifndef LLS_FUZZ_H
#define LLS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Runs one input; returns 0 (libFuzzer's convention: other values are
 * reserved). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts with the file, line and message when cond is false. */
#define FUZZ_CHECK(cond, msg)                                                         \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      fprintf(stderr, "%s:%d: fuzz invariant broken: %s\n", __FILE__, __LINE__, msg); \
      abort();                                                                        \
    }                                                                                 \
  } while (0)

#endif
