/*
 * utf8.h -- the one UTF-8 check, and literal prefix ranges over UTF-8 keys.
 */
#ifndef LLS_BASE_UTF8_H
#define LLS_BASE_UTF8_H

#include <stddef.h>

#include "base/buf.h"

/* Position of the first byte that breaks UTF-8 or is NUL (overlongs,
 * surrogates and code points past U+10FFFF break it), or len when s[0..len)
 * is UTF-8 text without NUL. */
size_t lls_utf8_bad_at(const unsigned char *s, size_t len);

/* Smallest string greater than every string that starts with prefix, for
 * literal range scans (`key >= prefix AND key < upper`). The result is valid
 * UTF-8 when prefix is (it bumps the last code point, skipping surrogates).
 * Returns 0 and sets *has_upper = 0 when no upper bound exists (empty
 * prefix, or only U+10FFFF code points). -1 on allocation failure. */
int lls_prefix_upper(lls_str prefix, lls_buf *out, int *has_upper);

/* 1 when s starts with prefix. */
int lls_has_prefix(lls_str s, lls_str prefix);

#endif
