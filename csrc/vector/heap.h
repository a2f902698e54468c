/*
 * heap.h -- heaps of (distance, slot) pairs: the candidate and result
 * lists of the graph walk (graph.c) and the brute-force scan (hnsw.c).
 * Private to the index, like hnsw_internal.h.
 */
#ifndef LLS_HNSW_HEAP_H
#define LLS_HNSW_HEAP_H

#include <stddef.h>

#include "vector/hnsw_internal.h"

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
static inline void maxheap_sort(pair *h, size_t n) {
  while (n > 1) {
    pair top = h[0];
    maxheap_pop(h, &n);
    h[n] = top;
  }
}

#endif
