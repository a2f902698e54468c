/*
 * hnsw_c.c -- drives csrc/hnsw.c exactly as bench/hnswlib_peer.cpp drives
 * hnswlib, so that bench/hnsw_compare.lua can put the two side by side.
 *
 *   hnsw_c --base F --query F --gt F [--metric l2|cosine|ip] [--nq N]
 *          [--m 16] [--efc 200] [--threads 1] [--efs 10,20,40]
 *          [--min-time 0.3] [--k 10] [--name NAME]
 *
 * One build per process (so resident memory before/after is clean), then an
 * ef_search sweep. Output lines are `key=value` pairs, one per result.
 * Build with the library's own flags for csrc/ (-O2, no -march): the point
 * is to measure what users get, with run-time kernel dispatch.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vector/hnsw.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* VmRSS / VmHWM in kB from /proc/self/status. */
static long proc_kb(const char *key) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long v = -1;
  size_t kl = strlen(key);
  if (!f) return -1;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
      v = strtol(line + kl + 1, NULL, 10);
      break;
    }
  fclose(f);
  return v;
}

/* texmex .fvecs / .ivecs: each record is int32 dim then dim 4-byte values */
static void *load_vecs(const char *path, size_t *n, size_t *dim) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "cannot open %s\n", path);
    exit(2);
  }
  int32_t d;
  if (fread(&d, 4, 1, f) != 1 || d <= 0) {
    fprintf(stderr, "bad file %s\n", path);
    exit(2);
  }
  fseek(f, 0, SEEK_END);
  long sz = ftell(f);
  fseek(f, 0, SEEK_SET);
  size_t rec = 4 + 4 * (size_t)d;
  *n = (size_t)sz / rec;
  *dim = (size_t)d;
  char *out = malloc(*n * (size_t)d * 4);
  for (size_t i = 0; i < *n; i++) {
    int32_t dd;
    if (fread(&dd, 4, 1, f) != 1 || dd != d ||
        fread(out + i * (size_t)d * 4, 4, (size_t)d, f) != (size_t)d) {
      fprintf(stderr, "bad record in %s\n", path);
      exit(2);
    }
  }
  fclose(f);
  return out;
}

typedef struct build_arg {
  hnsw_index *ix;
  const float *base;
  size_t n;
  int threads;
} build_arg;

int main(int argc, char **argv) {
  const char *base_p = NULL, *query_p = NULL, *gt_p = NULL, *metric_s = "l2", *name = "data";
  const char *efs_s = "10,20,40,80,120,200";
  size_t nq_max = 0, m = 16, efc = 200, k = 10;
  int threads = 1;
  double min_time = 0.3;
  for (int i = 1; i + 1 < argc; i += 2) {
    const char *a = argv[i], *v = argv[i + 1];
    if (!strcmp(a, "--base")) base_p = v;
    else if (!strcmp(a, "--query")) query_p = v;
    else if (!strcmp(a, "--gt")) gt_p = v;
    else if (!strcmp(a, "--metric")) metric_s = v;
    else if (!strcmp(a, "--nq")) nq_max = (size_t)atol(v);
    else if (!strcmp(a, "--m")) m = (size_t)atol(v);
    else if (!strcmp(a, "--efc")) efc = (size_t)atol(v);
    else if (!strcmp(a, "--threads")) threads = atoi(v);
    else if (!strcmp(a, "--efs")) efs_s = v;
    else if (!strcmp(a, "--min-time")) min_time = atof(v);
    else if (!strcmp(a, "--k")) k = (size_t)atol(v);
    else if (!strcmp(a, "--name")) name = v;
    else {
      fprintf(stderr, "unknown option %s\n", a);
      return 2;
    }
  }
  if (!base_p || !query_p || !gt_p) {
    fprintf(stderr, "need --base --query --gt\n");
    return 2;
  }
  lls_metric metric = !strcmp(metric_s, "cosine") ? LLS_METRIC_COSINE
                      : !strcmp(metric_s, "ip")   ? LLS_METRIC_IP
                                                  : LLS_METRIC_L2;
  size_t n, dim, nq, qdim, ngt, gtk;
  float *base = load_vecs(base_p, &n, &dim);
  float *query = load_vecs(query_p, &nq, &qdim);
  int32_t *gt = load_vecs(gt_p, &ngt, &gtk);
  if (qdim != dim || ngt < nq) {
    if (ngt < nq) nq = ngt;
    if (qdim != dim) {
      fprintf(stderr, "dimension mismatch\n");
      return 2;
    }
  }
  if (nq_max && nq > nq_max) nq = nq_max;

  long rss0 = proc_kb("VmRSS");
  double t0 = now();
  hnsw_index *ix = hnsw_new(dim, metric, m, efc, n, 100);
  int rc = hnsw_add_batch(ix, base, n, NULL, threads);
  double build = now() - t0;
  long rss1 = proc_kb("VmRSS"), hwm = proc_kb("VmHWM");
  if (rc) {
    fprintf(stderr, "build failed: %s\n", hnsw_strerror(rc));
    return 1;
  }
  printf("impl=ours name=%s threads=%d n=%zu dim=%zu kernel=%s build_s=%.4f rss_before_kb=%ld "
         "rss_after_kb=%ld hwm_kb=%ld mem_per_vec=%.1f index_bytes=%zu\n",
         name, threads, n, dim, hnsw_kernel_name(ix), build, rss0, rss1, hwm,
         (double)(rss1 - rss0) * 1024.0 / (double)n, hnsw_memory_bytes(ix));

  hnsw_hit *hits = malloc(k * sizeof *hits);
  char *efs = strdup(efs_s);
  for (char *tok = strtok(efs, ","); tok; tok = strtok(NULL, ",")) {
    size_t ef = (size_t)atol(tok);
    size_t found = 0;
    for (size_t qi = 0; qi < nq; qi++) {
      int got = hnsw_search(ix, query + qi * dim, k, ef, NULL, NULL, hits);
      for (int j = 0; j < got; j++)
        for (size_t g = 0; g < k; g++)
          if ((int32_t)hits[j].slot == gt[qi * gtk + g]) {
            found++;
            break;
          }
    }
    double recall = (double)found / (double)(nq * k);
    size_t done = 0;
    double t1 = now(), el;
    do {
      for (size_t qi = 0; qi < nq; qi++)
        hnsw_search(ix, query + qi * dim, k, ef, NULL, NULL, hits);
      done += nq;
      el = now() - t1;
    } while (el < min_time);
    printf("impl=ours name=%s threads=%d ef=%zu recall=%.4f qps=%.0f\n", name, threads, ef,
           recall, (double)done / el);
  }
  free(efs);
  free(hits);
  hnsw_free(ix);
  free(base);
  free(query);
  free(gt);
  return 0;
}
