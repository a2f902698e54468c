/*
 * test_b64.c -- base64 (csrc/base/b64.c) on its own: round trips of every
 * length, whole and streamed in pieces of every size, and the strict
 * rules (RFC 4648): padding required, no blanks or other characters, no
 * data after padding, zero unused bits.
 */
#include <string.h>

#include "base/b64.h"
#include "check.h"

/* Decodes t whole; 0 when it is base64 and gives the n bytes want. */
static int decodes_to(const char *t, const void *want, size_t n) {
  lls_buf out = {0};
  lls_buf_append(&out, "pre", 3);
  int rc = lls_b64_decode(&out, t, strlen(t));
  int same = rc == 0 && out.len == 3 + n && memcmp(out.data + 3, want, n) == 0;
  lls_buf_free(&out);
  return same;
}

/* -1 when t is refused whole, and streamed one character at a time; the
 * buffer is unchanged after the whole refusal. */
static void refused(const char *t) {
  lls_buf out = {0};
  lls_buf_append(&out, "pre", 3);
  CHECK(lls_b64_decode(&out, t, strlen(t)) == -1, "'%s' refused", t);
  CHECK(out.len == 3 && memcmp(out.data, "pre", 3) == 0, "'%s': buffer unchanged", t);
  lls_b64_dec d;
  lls_b64_dec_init(&d);
  int rc = 0;
  for (size_t i = 0; t[i] != '\0' && rc == 0; i++) rc = lls_b64_dec_feed(&d, &out, t + i, 1);
  if (rc == 0) rc = lls_b64_dec_end(&d);
  CHECK(rc == -1, "'%s' refused when streamed", t);
  CHECK(lls_b64_dec_feed(&d, &out, "AAAA", 4) == -1, "'%s': refusal is sticky", t);
  lls_buf_free(&out);
}

static unsigned next(unsigned *s) {
  *s = *s * 1103515245u + 12345u;
  return *s >> 8;
}

static void test_roundtrip(void) {
  unsigned seed = 7;
  unsigned char bytes[300];
  for (size_t n = 0; n < sizeof bytes; n++) {
    for (size_t i = 0; i < n; i++) bytes[i] = (unsigned char)next(&seed);
    lls_buf text = {0}, out = {0};
    CHECK(lls_b64_quoted(&text, bytes, n) == 0, "encode");
    const char *t = text.data + 1; /* without the quotes */
    size_t tn = text.len - 2;
    CHECK(lls_b64_decode(&out, t, tn) == 0 && out.len == n &&
              (n == 0 || memcmp(out.data, bytes, n) == 0), "whole round trip of %zu bytes", n);
    for (size_t piece = 1; piece <= 9; piece++) {
      lls_b64_dec d;
      lls_b64_dec_init(&d);
      out.len = 0;
      for (size_t off = 0; off < tn; off += piece) {
        size_t take = tn - off < piece ? tn - off : piece;
        CHECK(lls_b64_dec_feed(&d, &out, t + off, take) == 0, "piece");
      }
      CHECK(lls_b64_dec_end(&d) == 0 && out.len == n &&
                (n == 0 || memcmp(out.data, bytes, n) == 0),
            "round trip of %zu bytes in pieces of %zu", n, piece);
    }
    lls_buf_free(&text);
    lls_buf_free(&out);
  }
}

static void test_strict(void) {
  CHECK(decodes_to("", "", 0), "empty text");
  CHECK(decodes_to("QQ==", "A", 1), "one byte");
  CHECK(decodes_to("QUI=", "AB", 2), "two bytes");
  CHECK(decodes_to("QUJD", "ABC", 3), "three bytes");
  CHECK(decodes_to("+/+/", "\xfb\xff\xbf", 3), "the last two characters");
  static const char *const bad[] = {
      "Q", "QQ", "QUI", "QUJDQ",     /* not padded: groups cut short */
      "QQ=", "QUJDQQ=",              /* padding cut short */
      "Q===", "====", "=", "QQ===",  /* too much padding */
      "QQ==QUJD", "QQ==QQ==", "QUI=Q", /* data after padding */
      "Q=Q=", "QUJD=",               /* '=' inside */
      "QR==", "QUJ=",                /* unused bits set: not the one spelling */
      "QU I", " QUJD", "QUJD\n", "QU\tJD", "QUJD\r\n", /* blanks */
      "QU-_", "QUJ.", "QUJ\x80", "QU\xc3\xa9",          /* not the alphabet */
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) refused(bad[i]);
  lls_buf out = {0};
  CHECK(lls_b64_decode(&out, "QU\0D", 4) == -1, "a NUL refused");
  lls_buf_free(&out);
}

int main(void) {
  test_roundtrip();
  test_strict();
  printf("ok: %d checks passed\n", g_checks);
  return 0;
}
