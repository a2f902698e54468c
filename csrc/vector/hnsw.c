/*
 * hnsw.c -- HNSW graph index (see hnsw.h for the contract).
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
 *
 * Scratch. Every search or insert borrows a context (visited tags, heaps,
 * small buffers) from a pool behind a mutex. Visited marks are u16 epoch
 * tags, so starting a search costs an increment, not a memset.
 *
 * Deletion. A deleted node stays in the graph (its links still route
 * searches) until its slot is reused, but its neighbours are relinked at
 * once: each neighbour that linked back to it keeps its other links and
 * fills the gap from the deleted node's links (see relink). A reused slot
 * keeps its old level, so upper-level links that still point at it stay
 * within the levels it has. The entry point is always a live node.
 *
 * Threads. hnsw_add_batch reserves storage, writes all vectors, and then
 * lets threads insert nodes concurrently. During that phase only link
 * lists change (each under its node's spinlock, from a lock table that
 * exists only for the batch) plus the entry point and top level (under
 * `global`); vectors, levels and flags are read-only.
 */
#include "vector/hnsw.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#include <immintrin.h>
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
  ctx *pool;
  size_t pool_bytes;
};

const char *hnsw_strerror(int code) {
  switch (code) {
  case HNSW_OK:
    return "ok";
  case HNSW_ENOMEM:
    return "out of memory";
  case HNSW_EINVAL:
    return "invalid argument";
  case HNSW_ENOENT:
    return "no live vector in that slot";
  case HNSW_EFULL:
    return "index is full (2^32 - 1 slots)";
  case HNSW_EIO:
    return "write failed";
  }
  return "unknown error";
}

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

static float inv_norm(const lls_kernels *k, const float *v, size_t dim) {
  float n = k->dot(v, v, dim);
  /* a zero vector gets 0, so every cosine with it is 0 (distance 1) */
  return n > 0 ? 1.0f / sqrtf(n) : 0.0f;
}

/* Cosine compares unit vectors; the others use the query as given. */
static const float *prep_query(const hnsw_index *ix, ctx *c, const float *q) {
  if (ix->metric != LLS_METRIC_COSINE) return q;
  float inv = inv_norm(ix->kern, q, ix->dim);
  for (size_t i = 0; i < ix->dim; i++) c->qbuf[i] = q[i] * inv;
  return c->qbuf;
}

/* ---- node locks (parallel build only) ------------------------------------
 *
 * A node's lock is stripe s & lock_mask of a table that exists only while a
 * batch is built in parallel, so single-threaded use pays nothing for it.
 * With several times more stripes than threads, two threads rarely want
 * the same stripe for different nodes; and one thread never holds two
 * locks at once, so sharing a stripe cannot deadlock. */

INLINE void cpu_relax(void) {
#ifdef LLS_X86
  _mm_pause();
#endif
}

/* Critical sections are a few hundred ns; yielding after a while avoids
 * burning a time slice when the holder was preempted (2-vCPU machines). */
static void node_lock(const hnsw_index *ix, uint32_t s) {
  atomic_uchar *l = &ix->locks[s & ix->lock_mask].v;
  unsigned spins = 0;
  while (atomic_exchange_explicit(l, 1, memory_order_acquire)) {
    while (atomic_load_explicit(l, memory_order_relaxed)) {
      if (++spins > 256) {
        sched_yield();
        spins = 0;
      } else {
        cpu_relax();
      }
    }
  }
}

INLINE void node_unlock(const hnsw_index *ix, uint32_t s) {
  atomic_store_explicit(&ix->locks[s & ix->lock_mask].v, 0, memory_order_release);
}

/* ---- heaps of (distance, slot) ------------------------------------------ */

/* Heaps compare distances only: a tie test costs a branch on the hottest
 * path. Order among exact ties is still deterministic (same index, same
 * query, same result); hnsw_brute_force sorts ties by slot. */
INLINE int pair_less(pair a, pair b) { return a.d < b.d; }

INLINE void minheap_push(pair *h, size_t *n, pair p) {
  size_t i = (*n)++;
  while (i > 0) {
    size_t up = (i - 1) / 2;
    if (!pair_less(p, h[up])) break;
    h[i] = h[up];
    i = up;
  }
  h[i] = p;
}

INLINE void minheap_pop(pair *h, size_t *n) {
  pair last = h[--(*n)];
  size_t i = 0, len = *n;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= len) break;
    if (c + 1 < len && pair_less(h[c + 1], h[c])) c++;
    if (!pair_less(h[c], last)) break;
    h[i] = h[c];
    i = c;
  }
  if (len) h[i] = last;
}

INLINE void maxheap_push(pair *h, size_t *n, pair p) {
  size_t i = (*n)++;
  while (i > 0) {
    size_t up = (i - 1) / 2;
    if (!pair_less(h[up], p)) break;
    h[i] = h[up];
    i = up;
  }
  h[i] = p;
}

INLINE void maxheap_pop(pair *h, size_t *n) {
  pair last = h[--(*n)];
  size_t i = 0, len = *n;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= len) break;
    if (c + 1 < len && pair_less(h[c], h[c + 1])) c++;
    if (!pair_less(last, h[c])) break;
    h[i] = h[c];
    i = c;
  }
  if (len) h[i] = last;
}

/* Replaces the largest element of a max-heap by p (one sift instead of a
 * pop and a push). */
INLINE void maxheap_replace_top(pair *h, size_t n, pair p) {
  size_t i = 0;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= n) break;
    if (c + 1 < n && pair_less(h[c], h[c + 1])) c++;
    if (!pair_less(p, h[c])) break;
    h[i] = h[c];
    i = c;
  }
  h[i] = p;
}

/* Sorts a max-heap of n pairs into ascending order in place (heapsort). */
static void maxheap_sort(pair *h, size_t n) {
  while (n > 1) {
    pair top = h[0];
    maxheap_pop(h, &n);
    h[n] = top;
  }
}

static void sort_pairs(pair *p, size_t n) {
  /* insertion sort: callers pass at most 2 * maxm0 + 1 pairs */
  for (size_t i = 1; i < n; i++) {
    pair x = p[i];
    size_t j = i;
    while (j > 0 && pair_less(x, p[j - 1])) {
      p[j] = p[j - 1];
      j--;
    }
    p[j] = x;
  }
}

/* ---- scratch contexts ---------------------------------------------------- */

static void ctx_free(ctx *c) {
  if (!c) return;
  free(c->visited);
  free(c->cand);
  free(c->res);
  free(c->sel);
  free(c->work);
  free(c->lbuf);
  free(c->todo);
  free(c->qbuf);
  free(c);
}

static ctx *ctx_new(const hnsw_index *ix) {
  ctx *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->ccap = 256;
  c->rcap = 256;
  c->cand = malloc(c->ccap * sizeof(pair));
  c->res = malloc(c->rcap * sizeof(pair));
  c->sel = malloc((ix->maxm0 + 1) * sizeof(pair));
  c->work = malloc((2 * ix->maxm0 + 2) * sizeof(pair));
  c->lbuf = malloc((ix->maxm0 + 1) * sizeof(uint32_t));
  c->todo = malloc((ix->maxm0 + 1) * sizeof(uint32_t));
  c->qbuf = malloc(ix->dim * sizeof(float));
  if (!c->cand || !c->res || !c->sel || !c->work || !c->lbuf || !c->todo || !c->qbuf) {
    ctx_free(c);
    return NULL;
  }
  c->bytes = sizeof *c + (c->ccap + c->rcap + 3 * ix->maxm0 + 3) * sizeof(pair) +
             (2 * ix->maxm0 + 2) * sizeof(uint32_t) + ix->dim * sizeof(float);
  return c;
}

