/*
 * search.c -- answering queries on an open collection: the conditions
 * a query sets (scope, filter, time ranges, expiry), the choice between a
 * graph walk and an exact scan, and batches of queries on several threads.
 * No Lua here. Everything reads the collection only, so any number of
 * threads may query one collection at once.
 */
#include <pthread.h>

#include "collection/search.h"

#define SAMPLE_SIZE 512 /* entries sampled to estimate filter selectivity */
/* Below this many matching entries, an exact scan of the matches beats a
 * filtered graph walk (Qdrant and Lucene switch the same way). */
#define EXACT_MAX_MATCHES 4096
#define EXACT_MAX_FRACTION 0.02

static int pred_active(const pred *p) {
  return (p->exclude_expired && p->c->expiring > 0) || p->scope != -1 || p->filter ||
         p->event.on || p->ingest.on;
}

/* The hnsw filter callback; read-only, so search threads share it. */
static int accept(void *ud, uint32_t slot) {
  const pred *p = ud;
  const entry *e = &p->c->entries[slot];
  if (e->id == NULL || e->meta == NULL) return 0;
  if (p->scope >= 0 && (int64_t)e->scope != p->scope) return 0;
  if (p->exclude_expired && coll_expired(e, p->now)) return 0;
  if (p->event.on &&
      (!e->has_event_time || e->event_time < p->event.from || e->event_time > p->event.to))
    return 0;
  if (p->ingest.on && (e->created_at < p->ingest.from || e->created_at > p->ingest.to))
    return 0;
  if (p->filter && !lls_filter_match(p->filter, e->meta)) return 0;
  return 1;
}

/* Fraction of live entries the predicate accepts: exact for a scope alone,
 * sampled evenly across slots otherwise. */
static double selectivity(const pred *p) {
  const coll *c = p->c;
  size_t live = hnsw_count(c->ix);
  if (live == 0) return 0;
  if (p->scope >= 0 && !p->filter && !p->event.on && !p->ingest.on &&
      !(p->exclude_expired && c->expiring > 0))
    return (double)c->scopes[p->scope].count / (double)live;
  uint32_t limit = hnsw_slot_limit(c->ix);
  uint32_t step = limit / SAMPLE_SIZE ? limit / SAMPLE_SIZE : 1;
  size_t seen = 0, ok = 0;
  for (uint32_t s = 0; s < limit; s += step) {
    if (!hnsw_is_live(c->ix, s)) continue;
    seen++;
    ok += (size_t)accept((void *)p, s);
  }
  return seen ? (double)ok / (double)seen : 1.0;
}

/* One query: a plain graph walk without conditions; with them, an exact
 * scan when few entries match, else a filtered walk with ef widened for
 * the entries the filter skips. Returns hits or a negative HNSW code. */
int coll_query(const coll *c, const float *q, size_t k, size_t ef, const pred *p,
                     hnsw_hit *out) {
  int active = pred_active(p);
  if (p->strat == STRAT_EXACT)
    return hnsw_brute_force(c->ix, q, k, active ? accept : NULL, (void *)p, out);
  if (!active) return hnsw_search(c->ix, q, k, ef, NULL, NULL, out);
  if (p->scope == -2) return 0;
  double frac = selectivity(p);
  double matches = frac * (double)hnsw_count(c->ix);
  if (p->strat == STRAT_AUTO && (matches <= EXACT_MAX_MATCHES || frac <= EXACT_MAX_FRACTION))
    return hnsw_brute_force(c->ix, q, k, accept, (void *)p, out);
  if (frac <= 0) frac = 1.0 / (double)(hnsw_count(c->ix) + 1);
  double widen = 1.0 / frac;
  if (widen > 8) widen = 8;
  size_t ef2 = (size_t)((double)(ef > k ? ef : k) * widen);
  int n = hnsw_search(c->ix, q, k, ef2, accept, (void *)p, out);
  if (n >= 0 && (size_t)n < k && matches >= (double)k && p->strat == STRAT_AUTO)
    n = hnsw_brute_force(c->ix, q, k, accept, (void *)p, out);
  return n;
}

double coll_score(int metric, float d) {
  switch (metric) {
  case LLS_METRIC_COSINE: return 1.0 - (double)d;
  case LLS_METRIC_IP: return -(double)d;
  default: return 1.0 / (1.0 + (double)d);
  }
}

typedef struct job {
  const coll *c;
  const float *queries;
  size_t nq, next_q, k, ef;
  const pred *p;
  hnsw_hit *hits;
  int *counts;
  pthread_mutex_t lock;
} job;

/* Threads pull the next query from a shared counter, so a slow query does
 * not hold up a whole share of the batch. */
static void *worker(void *arg) {
  job *j = arg;
  size_t dim = (size_t)j->c->info.dimension;
  for (;;) {
    pthread_mutex_lock(&j->lock);
    size_t i = j->next_q++;
    pthread_mutex_unlock(&j->lock);
    if (i >= j->nq) return NULL;
    j->counts[i] = coll_query(j->c, j->queries + i * dim, j->k, j->ef, j->p, j->hits + i * j->k);
  }
}

void coll_query_many(const coll *c, const float *qs, size_t nq, size_t k, size_t ef,
                     const pred *p, int threads, hnsw_hit *hits, int *counts) {
  job j = {c, qs, nq, 0, k, ef, p, hits, counts, PTHREAD_MUTEX_INITIALIZER};
  pthread_t tids[64];
  int nt = threads < (int)nq ? threads : (int)nq, started = 0;
  if (nt > 64) nt = 64;
  for (int t = 1; t < nt; t++)
    if (pthread_create(&tids[started], NULL, worker, &j) == 0) started++;
  worker(&j); /* this thread works too, so nothing is lost if none started */
  for (int t = 0; t < started; t++) pthread_join(tids[t], NULL);
  pthread_mutex_destroy(&j.lock);
}
