/*
 * test_hnsw.c -- standalone test of the vector index (csrc/vector/).
 *
 *   cc -std=c11 -D_POSIX_C_SOURCE=200809L -O1 -g -fsanitize=address,undefined \
 *      -Icsrc csrc/vector/[a-z]*.c spec/c/test_hnsw.c -lpthread -lm
 *   ./a.out [data_dir]
 *
 * data_dir defaults to $LLMSPELL_DATA_DIR, else spec/data (the small real
 * dataset committed with the repository; run from its root). Prints one
 * line per check and exits non-zero on the first failure.
 * spec/hnsw_c_spec.lua builds and runs it.
 */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vector/distance.h"
#include "vector/hnsw.h"

#ifdef HNSW_TEST_OOM
/* The fault-injection build (see test_oom) renames the allocator in every
 * file; this one allocates for real and defines the failing versions. */
#undef malloc
#undef realloc
#undef calloc
/* <stdlib.h> declared the oom_ names under the macros: declare the real ones */
void *malloc(size_t n);
void *realloc(void *p, size_t n);
void *calloc(size_t a, size_t b);
#endif

#include "check.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Deterministic test data: splitmix64 and Box-Muller. */
static uint64_t rng_state = 42;
static uint64_t rnd(void) {
  uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
static double unif(void) { return ((double)(rnd() >> 11) + 0.5) * 0x1.0p-53; }
static float gauss(void) {
  return (float)(sqrt(-2.0 * log(unif())) * cos(6.283185307179586 * unif()));
}

static float *random_vectors(size_t n, size_t dim) {
  float *v = malloc(n * dim * sizeof *v);
  CHECK(v != NULL, "malloc");
  for (size_t i = 0; i < n * dim; i++) v[i] = gauss();
  return v;
}

/* ---- data files ------------------------------------------------------- */

static void *load_vecs(const char *dir, const char *name, size_t *n, size_t *dim) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "rb");
  CHECK(f != NULL, "cannot open %s (set LLMSPELL_DATA_DIR or pass the data dir)", path);
  int32_t d;
  CHECK(fread(&d, 4, 1, f) == 1 && d > 0, "bad header in %s", path);
  fseek(f, 0, SEEK_END);
  long sz = ftell(f);
  fseek(f, 0, SEEK_SET);
  size_t rec = 4 + 4 * (size_t)d;
  CHECK(sz > 0 && (size_t)sz % rec == 0, "bad size of %s", path);
  *n = (size_t)sz / rec;
  *dim = (size_t)d;
  char *out = malloc(*n * (size_t)d * 4);
  CHECK(out != NULL, "malloc");
  for (size_t i = 0; i < *n; i++) {
    int32_t dd;
    CHECK(fread(&dd, 4, 1, f) == 1 && dd == d, "bad record in %s", path);
    CHECK(fread(out + i * (size_t)d * 4, 4, (size_t)d, f) == (size_t)d, "short %s", path);
  }
  fclose(f);
  return out;
}

/* A real dataset with its exact ground truth (gt: nq rows of gtk ids). */
typedef struct dataset {
  size_t n, dim, nq, gtk;
  float *base, *query;
  int32_t *gt;
} dataset;

/* ---- helpers ------------------------------------------------------------ */

static double overlap(const hnsw_hit *a, int na, const hnsw_hit *b, int nb, size_t k) {
  size_t found = 0;
  for (int i = 0; i < na; i++)
    for (int j = 0; j < nb; j++)
      if (a[i].slot == b[j].slot) {
        found++;
        break;
      }
  return (double)found / (double)k;
}

/* Recall@k of hnsw_search against the dataset's ground truth (slot == id). */
static double gt_recall(const hnsw_index *ix, const dataset *s, size_t k, size_t ef) {
  hnsw_hit hits[100];
  size_t found = 0;
  for (size_t q = 0; q < s->nq; q++) {
    int got = hnsw_search(ix, s->query + q * s->dim, k, ef, NULL, NULL, hits);
    CHECK(got == (int)k, "search returned %d", got);
    for (int i = 0; i < got; i++)
      for (size_t g = 0; g < k; g++)
        if ((int32_t)hits[i].slot == s->gt[q * s->gtk + g]) {
          found++;
          break;
        }
  }
  return (double)found / (double)(s->nq * k);
}

static hnsw_index *build_real(const dataset *s, int threads, double *secs) {
  double t0 = now();
  hnsw_index *ix = hnsw_new(s->dim, LLS_METRIC_L2, 16, 200, 0, 1234);
  CHECK(ix != NULL, "hnsw_new");
  int rc = hnsw_add_batch(ix, s->base, s->n, NULL, threads);
  CHECK(rc == HNSW_OK, "add_batch: %s", hnsw_strerror(rc));
  if (secs) *secs = now() - t0;
  CHECK(hnsw_count(ix) == s->n, "count %zu", hnsw_count(ix));
  return ix;
}

/* ---- kernels ------------------------------------------------------------- */

