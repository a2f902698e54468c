/*
 * base/compress.c -- LZ4 blocks through liblz4 (see compress.h).
 */
#include "base/compress.h"

#include <lz4.h>

size_t lls_lz4_bound(size_t n) {
  if (n > LLS_LZ4_MAX_INPUT) return 0;
  return (size_t)LZ4_compressBound((int)n);
}

size_t lls_lz4_compress(const void *src, size_t n, void *dst, size_t cap) {
  if (n == 0 || n > LLS_LZ4_MAX_INPUT) return 0;
  int c = cap > (size_t)LZ4_compressBound((int)n) ? LZ4_compressBound((int)n) : (int)cap;
  int r = LZ4_compress_default(src, dst, (int)n, c);
  return r > 0 ? (size_t)r : 0;
}

int lls_lz4_decompress(const void *src, size_t n, void *dst, size_t raw) {
  if (n > LLS_LZ4_MAX_INPUT || raw > LLS_LZ4_MAX_INPUT) return -1;
  /* LZ4_decompress_safe bounds both buffers: damaged input gives < 0. */
  int r = LZ4_decompress_safe(src, dst, (int)n, (int)raw);
  return r >= 0 && (size_t)r == raw ? 0 : -1;
}
