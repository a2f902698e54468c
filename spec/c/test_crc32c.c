/*
 * test_crc32c.c -- base/crc32c.c against published check values (RFC 3720
 * B.4 and the CRC catalogue's "123456789"), and the hardware paths against
 * the software one over every length and alignment up to 1290 bytes.
 */
#include <stdio.h>
#include <string.h>

#include "base/crc32c.h"
#include "check.h"

/* RFC 3720 B.4: 32 bytes of 0x00, of 0xff, ascending and descending. */
static void test_known(void) {
  unsigned char b[32];
  CHECK(lls_crc32c(0, "123456789", 9) == 0xe3069283u, "check value");
  CHECK(lls_crc32c_sw(0, "123456789", 9) == 0xe3069283u, "check value (software)");
  CHECK(lls_crc32c(0, "", 0) == 0, "empty input");
  memset(b, 0, sizeof b);
  CHECK(lls_crc32c(0, b, 32) == 0x8a9136aau, "32 zeros: %08x", lls_crc32c(0, b, 32));
  memset(b, 0xff, sizeof b);
  CHECK(lls_crc32c(0, b, 32) == 0x62a8ab43u, "32 x 0xff");
  for (int i = 0; i < 32; i++) b[i] = (unsigned char)i;
  CHECK(lls_crc32c(0, b, 32) == 0x46dd794eu, "ascending");
  CHECK(lls_crc32c_sw(0, b, 32) == 0x46dd794eu, "ascending (software)");
  for (int i = 0; i < 32; i++) b[i] = (unsigned char)(31 - i);
  CHECK(lls_crc32c(0, b, 32) == 0x113fdb5cu, "descending");
  printf("known values ok (%s)\n", lls_crc32c_impl());
}

/* Every length and start offset: the word loops, the three-lane loop
 * (from 384 bytes) and the tails agree, and a checksum continued over two
 * pieces equals the one over the whole. */
static void test_paths(void) {
  unsigned char buf[1300];
  uint32_t x = 12345;
  for (size_t i = 0; i < sizeof buf; i++) {
    x = x * 1103515245u + 12345u;
    buf[i] = (unsigned char)(x >> 16);
  }
  for (size_t off = 0; off < 8; off++) {
    for (size_t n = 0; n <= 1290; n++) {
      uint32_t hw = lls_crc32c(0, buf + off, n), sw = lls_crc32c_sw(0, buf + off, n);
      CHECK(hw == sw, "offset %zu length %zu: %08x vs %08x", off, n, hw, sw);
      size_t cut = n / 3;
      uint32_t two = lls_crc32c(lls_crc32c(0, buf + off, cut), buf + off + cut, n - cut);
      CHECK(two == hw, "offset %zu length %zu: continued checksum differs", off, n);
    }
  }
  /* One flipped bit always changes a CRC. */
  uint32_t base = lls_crc32c(0, buf, 300);
  for (size_t bit = 0; bit < 300 * 8; bit += 7) {
    buf[bit / 8] ^= (unsigned char)(1u << (bit % 8));
    CHECK(lls_crc32c(0, buf, 300) != base, "bit %zu flip undetected", bit);
    buf[bit / 8] ^= (unsigned char)(1u << (bit % 8));
  }
  printf("lengths, offsets, continuation and bit flips ok\n");
}

int main(void) {
  test_known();
  test_paths();
  printf("ok: %d checks passed\n", g_checks);
  return 0;
}