static void test_kernels(void) {
  const lls_kernels *ref = lls_kernels_for(LLS_ISA_SCALAR);
  CHECK(ref && !strcmp(ref->name, "scalar"), "scalar kernels");
  static const size_t dims[] = {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 63, 64, 65,
                                96, 100, 127, 128, 129, 384, 768, 1000, 1024, 1536};
  int tested = 0;
  for (int isa = LLS_ISA_SCALAR; isa <= LLS_ISA_AVX512; isa++) {
    const lls_kernels *k = lls_kernels_for((lls_isa)isa);
    if (!k) {
      printf("kernels: %s not supported here, skipped\n", isa == LLS_ISA_AVX2 ? "avx2" : "avx512");
      continue;
    }
    tested++;
    for (size_t di = 0; di < sizeof dims / sizeof *dims; di++) {
      size_t d = dims[di];
      /* +1 so an unaligned start is tested too */
      float *a = random_vectors(d + 1, 1), *b = random_vectors(d + 1, 1);
      for (int off = 0; off < 2; off++) {
        double l2 = 0, dot = 0, l1 = 0;
        for (size_t i = 0; i < d; i++) {
          double x = a[i + off], y = b[i + off];
          l2 += (x - y) * (x - y);
          dot += x * y;
          l1 += fabs(x - y);
        }
        double tol = 1e-4 * (double)d + 1e-5;
        CHECK(fabs(k->l2sq(a + off, b + off, d) - l2) < tol, "%s l2sq d=%zu", k->name, d);
        CHECK(fabs(k->dot(a + off, b + off, d) - dot) < tol, "%s dot d=%zu", k->name, d);
        CHECK(fabs(k->l1(a + off, b + off, d) - l1) < tol, "%s l1 d=%zu", k->name, d);
        /* the four-at-once kernels, with the same vector in a rotating lane */
        const float *vs[4] = {a, b + off, a + 1, b};
        float out[4];
        for (int fn = 0; fn < 3; fn++) {
          lls_dist4_fn f4 = fn == 0 ? k->l2sq4 : fn == 1 ? k->dot4 : k->l1_4;
          lls_dist_fn f1 = fn == 0 ? k->l2sq : fn == 1 ? k->dot : k->l1;
          f4(a + off, vs, d, out);
          for (int j = 0; j < 4; j++)
            CHECK(fabsf(out[j] - f1(a + off, vs[j], d)) <= 1e-5f * (1 + fabsf(out[j])),
                  "%s 4-way kernel %d lane %d d=%zu", k->name, fn, j, d);
        }
      }
      free(a);
      free(b);
    }
  }
  const lls_kernels *best = lls_kernels_best();
  printf("kernels: %d instruction sets agree with double-precision sums; best here: %s\n",
         tested, best->name);

  /* metric semantics */
  float x[3] = {1, 0, 0}, y[3] = {0, 2, 0}, z[3] = {0, 0, 0}, mx[3] = {-3, 0, 0};
  CHECK(fabsf(lls_distance(ref, LLS_METRIC_COSINE, x, y, 3) - 1.0f) < 1e-6, "cos orth");
  CHECK(fabsf(lls_distance(ref, LLS_METRIC_COSINE, x, mx, 3) - 2.0f) < 1e-6, "cos opposite");
  CHECK(fabsf(lls_distance(ref, LLS_METRIC_COSINE, x, x, 3)) < 1e-6, "cos same");
  CHECK(lls_distance(ref, LLS_METRIC_COSINE, x, z, 3) == 1.0f, "cos zero vector");
  CHECK(fabsf(lls_distance(ref, LLS_METRIC_L2, x, y, 3) - sqrtf(5)) < 1e-6, "l2");
  CHECK(fabsf(lls_distance(ref, LLS_METRIC_IP, y, y, 3) + 4.0f) < 1e-6, "ip");
  CHECK(fabsf(lls_distance(ref, LLS_METRIC_L1, x, y, 3) - 3.0f) < 1e-6, "l1");
  CHECK(!strcmp(lls_metric_name(LLS_METRIC_COSINE), "cosine") && !lls_metric_name(9), "names");
}

/* ---- arguments and small cases -------------------------------------------- */

static void test_edges(void) {
  CHECK(hnsw_new(0, LLS_METRIC_L2, 16, 200, 0, 1) == NULL, "dim 0 refused");
  CHECK(hnsw_new(HNSW_MAX_DIM + 1, LLS_METRIC_L2, 16, 200, 0, 1) == NULL, "dim too big");
  CHECK(hnsw_new(4, LLS_METRIC_L2, 1, 200, 0, 1) == NULL, "m 1 refused");
  CHECK(hnsw_new(4, (lls_metric)7, 16, 200, 0, 1) == NULL, "bad metric refused");
  hnsw_free(NULL);

  hnsw_index *ix = hnsw_new(1, LLS_METRIC_L2, 2, 1, 0, 1);
  CHECK(ix != NULL, "tiny index");
  hnsw_hit hits[8];
  float q = 0.5f;
  CHECK(hnsw_search(ix, &q, 5, 10, NULL, NULL, hits) == 0, "empty search");
  CHECK(hnsw_brute_force(ix, &q, 5, NULL, NULL, hits) == 0, "empty brute force");
  CHECK(hnsw_delete(ix, 0) == HNSW_ENOENT, "delete missing");
  CHECK(hnsw_update(ix, 3, &q) == HNSW_ENOENT, "update missing");
  CHECK(hnsw_vector(ix, 0) == NULL, "no vector");
  uint32_t s;
  for (int i = 0; i < 5; i++) {
    float v = (float)i;
    CHECK(hnsw_add(ix, &v, &s) == HNSW_OK && s == (uint32_t)i, "add %d", i);
  }
  int got = hnsw_search(ix, &q, 8, 1, NULL, NULL, hits);
  CHECK(got == 5, "k beyond count gives all (%d)", got);
  CHECK((hits[0].slot == 0 || hits[0].slot == 1) && fabsf(hits[0].distance - 0.5f) < 1e-6,
        "nearest of 0.5");
  for (int i = 1; i < got; i++) CHECK(hits[i - 1].distance <= hits[i].distance, "sorted");
  /* delete everything, then the index must work again from scratch */
  for (uint32_t i = 0; i < 5; i++) CHECK(hnsw_delete(ix, i) == HNSW_OK, "delete %u", i);
  CHECK(hnsw_count(ix) == 0, "count after deleting all");
  CHECK(hnsw_search(ix, &q, 3, 10, NULL, NULL, hits) == 0, "search after deleting all");
  for (int i = 0; i < 5; i++) {
    float v = (float)(10 + i);
    CHECK(hnsw_add(ix, &v, &s) == HNSW_OK && s < 5, "re-add reuses slots");
  }
  CHECK(hnsw_slot_limit(ix) == 5, "no growth");
  q = 12.2f;
  got = hnsw_search(ix, &q, 1, 10, NULL, NULL, hits);
  CHECK(got == 1 && *hnsw_vector(ix, hits[0].slot) == 12.0f, "search after reuse");
  CHECK(hnsw_memory_bytes(ix) > 0, "memory");
  CHECK(hnsw_dim(ix) == 1 && hnsw_m(ix) == 2 && hnsw_ef_construction(ix) == 2, "params");
  hnsw_free(ix);
  CHECK(strcmp(hnsw_strerror(HNSW_ENOMEM), "out of memory") == 0, "strerror");
  printf("edges: empty index, k > count, delete all and reuse, bad arguments: ok\n");
}

