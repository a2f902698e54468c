/*
 * hnsw_internal.h -- the HNSW index's private state: the struct, the node
 * layout and the inline accessors the index's files share. Only the files
 * of the index include it: csrc/vector/hnsw.c, graph.c, scratch.c and
 * snapshot.c (and the private headers heap.h, scratch.h, graph.h). Callers
 * use hnsw.h.
 *
 * Layout. Level 0, where searches spend nearly all their time, is one
 * array of fixed-size blocks, one per slot (hnswlib's data_level0 layout):
 *
 *   u32 count | u32 links[2M] | f32 aux | f32 vector[dim]
 *
 * so expanding a node touches its own block and then the neighbours'
 * vectors, which are prefetched before their distances are computed. aux
 * is the inverse norm for cosine (so the stored vector stays exactly what
 * the caller gave, and one multiply turns a dot product into a cosine) and
 * sits right before the vector so it shares the vector's first cache line.
 * Upper levels are rare (1/M of the nodes) and live in a separate arena of
 * u32: level l of slot s is at upper[upper_off[s] + (l-1) * (1 + M)].
 */
#ifndef LLS_HNSW_INTERNAL_H
#define LLS_HNSW_INTERNAL_H

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "vector/hnsw.h"

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define LLS_X86 1
#endif

#define NONE UINT32_MAX
#define MAX_LEVEL 31
#define F_DELETED 1u

#if defined(__GNUC__)
#define INLINE static inline __attribute__((always_inline))
#define PREFETCH(p) __builtin_prefetch((const void *)(p), 0, 3)
#else
#define INLINE static inline
#define PREFETCH(p) ((void)(p))
#endif

/* A spinlock alone on its cache line: lock bytes packed together would
 * make two threads' lock and unlock writes bounce the same lines. */
typedef struct lock_stripe {
  atomic_uchar v;
  char pad[63];
} lock_stripe;

typedef struct pair {
  float d;
  uint32_t id;
} pair;

struct ctx; /* per-operation scratch (scratch.h) */

struct hnsw_index {
  size_t dim;
  lls_metric metric;
  const lls_kernels *kern;
  lls_dist_fn raw; /* l2sq, dot or l1, by metric */
  lls_dist4_fn raw4;
  size_t m, maxm, maxm0, efc;
  double mult; /* 1 / ln(M): level distribution */
  uint64_t seed, rng;

  size_t block;        /* bytes per level-0 block */
  size_t vec_off;      /* offset of the vector within a block */
  size_t upper_stride; /* u32 per upper-level list: count + maxm links */

  char *blocks;
  uint8_t *levels;
  uint8_t *flags;
  uint32_t *upper_off;
  lock_stripe *locks; /* only during a parallel hnsw_add_batch */
  size_t lock_mask;
  uint32_t *free_slots; /* stack of deleted slots; capacity == cap */
  size_t nslots, cap, live, nfree;

  uint32_t *upper;
  size_t upper_len, upper_cap;

  uint32_t ep;
  int maxlevel;

  pthread_mutex_t global; /* entry point / top level during parallel builds */
  pthread_mutex_t pool_lock;
  struct ctx *pool;
  size_t pool_bytes;
};

/* ---- node access ------------------------------------------------------ */

INLINE uint32_t *links0(const hnsw_index *ix, uint32_t s) {
  return (uint32_t *)(void *)(ix->blocks + (size_t)s * ix->block);
}

INLINE uint32_t *links_at(const hnsw_index *ix, uint32_t s, int l) {
  if (l == 0) return links0(ix, s);
  return ix->upper + ix->upper_off[s] + (size_t)(l - 1) * ix->upper_stride;
}

INLINE float *vec_of(const hnsw_index *ix, uint32_t s) {
  return (float *)(void *)(ix->blocks + (size_t)s * ix->block + ix->vec_off);
}

INLINE size_t maxlinks(const hnsw_index *ix, int l) { return l ? ix->maxm : ix->maxm0; }

