/*
 * distance.h -- float32 distance kernels for the vector index, with the
 * instruction set chosen at run time (AVX-512, AVX2+FMA or portable C).
 *
 * The library is compiled without -march, so one core.so runs on any
 * x86-64 (and on other architectures, where only the scalar kernels
 * exist). Selection is a pure function of the CPU: it returns a pointer to
 * a const table, and each index keeps the pointer it got when it was made.
 * There is no global mutable state here.
 */
#ifndef LLS_DISTANCE_H
#define LLS_DISTANCE_H

#include <stddef.h>

/* How two vectors are compared. The numbering is part of the snapshot
 * format (hnsw_serialize): never renumber. */
typedef enum lls_metric {
  LLS_METRIC_COSINE = 0, /* 1 - cos(a, b), in [0, 2] */
  LLS_METRIC_L2 = 1,     /* Euclidean distance */
  LLS_METRIC_IP = 2,     /* -dot(a, b): larger dot is nearer */
  LLS_METRIC_L1 = 3      /* sum |a_i - b_i| */
} lls_metric;

/* A raw kernel over n floats. The pointers need no particular alignment. */
typedef float (*lls_dist_fn)(const float *a, const float *b, size_t n);

/* The same against four vectors at once: out[j] = kernel(q, v[j], n). The
 * query is loaded once per chunk for all four, and the four sums are
 * independent, which hides the FMA latency: a graph search scores a node's
 * neighbours this way. */
typedef void (*lls_dist4_fn)(const float *q, const float *const v[4], size_t n, float out[4]);

/* One instruction set's kernels. Raw sums, not distances: the index turns
 * them into distances (negating the dot, applying cosine norms). */
typedef struct lls_kernels {
  const char *name;  /* "avx512", "avx2" or "scalar" */
  lls_dist_fn l2sq;  /* sum (a_i - b_i)^2 */
  lls_dist_fn dot;   /* sum a_i * b_i */
  lls_dist_fn l1;    /* sum |a_i - b_i| */
  lls_dist4_fn l2sq4;
  lls_dist4_fn dot4;
  lls_dist4_fn l1_4;
} lls_kernels;

typedef enum lls_isa {
  LLS_ISA_SCALAR = 0,
  LLS_ISA_AVX2 = 1,   /* AVX2 and FMA */
  LLS_ISA_AVX512 = 2  /* AVX-512F */
} lls_isa;

/*
 * Returns the kernel table for one instruction set, or NULL when this CPU
 * (or this build) lacks it. LLS_ISA_SCALAR always succeeds. Used by tests
 * to check every kernel against the scalar one; the index uses
 * lls_kernels_best().
 */
const lls_kernels *lls_kernels_for(lls_isa isa);

/*
 * Returns the fastest kernel table this CPU supports. Pure: it reads only
 * the CPU's feature bits, so any thread may call it at any time.
 */
const lls_kernels *lls_kernels_best(void);

/*
 * The distance between a and b (n floats each) under metric m, computed
 * with kernels k: for cosine the two vectors are normalised here (a zero
 * vector is at distance 1 from everything); for L2 the true Euclidean
 * distance, not its square. A reference for tests and brute force checks;
 * the index has faster paths.
 */
float lls_distance(const lls_kernels *k, lls_metric m, const float *a, const float *b,
                   size_t n);

/* The name of a metric ("cosine", "l2", "ip", "l1"), or NULL if invalid. */
const char *lls_metric_name(lls_metric m);

/* The metric named s[0..len), or -1 when no metric has that name. Takes
 * the canonical names and rs-llmspell's: "euclidean" (l2), "inner_product"
 * and "innerproduct" (ip), "manhattan" (l1); exact, lowercase. */
int lls_metric_parse(const char *s, size_t len);

#endif