/* Makes the visited array cover the whole capacity, so that slots taken
 * after the context was acquired (writers reserve capacity first) are
 * covered too. Contexts are resized only by their holder: no lock. */
static int ctx_fit(const hnsw_index *ix, ctx *c) {
  if (c->visited && c->vcap >= ix->cap && c->vcap >= ix->nslots) return HNSW_OK;
  size_t n = ix->cap > ix->nslots ? ix->cap : ix->nslots;
  if (n == 0) n = 1;
  uint16_t *v = realloc(c->visited, n * sizeof *v);
  if (!v) return HNSW_ENOMEM;
  memset(v, 0, n * sizeof *v);
  c->bytes += (n - c->vcap) * sizeof *v;
  c->visited = v;
  c->vcap = n;
  c->tag = 0;
  return HNSW_OK;
}

/* Starts a new visit epoch; clears the array only when the tag wraps. */
INLINE uint16_t ctx_epoch(ctx *c) {
  if (++c->tag == 0) {
    memset(c->visited, 0, c->vcap * sizeof *c->visited);
    c->tag = 1;
  }
  return c->tag;
}

static int ctx_grow(pair **h, size_t *cap, size_t need, size_t *bytes) {
  if (need <= *cap) return HNSW_OK;
  size_t n = *cap * 2 > need ? *cap * 2 : need;
  pair *p = realloc(*h, n * sizeof *p);
  if (!p) return HNSW_ENOMEM;
  *bytes += (n - *cap) * sizeof *p;
  *h = p;
  *cap = n;
  return HNSW_OK;
}

/* The pool is scratch, not index state: const functions may take from it. */
static ctx *ctx_acquire(const hnsw_index *cix) {
  hnsw_index *ix = (hnsw_index *)cix;
  pthread_mutex_lock(&ix->pool_lock);
  ctx *c = ix->pool;
  if (c) {
    ix->pool = c->next;
    ix->pool_bytes -= c->bytes;
  }
  pthread_mutex_unlock(&ix->pool_lock);
  if (!c) c = ctx_new(ix);
  if (c && ctx_fit(ix, c) != HNSW_OK) {
    ctx_free(c);
    c = NULL;
  }
  return c;
}

static void ctx_release(const hnsw_index *cix, ctx *c) {
  hnsw_index *ix = (hnsw_index *)cix;
  pthread_mutex_lock(&ix->pool_lock);
  c->next = ix->pool;
  ix->pool = c;
  ix->pool_bytes += c->bytes;
  pthread_mutex_unlock(&ix->pool_lock);
}

/* ---- search within one level ------------------------------------------- */

/* Mode bits; each caller passes a constant so the compiler specialises. */
#define MODE_LOCK 1u  /* copy link lists under node locks (parallel build) */
#define MODE_CHECK 2u /* results must be live, not `self`, and pass the filter */

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

/*
 * Best-first search of one level from entry (at distance entry_d), keeping
 * the ef best accepted nodes in c->res (a max-heap; returns its size, or
 * HNSW_ENOMEM). Rejected nodes (deleted, `self`, filtered out) are still
 * expanded: they route the walk but never enter the results, which is what
 * keeps filtered and post-delete recall up.
 */
INLINE int search_level(const hnsw_index *ix, ctx *c, const float *q, uint32_t entry,
                        float entry_d, size_t ef, int level, unsigned mode, uint32_t self,
                        hnsw_filter_fn filter, void *ud) {
  uint16_t tag = ctx_epoch(c);
  uint16_t *visited = c->visited;
  size_t nc = 0, nr = 0;
  if (ctx_grow(&c->res, &c->rcap, ef + 1, &c->bytes) != HNSW_OK) return HNSW_ENOMEM;
  pair *cand = c->cand, *res = c->res;

#define ACCEPT(s)                                                                            \
  (!(mode & MODE_CHECK) ||                                                                   \
   (!(ix->flags[s] & F_DELETED) && (s) != self && (!filter || filter(ud, (s)))))

  visited[entry] = tag;
  minheap_push(cand, &nc, (pair){entry_d, entry});
  if (ACCEPT(entry)) maxheap_push(res, &nr, (pair){entry_d, entry});
  float lower = nr >= ef ? res[0].d : INFINITY;

  while (nc) {
    pair cur = cand[0];
    if (cur.d > lower) break;
    minheap_pop(cand, &nc);

    const uint32_t *ll = links_at(ix, cur.id, level);
    if (mode & MODE_LOCK) {
      node_lock(ix, cur.id);
      memcpy(c->lbuf, ll, (ll[0] + 1) * sizeof *ll);
      node_unlock(ix, cur.id);
      ll = c->lbuf;
    }
    uint32_t n = ll[0];
    const uint32_t *nb = ll + 1;

    /* Gather the unvisited first and prefetch them all, so their cache
     * misses overlap instead of being paid one distance at a time. */
    uint32_t *todo = c->todo;
    size_t nt = 0;
    for (uint32_t j = 0; j < n; j++) {
      uint32_t s = nb[j];
      if (visited[s] == tag) continue;
      visited[s] = tag;
      todo[nt++] = s;
      prefetch_vec(ix, s);
    }
    if (nc + nt > c->ccap) {
      if (ctx_grow(&c->cand, &c->ccap, nc + nt, &c->bytes) != HNSW_OK) return HNSW_ENOMEM;
      cand = c->cand;
    }
    float dists[4];
    for (size_t j = 0; j < nt; j++) {
      uint32_t s = todo[j];
      if ((j & 3) == 0 && j + 4 <= nt) dist_q4(ix, q, todo + j, dists);
      float d = j < (nt & ~(size_t)3) ? dists[j & 3] : dist_q(ix, q, s);
      if (!(d < lower)) continue;
      minheap_push(cand, &nc, (pair){d, s});
      if (ACCEPT(s)) {
        if (nr < ef) {
          maxheap_push(res, &nr, (pair){d, s});
          if (nr == ef) lower = res[0].d;
        } else {
          maxheap_replace_top(res, nr, (pair){d, s});
          lower = res[0].d;
        }
      }
    }
    /* the next node to expand is probably cand[0]: fetch its links while
     * this iteration's bookkeeping finishes (hnswlib does the same) */
    if (nc && level == 0) prefetch_links(ix, cand[0].id);
  }
#undef ACCEPT
  return (int)nr;
}

/* Greedy descent through one upper level: move to a nearer neighbour until
 * none is nearer. */
INLINE void greedy(const hnsw_index *ix, ctx *c, const float *q, int level, unsigned mode,
                   uint32_t *cur, float *cur_d) {
  for (int changed = 1; changed;) {
    changed = 0;
    const uint32_t *ll = links_at(ix, *cur, level);
    if (mode & MODE_LOCK) {
      node_lock(ix, *cur);
      memcpy(c->lbuf, ll, (ll[0] + 1) * sizeof *ll);
      node_unlock(ix, *cur);
      ll = c->lbuf;
    }
    for (uint32_t j = 0; j < ll[0]; j++) {
      uint32_t s = ll[1 + j];
      float d = dist_q(ix, q, s);
      if (d < *cur_d) {
        *cur_d = d;
        *cur = s;
        changed = 1;
      }
    }
  }
}

