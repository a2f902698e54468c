/*
 * hashidx.c -- open-addressing hash index (see hashidx.h).
 */
#include "base/hashidx.h"

#include <stdlib.h>

uint64_t lls_hash_bytes(const char *p, size_t n) {
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  for (size_t i = 0; i < n; i++) {
    h ^= (unsigned char)p[i];
    h *= 1099511628211ULL;
  }
  /* FNV's low bits cluster for keys that differ only at the end
   * ("key:0001", "key:0002"), which linear probing punishes: finish with
   * murmur3's fmix64 so every output bit depends on every input bit. */
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

size_t lls_hidx_probe(const lls_hidx *x, uint64_t hash, const char *key, size_t klen,
                      lls_hidx_eq eq, void *ud) {
  size_t mask = x->nslots - 1, i = hash & mask;
  while (x->slots[i].val && !(x->slots[i].hash == hash && eq(ud, x->slots[i].val, key, klen)))
    i = (i + 1) & mask;
  return i;
}

uintptr_t lls_hidx_find(const lls_hidx *x, uint64_t hash, const char *key, size_t klen,
                        lls_hidx_eq eq, void *ud) {
  if (x->nslots == 0) return 0;
  return x->slots[lls_hidx_probe(x, hash, key, klen, eq, ud)].val;
}

void lls_hidx_put_at(lls_hidx *x, size_t pos, uint64_t hash, uintptr_t val) {
  x->slots[pos].hash = hash;
  x->slots[pos].val = val;
  x->count++;
}

void lls_hidx_remove_at(lls_hidx *x, size_t pos) {
  size_t mask = x->nslots - 1, i = pos, j = pos;
  x->count--;
  for (;;) {
    x->slots[i].val = 0;
    for (;;) {
      j = (j + 1) & mask;
      if (x->slots[j].val == 0) return;
      size_t home = x->slots[j].hash & mask;
      /* entry j may move back to i only if its home is not in (i, j] */
      if (i <= j ? (home <= i || home > j) : (home <= i && home > j)) break;
    }
    x->slots[i] = x->slots[j];
    i = j;
  }
}

int lls_hidx_reserve(lls_hidx *x, size_t extra) {
  if ((x->count + extra) * 2 <= x->nslots) return 0;
  size_t ns = x->nslots ? x->nslots : 16;
  while ((x->count + extra) * 2 > ns) ns *= 2;
  lls_hidx_slot *s = calloc(ns, sizeof *s);
  if (s == NULL) return -1;
  for (size_t i = 0; i < x->nslots; i++) {
    if (x->slots[i].val == 0) continue;
    size_t j = x->slots[i].hash & (ns - 1);
    while (s[j].val) j = (j + 1) & (ns - 1);
    s[j] = x->slots[i];
  }
  free(x->slots);
  x->slots = s;
  x->nslots = ns;
  return 0;
}

void lls_hidx_free(lls_hidx *x) {
  free(x->slots);
  x->slots = NULL;
  x->nslots = x->count = 0;
}
