/*
 * b64.c -- base64 (RFC 4648, standard alphabet) for the export format's
 * KV values and embeddings. Encoding runs on OpenSSL's EVP_EncodeBlock.
 * Decoding is our own, strict and streaming: EVP_DecodeBlock skips blanks,
 * takes unpadded text and does not say how much padding it read, and the
 * importer decodes values as they stream out of the file, in pieces.
 */
#include <string.h>

#include <openssl/evp.h>

#include "base/b64.h"

#define B64_CHUNK (48 * 1024)   /* multiple of 3: EVP_EncodeBlock takes an int */

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

/* Decoding: a character's sextet, 64 for '=', 255 for anything else. */
static const unsigned char SEXTET[256] = {
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,  62, 255, 255, 255,  63,
     52,  53,  54,  55,  56,  57,  58,  59,  60,  61, 255, 255, 255,  64, 255, 255,
    255,   0,   1,   2,   3,   4,   5,   6,   7,   8,   9,  10,  11,  12,  13,  14,
     15,  16,  17,  18,  19,  20,  21,  22,  23,  24,  25, 255, 255, 255, 255, 255,
    255,  26,  27,  28,  29,  30,  31,  32,  33,  34,  35,  36,  37,  38,  39,  40,
     41,  42,  43,  44,  45,  46,  47,  48,  49,  50,  51, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
};

void lls_b64_dec_init(lls_b64_dec *d) { memset(d, 0, sizeof *d); }

/* Writes the bytes of the complete group in d (pad 0, 1 or 2) at w;
 * returns how many, or -1 when a padded group has bits set that its
 * bytes do not use (another text then means the same bytes). */
static int put_group(lls_b64_dec *d, unsigned char *w) {
  const unsigned char *q = d->q;
  if ((d->pad == 1 && (q[2] & 3) != 0) || (d->pad == 2 && (q[1] & 15) != 0)) return -1;
  w[0] = (unsigned char)(q[0] << 2 | q[1] >> 4);
  if (d->pad < 2) w[1] = (unsigned char)((q[1] & 15) << 4 | q[2] >> 2);
  if (d->pad < 1) w[2] = (unsigned char)((q[2] & 3) << 6 | q[3]);
  return 3 - d->pad;
}

int lls_b64_dec_feed(lls_b64_dec *d, lls_buf *out, const char *t, size_t n) {
  if (d->bad) return -1;
  if (n == 0) return 0;
  /* at most three characters wait from before, so this many groups end here */
  if (lls_buf_reserve(out, (n + 3) / 4 * 3) != 0) return -2;
  unsigned char *w = (unsigned char *)out->data + out->len;
  const unsigned char *p = (const unsigned char *)t, *end = p + n;
  while (p < end) {
    if (d->nq == 0 && !d->done) { /* whole groups of plain characters: the bulk */
      while (end - p >= 4) {
        unsigned a = SEXTET[p[0]], b = SEXTET[p[1]], c = SEXTET[p[2]], e = SEXTET[p[3]];
        if ((a | b | c | e) >= 64) break; /* '=' or not base64: one by one below */
        w[0] = (unsigned char)(a << 2 | b >> 4);
        w[1] = (unsigned char)((b & 15) << 4 | c >> 2);
        w[2] = (unsigned char)((c & 3) << 6 | e);
        w += 3;
        p += 4;
      }
      if (p == end) break;
    }
    unsigned v = SEXTET[*p++];
    if (v == 255 || d->done || (v == 64 && d->nq < 2) || (v < 64 && d->pad > 0)) goto bad;
    if (v == 64) d->pad++;
    else d->q[d->nq] = (unsigned char)v;
    if (++d->nq == 4) {
      int k = put_group(d, w);
      if (k < 0) goto bad;
      w += k;
      d->done = d->pad > 0; /* padding ends the text */
      d->nq = d->pad = 0;
    }
  }
  out->len = (size_t)((char *)w - out->data);
  return 0;
bad:
  d->bad = 1;
  out->len = (size_t)((char *)w - out->data);
  return -1;
}

int lls_b64_dec_end(lls_b64_dec *d) {
  if (d->nq != 0) d->bad = 1; /* a group cut short */
  return d->bad ? -1 : 0;
}

int lls_b64_decode(lls_buf *out, const char *t, size_t n) {
  lls_b64_dec d;
  lls_b64_dec_init(&d);
  size_t before = out->len;
  int rc = lls_b64_dec_feed(&d, out, t, n);
  if (rc == 0) rc = lls_b64_dec_end(&d);
  if (rc != 0) out->len = before;
  return rc;
}