/* ---- every metric vs brute force ------------------------------------------- */

static void test_metrics(void) {
  const size_t n = 3000, dim = 37, nq = 50, k = 10;
  float *data = random_vectors(n, dim), *qs = random_vectors(nq, dim);
  const lls_kernels *ref = lls_kernels_for(LLS_ISA_SCALAR);
  const lls_metric metrics[] = {LLS_METRIC_COSINE, LLS_METRIC_L2, LLS_METRIC_IP, LLS_METRIC_L1};
  /* every metric under every instruction set this CPU has */
  for (int run = 0; run < 4 * 3; run++) {
    lls_metric m = metrics[run % 4];
    const lls_kernels *kern = lls_kernels_for((lls_isa)(run / 4));
    if (!kern) continue;
    hnsw_index *ix = hnsw_new(dim, m, 16, 200, 0, 7);
    CHECK(ix != NULL, "new");
    CHECK(hnsw_use_kernels(ix, kern) == HNSW_OK, "use kernels");
    CHECK(hnsw_add_batch(ix, data, n, NULL, 1) == HNSW_OK, "build");
    double rsum = 0;
    for (size_t q = 0; q < nq; q++) {
      hnsw_hit a[10], b[10];
      int na = hnsw_search(ix, qs + q * dim, k, 100, NULL, NULL, a);
      int nb = hnsw_brute_force(ix, qs + q * dim, k, NULL, NULL, b);
      CHECK(na == (int)k && nb == (int)k, "counts %d %d", na, nb);
      rsum += overlap(a, na, b, nb, k);
      /* brute force is exact: check it against a naive scan */
      float worst = b[k - 1].distance;
      size_t closer = 0;
      for (size_t i = 0; i < n; i++) {
        float d = lls_distance(ref, m, qs + q * dim, data + i * dim, dim);
        if (d < worst - 1e-4f) closer++;
      }
      CHECK(closer < k, "%s brute force missed %zu closer points", lls_metric_name(m), closer);
      for (int i = 0; i < na; i++) {
        float d = lls_distance(ref, m, qs + q * dim, data + (size_t)a[i].slot * dim, dim);
        CHECK(fabsf(d - a[i].distance) < 1e-3f * (1 + fabsf(d)), "%s reported distance %g vs %g",
              lls_metric_name(m), a[i].distance, d);
        CHECK(fabsf(hnsw_distance(ix, qs + q * dim, a[i].slot) - a[i].distance) < 1e-3f,
              "hnsw_distance");
        if (i) CHECK(a[i - 1].distance <= a[i].distance, "best first");
      }
      if (m == LLS_METRIC_COSINE)
        for (int i = 0; i < na; i++)
          CHECK(a[i].distance >= 0 && a[i].distance <= 2, "cosine range");
    }
    double recall = rsum / (double)nq;
    printf("metric %-6s: recall@10 vs brute force = %.4f (n=%zu dim=%zu ef=100, %s)\n",
           lls_metric_name(m), recall, n, dim, kern->name);
    CHECK(recall >= 0.95, "%s recall %.4f < 0.95", lls_metric_name(m), recall);
    /* stored vectors come back bit for bit, cosine included */
    CHECK(memcmp(hnsw_vector(ix, 17), data + 17 * dim, dim * sizeof(float)) == 0,
          "vector round trip");
    CHECK(hnsw_use_kernels(ix, kern) == HNSW_EINVAL, "kernels fixed once filled");
    hnsw_free(ix);
  }
  free(data);
  free(qs);
}

/* ---- the real dataset (DEEP1B slice) ------------------------------------------ */

