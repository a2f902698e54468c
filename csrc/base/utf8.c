/*
 * utf8.c -- the UTF-8 check every boundary uses, and prefix upper bounds.
 */
#include "base/utf8.h"

#include <string.h>

int lls_has_prefix(lls_str s, lls_str prefix) {
  return s.len >= prefix.len && memcmp(s.ptr, prefix.ptr, prefix.len) == 0;
}

/* Decodes the code point that ends at p[len-1]; returns its start index. */
static size_t last_cp_start(const unsigned char *p, size_t len) {
  size_t i = len - 1;
  while (i > 0 && (p[i] & 0xC0) == 0x80) i--;
  return i;
}

static unsigned long decode_cp(const unsigned char *p, size_t n) {
  if (n == 1) return p[0];
  unsigned long cp = p[0] & (0xFF >> (n + 1));
  for (size_t i = 1; i < n; i++) cp = (cp << 6) | (p[i] & 0x3F);
  return cp;
}

static size_t encode_cp(unsigned long cp, unsigned char *o) {
  if (cp < 0x80) { o[0] = (unsigned char)cp; return 1; }
  if (cp < 0x800) {
    o[0] = (unsigned char)(0xC0 | (cp >> 6));
    o[1] = (unsigned char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (unsigned char)(0xE0 | (cp >> 12));
    o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (unsigned char)(0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (unsigned char)(0xF0 | (cp >> 18));
  o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
  o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
  o[3] = (unsigned char)(0x80 | (cp & 0x3F));
  return 4;
}

/* Bumping the last code point (not the last byte) keeps the bound valid
 * UTF-8, which PostgreSQL insists on for text parameters; with byte
 * ("C") ordering, p[..-1] + (c+1) sorts after every string starting p. */
int lls_prefix_upper(lls_str prefix, lls_buf *out, int *has_upper) {
  const unsigned char *p = (const unsigned char *)prefix.ptr;
  size_t len = prefix.len;
  out->len = 0;
  *has_upper = 0;
  while (len > 0) {
    size_t start = last_cp_start(p, len);
    unsigned long cp = decode_cp(p + start, len - start);
    if (cp < 0x10FFFF) {
      cp++;
      if (cp == 0xD800) cp = 0xE000;
      unsigned char enc[4];
      size_t n = encode_cp(cp, enc);
      if (lls_buf_append(out, p, start) != 0 || lls_buf_append(out, enc, n) != 0)
        return -1;
      *has_upper = 1;
      return 0;
    }
    len = start;
  }
  return 0;
}

/* Returns the position of the first byte that breaks UTF-8 (or is NUL), or
 * len when s is valid. Overlongs, surrogates and > U+10FFFF are invalid. */
size_t lls_utf8_bad_at(const unsigned char *s, size_t len) {
  size_t i = 0;
  while (i < len) {
    unsigned c = s[i];
    if (c >= 0x01 && c < 0x80) {
      i++;
      continue;
    }
    size_t n;
    unsigned long cp, min;
    if (c >= 0xC2 && c <= 0xDF) n = 2, cp = c & 0x1F, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF) n = 3, cp = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4) n = 4, cp = c & 0x07, min = 0x10000;
    else return i;
    if (len - i < n) return i;
    for (size_t k = 1; k < n; k++) {
      if ((s[i + k] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += n;
  }
  return len;
}
