/*
 * scratch.h -- per-operation scratch of the HNSW index. Every search or
 * insert borrows a context (visited tags, heaps, small buffers) from a pool
 * behind a mutex. Visited marks are u16 epoch tags, so starting a search
 * costs an increment, not a memset. Private to the index, like
 * hnsw_internal.h.
 */
#ifndef LLS_HNSW_SCRATCH_H
#define LLS_HNSW_SCRATCH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "vector/hnsw_internal.h"

/* Per-operation scratch; see the file comment. */
typedef struct ctx {
  struct ctx *next;
  uint16_t *visited;
  size_t vcap; /* entries in visited */
  uint16_t tag;
  pair *cand; /* min-heap of nodes to expand */
  size_t ccap;
  pair *res; /* max-heap of the best ef found */
  size_t rcap;
  pair *sel;      /* heuristic output, maxm0 + 1 */
  pair *work;     /* neighbour candidates while relinking, 2 * maxm0 + 2 */
  uint32_t *lbuf; /* a copied link list, maxm0 + 1 */
  uint32_t *todo; /* unvisited neighbours of the node being expanded */
  float *qbuf;    /* the query, normalised for cosine */
  size_t bytes;   /* what this context holds, for hnsw_memory_bytes */
} ctx;

/*
 * Takes a context from the index's pool, or makes one, with its visited
 * array covering the whole capacity (so slots taken after this call by a
 * writer that reserved capacity first are covered too). Returns NULL when
 * out of memory. The pool is scratch, not index state: const functions
 * may take from it. Give the context back with hnsw_ctx_release.
 */
ctx *hnsw_ctx_acquire(const hnsw_index *ix);

/* Returns a context to the index's pool. */
void hnsw_ctx_release(const hnsw_index *ix, ctx *c);

/* Frees every context in the pool (hnsw_free). */
void hnsw_ctx_drain(hnsw_index *ix);

/* Grows the heap *h (capacity *cap pairs) to hold `need` pairs, adding
 * the growth to *bytes. Returns HNSW_OK or HNSW_ENOMEM (*h unchanged). */
int hnsw_ctx_grow(pair **h, size_t *cap, size_t need, size_t *bytes);

/* Starts a new visit epoch; clears the array only when the tag wraps. */
INLINE uint16_t ctx_epoch(ctx *c) {
  if (++c->tag == 0) {
    memset(c->visited, 0, c->vcap * sizeof *c->visited);
    c->tag = 1;
  }
  return c->tag;
}

/* Cosine compares unit vectors; the others use the query as given. */
static inline const float *prep_query(const hnsw_index *ix, ctx *c, const float *q) {
  if (ix->metric != LLS_METRIC_COSINE) return q;
  float inv = inv_norm(ix->kern, q, ix->dim);
  for (size_t i = 0; i < ix->dim; i++) c->qbuf[i] = q[i] * inv;
  return c->qbuf;
}

#endif