static double test_real(const dataset *s, hnsw_index **out) {
  double secs;
  hnsw_index *ix = build_real(s, 1, &secs);
  double r = gt_recall(ix, s, 10, 100);
  printf("deep1b recall@10 = %.4f (M=16 efC=200 ef=100, 1 thread, build %.2fs, %s kernels)\n",
         r, secs, hnsw_kernel_name(ix));
  CHECK(r >= 0.95, "deep1b recall %.4f < 0.95", r);
  printf("deep1b recall@10 at ef=10/20/40: %.4f %.4f %.4f\n", gt_recall(ix, s, 10, 10),
         gt_recall(ix, s, 10, 20), gt_recall(ix, s, 10, 40));
  *out = ix;
  return r;
}

/* A parallel build must make as good a graph as a sequential one; ef=20
 * is where a worse graph would show (ef=100 is near 1.0 either way). */
static void test_threads(const dataset *s, const hnsw_index *one, double single) {
  double secs;
  hnsw_index *ix = build_real(s, 2, &secs);
  double r = gt_recall(ix, s, 10, 100);
  double r20 = gt_recall(ix, s, 10, 20), one20 = gt_recall(one, s, 10, 20);
  printf("deep1b recall@10 = %.4f with a 2-thread build (%.2fs); 1 thread gave %.4f; "
         "at ef=20: %.4f vs %.4f\n",
         r, secs, single, r20, one20);
  CHECK(r >= 0.95 && fabs(r - single) <= 0.01, "2-thread recall %.4f vs %.4f", r, single);
  CHECK(r20 >= one20 - 0.01, "2-thread recall at ef=20 %.4f vs %.4f", r20, one20);
  hnsw_free(ix);
}

/* ---- filters ------------------------------------------------------------------ */

typedef struct sel {
  uint32_t mod; /* accept slots whose hash % mod == 0 */
  size_t calls;
} sel;

static uint32_t mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352d;
  x ^= x >> 15;
  x *= 0x846ca68b;
  return x ^ (x >> 16);
}

static int accept_sel(void *ud, uint32_t slot) {
  sel *f = ud;
  f->calls++;
  return mix32(slot) % f->mod == 0;
}

static void test_filters(const hnsw_index *ix, const dataset *s) {
  static const uint32_t mods[] = {100, 10, 2};
  for (int i = 0; i < 3; i++) {
    sel f = {mods[i], 0};
    size_t accepted = 0;
    for (uint32_t x = 0; x < s->n; x++) accepted += accept_sel(&f, x);
    double graph = 0, brute = 0, t_graph = 0, t_brute = 0;
    for (size_t q = 0; q < s->nq; q++) {
      const float *qv = s->query + q * s->dim;
      hnsw_hit exact[10], got[10];
      /* the reference: a plain scan applying the filter */
      int ne = 0;
      {
        float worst = INFINITY;
        for (uint32_t x = 0; x < s->n; x++) {
          if (mix32(x) % f.mod) continue;
          float d = hnsw_distance(ix, qv, x);
          if (ne < 10 || d < worst) {
            int p = ne < 10 ? ne++ : 9;
            while (p > 0 && exact[p - 1].distance > d) {
              exact[p] = exact[p - 1];
              p--;
            }
            exact[p] = (hnsw_hit){x, d};
            worst = exact[ne - 1].distance;
          }
        }
      }
      double t0 = now();
      int ng = hnsw_search(ix, qv, 10, 100, accept_sel, &f, got);
      t_graph += now() - t0;
      for (int j = 0; j < ng; j++) CHECK(mix32(got[j].slot) % f.mod == 0, "filter honoured");
      graph += overlap(got, ng, exact, ne, 10);
      t0 = now();
      int nb = hnsw_brute_force(ix, qv, 10, accept_sel, &f, got);
      t_brute += now() - t0;
      brute += overlap(got, nb, exact, ne, 10);
    }
    graph /= (double)s->nq;
    brute /= (double)s->nq;
    printf("filter %4.1f%% (%zu of %zu): graph recall@10 %.4f (%.3f ms/query), brute force "
           "%.4f (%.3f ms/query)\n",
           100.0 / f.mod, accepted, s->n, graph, t_graph * 1e3 / (double)s->nq, brute,
           t_brute * 1e3 / (double)s->nq);
    CHECK(brute == 1.0, "brute force must be exact");
    /* the graph is the tool from 10% up; below that the caller switches to
     * brute force (what hnsw.h recommends), so 1% is recorded, not gated */
    if (f.mod <= 10) CHECK(graph >= 0.95, "filtered recall %.4f at 1/%u", graph, f.mod);
  }
}

/* ---- churn: delete and reuse -------------------------------------------------- */

/* Recall@10 of the graph against exact search over the live set. */
static double live_recall(const hnsw_index *ix, const dataset *s, size_t ef) {
  double rsum = 0;
  for (size_t q = 0; q < s->nq; q++) {
    hnsw_hit a[10], b[10];
    int na = hnsw_search(ix, s->query + q * s->dim, 10, ef, NULL, NULL, a);
    int nb = hnsw_brute_force(ix, s->query + q * s->dim, 10, NULL, NULL, b);
    rsum += overlap(a, na, b, nb, 10);
    for (int i = 0; i < na; i++) CHECK(hnsw_is_live(ix, a[i].slot), "dead slot returned");
  }
  return rsum / (double)s->nq;
}

