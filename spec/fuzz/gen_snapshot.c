/*
 * gen_snapshot.c -- writes the snapshot seeds of spec/fuzz/snapshot/ with
 * the library's own hnsw_serialize (spec/fuzz/make_seeds.lua builds and
 * runs it):
 *
 *   gen_snapshot DIR
 *
 * Small indexes that between them reach every part of the format: each
 * metric, upper levels, deleted slots on the free list, one vector, none.
 */
#include <stdio.h>
#include <stdlib.h>

#include "vector/hnsw.h"

static int write_file(void *ud, const void *p, size_t n) {
  return fwrite(p, 1, n, ud) == n ? 0 : -1;
}

/* Builds an index of n vectors of dim floats (a fixed pseudo-random
 * sequence), deletes every `del`-th slot (0: none) and writes it. */
static int seed(const char *dir, const char *name, size_t dim, lls_metric metric, size_t m,
                size_t n, size_t del) {
  hnsw_index *ix = hnsw_new(dim, metric, m, 2 * m, 0, 42);
  float *v = malloc(dim * sizeof *v);
  if (!ix || !v) return -1;
  uint64_t x = 0x9E3779B97F4A7C15u;
  for (size_t i = 0; i < n; i++) {
    for (size_t j = 0; j < dim; j++) {
      x = x * 6364136223846793005u + 1442695040888963407u;
      v[j] = (float)((double)(x >> 40) / (double)(1u << 24)) - 0.5f;
    }
    if (hnsw_add(ix, v, NULL) != HNSW_OK) return -1;
  }
  for (size_t i = 0; del && i < n; i += del)
    if (hnsw_delete(ix, (uint32_t)i) != HNSW_OK) return -1;
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  int rc = f && hnsw_serialize(ix, write_file, f) == HNSW_OK ? 0 : -1;
  if (f && fclose(f) != 0) rc = -1;
  hnsw_free(ix);
  free(v);
  return rc;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: gen_snapshot DIR\n");
    return 2;
  }
  const char *d = argv[1];
  int bad = seed(d, "cosine-24-deleted", 4, LLS_METRIC_COSINE, 4, 24, 5) |
            seed(d, "l2-40", 3, LLS_METRIC_L2, 2, 40, 0) |
            seed(d, "ip-1", 2, LLS_METRIC_IP, 2, 1, 0) |
            seed(d, "l1-empty", 5, LLS_METRIC_L1, 3, 0, 0) |
            seed(d, "l2-all-deleted", 2, LLS_METRIC_L2, 2, 6, 1);
  if (bad) {
    fprintf(stderr, "gen_snapshot: could not write the seeds\n");
    return 1;
  }
  return 0;
}