/* ---- neighbour selection ------------------------------------------------ */

/*
 * Malkov's heuristic (algorithm 4, without extension): walk the candidates
 * nearest first and keep one only if it is nearer to the base node than to
 * every neighbour already kept. This favours links in diverse directions,
 * which is what lets a greedy walk leave clusters. cand is sorted
 * ascending; out receives at most `max` pairs, still ascending.
 */
static size_t select_heuristic(const hnsw_index *ix, const pair *cand, size_t n, size_t max,
                               pair *out) {
  if (n < max) {
    memcpy(out, cand, n * sizeof *cand);
    return n;
  }
  size_t k = 0;
  for (size_t i = 0; i < n && k < max; i++) {
    int good = 1;
    for (size_t j = 0; j < k; j++)
      if (dist_nn(ix, out[j].id, cand[i].id) < cand[i].d) {
        good = 0;
        break;
      }
    if (good) out[k++] = cand[i];
  }
  return k;
}

/*
 * Adds a link from `from` to `to` at level l (d = their distance); when the
 * list is full, reselects from the old links plus `to` with the heuristic.
 * Deleted nodes in the list are dropped on the way.
 */
static void add_link(const hnsw_index *ix, ctx *c, uint32_t from, uint32_t to, float d, int l,
                     unsigned mode) {
  if (mode & MODE_LOCK) node_lock(ix, from);
  uint32_t *ll = links_at(ix, from, l);
  uint32_t n = ll[0];
  size_t max = maxlinks(ix, l);
  for (uint32_t j = 0; j < n; j++)
    if (ll[1 + j] == to) goto done;
  if (n < max) {
    ll[1 + n] = to;
    ll[0] = n + 1;
  } else {
    pair *w = c->work;
    size_t nw = 0;
    w[nw++] = (pair){d, to};
    for (uint32_t j = 0; j < n; j++) {
      uint32_t s = ll[1 + j];
      if (ix->flags[s] & F_DELETED) continue;
      w[nw++] = (pair){dist_nn(ix, from, s), s};
    }
    sort_pairs(w, nw);
    size_t k = select_heuristic(ix, w, nw, max, c->sel);
    for (size_t j = 0; j < k; j++) ll[1 + j] = c->sel[j].id;
    ll[0] = (uint32_t)k;
  }
done:
  if (mode & MODE_LOCK) node_unlock(ix, from);
}

/* ---- insertion ----------------------------------------------------------- */

/*
 * Writes s's own list at level l from the k pairs in c->sel. The list is
 * normally empty here; in a parallel build another thread may already have
 * linked itself into it (it can reach a reused slot through a stale link),
 * and those links are merged in rather than overwritten.
 */
static void set_own_links(const hnsw_index *ix, ctx *c, uint32_t s, int l, size_t k,
                          unsigned mode) {
  if (mode & MODE_LOCK) node_lock(ix, s);
  uint32_t *ll = links_at(ix, s, l);
  uint32_t old = ll[0];
  if (old == 0) {
    for (size_t j = 0; j < k; j++) ll[1 + j] = c->sel[j].id;
    ll[0] = (uint32_t)k;
  } else {
    pair *w = c->work;
    size_t nw = 0;
    memcpy(w, c->sel, k * sizeof *w);
    nw = k;
    for (uint32_t j = 0; j < old; j++) {
      uint32_t x = ll[1 + j];
      int dup = x == s || (ix->flags[x] & F_DELETED);
      for (size_t i = 0; i < nw && !dup; i++) dup = w[i].id == x;
      if (!dup) w[nw++] = (pair){dist_nn(ix, s, x), x};
    }
    sort_pairs(w, nw);
    size_t n = select_heuristic(ix, w, nw, maxlinks(ix, l), c->sel);
    for (size_t j = 0; j < n; j++) ll[1 + j] = c->sel[j].id;
    ll[0] = (uint32_t)n;
  }
  if (mode & MODE_LOCK) node_unlock(ix, s);
}

/*
 * Links slot s (vector, level and empty link lists already in place) into
 * the graph. In MODE_LOCK, other threads are inserting at the same time.
 *
 * s writes all of its own lists (top level down, each level's search
 * starting from the nearest node found on the level above) before any node
 * links back to it. Until then no other thread can reach s, so none can
 * step into s at an upper level and then find its lower lists still empty,
 * which would leave that thread's node linked to s alone. (hnswlib gets the
 * same effect by holding the new node's lock for the whole insertion.)
 */
static int insert_node(hnsw_index *ix, ctx *c, uint32_t s, unsigned mode) {
  int level = ix->levels[s];
  const float *q = prep_query(ix, c, vec_of(ix, s));
  if (mode & MODE_LOCK) pthread_mutex_lock(&ix->global);
  uint32_t ep = ix->ep;
  int maxl = ix->maxlevel;
  if (ep == NONE) {
    ix->ep = s;
    ix->maxlevel = level;
    if (mode & MODE_LOCK) pthread_mutex_unlock(&ix->global);
    return HNSW_OK;
  }
  /* A node that will become the new top keeps the global lock while it
   * links itself, so no other thread sees a half-made entry point. */
  int raise = level > maxl;
  if ((mode & MODE_LOCK) && !raise) pthread_mutex_unlock(&ix->global);

  int rc = HNSW_OK;
  uint32_t cur = ep;
  float cur_d = dist_q(ix, q, cur);
  for (int l = maxl; l > level; l--) greedy(ix, c, q, l, mode, &cur, &cur_d);

  int top = level < maxl ? level : maxl;
  for (int l = top; l >= 0; l--) {
    int nr = search_level(ix, c, q, cur, cur_d, ix->efc, l, mode | MODE_CHECK, s, NULL, NULL);
    if (nr < 0) {
      rc = nr;
      break;
    }
    if (nr == 0) continue; /* only deleted nodes reachable at this level */
    pair *w = c->res;
    maxheap_sort(w, (size_t)nr);
    size_t k = select_heuristic(ix, w, (size_t)nr, ix->m, c->sel);
    set_own_links(ix, c, s, l, k, mode);
    cur = w[0].id;
    cur_d = w[0].d;
  }

  /* Now the links back, which make s reachable. A failure above leaves s
   * unreachable, so the caller can simply free the slot again. */
  for (int l = top; l >= 0 && rc == HNSW_OK; l--) {
    const uint32_t *ll = links_at(ix, s, l);
    if (mode & MODE_LOCK) node_lock(ix, s);
    memcpy(c->lbuf, ll, (ll[0] + 1) * sizeof *ll); /* add_link may not see s's list move */
    if (mode & MODE_LOCK) node_unlock(ix, s);
    for (uint32_t j = 0; j < c->lbuf[0]; j++) {
      uint32_t n = c->lbuf[1 + j];
      add_link(ix, c, n, s, dist_q(ix, q, n), l, mode);
    }
  }

  if (raise) {
    if (rc == HNSW_OK) {
      ix->ep = s;
      ix->maxlevel = level;
    }
    if (mode & MODE_LOCK) pthread_mutex_unlock(&ix->global);
  }
  return rc;
}

