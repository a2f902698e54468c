/*
 * b64.h -- base64 encoding and strict decoding into a growing buffer.
 */
#ifndef LLS_BASE_B64_H
#define LLS_BASE_B64_H

#include <stddef.h>

#include "base/buf.h"

/* Appends '"', the base64 of p[0..n) and '"' (a ready JSON string: base64
 * needs no escapes). 0, or -1 when out of memory. */
int lls_b64_quoted(lls_buf *out, const void *p, size_t n);

/* Appends the bytes that base64 text t[0..n) stands for (standard
 * alphabet; padding may be left out). 0; -1 when the text is not base64;
 * -2 when out of memory. out is unchanged on failure. */
int lls_b64_decode(lls_buf *out, const char *t, size_t n);

#endif