INLINE int is_live(const hnsw_index *ix, uint32_t s) {
  return s < ix->nslots && !(ix->flags[s] & F_DELETED);
}

/* Distance from a prepared query (see prep_query) to a stored node. */
INLINE float dist_q(const hnsw_index *ix, const float *q, uint32_t s) {
  const float *v = vec_of(ix, s);
  float r = ix->raw(q, v, ix->dim);
  switch (ix->metric) {
  case LLS_METRIC_COSINE:
    return 1.0f - r * v[-1];
  case LLS_METRIC_IP:
    return -r;
  default:
    return r;
  }
}

/* Distances from a prepared query to four stored nodes. */
INLINE void dist_q4(const hnsw_index *ix, const float *q, const uint32_t *s, float *out) {
  const float *v[4] = {vec_of(ix, s[0]), vec_of(ix, s[1]), vec_of(ix, s[2]), vec_of(ix, s[3])};
  ix->raw4(q, v, ix->dim, out);
  switch (ix->metric) {
  case LLS_METRIC_COSINE:
    for (int j = 0; j < 4; j++) out[j] = 1.0f - out[j] * v[j][-1];
    break;
  case LLS_METRIC_IP:
    for (int j = 0; j < 4; j++) out[j] = -out[j];
    break;
  default:
    break;
  }
}

/* Distance between two stored nodes. */
INLINE float dist_nn(const hnsw_index *ix, uint32_t a, uint32_t b) {
  const float *va = vec_of(ix, a), *vb = vec_of(ix, b);
  float r = ix->raw(va, vb, ix->dim);
  switch (ix->metric) {
  case LLS_METRIC_COSINE:
    return 1.0f - r * va[-1] * vb[-1];
  case LLS_METRIC_IP:
    return -r;
  default:
    return r;
  }
}

/* Internal distances are compared, never shown: l2 is squared inside. */
INLINE float public_dist(const hnsw_index *ix, float d) {
  switch (ix->metric) {
  case LLS_METRIC_L2:
    return d > 0 ? sqrtf(d) : 0.0f;
  case LLS_METRIC_COSINE:
    return d < 0 ? 0.0f : d > 2 ? 2.0f : d;
  default:
    return d;
  }
}

INLINE float inv_norm(const lls_kernels *k, const float *v, size_t dim) {
  float n = k->dot(v, v, dim);
  /* a zero vector gets 0, so every cosine with it is 0 (distance 1) */
  return n > 0 ? 1.0f / sqrtf(n) : 0.0f;
}

/* Prefetches a node's aux and vector. Up to 10 lines (160 floats) are
 * asked for; beyond that the hardware prefetcher follows the kernel's
 * stream, and asking for more only crowds the fill buffers (measured: full
 * prefetch of 1024-d vectors was slower, of 128-d vectors faster). */
INLINE void prefetch_vec(const hnsw_index *ix, uint32_t s) {
  const char *p = (const char *)(vec_of(ix, s) - 1);
  size_t end = (ix->dim + 1) * sizeof(float);
  if (end > 10 * 64) end = 10 * 64;
  for (size_t o = 0; o < end; o += 64) PREFETCH(p + o);
}

INLINE void prefetch_links(const hnsw_index *ix, uint32_t s) {
  const char *p = (const char *)links0(ix, s);
  size_t end = (1 + ix->maxm0) * sizeof(uint32_t);
  for (size_t o = 0; o < end; o += 64) PREFETCH(p + o);
}

/* Grows the per-slot arrays to hold at least `need` slots. Returns HNSW_OK,
 * HNSW_EFULL past 2^32 - 1 slots, or HNSW_ENOMEM (the index stays
 * usable). (hnsw.c) */
int hnsw_grow_slots(hnsw_index *ix, size_t need);

/* Makes room for `extra` more u32 in the upper-level arena. Returns HNSW_OK
 * or HNSW_ENOMEM. (hnsw.c) */
int hnsw_reserve_upper(hnsw_index *ix, size_t extra);

#endif
