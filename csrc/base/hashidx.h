/*
 * hashidx.h -- an open-addressing hash index from byte-string keys to
 * nonzero uintptr_t values (node pointers, slot numbers + 1). The keys
 * themselves live with the caller; the index keeps each key's hash beside
 * its value, so a probe touches the caller's memory only on a hash match.
 * Linear probing, load kept at most 1/2, deletion by backward shift (no
 * tombstones). No allocation except in lls_hidx_reserve.
 */
#ifndef LLS_HASHIDX_H
#define LLS_HASHIDX_H

#include <stddef.h>
#include <stdint.h>

typedef struct lls_hidx_slot {
  uint64_t hash;
  uintptr_t val; /* 0 = empty */
} lls_hidx_slot;

typedef struct lls_hidx {
  lls_hidx_slot *slots;
  size_t nslots; /* power of two, or 0 before the first reserve */
  size_t count;
} lls_hidx;

/* Tells whether the caller's item `val` has this key. */
typedef int (*lls_hidx_eq)(void *ud, uintptr_t val, const char *key, size_t klen);

/* A well-mixed 64-bit hash of a byte string. */
uint64_t lls_hash_bytes(const char *p, size_t n);

/* Makes room for `extra` more entries (keeping load <= 1/2). 0, or -1 when
 * out of memory (the index is unchanged). */
int lls_hidx_reserve(lls_hidx *x, size_t extra);

/* The position holding key, or the empty position where it would go
 * (check slots[pos].val). The index must have been reserved. */
size_t lls_hidx_probe(const lls_hidx *x, uint64_t hash, const char *key, size_t klen,
                      lls_hidx_eq eq, void *ud);

/* The value for key, or 0. */
uintptr_t lls_hidx_find(const lls_hidx *x, uint64_t hash, const char *key, size_t klen,
                        lls_hidx_eq eq, void *ud);

/* Fills an empty position returned by lls_hidx_probe (room reserved). */
void lls_hidx_put_at(lls_hidx *x, size_t pos, uint64_t hash, uintptr_t val);

/* Empties a position returned by lls_hidx_probe, shifting back the entries
 * after it so later probes stay correct. */
void lls_hidx_remove_at(lls_hidx *x, size_t pos);

void lls_hidx_free(lls_hidx *x);

#endif
