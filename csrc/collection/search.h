/*
 * search.h -- answering queries on an open collection (search.c): the
 * conditions a query sets, the choice between a graph walk and an exact
 * scan, and batches of queries on several threads. No Lua here.
 */
#ifndef LLS_COLLECTION_SEARCH_H
#define LLS_COLLECTION_SEARCH_H

#include <stddef.h>
#include <stdint.h>

#include "collection/state.h"
#include "value/filter.h"
#include "vector/hnsw.h"

/* A {from, to} time range, inclusive, in µs. */
typedef struct range {
  int on;
  int64_t from, to;
} range;

typedef enum strategy { STRAT_AUTO, STRAT_GRAPH, STRAT_EXACT } strategy;

typedef struct pred {
  const coll *c;
  strategy strat;
  int64_t now;
  int exclude_expired;
  int64_t scope; /* -1: any scope; -2: a scope no entry has */
  const lls_filter *filter;
  range event, ingest;
} pred;

/* One query (see the planner in search.c). Returns the number of hits
 * written to out (at most k) or a negative HNSW code. Read-only: any number
 * of threads may run queries on one collection at once. */
int coll_query(const coll *c, const float *q, size_t k, size_t ef, const pred *p,
               hnsw_hit *out);

/* nq queries on up to `threads` threads; query i's hits go to
 * hits[i * k ...], their count (or a negative code) to counts[i]. */
void coll_query_many(const coll *c, const float *qs, size_t nq, size_t k, size_t ef,
                     const pred *p, int threads, hnsw_hit *hits, int *counts);

/* Score for a distance under a metric (higher is better). */
double coll_score(int metric, float d);

#endif
