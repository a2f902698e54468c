/*
 * base/uuid.h -- random UUIDs (version 4), the ids components generate
 * when the caller gives none (rs-llmspell's records use them too).
 */
#ifndef LLS_BASE_UUID_H
#define LLS_BASE_UUID_H

/* Writes a new UUID v4 in lowercase hex with dashes and a NUL (37 bytes).
 * 0, or -1 when the system's randomness (OpenSSL's RAND_bytes) fails. */
int lls_uuid_v4(char out[37]);

#endif