/* ---- storage ------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* The level distribution of the paper: P(level >= l) = M^-l. */
static int draw_level(hnsw_index *ix) {
  double u = ((double)(splitmix64(&ix->rng) >> 11) + 1.0) * 0x1.0p-53; /* (0, 1] */
  double l = -log(u) * ix->mult;
  return l >= MAX_LEVEL ? MAX_LEVEL : (int)l;
}

/* Grows per-slot arrays to hold at least `need` slots. Each array is
 * replaced as soon as its realloc succeeds, so a failure part way leaves
 * some arrays longer than cap, which is harmless. */
static int grow_slots(hnsw_index *ix, size_t need) {
  if (need <= ix->cap) return HNSW_OK;
  if (need > (size_t)NONE) return HNSW_EFULL;
  size_t n = ix->cap < 16 ? 16 : ix->cap + ix->cap / 2;
  if (n < need) n = need;
  if (n > (size_t)NONE) n = NONE;
  if (n > SIZE_MAX / ix->block) return HNSW_ENOMEM;
  void *p;
  if (!(p = realloc(ix->blocks, n * ix->block))) return HNSW_ENOMEM;
  ix->blocks = p;
  if (!(p = realloc(ix->levels, n))) return HNSW_ENOMEM;
  ix->levels = p;
  if (!(p = realloc(ix->flags, n))) return HNSW_ENOMEM;
  ix->flags = p;
  if (!(p = realloc(ix->upper_off, n * sizeof *ix->upper_off))) return HNSW_ENOMEM;
  ix->upper_off = p;
  if (!(p = realloc(ix->free_slots, n * sizeof *ix->free_slots))) return HNSW_ENOMEM;
  ix->free_slots = p;
  ix->cap = n;
  return HNSW_OK;
}

static int reserve_upper(hnsw_index *ix, size_t extra) {
  if (ix->upper_len + extra <= ix->upper_cap) return HNSW_OK;
  size_t n = ix->upper_cap < 256 ? 256 : ix->upper_cap * 2;
  if (n < ix->upper_len + extra) n = ix->upper_len + extra;
  uint32_t *p = realloc(ix->upper, n * sizeof *p);
  if (!p) return HNSW_ENOMEM;
  ix->upper = p;
  ix->upper_cap = n;
  return HNSW_OK;
}

/* Writes a vector (and its cosine norm) into slot s and empties its links. */
static void place_vector(hnsw_index *ix, uint32_t s, const float *v) {
  float *dst = vec_of(ix, s);
  memcpy(dst, v, ix->dim * sizeof *dst);
  dst[-1] = ix->metric == LLS_METRIC_COSINE ? inv_norm(ix->kern, v, ix->dim) : 0.0f;
  for (int l = 0; l <= ix->levels[s]; l++) links_at(ix, s, l)[0] = 0;
}

/* Takes a slot for a new vector: a deleted one (keeping its level and
 * upper lists) or a fresh one. Storage must already be reserved. */
static uint32_t take_slot(hnsw_index *ix) {
  uint32_t s;
  if (ix->nfree) {
    s = ix->free_slots[--ix->nfree];
  } else {
    s = (uint32_t)ix->nslots++;
    int level = draw_level(ix);
    ix->levels[s] = (uint8_t)level;
    ix->upper_off[s] = (uint32_t)ix->upper_len;
    ix->upper_len += (size_t)level * ix->upper_stride;
    links0(ix, s)[0] = 0;
  }
  ix->flags[s] = 0;
  ix->live++;
  return s;
}

/*
 * Reserves slots and upper-level space for n more vectors, so that the
 * take_slot calls that follow cannot fail. The levels of fresh slots are
 * drawn here from a copy of the RNG state and drawn again, identically, by
 * take_slot: reserving never changes the graph.
 */
static int reserve_for(hnsw_index *ix, size_t n) {
  size_t fresh = n > ix->nfree ? n - ix->nfree : 0;
  if (fresh == 0) return HNSW_OK;
  if (ix->nslots + fresh > (size_t)NONE - 1) return HNSW_EFULL;
  int rc = grow_slots(ix, ix->nslots + fresh);
  if (rc) return rc;
  uint64_t saved = ix->rng;
  size_t need = 0;
  for (size_t i = 0; i < fresh; i++) need += (size_t)draw_level(ix) * ix->upper_stride;
  ix->rng = saved;
  if (need > UINT32_MAX - ix->upper_len) return HNSW_EFULL;
  return reserve_upper(ix, need);
}

/* ---- unlinking (delete, update) ----------------------------------------- */

/*
 * Node n linked to s at level l; s is going away. n keeps its other live
 * links as they are and fills the gap from s's links (ls, nl of them),
 * nearest first, taking a candidate only if no link n already has is
 * nearer to it than n is (the insert heuristic's diversity test).
 * Re-pruning n's whole list instead was measured to lose recall under
 * churn: it drops back-links and thins the graph round after round.
 */
static void relink(hnsw_index *ix, ctx *c, uint32_t n, uint32_t s, int l, const uint32_t *ls,
                   uint32_t nl) {
  uint32_t *ll = links_at(ix, n, l);
  uint32_t cnt = ll[0], j;
  for (j = 0; j < cnt && ll[1 + j] != s; j++) {
  }
  if (j == cnt) return; /* no link back: nothing to repair */

  uint16_t tag = ctx_epoch(c);
  c->visited[n] = tag;
  c->visited[s] = tag;
  size_t k = 0;
  for (j = 0; j < cnt; j++) {
    uint32_t x = ll[1 + j];
    if (c->visited[x] == tag || (ix->flags[x] & F_DELETED)) continue;
    c->visited[x] = tag;
    ll[1 + k++] = x;
  }
  pair *w = c->work;
  size_t nw = 0;
  for (j = 0; j < nl; j++) {
    uint32_t x = ls[j];
    if (c->visited[x] == tag || (ix->flags[x] & F_DELETED)) continue;
    c->visited[x] = tag;
    w[nw++] = (pair){dist_nn(ix, n, x), x};
  }
  sort_pairs(w, nw);
  size_t max = maxlinks(ix, l);
  for (size_t i = 0; i < nw && k < max; i++) {
    int good = 1;
    for (size_t q = 0; q < k && good; q++)
      if (dist_nn(ix, ll[1 + q], w[i].id) < w[i].d) good = 0;
    if (good) ll[1 + k++] = w[i].id;
  }
  ll[0] = (uint32_t)k;
}

/* Picks a new entry point when the old one (now flagged deleted) leaves:
 * a live neighbour on the top level if any, else the highest live node. */
static void replace_entry(hnsw_index *ix) {
  if (ix->live == 0) {
    ix->ep = NONE;
    ix->maxlevel = -1;
    return;
  }
  const uint32_t *ll = links_at(ix, ix->ep, ix->maxlevel);
  for (uint32_t j = 0; j < ll[0]; j++)
    if (!(ix->flags[ll[1 + j]] & F_DELETED)) {
      ix->ep = ll[1 + j];
      return;
    }
  uint32_t best = NONE;
  int bl = -1;
  for (size_t s = 0; s < ix->nslots; s++)
    if (!(ix->flags[s] & F_DELETED) && ix->levels[s] > bl) {
      bl = ix->levels[s];
      best = (uint32_t)s;
    }
  ix->ep = best;
  ix->maxlevel = bl;
}

