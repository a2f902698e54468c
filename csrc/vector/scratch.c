/*
 * scratch.c -- the pool of per-operation scratch contexts (see scratch.h).
 */
#include "vector/scratch.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

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

int hnsw_ctx_grow(pair **h, size_t *cap, size_t need, size_t *bytes) {
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
ctx *hnsw_ctx_acquire(const hnsw_index *cix) {
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

void hnsw_ctx_release(const hnsw_index *cix, ctx *c) {
  hnsw_index *ix = (hnsw_index *)cix;
  pthread_mutex_lock(&ix->pool_lock);
  c->next = ix->pool;
  ix->pool = c;
  ix->pool_bytes += c->bytes;
  pthread_mutex_unlock(&ix->pool_lock);
}

void hnsw_ctx_drain(hnsw_index *ix) {
  while (ix->pool) {
    ctx *c = ix->pool;
    ix->pool = c->next;
    ctx_free(c);
  }
}
