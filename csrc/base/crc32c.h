/*
 * crc32c.h -- CRC-32C (Castagnoli, the polynomial of iSCSI, ext4 and
 * SSE4.2's crc32 instruction), for the per-record checksums of the SQLite
 * backend.
 */
#ifndef LLS_BASE_CRC32C_H
#define LLS_BASE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* The CRC-32C of p[0..n) continued from crc, the result of an earlier call
 * (0 to start): lls_crc32c(lls_crc32c(0, a, na), b, nb) is the checksum of
 * a followed by b. The standard check value: "123456789" gives 0xe3069283.
 * Uses SSE4.2's crc32 instruction when the CPU has it (three interleaved
 * streams for long inputs when it also has PCLMULQDQ), else slicing-by-8
 * tables; all give the same result. */
uint32_t lls_crc32c(uint32_t crc, const void *p, size_t n);

/* The portable implementation alone, so tests can compare the two. */
uint32_t lls_crc32c_sw(uint32_t crc, const void *p, size_t n);

/* "sse4.2+pclmul", "sse4.2" or "software": what lls_crc32c uses on this
 * CPU. */
const char *lls_crc32c_impl(void);

#endif