/* Relinks s's neighbours around s at every level and moves the entry
 * point off s. s is already flagged deleted and not counted live; its own
 * links stay, so searches that still reach it pass through. */
static void unlink_node(hnsw_index *ix, ctx *c, uint32_t s) {
  for (int l = 0; l <= ix->levels[s]; l++) {
    const uint32_t *ll = links_at(ix, s, l);
    for (uint32_t j = 0; j < ll[0]; j++) {
      uint32_t n = ll[1 + j];
      if (n != s && !(ix->flags[n] & F_DELETED)) relink(ix, c, n, s, l, ll + 1, ll[0]);
    }
  }
  if (ix->ep == s) replace_entry(ix);
}

/* ---- public API ------------------------------------------------------------ */

static void set_kernels(hnsw_index *ix, const lls_kernels *k) {
  lls_metric m = ix->metric;
  ix->kern = k;
  ix->raw = m == LLS_METRIC_L2 ? k->l2sq : m == LLS_METRIC_L1 ? k->l1 : k->dot;
  ix->raw4 = m == LLS_METRIC_L2 ? k->l2sq4 : m == LLS_METRIC_L1 ? k->l1_4 : k->dot4;
}

hnsw_index *hnsw_new(size_t dim, lls_metric metric, size_t m, size_t ef_construction,
                     size_t initial_capacity, uint64_t seed) {
  if (dim < 1 || dim > HNSW_MAX_DIM || m < 2 || m > HNSW_MAX_M) return NULL;
  if (!lls_metric_name(metric)) return NULL;
  hnsw_index *ix = calloc(1, sizeof *ix);
  if (!ix) return NULL;
  ix->dim = dim;
  ix->metric = metric;
  set_kernels(ix, lls_kernels_best());
  ix->m = m;
  ix->maxm = m;
  ix->maxm0 = 2 * m;
  ix->efc = ef_construction < m ? m : ef_construction;
  if (ix->efc > (1u << 24)) ix->efc = 1u << 24;
  ix->mult = 1.0 / log((double)m);
  ix->seed = seed;
  ix->rng = seed;
  ix->vec_off = (1 + ix->maxm0 + 1) * sizeof(uint32_t);
  ix->block = ix->vec_off + dim * sizeof(float);
  ix->upper_stride = 1 + ix->maxm;
  ix->ep = NONE;
  ix->maxlevel = -1;
  if (pthread_mutex_init(&ix->global, NULL)) {
    free(ix);
    return NULL;
  }
  if (pthread_mutex_init(&ix->pool_lock, NULL)) {
    pthread_mutex_destroy(&ix->global);
    free(ix);
    return NULL;
  }
  if (initial_capacity && grow_slots(ix, initial_capacity) != HNSW_OK) {
    hnsw_free(ix);
    return NULL;
  }
  return ix;
}

void hnsw_free(hnsw_index *ix) {
  if (!ix) return;
  while (ix->pool) {
    ctx *c = ix->pool;
    ix->pool = c->next;
    ctx_free(c);
  }
  free(ix->blocks);
  free(ix->levels);
  free(ix->flags);
  free(ix->upper_off);
  free(ix->free_slots);
  free(ix->upper);
  pthread_mutex_destroy(&ix->global);
  pthread_mutex_destroy(&ix->pool_lock);
  free(ix);
}

/* Undoes a failed insert of s: it becomes a deleted slot again. */
static void abandon(hnsw_index *ix, ctx *c, uint32_t s) {
  ix->flags[s] |= F_DELETED;
  ix->live--;
  ix->free_slots[ix->nfree++] = s;
  unlink_node(ix, c, s);
}

int hnsw_add(hnsw_index *ix, const float *vec, uint32_t *slot_out) {
  if (!ix || !vec) return HNSW_EINVAL;
  /* capacity first, then scratch sized to it: past this point only the
   * search heaps can fail to grow */
  int rc = reserve_for(ix, 1);
  if (rc) return rc;
  ctx *c = ctx_acquire(ix);
  if (!c) return HNSW_ENOMEM;
  uint32_t s = take_slot(ix);
  place_vector(ix, s, vec);
  rc = insert_node(ix, c, s, 0);
  if (rc)
    abandon(ix, c, s);
  else if (slot_out)
    *slot_out = s;
  ctx_release(ix, c);
  return rc;
}

typedef struct batch {
  hnsw_index *ix;
  const uint32_t *slots;
  size_t n;
  unsigned mode; /* MODE_LOCK, or 0 when the caller works alone */
  atomic_size_t next;
  atomic_int rc;
} batch;

typedef struct worker {
  batch *b;
  ctx *c;
} worker;

static void *batch_worker(void *arg) {
  worker *w = arg;
  batch *b = w->b;
  for (;;) {
    size_t i = atomic_fetch_add_explicit(&b->next, 1, memory_order_relaxed);
    if (i >= b->n) break;
    int rc = insert_node(b->ix, w->c, b->slots[i], b->mode);
    if (rc) atomic_store(&b->rc, rc);
  }
  return NULL;
}

static int online_cores(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : n > 64 ? 64 : (int)n;
}

int hnsw_add_batch(hnsw_index *ix, const float *vecs, size_t n, uint32_t *slots_out,
                   int threads) {
  if (!ix || (!vecs && n)) return HNSW_EINVAL;
  if (n == 0) return HNSW_OK;
  if (threads <= 0) threads = online_cores();
  if (threads > 64) threads = 64;
  /* below a few hundred inserts, thread start-up costs more than it saves */
  if ((size_t)threads * 128 > n) threads = 1;

  int rc = reserve_for(ix, n);
  if (rc) return rc;
  uint32_t *slots = slots_out ? slots_out : malloc(n * sizeof *slots);
  if (!slots) return HNSW_ENOMEM;

  worker ws[64];
  int nw = 0;
  for (; nw < threads; nw++) {
    ws[nw].c = ctx_acquire(ix);
    if (!ws[nw].c) break;
  }
  if (nw == 0) {
    if (!slots_out) free(slots);
    return HNSW_ENOMEM;
  }

  size_t taken = 0, start = 0;
  if (nw == 1) {
    /* one at a time, exactly as hnsw_add would */
    for (; taken < n && rc == HNSW_OK; taken++) {
      slots[taken] = take_slot(ix);
      place_vector(ix, slots[taken], vecs + taken * ix->dim);
      rc = insert_node(ix, ws[0].c, slots[taken], 0);
    }
    start = n;
  } else {
    /* threads only ever read vectors, levels and flags: set them all first */
    for (; taken < n; taken++) {
      slots[taken] = take_slot(ix);
      place_vector(ix, slots[taken], vecs + taken * ix->dim);
    }
    /* the very first node of an empty index is placed alone */
    if (rc == HNSW_OK && ix->ep == NONE) rc = insert_node(ix, ws[0].c, slots[start++], 0);
  }
  if (rc == HNSW_OK && start < n) {
    /* 64 stripes per thread: 4 KiB a thread, freed when the batch ends */
    size_t ns = 64;
    while (ns < (size_t)nw * 64) ns *= 2;
    ix->locks = aligned_alloc(64, ns * sizeof *ix->locks);
    if (!ix->locks) nw = 1; /* no lock table: the caller builds alone */
    for (size_t i = 0; ix->locks && i < ns; i++) atomic_init(&ix->locks[i].v, 0);
    ix->lock_mask = ns - 1;
    batch b = {.ix = ix, .slots = slots + start, .n = n - start,
               .mode = ix->locks ? MODE_LOCK : 0};
    atomic_init(&b.next, 0);
    atomic_init(&b.rc, HNSW_OK);
    pthread_t tid[64];
    int started = 0;
    for (int t = 1; t < nw; t++) {
      ws[t].b = &b;
      if (pthread_create(&tid[started], NULL, batch_worker, &ws[t]) != 0) break;
      started++;
    }
    ws[0].b = &b;
    batch_worker(&ws[0]); /* the caller works too; also covers failed starts */
    for (int t = 0; t < started; t++) pthread_join(tid[t], NULL);
    rc = atomic_load(&b.rc);
    free(ix->locks);
    ix->locks = NULL;
  }
  if (rc) {
    /* all or nothing: take the whole batch out again */
    for (size_t i = taken; i-- > 0;)
      if (!(ix->flags[slots[i]] & F_DELETED)) abandon(ix, ws[0].c, slots[i]);
  }
  for (int t = 0; t < nw; t++) ctx_release(ix, ws[t].c);
  if (!slots_out) free(slots);
  return rc;
}

