/*
 * hnsw.c -- HNSW graph index (see hnsw.h for the contract): the index's
 * life cycle, slot storage and the public calls. The rest of the index:
 * hnsw_internal.h (the struct and node layout), graph.c (walking and
 * editing the graph), scratch.c (per-operation scratch), heap.h, and
 * snapshot.c (the snapshot format).
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
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vector/cpus.h"
#include "vector/graph.h"
#include "vector/heap.h"
#include "vector/hnsw_internal.h"
#include "vector/scratch.h"

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
int hnsw_grow_slots(hnsw_index *ix, size_t need) {
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

int hnsw_reserve_upper(hnsw_index *ix, size_t extra) {
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
  int rc = hnsw_grow_slots(ix, ix->nslots + fresh);
  if (rc) return rc;
  uint64_t saved = ix->rng;
  size_t need = 0;
  for (size_t i = 0; i < fresh; i++) need += (size_t)draw_level(ix) * ix->upper_stride;
  ix->rng = saved;
  if (need > UINT32_MAX - ix->upper_len) return HNSW_EFULL;
  return hnsw_reserve_upper(ix, need);
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
  if (initial_capacity && hnsw_grow_slots(ix, initial_capacity) != HNSW_OK) {
    hnsw_free(ix);
    return NULL;
  }
  return ix;
}

void hnsw_free(hnsw_index *ix) {
  if (!ix) return;
  hnsw_ctx_drain(ix);
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
  hnsw_graph_unlink(ix, c, s);
}

int hnsw_add(hnsw_index *ix, const float *vec, uint32_t *slot_out) {
  if (!ix || !vec) return HNSW_EINVAL;
  /* capacity first, then scratch sized to it: past this point only the
   * search heaps can fail to grow */
  int rc = reserve_for(ix, 1);
  if (rc) return rc;
  ctx *c = hnsw_ctx_acquire(ix);
  if (!c) return HNSW_ENOMEM;
  uint32_t s = take_slot(ix);
  place_vector(ix, s, vec);
  rc = hnsw_graph_insert(ix, c, s, 0);
  if (rc)
    abandon(ix, c, s);
  else if (slot_out)
    *slot_out = s;
  hnsw_ctx_release(ix, c);
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
    int rc = hnsw_graph_insert(b->ix, w->c, b->slots[i], b->mode);
    if (rc) atomic_store(&b->rc, rc);
  }
  return NULL;
}

/* The CPUs this process may use (affinity mask, cgroup quota), at most 64. */
static int online_cores(void) {
  int n = hnsw_usable_cpus();
  return n > 64 ? 64 : n;
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
    ws[nw].c = hnsw_ctx_acquire(ix);
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
      rc = hnsw_graph_insert(ix, ws[0].c, slots[taken], 0);
    }
    start = n;
  } else {
    /* threads only ever read vectors, levels and flags: set them all first */
    for (; taken < n; taken++) {
      slots[taken] = take_slot(ix);
      place_vector(ix, slots[taken], vecs + taken * ix->dim);
    }
    /* the very first node of an empty index is placed alone */
    if (rc == HNSW_OK && ix->ep == NONE) rc = hnsw_graph_insert(ix, ws[0].c, slots[start++], 0);
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
  for (int t = 0; t < nw; t++) hnsw_ctx_release(ix, ws[t].c);
  if (!slots_out) free(slots);
  return rc;
}

int hnsw_delete(hnsw_index *ix, uint32_t slot) {
  if (!ix) return HNSW_EINVAL;
  if (!is_live(ix, slot)) return HNSW_ENOENT;
  ctx *c = hnsw_ctx_acquire(ix);
  ix->flags[slot] |= F_DELETED;
  ix->live--;
  ix->free_slots[ix->nfree++] = slot;
  if (!c) {
    if (ix->ep == slot) hnsw_graph_replace_entry(ix);
    return HNSW_ENOMEM;
  }
  hnsw_graph_unlink(ix, c, slot);
  hnsw_ctx_release(ix, c);
  return HNSW_OK;
}

int hnsw_update(hnsw_index *ix, uint32_t slot, const float *vec) {
  if (!ix || !vec) return HNSW_EINVAL;
  if (!is_live(ix, slot)) return HNSW_ENOENT;
  ctx *c = hnsw_ctx_acquire(ix);
  if (!c) return HNSW_ENOMEM;
  ix->flags[slot] |= F_DELETED;
  ix->live--;
  hnsw_graph_unlink(ix, c, slot);
  place_vector(ix, slot, vec);
  ix->flags[slot] = 0;
  ix->live++;
  int rc = hnsw_graph_insert(ix, c, slot, 0);
  hnsw_ctx_release(ix, c);
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
  ctx *c = hnsw_ctx_acquire(ix);
  if (!c) return HNSW_ENOMEM;
  int nr = hnsw_graph_search(ix, c, prep_query(ix, c, q), ef, filter, ud);
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
  hnsw_ctx_release(ix, c);
  return nr;
}

int hnsw_brute_force(const hnsw_index *ix, const float *q, size_t k, hnsw_filter_fn filter,
                     void *ud, hnsw_hit *out) {
  if (!ix || !q || (!out && k)) return HNSW_EINVAL;
  if (k == 0 || ix->live == 0) return 0;
  if (k > ix->live) k = ix->live;
  ctx *c = hnsw_ctx_acquire(ix);
  if (!c) return HNSW_ENOMEM;
  if (hnsw_ctx_grow(&c->res, &c->rcap, k + 1, &c->bytes) != HNSW_OK) {
    hnsw_ctx_release(ix, c);
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
  hnsw_ctx_release(ix, c);
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