static void test_churn(const dataset *s) {
  /* half the base is live at any time; each round deletes 20% of it at
   * random and adds as many from the other half, one by one in even
   * rounds and as a 2-thread batch in odd ones: 4x turnover in all */
  const size_t live_n = s->n / 2, rounds = 20, per = live_n / 5;
  hnsw_index *ix = hnsw_new(s->dim, LLS_METRIC_L2, 16, 200, 0, 99);
  CHECK(ix != NULL, "new");
  uint8_t *is_in = calloc(s->n, 1);                  /* base id live? */
  uint32_t *id_of = malloc(live_n * sizeof *id_of);  /* slot -> base id */
  uint32_t *slots = malloc(live_n * sizeof *slots);
  float *batch = malloc(per * s->dim * sizeof *batch);
  size_t *ids = malloc(per * sizeof *ids);
  CHECK(hnsw_add_batch(ix, s->base, live_n, slots, 1) == HNSW_OK, "initial batch");
  for (size_t i = 0; i < live_n; i++) {
    is_in[i] = 1;
    id_of[slots[i]] = (uint32_t)i;
  }
  double r0 = live_recall(ix, s, 20), t_del = 0, t_add = 0;
  size_t next_id = live_n;
  for (size_t r = 1; r <= rounds; r++) {
    double t0 = now();
    for (size_t j = 0; j < per; j++) {
      uint32_t victim;
      do victim = (uint32_t)(rnd() % live_n);
      while (!hnsw_is_live(ix, victim));
      CHECK(hnsw_delete(ix, victim) == HNSW_OK, "delete");
      CHECK(hnsw_vector(ix, victim) == NULL && hnsw_delete(ix, victim) == HNSW_ENOENT, "gone");
      is_in[id_of[victim]] = 0;
    }
    t_del += now() - t0;
    for (size_t j = 0; j < per; j++) {
      while (is_in[next_id % s->n]) next_id++;
      ids[j] = next_id++ % s->n;
      is_in[ids[j]] = 1;
      memcpy(batch + j * s->dim, s->base + ids[j] * s->dim, s->dim * sizeof *batch);
    }
    t0 = now();
    if (r % 2) {
      CHECK(hnsw_add_batch(ix, batch, per, slots, 2) == HNSW_OK, "batch add");
    } else {
      for (size_t j = 0; j < per; j++)
        CHECK(hnsw_add(ix, batch + j * s->dim, &slots[j]) == HNSW_OK, "add");
    }
    t_add += now() - t0;
    for (size_t j = 0; j < per; j++) {
      CHECK(slots[j] < live_n, "slot %u is new, not reused", slots[j]);
      id_of[slots[j]] = (uint32_t)ids[j];
      CHECK(memcmp(hnsw_vector(ix, slots[j]), batch + j * s->dim, s->dim * 4) == 0, "stored");
    }
    CHECK(hnsw_count(ix) == live_n, "count %zu", hnsw_count(ix));
    CHECK(hnsw_slot_limit(ix) == live_n, "slots grew to %u", hnsw_slot_limit(ix));
    double rec = live_recall(ix, s, 100);
    CHECK(rec >= 0.95, "round %zu recall %.4f", r, rec);
  }
  double r_end = live_recall(ix, s, 20), r_end100 = live_recall(ix, s, 100);
  /* the same live vectors built from scratch: what churn should match */
  hnsw_index *fresh = hnsw_new(s->dim, LLS_METRIC_L2, 16, 200, 0, 99);
  for (uint32_t sl = 0; sl < live_n; sl++)
    CHECK(hnsw_add(fresh, hnsw_vector(ix, sl), NULL) == HNSW_OK, "fresh add");
  double r_fresh = live_recall(fresh, s, 20);
  hnsw_free(fresh);
  printf("churn: %zu rounds deleting and re-adding %zu of %zu (4x turnover): recall@10 at "
         "ef=20 %.4f -> %.4f (fresh build %.4f), ef=100 %.4f; count and slots steady; "
         "%.1f us/delete, %.1f us/add\n",
         rounds, per, live_n, r0, r_end, r_fresh, r_end100,
         t_del * 1e6 / (double)(rounds * per), t_add * 1e6 / (double)(rounds * per));
  CHECK(r_end >= r_fresh - 0.03, "churned recall %.4f vs fresh %.4f", r_end, r_fresh);

  /* update in place: the slot moves to its new vector */
  uint32_t sl = 5;
  CHECK(hnsw_is_live(ix, sl), "slot 5 live");
  const float *newv = s->query; /* a vector not in the base */
  CHECK(hnsw_update(ix, sl, newv) == HNSW_OK, "update");
  hnsw_hit h[3];
  int got = hnsw_search(ix, newv, 1, 50, NULL, NULL, h);
  CHECK(got == 1 && h[0].slot == sl && h[0].distance == 0.0f, "updated vector found");
  CHECK(memcmp(hnsw_vector(ix, sl), newv, s->dim * sizeof(float)) == 0, "updated stored");
  CHECK(hnsw_count(ix) == live_n, "update keeps count");
  CHECK(live_recall(ix, s, 100) >= 0.95, "recall after update");
  printf("update: slot %u now answers for its new vector\n", sl);
  free(is_in);
  free(id_of);
  free(slots);
  free(batch);
  free(ids);
  hnsw_free(ix);
}

/* ---- snapshots ---------------------------------------------------------------- */

typedef struct mem {
  unsigned char *p;
  size_t len, cap, pos;
  int fail_after; /* writer: fail once len would exceed this (-1: never) */
} mem;

