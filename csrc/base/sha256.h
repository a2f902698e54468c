/*
 * base/sha256.h -- SHA-256 as lowercase hex, the content hash of artifacts
 * and the checksum of agent states (what rs-llmspell computes), one-shot
 * or fed in pieces for content that streams.
 */
#ifndef LLS_BASE_SHA256_H
#define LLS_BASE_SHA256_H

#include <stddef.h>

/* The hex digest and its NUL. */
#define LLS_SHA256_HEX 65

/* An incremental hash; opaque (OpenSSL's EVP_MD_CTX). */
typedef struct lls_sha256 lls_sha256;

/* A new hash, or NULL when out of memory. */
lls_sha256 *lls_sha256_new(void);

/* Feeds n bytes. 0, or -1 on failure. */
int lls_sha256_update(lls_sha256 *h, const void *p, size_t n);

/* Writes the hex digest of everything fed; the hash can then only be
 * freed. 0, or -1 on failure. */
int lls_sha256_final(lls_sha256 *h, char out[LLS_SHA256_HEX]);

void lls_sha256_free(lls_sha256 *h);

/* The hex digest of n bytes at p. 0, or -1 on failure. */
int lls_sha256_hex(const void *p, size_t n, char out[LLS_SHA256_HEX]);

#endif
