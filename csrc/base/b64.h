/*
 * b64.h -- base64 encoding, and strict decoding (whole or streaming) into
 * a growing buffer.
 */
#ifndef LLS_BASE_B64_H
#define LLS_BASE_B64_H

#include <stddef.h>

#include "base/buf.h"

/* Appends '"', the base64 of p[0..n) and '"' (a ready JSON string: base64
 * needs no escapes). 0, or -1 when out of memory. */
int lls_b64_quoted(lls_buf *out, const void *p, size_t n);

/* Appends the bytes that base64 text t[0..n) stands for. Strict RFC 4648
 * (standard alphabet): groups of four characters, the last one padded
 * with '=' as needed, no other character (no blanks), and the unused low
 * bits of a padded group zero (so each text has one meaning). 0; -1 when
 * the text is not base64; -2 when out of memory. out is unchanged on
 * failure. */
int lls_b64_decode(lls_buf *out, const char *t, size_t n);

/* A decoder fed piece by piece (a value streamed out of a JSON string):
 * the same rules as lls_b64_decode. Start with lls_b64_dec_init. */
typedef struct lls_b64_dec {
  unsigned char q[4]; /* sextets of the group being read */
  int nq;             /* how many of them (padding counts) */
  int pad;            /* '=' in the group */
  int done;           /* a padded group ended the text: nothing may follow */
  int bad;            /* the text is not base64 (sticky) */
} lls_b64_dec;

void lls_b64_dec_init(lls_b64_dec *d);

/* Appends the bytes of the next n characters. 0; -1 once the text is
 * known not to be base64 (nothing more is appended); -2 when out of
 * memory. */
int lls_b64_dec_feed(lls_b64_dec *d, lls_buf *out, const char *t, size_t n);

/* The text ended: 0 when it was base64, -1 when not (a group cut short). */
int lls_b64_dec_end(lls_b64_dec *d);

#endif