static int mem_write(void *ud, const void *p, size_t n) {
  mem *m = ud;
  if (m->fail_after >= 0 && m->len + n > (size_t)m->fail_after) return -1;
  if (m->len + n > m->cap) {
    size_t c = (m->cap ? m->cap * 2 : 4096);
    while (c < m->len + n) c *= 2;
    m->p = realloc(m->p, c);
    m->cap = c;
  }
  memcpy(m->p + m->len, p, n);
  m->len += n;
  return 0;
}

static int mem_read(void *ud, void *p, size_t n) {
  mem *m = ud;
  if (n > m->len - m->pos) return -1;
  memcpy(p, m->p + m->pos, n);
  m->pos += n;
  return 0;
}

/* Bitwise CRC-32C, independent of the library's table and SSE4.2 code. */
static uint32_t crc32c_ref(const unsigned char *p, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  while (n--) {
    c ^= *p++;
    for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
  }
  return c ^ 0xFFFFFFFFu;
}

/* The snapshot trailer is a standard CRC-32C of everything before it. */
static void check_trailer(const unsigned char *p, size_t len) {
  uint32_t got;
  CHECK(len > 4, "snapshot too short");
  memcpy(&got, p + len - 4, 4);
  CHECK(got == crc32c_ref(p, len - 4), "trailer is not CRC-32C");
  static const unsigned char nine[] = "123456789";
  CHECK(crc32c_ref(nine, 9) == 0xE3069283u, "reference CRC-32C");
}

static void same_results(const hnsw_index *a, const hnsw_index *b, const dataset *s) {
  for (size_t q = 0; q < s->nq; q++) {
    hnsw_hit x[10], y[10];
    int nx = hnsw_search(a, s->query + q * s->dim, 10, 64, NULL, NULL, x);
    int ny = hnsw_search(b, s->query + q * s->dim, 10, 64, NULL, NULL, y);
    CHECK(nx == ny, "result counts differ");
    for (int i = 0; i < nx; i++)
      CHECK(x[i].slot == y[i].slot && x[i].distance == y[i].distance, "results differ");
  }
}

static void test_snapshot(const dataset *s) {
  /* a small index with deletions, so the free list is exercised; 150
   * more base vectors are added after the reload */
  const size_t n = s->n - 150;
  hnsw_index *ix = hnsw_new(s->dim, LLS_METRIC_L2, 12, 100, 0, 5);
  CHECK(hnsw_add_batch(ix, s->base, n, NULL, 1) == HNSW_OK, "build");
  for (uint32_t i = 0; i < 100; i++) CHECK(hnsw_delete(ix, i * 7) == HNSW_OK, "delete");
  mem m = {.fail_after = -1};
  CHECK(hnsw_serialize(ix, mem_write, &m) == HNSW_OK, "serialize");
  check_trailer(m.p, m.len);
  char err[200];
  mem r = m;
  r.pos = 0;
  hnsw_index *back = hnsw_deserialize(mem_read, &r, err, sizeof err);
  CHECK(back != NULL, "deserialize: %s", err);
  CHECK(r.pos == m.len, "read everything");
  CHECK(hnsw_count(back) == hnsw_count(ix) && hnsw_slot_limit(back) == hnsw_slot_limit(ix),
        "counts");
  same_results(ix, back, s);
  /* re-serialising gives the same bytes */
  mem m2 = {.fail_after = -1};
  CHECK(hnsw_serialize(back, mem_write, &m2) == HNSW_OK, "serialize again");
  CHECK(m2.len == m.len && memcmp(m2.p, m.p, m.len) == 0, "stable bytes");
  /* both continue identically: same slot reuse, same graph growth */
  uint32_t sa, sb;
  for (int i = 0; i < 150; i++) {
    const float *v = s->base + (n + (size_t)i) * s->dim;
    CHECK(hnsw_add(ix, v, &sa) == HNSW_OK && hnsw_add(back, v, &sb) == HNSW_OK, "add");
    CHECK(sa == sb, "same slot after load");
  }
  same_results(ix, back, s);
  printf("snapshot: %zu bytes; reload gives identical results, bytes and slot reuse\n", m.len);

  /* every flipped byte in a sample of positions is caught */
  size_t flips = 0;
  for (size_t pos = 0; pos < m.len; pos += (pos < 200 ? 1 : 997)) {
    m.p[pos] ^= 0x40;
    r = m;
    r.pos = 0;
    err[0] = 0;
    hnsw_index *bad = hnsw_deserialize(mem_read, &r, err, sizeof err);
    CHECK(bad == NULL, "flipped byte at %zu not detected", pos);
    CHECK(strncmp(err, "hnsw snapshot: ", 15) == 0, "message: '%s'", err);
    m.p[pos] ^= 0x40;
    flips++;
  }
  m.p[m.len - 1] ^= 1; /* the checksum itself */
  r = m;
  r.pos = 0;
  CHECK(hnsw_deserialize(mem_read, &r, err, sizeof err) == NULL, "checksum byte");
  printf("snapshot: %zu flipped bytes all rejected (e.g. \"%s\")\n", flips + 1, err);
  m.p[m.len - 1] ^= 1;
  /* truncation at any length */
  for (size_t len = 0; len < m.len; len += (len < 300 ? 1 : 4093)) {
    r = m;
    r.len = len;
    r.pos = 0;
    CHECK(hnsw_deserialize(mem_read, &r, err, sizeof err) == NULL, "truncated %zu", len);
  }
  /* garbage */
  for (int t = 0; t < 50; t++) {
    unsigned char junk[4096];
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (unsigned char)rnd();
    if (t % 2) memcpy(junk, m.p, 64 + (size_t)t); /* a valid header, then junk */
    r = (mem){.p = junk, .len = sizeof junk, .fail_after = -1};
    CHECK(hnsw_deserialize(mem_read, &r, NULL, 0) == NULL, "garbage accepted");
  }
  /* a failing writer is reported */
  mem w = {.fail_after = 1000};
  CHECK(hnsw_serialize(ix, mem_write, &w) == HNSW_EIO, "write error");
  free(w.p);
  printf("snapshot: truncations, garbage and write errors handled\n");
  free(m.p);
  free(m2.p);
  hnsw_free(back);
  hnsw_free(ix);
}

