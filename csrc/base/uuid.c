/*
 * base/uuid.c -- UUID v4 from OpenSSL's CSPRNG (libcrypto is linked for
 * SHA-256 already), so ids need no state of ours and two processes never
 * share a sequence.
 */
#include "base/uuid.h"

#include <openssl/rand.h>
#include <stdio.h>

int lls_uuid_v4(char out[37]) {
  unsigned char b[16];
  if (RAND_bytes(b, (int)sizeof b) != 1) return -1;
  b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
  b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
  static const char hex[] = "0123456789abcdef";
  int o = 0;
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
    out[o++] = hex[b[i] >> 4];
    out[o++] = hex[b[i] & 15];
  }
  out[o] = '\0';
  return 0;
}
