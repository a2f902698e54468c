/*
 * b64.c -- base64 (RFC 4648, standard alphabet) for the export format's
 * KV values and embeddings, on OpenSSL's EVP_EncodeBlock/EVP_DecodeBlock.
 * The decoder checks the text itself first: EVP skips blanks and does not
 * say how much padding it read.
 */
#include <string.h>

#include <openssl/evp.h>

#include "base/b64.h"

#define B64_CHUNK (48 * 1024)   /* multiple of 3: EVP_EncodeBlock takes an int */
#define B64D_CHUNK (64 * 1024)  /* multiple of 4 */

int lls_b64_quoted(lls_buf *out, const void *p, size_t n) {
  size_t need = 4 * ((n + 2) / 3) + 3; /* quotes and the NUL EVP writes */
  if (lls_buf_reserve(out, need) != 0) return -1;
  char *w = out->data + out->len;
  *w++ = '"';
  const unsigned char *in = p;
  while (n > 0) {
    size_t take = n < B64_CHUNK ? n : B64_CHUNK;
    w += EVP_EncodeBlock((unsigned char *)w, in, (int)take);
    in += take;
    n -= take;
  }
  *w++ = '"';
  out->len = (size_t)(w - out->data);
  return 0;
}

static int b64_char(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '+' || c == '/';
}

int lls_b64_decode(lls_buf *out, const char *t, size_t n) {
  /* EVP_DecodeBlock skips blanks and does not say how much padding it
   * decoded, so the text is checked here first: alphabet characters,
   * then at most two '=' that complete the last group. */
  size_t body = n;
  while (body > 0 && t[body - 1] == '=') body--;
  size_t pad = n - body;
  if (pad > 2 || (pad > 0 && n % 4 != 0) || body % 4 == 1) return -1;
  for (size_t i = 0; i < body; i++)
    if (!b64_char((unsigned char)t[i])) return -1;
  size_t tail = body % 4; /* 0, 2 or 3 characters in an unpadded last group */
  size_t full = body - tail;
  size_t bytes = full / 4 * 3 + (tail ? tail - 1 : 0);
  if (lls_buf_reserve(out, bytes + 3) != 0) return -2;
  unsigned char *w = (unsigned char *)out->data + out->len;
  for (size_t off = 0; off < full; off += B64D_CHUNK) {
    size_t take = full - off < B64D_CHUNK ? full - off : B64D_CHUNK;
    if (EVP_DecodeBlock(w, (const unsigned char *)t + off, (int)take) < 0) return -1;
    w += take / 4 * 3;
  }
  if (tail) {
    char last[4] = {'A', 'A', '=', '='};
    memcpy(last, t + full, tail);
    unsigned char three[4];
    if (EVP_DecodeBlock(three, (const unsigned char *)last, 4) < 0) return -1;
    memcpy(w, three, tail - 1);
  }
  out->len += bytes;
  return 0;
}
