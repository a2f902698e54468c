/*
 * limits.c -- the text rules of limits.h.
 */
#include "base/limits.h"

#include <stdio.h>

#include "base/utf8.h"

const char *lls_text_problem(lls_str s, size_t min, size_t max, char *buf, size_t cap) {
  if (s.len < min) {
    if (min == 1) snprintf(buf, cap, "must not be empty");
    else snprintf(buf, cap, "is %zu bytes, at least %zu needed", s.len, min);
    return buf;
  }
  if (s.len > max) {
    snprintf(buf, cap, "is %zu bytes, at most %zu allowed", s.len, max);
    return buf;
  }
  size_t bad = lls_utf8_bad_at((const unsigned char *)s.ptr, s.len);
  if (bad != s.len) {
    snprintf(buf, cap, "must be UTF-8 text without NUL bytes (bad byte at %zu)", bad + 1);
    return buf;
  }
  return NULL;
}

int lls_text_ok(lls_str s, size_t min, size_t max) {
  return s.len >= min && s.len <= max &&
         lls_utf8_bad_at((const unsigned char *)s.ptr, s.len) == s.len;
}

static int name_char(char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
         ch == '_' || ch == '-' || ch == '.' || ch == ':' || ch == '/';
}

const char *lls_name_problem(lls_str s, char *buf, size_t cap) {
  if (s.len == 0 || s.len > LLS_MAX_NAME) {
    snprintf(buf, cap, "name must be 1..%d bytes", LLS_MAX_NAME);
    return buf;
  }
  for (size_t i = 0; i < s.len; i++) {
    if (!name_char(s.ptr[i])) {
      snprintf(buf, cap, "name '%.*s' has a character other than %s", (int)s.len, s.ptr,
               LLS_NAME_CHARS_TEXT);
      return buf;
    }
  }
  return NULL;
}

int lls_name_ok(lls_str s) {
  char buf[8];
  return lls_name_problem(s, buf, sizeof buf) == NULL;
}