int hnsw_delete(hnsw_index *ix, uint32_t slot) {
  if (!ix) return HNSW_EINVAL;
  if (!is_live(ix, slot)) return HNSW_ENOENT;
  ctx *c = ctx_acquire(ix);
  ix->flags[slot] |= F_DELETED;
  ix->live--;
  ix->free_slots[ix->nfree++] = slot;
  if (!c) {
    if (ix->ep == slot) replace_entry(ix);
    return HNSW_ENOMEM;
  }
  unlink_node(ix, c, slot);
  ctx_release(ix, c);
  return HNSW_OK;
}

int hnsw_update(hnsw_index *ix, uint32_t slot, const float *vec) {
  if (!ix || !vec) return HNSW_EINVAL;
  if (!is_live(ix, slot)) return HNSW_ENOENT;
  ctx *c = ctx_acquire(ix);
  if (!c) return HNSW_ENOMEM;
  ix->flags[slot] |= F_DELETED;
  ix->live--;
  unlink_node(ix, c, slot);
  place_vector(ix, slot, vec);
  ix->flags[slot] = 0;
  ix->live++;
  int rc = insert_node(ix, c, slot, 0);
  ctx_release(ix, c);
  return rc;
}

static int cmp_hit(const void *a, const void *b) {
  const hnsw_hit *x = a, *y = b;
  if (x->distance != y->distance) return x->distance < y->distance ? -1 : 1;
  return x->slot < y->slot ? -1 : x->slot > y->slot;
}

int hnsw_search(const hnsw_index *ix, const float *q, size_t k, size_t ef,
                hnsw_filter_fn filter, void *ud, hnsw_hit *out) {
  if (!ix || !q || (!out && k)) return HNSW_EINVAL;
  if (k == 0 || ix->live == 0) return 0;
  /* there are never more than nslots results: bounding k and ef keeps
   * the heap sizes (and the int result) from overflowing */
  if (k > ix->live) k = ix->live;
  if (ef > ix->nslots) ef = ix->nslots;
  if (ef < k) ef = k;
  ctx *c = ctx_acquire(ix);
  if (!c) return HNSW_ENOMEM;
  const float *qq = prep_query(ix, c, q);
  uint32_t cur = ix->ep;
  float cur_d = dist_q(ix, qq, cur);
  for (int l = ix->maxlevel; l > 0; l--) greedy(ix, c, qq, l, 0, &cur, &cur_d);
  int nr;
  /* two specialisations: the common case skips every per-result check */
  if (filter || ix->nfree)
    nr = search_level(ix, c, qq, cur, cur_d, ef, 0, MODE_CHECK, NONE, filter, ud);
  else
    nr = search_level(ix, c, qq, cur, cur_d, ef, 0, 0, NONE, NULL, NULL);
  if (nr > 0) {
    size_t n = (size_t)nr;
    while (n > k) maxheap_pop(c->res, &n);
    maxheap_sort(c->res, n);
    for (size_t i = 0; i < n; i++) {
      out[i].slot = c->res[i].id;
      out[i].distance = public_dist(ix, c->res[i].d);
    }
    nr = (int)n;
  }
  ctx_release(ix, c);
  return nr;
}

int hnsw_brute_force(const hnsw_index *ix, const float *q, size_t k, hnsw_filter_fn filter,
                     void *ud, hnsw_hit *out) {
  if (!ix || !q || (!out && k)) return HNSW_EINVAL;
  if (k == 0 || ix->live == 0) return 0;
  if (k > ix->live) k = ix->live;
  ctx *c = ctx_acquire(ix);
  if (!c) return HNSW_ENOMEM;
  if (ctx_grow(&c->res, &c->rcap, k + 1, &c->bytes) != HNSW_OK) {
    ctx_release(ix, c);
    return HNSW_ENOMEM;
  }
  const float *qq = prep_query(ix, c, q);
  pair *h = c->res;
  size_t n = 0;
  for (size_t s = 0; s < ix->nslots; s++) {
    if (ix->flags[s] & F_DELETED) continue;
    if (filter && !filter(ud, (uint32_t)s)) continue;
    if (s + 4 < ix->nslots) prefetch_vec(ix, (uint32_t)(s + 4));
    pair p = {dist_q(ix, qq, (uint32_t)s), (uint32_t)s};
    if (n < k) {
      maxheap_push(h, &n, p);
    } else if (pair_less(p, h[0])) {
      maxheap_pop(h, &n);
      maxheap_push(h, &n, p);
    }
  }
  maxheap_sort(h, n);
  for (size_t i = 0; i < n; i++) {
    out[i].slot = h[i].id;
    out[i].distance = public_dist(ix, h[i].d);
  }
  ctx_release(ix, c);
  /* public distances can tie where internal ones did not (rounding) */
  qsort(out, n, sizeof *out, cmp_hit);
  return (int)n;
}

float hnsw_distance(const hnsw_index *ix, const float *q, uint32_t slot) {
  if (!ix || !q || !is_live(ix, slot)) return NAN;
  const float *v = vec_of(ix, slot);
  float r = ix->raw(q, v, ix->dim);
  switch (ix->metric) {
  case LLS_METRIC_COSINE: {
    float d = 1.0f - r * inv_norm(ix->kern, q, ix->dim) * v[-1];
    return public_dist(ix, d);
  }
  case LLS_METRIC_IP:
    return -r;
  default:
    return public_dist(ix, r);
  }
}

size_t hnsw_count(const hnsw_index *ix) { return ix ? ix->live : 0; }

uint32_t hnsw_slot_limit(const hnsw_index *ix) { return ix ? (uint32_t)ix->nslots : 0; }

int hnsw_is_live(const hnsw_index *ix, uint32_t slot) { return ix && is_live(ix, slot); }

size_t hnsw_memory_bytes(const hnsw_index *ix) {
  if (!ix) return 0;
  size_t per_slot = ix->block + 2 + sizeof *ix->upper_off + sizeof *ix->free_slots;
  size_t pool;
  hnsw_index *mix = (hnsw_index *)ix;
  pthread_mutex_lock(&mix->pool_lock);
  pool = ix->pool_bytes;
  pthread_mutex_unlock(&mix->pool_lock);
  return sizeof *ix + ix->cap * per_slot + ix->upper_cap * sizeof *ix->upper + pool;
}

