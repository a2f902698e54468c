/*
 * graph.c -- the HNSW graph algorithms (see graph.h): searching a level,
 * choosing neighbours, inserting a node, and unlinking a deleted one.
 *
 * Deletion. A deleted node stays in the graph (its links still route
 * searches) until its slot is reused, but its neighbours are relinked at
 * once: each neighbour that linked back to it keeps its other links and
 * fills the gap from the deleted node's links (see relink). A reused slot
 * keeps its old level, so upper-level links that still point at it stay
 * within the levels it has. The entry point is always a live node.
 */
#include "vector/graph.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>

#include "vector/heap.h"

#ifdef LLS_X86
#include <immintrin.h>
#endif

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


/* ---- search within one level ------------------------------------------- */

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
  if (hnsw_ctx_grow(&c->res, &c->rcap, ef + 1, &c->bytes) != HNSW_OK) return HNSW_ENOMEM;
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
      if (hnsw_ctx_grow(&c->cand, &c->ccap, nc + nt, &c->bytes) != HNSW_OK) return HNSW_ENOMEM;
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
 * s writes all of its own lists (top level down, each level's search
 * starting from the nearest node found on the level above) before any node
 * links back to it. Until then no other thread can reach s, so none can
 * step into s at an upper level and then find its lower lists still empty,
 * which would leave that thread's node linked to s alone. (hnswlib gets the
 * same effect by holding the new node's lock for the whole insertion.)
 */
int hnsw_graph_insert(hnsw_index *ix, ctx *c, uint32_t s, unsigned mode) {
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

void hnsw_graph_replace_entry(hnsw_index *ix) {
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

void hnsw_graph_unlink(hnsw_index *ix, ctx *c, uint32_t s) {
  for (int l = 0; l <= ix->levels[s]; l++) {
    const uint32_t *ll = links_at(ix, s, l);
    for (uint32_t j = 0; j < ll[0]; j++) {
      uint32_t n = ll[1 + j];
      if (n != s && !(ix->flags[n] & F_DELETED)) relink(ix, c, n, s, l, ll + 1, ll[0]);
    }
  }
  if (ix->ep == s) hnsw_graph_replace_entry(ix);
}

/* ---- search ------------------------------------------------------------------ */

int hnsw_graph_search(const hnsw_index *ix, ctx *c, const float *q, size_t ef,
                      hnsw_filter_fn filter, void *ud) {
  uint32_t cur = ix->ep;
  float cur_d = dist_q(ix, q, cur);
  for (int l = ix->maxlevel; l > 0; l--) greedy(ix, c, q, l, 0, &cur, &cur_d);
  /* two specialisations: the common case skips every per-result check */
  if (filter || ix->nfree)
    return search_level(ix, c, q, cur, cur_d, ef, 0, MODE_CHECK, NONE, filter, ud);
  return search_level(ix, c, q, cur, cur_d, ef, 0, 0, NONE, NULL, NULL);
}
