/*
 * base/sha256.c -- SHA-256 through OpenSSL's EVP interface (libcrypto,
 * Debian libssl-dev): a well-kept, hardware-accelerated implementation
 * instead of one of ours.
 */
#include "base/sha256.h"

#include <openssl/evp.h>

/* lls_sha256 is never defined: a handle is an EVP_MD_CTX pointer. */

lls_sha256 *lls_sha256_new(void) {
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (ctx == NULL) return NULL;
  if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
    EVP_MD_CTX_free(ctx);
    return NULL;
  }
  return (lls_sha256 *)ctx;
}

int lls_sha256_update(lls_sha256 *h, const void *p, size_t n) {
  return EVP_DigestUpdate((EVP_MD_CTX *)h, p, n) == 1 ? 0 : -1;
}

int lls_sha256_final(lls_sha256 *h, char out[LLS_SHA256_HEX]) {
  unsigned char md[32];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex((EVP_MD_CTX *)h, md, &len) != 1 || len != sizeof md) return -1;
  static const char hex[] = "0123456789abcdef";
  for (int i = 0; i < 32; i++) {
    out[2 * i] = hex[md[i] >> 4];
    out[2 * i + 1] = hex[md[i] & 15];
  }
  out[64] = '\0';
  return 0;
}

void lls_sha256_free(lls_sha256 *h) { EVP_MD_CTX_free((EVP_MD_CTX *)h); }

int lls_sha256_hex(const void *p, size_t n, char out[LLS_SHA256_HEX]) {
  lls_sha256 *h = lls_sha256_new();
  if (h == NULL) return -1;
  int rc = lls_sha256_update(h, p, n) == 0 && lls_sha256_final(h, out) == 0 ? 0 : -1;
  lls_sha256_free(h);
  return rc;
}