/* ---- concurrent searches -------------------------------------------------------- */

typedef struct search_job {
  const hnsw_index *ix;
  const dataset *s;
  hnsw_hit *out; /* nq * 10 */
} search_job;

static void *search_thread(void *arg) {
  search_job *j = arg;
  for (int rep = 0; rep < 3; rep++)
    for (size_t q = 0; q < j->s->nq; q++)
      hnsw_search(j->ix, j->s->query + q * j->s->dim, 10, 50, NULL, NULL, j->out + q * 10);
  return NULL;
}

static void test_concurrent_search(const hnsw_index *ix, const dataset *s) {
  hnsw_hit *ref = malloc(s->nq * 10 * sizeof *ref), *o[4];
  for (size_t q = 0; q < s->nq; q++)
    hnsw_search(ix, s->query + q * s->dim, 10, 50, NULL, NULL, ref + q * 10);
  pthread_t t[4];
  search_job jobs[4];
  for (int i = 0; i < 4; i++) {
    o[i] = calloc(s->nq * 10, sizeof **o);
    jobs[i] = (search_job){ix, s, o[i]};
    CHECK(pthread_create(&t[i], NULL, search_thread, &jobs[i]) == 0, "thread");
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(t[i], NULL);
    CHECK(memcmp(o[i], ref, s->nq * 10 * sizeof *ref) == 0, "thread %d results differ", i);
    free(o[i]);
  }
  free(ref);
  printf("concurrent: 4 threads searching one index agree with a single thread\n");
}

/* ---- allocation failures ------------------------------------------------------
 *
 * Built a second time with -DHNSW_TEST_OOM -DHNSW_NO_HW_CRC -Dmalloc=oom_malloc
 * -Drealloc=oom_realloc -Dcalloc=oom_calloc, every allocation in csrc/vector/ goes
 * through these wrappers, which fail from the k-th call on (and snapshots
 * use the portable CRC code instead of SSE4.2). Each operation is
 * run with k = 0, 1, 2, ... until it no longer meets a failure; after each
 * failure the index must still be consistent and searchable.
 */
#ifdef HNSW_TEST_OOM
static long oom_left = -1; /* allocations still allowed; -1 = no limit */
static long oom_failed;

static int oom_fail(void) {
  if (oom_left < 0) return 0;
  if (oom_left == 0) {
    oom_failed++;
    return 1;
  }
  oom_left--;
  return 0;
}
void *oom_malloc(size_t n);
void *oom_realloc(void *p, size_t n);
void *oom_calloc(size_t a, size_t b);
void *oom_malloc(size_t n) { return oom_fail() ? NULL : malloc(n); }
void *oom_realloc(void *p, size_t n) { return oom_fail() ? NULL : realloc(p, n); }
void *oom_calloc(size_t a, size_t b) { return oom_fail() ? NULL : calloc(a, b); }

/* count, slot map and search all agree, and the graph still finds things */
static void check_consistent(const hnsw_index *ix, const float *qs, size_t dim) {
  size_t live = 0;
  for (uint32_t s = 0; s < hnsw_slot_limit(ix); s++) live += hnsw_is_live(ix, s) != 0;
  CHECK(live == hnsw_count(ix), "count %zu but %zu live slots", hnsw_count(ix), live);
  if (!live) return;
  double r = 0;
  for (int q = 0; q < 10; q++) {
    hnsw_hit a[10], b[10];
    int na = hnsw_search(ix, qs + (size_t)q * dim, 10, 64, NULL, NULL, a);
    int nb = hnsw_brute_force(ix, qs + (size_t)q * dim, 10, NULL, NULL, b);
    CHECK(na > 0 && nb > 0, "search after failure: %d %d", na, nb);
    for (int i = 0; i < na; i++) CHECK(hnsw_is_live(ix, a[i].slot), "dead slot");
    r += overlap(a, na, b, nb, (size_t)nb);
  }
  CHECK(r / 10 >= 0.8, "recall after failure %.3f", r / 10);
}

typedef struct oom_env {
  const float *data, *qs;
  size_t dim;
  unsigned char *snap;
  size_t snap_len;
} oom_env;

/* A fresh copy of the base index (from a snapshot, so its scratch pool is
 * empty and every lazy allocation happens again). */
static hnsw_index *oom_base(const oom_env *e) {
  mem r = {.p = e->snap, .len = e->snap_len, .fail_after = -1};
  hnsw_index *ix = hnsw_deserialize(mem_read, &r, NULL, 0);
  CHECK(ix != NULL, "base copy");
  return ix;
}

