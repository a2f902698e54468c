/*
 * base/compress.h -- LZ4 block compression (liblz4, Debian liblz4-dev),
 * for artifact chunks and rs-llmspell's compressed export form. A thin
 * wrapper so the rest of the tree never includes lz4.h and sizes stay
 * size_t.
 */
#ifndef LLS_BASE_COMPRESS_H
#define LLS_BASE_COMPRESS_H

#include <stddef.h>

/* The largest block liblz4 handles (LZ4_MAX_INPUT_SIZE, about 2 GB). */
#define LLS_LZ4_MAX_INPUT ((size_t)0x7E000000)

/* Room a compressed block of n bytes may need (n <= LLS_LZ4_MAX_INPUT). */
size_t lls_lz4_bound(size_t n);

/* Compresses src[0..n) into dst (cap bytes, at least lls_lz4_bound(n) to
 * be sure it fits). Returns the compressed length, or 0 when it did not
 * fit in cap (a caller passing cap = n - 1 learns "does not save space"
 * that way) or n is out of range. */
size_t lls_lz4_compress(const void *src, size_t n, void *dst, size_t cap);

/* Decompresses the block src[0..n) into dst, which must come out at
 * exactly raw bytes. 0, or -1 when the block is damaged or its size is
 * not raw. Never reads or writes out of bounds, whatever src holds. */
int lls_lz4_decompress(const void *src, size_t n, void *dst, size_t raw);

#endif