const float *hnsw_vector(const hnsw_index *ix, uint32_t slot) {
  return ix && is_live(ix, slot) ? vec_of(ix, slot) : NULL;
}

size_t hnsw_dim(const hnsw_index *ix) { return ix->dim; }
lls_metric hnsw_metric(const hnsw_index *ix) { return ix->metric; }
size_t hnsw_m(const hnsw_index *ix) { return ix->m; }
size_t hnsw_ef_construction(const hnsw_index *ix) { return ix->efc; }
const char *hnsw_kernel_name(const hnsw_index *ix) { return ix->kern->name; }

int hnsw_use_kernels(hnsw_index *ix, const lls_kernels *k) {
  if (!ix || !k || ix->nslots) return HNSW_EINVAL;
  set_kernels(ix, k);
  return HNSW_OK;
}

/* ---- snapshots -------------------------------------------------------------- */

/*
 * CRC-32C (Castagnoli). With SSE4.2 the crc32 instruction does 8 bytes a
 * step; otherwise slicing-by-8 with tables built per snapshot (8 KiB, a few
 * microseconds), which keeps the tables off global state.
 */
typedef struct crc {
  uint32_t v;
  int hw;
  uint32_t (*t)[256];
} crc;

#ifdef LLS_X86
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t c, const unsigned char *p,
                                                         size_t n) {
  uint64_t c64 = c;
  for (; n >= 8; n -= 8, p += 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    c64 = _mm_crc32_u64(c64, w);
  }
  c = (uint32_t)c64;
  for (; n; n--) c = _mm_crc32_u8(c, *p++);
  return c;
}
#endif

static int crc_init(crc *k) {
  k->v = 0xFFFFFFFFu;
  k->t = NULL;
  k->hw = 0;
#if defined(LLS_X86) && !defined(HNSW_NO_HW_CRC) /* tests force the table path */
  __builtin_cpu_init();
  k->hw = __builtin_cpu_supports("sse4.2");
  if (k->hw) return HNSW_OK;
#endif
  k->t = malloc(8 * sizeof *k->t);
  if (!k->t) return HNSW_ENOMEM;
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int j = 0; j < 8; j++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
    k->t[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; i++)
    for (int j = 1; j < 8; j++) k->t[j][i] = (k->t[j - 1][i] >> 8) ^ k->t[0][k->t[j - 1][i] & 255];
  return HNSW_OK;
}

static void crc_update(crc *k, const void *data, size_t n) {
  const unsigned char *p = data;
#ifdef LLS_X86
  if (k->hw) {
    k->v = crc_hw(k->v, p, n);
    return;
  }
#endif
  uint32_t c = k->v;
  uint32_t(*t)[256] = k->t;
  for (; n >= 8; n -= 8, p += 8) {
    uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                       (uint32_t)p[3] << 24);
    c = t[7][lo & 255] ^ t[6][(lo >> 8) & 255] ^ t[5][(lo >> 16) & 255] ^ t[4][lo >> 24] ^
        t[3][p[4]] ^ t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]];
  }
  for (; n; n--) c = (c >> 8) ^ t[0][(c ^ *p++) & 255];
  k->v = c;
}

static uint32_t crc_final(const crc *k) { return k->v ^ 0xFFFFFFFFu; }

static void crc_done(crc *k) { free(k->t); }

#define SNAP_MAGIC "LLSHNSW"
#define SNAP_VERSION 1u
#define SNAP_ENDIAN 0x01020304u

/* The fixed header, written field by field as u32/u64 in host order (the
 * endian marker makes a foreign-endian snapshot fail cleanly). */
typedef struct snap_head {
  char magic[8];
  uint32_t version, endian;
  uint32_t dim, metric, m, efc;
  uint32_t nslots, live, nfree, ep;
  int32_t maxlevel;
  uint32_t reserved;
  uint64_t seed, rng;
} snap_head;

typedef struct writer {
  hnsw_write_fn fn;
  void *ud;
  crc k;
  unsigned char *buf;
  size_t len, cap;
  int failed;
} writer;

static void w_flush(writer *w) {
  if (w->len && !w->failed) {
    crc_update(&w->k, w->buf, w->len);
    if (w->fn(w->ud, w->buf, w->len)) w->failed = 1;
  }
  w->len = 0;
}

static void w_put(writer *w, const void *p, size_t n) {
  const unsigned char *b = p;
  while (n && !w->failed) {
    size_t room = w->cap - w->len, take = n < room ? n : room;
    memcpy(w->buf + w->len, b, take);
    w->len += take;
    b += take;
    n -= take;
    if (w->len == w->cap) w_flush(w);
  }
}

int hnsw_serialize(const hnsw_index *ix, hnsw_write_fn write, void *ud) {
  if (!ix || !write) return HNSW_EINVAL;
  writer w = {.fn = write, .ud = ud, .cap = 1u << 16};
  if (crc_init(&w.k)) return HNSW_ENOMEM;
  w.buf = malloc(w.cap);
  if (!w.buf) {
    crc_done(&w.k);
    return HNSW_ENOMEM;
  }
  snap_head h;
  memset(&h, 0, sizeof h);
  memcpy(h.magic, SNAP_MAGIC, 8);
  h.version = SNAP_VERSION;
  h.endian = SNAP_ENDIAN;
  h.dim = (uint32_t)ix->dim;
  h.metric = (uint32_t)ix->metric;
  h.m = (uint32_t)ix->m;
  h.efc = (uint32_t)ix->efc;
  h.nslots = (uint32_t)ix->nslots;
  h.live = (uint32_t)ix->live;
  h.nfree = (uint32_t)ix->nfree;
  h.ep = ix->ep;
  h.maxlevel = ix->maxlevel;
  h.seed = ix->seed;
  h.rng = ix->rng;
  w_put(&w, &h, sizeof h);

  /* per slot: level, flags, 2 zero bytes, then the level-0 block minus aux
   * (count, every link position, vector), then the upper lists */
  size_t links_bytes = (1 + ix->maxm0) * sizeof(uint32_t);
  for (size_t s = 0; s < ix->nslots && !w.failed; s++) {
    unsigned char lf[4] = {ix->levels[s], ix->flags[s], 0, 0};
    w_put(&w, lf, 4);
    const uint32_t *ll = links0(ix, (uint32_t)s);
    /* unused link positions hold stale ids: write zeros so equal graphs
     * give equal bytes */
    w_put(&w, ll, (1 + ll[0]) * sizeof *ll);
    static const uint32_t zeros[64];
    size_t pad = links_bytes - (1 + ll[0]) * sizeof *ll;
    while (pad) {
      size_t t = pad < sizeof zeros ? pad : sizeof zeros;
      w_put(&w, zeros, t);
      pad -= t;
    }
    w_put(&w, vec_of(ix, (uint32_t)s), ix->dim * sizeof(float));
    for (int l = 1; l <= ix->levels[s]; l++) {
      const uint32_t *ul = links_at(ix, (uint32_t)s, l);
      w_put(&w, ul, (1 + ul[0]) * sizeof *ul);
      size_t upad = (ix->maxm - ul[0]) * sizeof *ul;
      while (upad) {
        size_t t = upad < sizeof zeros ? upad : sizeof zeros;
        w_put(&w, zeros, t);
        upad -= t;
      }
    }
  }
  w_put(&w, ix->free_slots, ix->nfree * sizeof *ix->free_slots);
  w_flush(&w);
  uint32_t sum = crc_final(&w.k);
  if (!w.failed && write(ud, &sum, sizeof sum)) w.failed = 1;
  free(w.buf);
  crc_done(&w.k);
  return w.failed ? HNSW_EIO : HNSW_OK;
}