static void test_oom(void) {
  const size_t dim = 24, n = 600;
  float *data = random_vectors(2 * n, dim), *qs = random_vectors(10, dim);
  oom_env e = {data, qs, dim, NULL, 0};
  hnsw_index *base = hnsw_new(dim, LLS_METRIC_COSINE, 8, 40, 0, 3);
  CHECK(hnsw_add_batch(base, data, n, NULL, 1) == HNSW_OK, "base");
  for (uint32_t i = 0; i < 50; i++) CHECK(hnsw_delete(base, i * 3) == HNSW_OK, "base delete");
  mem m = {.fail_after = -1};
  CHECK(hnsw_serialize(base, mem_write, &m) == HNSW_OK, "base snapshot");
  check_trailer(m.p, m.len); /* this build computes it with the table code */
  e.snap = m.p;
  e.snap_len = m.len;
  hnsw_free(base);

  static const char *const names[] = {"new",    "add",    "add_batch/1", "add_batch/2",
                                      "update", "delete", "search",      "brute_force",
                                      "serialize", "deserialize"};
  for (int op = 0; op < 10; op++) {
    long points = 0;
    for (long k = 0;; k++) {
      hnsw_index *ix = op == 0 ? NULL : oom_base(&e);
      size_t before = ix ? hnsw_count(ix) : 0;
      hnsw_hit hits[10];
      int rc = HNSW_OK;
      oom_failed = 0;
      oom_left = k;
      switch (op) {
      case 0:
        ix = hnsw_new(dim, LLS_METRIC_L2, 8, 40, 1000, 1);
        rc = ix ? HNSW_OK : HNSW_ENOMEM;
        break;
      case 1: /* enough adds to reuse every free slot and then grow */
        for (size_t i = 0; i < 120 && rc == HNSW_OK; i++, before += rc == HNSW_OK)
          rc = hnsw_add(ix, data + (n + i) * dim, NULL);
        break;
      case 2:
      case 3:
        rc = hnsw_add_batch(ix, data + n * dim, n, NULL, op == 2 ? 1 : 2);
        if (rc == HNSW_OK) before += n;
        break;
      case 4:
        rc = hnsw_update(ix, 1, data + n * dim);
        break;
      case 5:
        rc = hnsw_delete(ix, 1);
        before--; /* deleted even when relinking ran out of memory */
        break;
      case 6:
        rc = hnsw_search(ix, qs, 10, 50, NULL, NULL, hits);
        break;
      case 7:
        rc = hnsw_brute_force(ix, qs, 10, NULL, NULL, hits);
        break;
      case 8: {
        mem w = {.fail_after = -1};
        rc = hnsw_serialize(ix, mem_write, &w); /* mem_write uses the real realloc */
        oom_left = -1;
        free(w.p);
        break;
      }
      case 9: {
        mem r = {.p = e.snap, .len = e.snap_len, .fail_after = -1};
        char err[100];
        hnsw_index *back = hnsw_deserialize(mem_read, &r, err, sizeof err);
        oom_left = -1;
        rc = back ? HNSW_OK : HNSW_ENOMEM;
        if (!back) CHECK(strstr(err, "out of memory"), "message '%s'", err);
        hnsw_free(back);
        break;
      }
      }
      oom_left = -1;
      if (rc < 0) CHECK(rc == HNSW_ENOMEM, "%s: error %d at k=%ld", names[op], rc, k);
      if (oom_failed) points++;
      if (ix) {
        if (op != 5 && op != 4) CHECK(hnsw_count(ix) == before, "%s: count changed on error",
                                      names[op]);
        check_consistent(ix, qs, dim);
        hnsw_free(ix);
      }
      if (!oom_failed) {
        CHECK(rc >= 0, "%s failed without an allocation failure", names[op]);
        break;
      }
    }
    printf("oom: %-12s survives allocation failure at each of its %ld allocation points\n",
           names[op], points);
  }
  free(e.snap);
  free(data);
  free(qs);
}
#endif

int main(int argc, char **argv) {
#ifdef HNSW_TEST_OOM
  (void)argc;
  (void)argv;
  test_oom();
  printf("ok: %d checks passed (allocation failures)\n", g_checks);
  return 0;
#endif
  const char *dir = argc > 1 ? argv[1] : getenv("LLMSPELL_DATA_DIR");
  if (!dir || !*dir) dir = "spec/data";
  double t0 = now();

  test_kernels();
  test_edges();
  test_metrics();

  /* DEEP1B, 1900 base and 100 query vectors (spec/data/README.md) */
  dataset s;
  size_t d2, d3;
  s.base = load_vecs(dir, "deep1b_query_2k/deep_base.fvecs", &s.n, &s.dim);
  s.query = load_vecs(dir, "deep1b_query_2k/deep_query.fvecs", &s.nq, &d2);
  s.gt = load_vecs(dir, "deep1b_query_2k/deep_groundtruth_l2.ivecs", &d3, &s.gtk);
  CHECK(s.n == 1900 && s.dim == 96 && d2 == 96 && d3 == s.nq && s.gtk >= 10, "deep1b slice");

  hnsw_index *ix;
  double single = test_real(&s, &ix);
  test_threads(&s, ix, single);
  test_filters(ix, &s);
  test_concurrent_search(ix, &s);
  hnsw_free(ix);
  test_churn(&s);
  test_snapshot(&s);

  free(s.base);
  free(s.query);
  free(s.gt);
  printf("ok: %d checks passed in %.1fs\n", g_checks, now() - t0);
  return 0;
}