typedef struct reader {
  hnsw_read_fn fn;
  void *ud;
  crc k;
} reader;

static int r_get(reader *r, void *p, size_t n) {
  if (n == 0) return 0;
  if (r->fn(r->ud, p, n)) return -1;
  crc_update(&r->k, p, n);
  return 0;
}

#define FAIL(...)                                                                            \
  do {                                                                                       \
    if (err && errlen) snprintf(err, errlen, "hnsw snapshot: " __VA_ARGS__);                 \
    goto fail;                                                                               \
  } while (0)

hnsw_index *hnsw_deserialize(hnsw_read_fn read, void *ud, char *err, size_t errlen) {
  hnsw_index *ix = NULL;
  unsigned char *seen = NULL;
  reader r = {.fn = read, .ud = ud};
  if (err && errlen) err[0] = 0;
  if (!read) {
    if (err && errlen) snprintf(err, errlen, "hnsw snapshot: no reader");
    return NULL;
  }
  if (crc_init(&r.k)) {
    if (err && errlen) snprintf(err, errlen, "hnsw snapshot: out of memory");
    return NULL;
  }
  snap_head h;
  if (r_get(&r, &h, sizeof h)) FAIL("truncated header");
  if (memcmp(h.magic, SNAP_MAGIC, 8) != 0) FAIL("not an index snapshot (bad magic)");
  if (h.endian != SNAP_ENDIAN) FAIL("written on a machine of other byte order");
  if (h.version != SNAP_VERSION) FAIL("unsupported version %u", (unsigned)h.version);
  if (h.dim < 1 || h.dim > HNSW_MAX_DIM) FAIL("bad dimension %u", (unsigned)h.dim);
  if (!lls_metric_name((lls_metric)h.metric)) FAIL("bad metric %u", (unsigned)h.metric);
  if (h.m < 2 || h.m > HNSW_MAX_M) FAIL("bad M %u", (unsigned)h.m);
  if (h.efc < h.m || h.efc > (1u << 24)) FAIL("bad ef_construction %u", (unsigned)h.efc);
  if (h.nslots >= NONE || (uint64_t)h.live + h.nfree != h.nslots)
    FAIL("inconsistent slot counts");
  if (h.reserved != 0) FAIL("bad header");
  if (h.live == 0 ? (h.ep != NONE || h.maxlevel != -1)
                  : (h.ep >= h.nslots || h.maxlevel < 0 || h.maxlevel > MAX_LEVEL))
    FAIL("bad entry point");

  ix = hnsw_new(h.dim, (lls_metric)h.metric, h.m, h.efc, 0, h.seed);
  if (!ix) FAIL("out of memory");
  ix->rng = h.rng;
  size_t links_bytes = (1 + ix->maxm0) * sizeof(uint32_t);
  size_t ndeleted = 0;
  for (uint32_t s = 0; s < h.nslots; s++) {
    /* grow as the data arrives, so a lying count cannot force a huge
     * allocation before the stream runs dry */
    if (grow_slots(ix, (size_t)s + 1)) FAIL("out of memory");
    unsigned char lf[4];
    if (r_get(&r, lf, 4)) FAIL("truncated at slot %u", (unsigned)s);
    if (lf[0] > MAX_LEVEL || (lf[1] & ~F_DELETED) || lf[2] || lf[3])
      FAIL("bad slot header at slot %u", (unsigned)s);
    ix->levels[s] = lf[0];
    ix->flags[s] = lf[1];
    ndeleted += lf[1] & F_DELETED;
    uint32_t *ll = links0(ix, s);
    if (r_get(&r, ll, links_bytes) || r_get(&r, vec_of(ix, s), ix->dim * sizeof(float)))
      FAIL("truncated at slot %u", (unsigned)s);
    if (ll[0] > ix->maxm0) FAIL("bad link count at slot %u", (unsigned)s);
    for (uint32_t j = 0; j < ll[0]; j++)
      if (ll[1 + j] >= h.nslots || ll[1 + j] == s) FAIL("bad link at slot %u", (unsigned)s);
    float *v = vec_of(ix, s);
    v[-1] = ix->metric == LLS_METRIC_COSINE ? inv_norm(ix->kern, v, ix->dim) : 0.0f;
    size_t up = (size_t)lf[0] * ix->upper_stride;
    if (up > UINT32_MAX - ix->upper_len) FAIL("too many upper-level links");
    if (reserve_upper(ix, up)) FAIL("out of memory");
    ix->upper_off[s] = (uint32_t)ix->upper_len;
    /* (only when there is something: the arena may not exist yet) */
    if (up && r_get(&r, ix->upper + ix->upper_len, up * sizeof(uint32_t)))
      FAIL("truncated at slot %u", (unsigned)s);
    ix->upper_len += up;
    ix->nslots = (size_t)s + 1;
    for (int l = 1; l <= lf[0]; l++) {
      const uint32_t *ul = links_at(ix, s, l);
      if (ul[0] > ix->maxm) FAIL("bad link count at slot %u", (unsigned)s);
      for (uint32_t j = 0; j < ul[0]; j++)
        if (ul[1 + j] >= h.nslots || ul[1 + j] == s) FAIL("bad link at slot %u", (unsigned)s);
    }
  }
  if (ndeleted != h.nfree) FAIL("deleted slots do not match the free list");
  /* an upper-level link must land on a node that has that level */
  for (uint32_t s = 0; s < h.nslots; s++)
    for (int l = 1; l <= ix->levels[s]; l++) {
      const uint32_t *ul = links_at(ix, s, l);
      for (uint32_t j = 0; j < ul[0]; j++)
        if (ix->levels[ul[1 + j]] < l) FAIL("link above a node's level at slot %u", (unsigned)s);
    }
  if (h.nfree) {
    if (r_get(&r, ix->free_slots, h.nfree * sizeof(uint32_t))) FAIL("truncated free list");
    seen = calloc(h.nslots, 1);
    if (!seen) FAIL("out of memory");
    for (uint32_t i = 0; i < h.nfree; i++) {
      uint32_t s = ix->free_slots[i];
      if (s >= h.nslots || !(ix->flags[s] & F_DELETED) || seen[s]) FAIL("bad free list");
      seen[s] = 1;
    }
  }
  if (h.live && ((ix->flags[h.ep] & F_DELETED) || ix->levels[h.ep] != h.maxlevel))
    FAIL("bad entry point");
  uint32_t want = crc_final(&r.k), got;
  if (read(ud, &got, sizeof got)) FAIL("truncated checksum");
  if (want != got) FAIL("checksum mismatch (corrupt snapshot)");
  ix->live = h.live;
  ix->nfree = h.nfree;
  ix->ep = h.ep;
  ix->maxlevel = h.maxlevel;
  free(seen);
  crc_done(&r.k);
  return ix;

fail:
  free(seen);
  crc_done(&r.k);
  hnsw_free(ix);
  return NULL;
}
