/*
 * distance.c -- distance kernels (see distance.h).
 *
 * The SIMD kernels use per-function target attributes rather than -m
 * flags, so the rest of the library stays baseline x86-64 and a CPU
 * without AVX never executes an AVX instruction: the table is picked with
 * __builtin_cpu_supports before any kernel runs.
 *
 * Tails are handled with masked loads (which do not fault on masked-off
 * lanes) rather than a scalar loop, because common embedding sizes such as
 * 100 or 1000 floats are not multiples of 16 and a scalar tail would cost
 * as much as the vector body for short vectors.
 */
#include "vector/distance.h"

#include <math.h>
#include <string.h>
#include <stdint.h>

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define LLS_X86 1
#include <immintrin.h>
#endif

/* ---- portable kernels ------------------------------------------------ */

/* Eight independent partial sums: they break the dependency chain of one
 * running sum, and gcc can map them onto SSE registers at -O2. */
static float l2sq_scalar(const float *a, const float *b, size_t n) {
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; j++) {
      float d = a[i + j] - b[i + j];
      s[j] += d * d;
    }
  float t = 0;
  for (; i < n; i++) {
    float d = a[i] - b[i];
    t += d * d;
  }
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])) + t;
}

static float dot_scalar(const float *a, const float *b, size_t n) {
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; j++) s[j] += a[i + j] * b[i + j];
  float t = 0;
  for (; i < n; i++) t += a[i] * b[i];
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])) + t;
}

static float l1_scalar(const float *a, const float *b, size_t n) {
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; j++) s[j] += fabsf(a[i + j] - b[i + j]);
  float t = 0;
  for (; i < n; i++) t += fabsf(a[i] - b[i]);
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])) + t;
}

/* Four-at-once from the single kernel: without SIMD there is no shared
 * query load to save. */
#define LLS_DIST4_FROM1(name, one)                                                           \
  static void name(const float *q, const float *const v[4], size_t n, float out[4]) {        \
    for (int j = 0; j < 4; j++) out[j] = one(q, v[j], n);                                    \
  }

LLS_DIST4_FROM1(l2sq4_scalar, l2sq_scalar)
LLS_DIST4_FROM1(dot4_scalar, dot_scalar)
LLS_DIST4_FROM1(l1_4_scalar, l1_scalar)

static const lls_kernels k_scalar = {"scalar",     l2sq_scalar,  dot_scalar, l1_scalar,
                                     l2sq4_scalar, dot4_scalar, l1_4_scalar};

#ifdef LLS_X86

/* ---- AVX2 + FMA ------------------------------------------------------- */

/* maskload wants a lane mask; a window into this table gives the first r
 * lanes set for any r in 0..8. */
static const int32_t k_mask8[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

__attribute__((target("avx2,fma"))) static inline float hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

__attribute__((target("avx2,fma"))) static inline __m256i tailmask8(size_t r) {
  return _mm256_loadu_si256((const __m256i *)(const void *)(k_mask8 + 8 - r));
}

__attribute__((target("avx2,fma"))) static float l2sq_avx2(const float *a, const float *b,
                                                           size_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
    __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
    __m256 d2 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16));
    __m256 d3 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24));
    s0 = _mm256_fmadd_ps(d0, d0, s0);
    s1 = _mm256_fmadd_ps(d1, d1, s1);
    s2 = _mm256_fmadd_ps(d2, d2, s2);
    s3 = _mm256_fmadd_ps(d3, d3, s3);
  }
  for (; i + 8 <= n; i += 8) {
    __m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
    s0 = _mm256_fmadd_ps(d, d, s0);
  }
  if (i < n) {
    __m256i m = tailmask8(n - i);
    __m256 d = _mm256_sub_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m));
    s1 = _mm256_fmadd_ps(d, d, s1);
  }
  return hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

__attribute__((target("avx2,fma"))) static float dot_avx2(const float *a, const float *b,
                                                          size_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
    s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
  }
  for (; i + 8 <= n; i += 8)
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
  if (i < n) {
    __m256i m = tailmask8(n - i);
    s1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m), s1);
  }
  return hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

__attribute__((target("avx2,fma"))) static float l1_avx2(const float *a, const float *b,
                                                         size_t n) {
  /* |x| is x with the sign bit cleared */
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
    __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
    s0 = _mm256_add_ps(s0, _mm256_andnot_ps(sign, d0));
    s1 = _mm256_add_ps(s1, _mm256_andnot_ps(sign, d1));
  }
  for (; i + 8 <= n; i += 8) {
    __m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
    s0 = _mm256_add_ps(s0, _mm256_andnot_ps(sign, d));
  }
  if (i < n) {
    __m256i m = tailmask8(n - i);
    __m256 d = _mm256_sub_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m));
    s1 = _mm256_add_ps(s1, _mm256_andnot_ps(sign, d));
  }
  return hsum256(_mm256_add_ps(s0, s1));
}

/* Four vectors per call: one query load feeds four independent sums. */
#define LLS_AVX2_4(name, STEP)                                                               \
  __attribute__((target("avx2,fma"))) static void name(const float *q, const float *const v[4], \
                                                       size_t n, float out[4]) {             \
    const float *v0 = v[0], *v1 = v[1], *v2 = v[2], *v3 = v[3];                              \
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();                              \
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();                              \
    size_t i = 0;                                                                            \
    for (; i + 8 <= n; i += 8) {                                                             \
      __m256 x = _mm256_loadu_ps(q + i);                                                     \
      STEP(s0, x, _mm256_loadu_ps(v0 + i));                                                  \
      STEP(s1, x, _mm256_loadu_ps(v1 + i));                                                  \
      STEP(s2, x, _mm256_loadu_ps(v2 + i));                                                  \
      STEP(s3, x, _mm256_loadu_ps(v3 + i));                                                  \
    }                                                                                        \
    if (i < n) {                                                                             \
      __m256i m = tailmask8(n - i);                                                          \
      __m256 x = _mm256_maskload_ps(q + i, m);                                               \
      STEP(s0, x, _mm256_maskload_ps(v0 + i, m));                                            \
      STEP(s1, x, _mm256_maskload_ps(v1 + i, m));                                            \
      STEP(s2, x, _mm256_maskload_ps(v2 + i, m));                                            \
      STEP(s3, x, _mm256_maskload_ps(v3 + i, m));                                            \
    }                                                                                        \
    out[0] = hsum256(s0);                                                                    \
    out[1] = hsum256(s1);                                                                    \
    out[2] = hsum256(s2);                                                                    \
    out[3] = hsum256(s3);                                                                    \
  }

#define STEP8_L2(s, x, y)                                                                    \
  do {                                                                                       \
    __m256 d_ = _mm256_sub_ps(x, y);                                                         \
    s = _mm256_fmadd_ps(d_, d_, s);                                                          \
  } while (0)
#define STEP8_DOT(s, x, y) s = _mm256_fmadd_ps(x, y, s)
#define STEP8_L1(s, x, y)                                                                    \
  s = _mm256_add_ps(s, _mm256_andnot_ps(_mm256_set1_ps(-0.0f), _mm256_sub_ps(x, y)))

LLS_AVX2_4(l2sq4_avx2, STEP8_L2)
LLS_AVX2_4(dot4_avx2, STEP8_DOT)
LLS_AVX2_4(l1_4_avx2, STEP8_L1)

static const lls_kernels k_avx2 = {"avx2",     l2sq_avx2, dot_avx2, l1_avx2,
                                   l2sq4_avx2, dot4_avx2, l1_4_avx2};

/* ---- AVX-512F --------------------------------------------------------- */

__attribute__((target("avx512f"))) static float l2sq_avx512(const float *a, const float *b,
                                                            size_t n) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
    __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
    s0 = _mm512_fmadd_ps(d0, d0, s0);
    s1 = _mm512_fmadd_ps(d1, d1, s1);
  }
  if (i + 16 <= n) {
    __m512 d = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
    s0 = _mm512_fmadd_ps(d, d, s0);
    i += 16;
  }
  if (i < n) {
    __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
    __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));
    s1 = _mm512_fmadd_ps(d, d, s1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

__attribute__((target("avx512f"))) static float dot_avx512(const float *a, const float *b,
                                                           size_t n) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
  }
  if (i + 16 <= n) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    i += 16;
  }
  if (i < n) {
    __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
    s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

__attribute__((target("avx512f"))) static float l1_avx512(const float *a, const float *b,
                                                          size_t n) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
    __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
    s0 = _mm512_add_ps(s0, _mm512_abs_ps(d0));
    s1 = _mm512_add_ps(s1, _mm512_abs_ps(d1));
  }
  if (i + 16 <= n) {
    __m512 d = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
    s0 = _mm512_add_ps(s0, _mm512_abs_ps(d));
    i += 16;
  }
  if (i < n) {
    __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
    __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));
    s1 = _mm512_add_ps(s1, _mm512_abs_ps(d));
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

/* Four vectors per call: one query load feeds four subtract+FMA chains. */
#define LLS_AVX512_4(name, STEP)                                                             \
  __attribute__((target("avx512f"))) static void name(const float *q, const float *const v[4], \
                                                      size_t n, float out[4]) {              \
    const float *v0 = v[0], *v1 = v[1], *v2 = v[2], *v3 = v[3];                              \
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();                              \
    __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();                              \
    size_t i = 0;                                                                            \
    for (; i + 16 <= n; i += 16) {                                                           \
      __m512 x = _mm512_loadu_ps(q + i);                                                     \
      STEP(s0, x, _mm512_loadu_ps(v0 + i));                                                  \
      STEP(s1, x, _mm512_loadu_ps(v1 + i));                                                  \
      STEP(s2, x, _mm512_loadu_ps(v2 + i));                                                  \
      STEP(s3, x, _mm512_loadu_ps(v3 + i));                                                  \
    }                                                                                        \
    if (i < n) {                                                                             \
      __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);                                       \
      __m512 x = _mm512_maskz_loadu_ps(m, q + i);                                            \
      STEP(s0, x, _mm512_maskz_loadu_ps(m, v0 + i));                                         \
      STEP(s1, x, _mm512_maskz_loadu_ps(m, v1 + i));                                         \
      STEP(s2, x, _mm512_maskz_loadu_ps(m, v2 + i));                                         \
      STEP(s3, x, _mm512_maskz_loadu_ps(m, v3 + i));                                         \
    }                                                                                        \
    out[0] = _mm512_reduce_add_ps(s0);                                                       \
    out[1] = _mm512_reduce_add_ps(s1);                                                       \
    out[2] = _mm512_reduce_add_ps(s2);                                                       \
    out[3] = _mm512_reduce_add_ps(s3);                                                       \
  }

#define STEP_L2(s, x, y)                                                                     \
  do {                                                                                       \
    __m512 d_ = _mm512_sub_ps(x, y);                                                         \
    s = _mm512_fmadd_ps(d_, d_, s);                                                          \
  } while (0)
#define STEP_DOT(s, x, y) s = _mm512_fmadd_ps(x, y, s)
#define STEP_L1(s, x, y) s = _mm512_add_ps(s, _mm512_abs_ps(_mm512_sub_ps(x, y)))

LLS_AVX512_4(l2sq4_avx512, STEP_L2)
LLS_AVX512_4(dot4_avx512, STEP_DOT)
LLS_AVX512_4(l1_4_avx512, STEP_L1)

static const lls_kernels k_avx512 = {"avx512",     l2sq_avx512, dot_avx512, l1_avx512,
                                     l2sq4_avx512, dot4_avx512, l1_4_avx512};

/* __builtin_cpu_supports also checks that the OS saves the wider register
 * state (XCR0), so a "yes" means the instructions are usable. */
static int have_avx2(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

static int have_avx512(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f");
}

#endif /* LLS_X86 */

const lls_kernels *lls_kernels_for(lls_isa isa) {
  switch (isa) {
  case LLS_ISA_SCALAR:
    return &k_scalar;
#ifdef LLS_X86
  case LLS_ISA_AVX2:
    return have_avx2() ? &k_avx2 : NULL;
  case LLS_ISA_AVX512:
    return have_avx512() ? &k_avx512 : NULL;
#endif
  default:
    return NULL;
  }
}

const lls_kernels *lls_kernels_best(void) {
  const lls_kernels *k = lls_kernels_for(LLS_ISA_AVX512);
  if (!k) k = lls_kernels_for(LLS_ISA_AVX2);
  return k ? k : &k_scalar;
}

float lls_distance(const lls_kernels *k, lls_metric m, const float *a, const float *b,
                   size_t n) {
  switch (m) {
  case LLS_METRIC_L2: {
    float d = k->l2sq(a, b, n);
    return d > 0 ? sqrtf(d) : 0.0f;
  }
  case LLS_METRIC_IP:
    return -k->dot(a, b, n);
  case LLS_METRIC_L1:
    return k->l1(a, b, n);
  case LLS_METRIC_COSINE: {
    float na = k->dot(a, a, n), nb = k->dot(b, b, n);
    if (!(na > 0) || !(nb > 0)) return 1.0f;
    float c = k->dot(a, b, n) / (sqrtf(na) * sqrtf(nb));
    float d = 1.0f - c;
    return d < 0 ? 0.0f : d > 2 ? 2.0f : d;
  }
  }
  return NAN;
}

const char *lls_metric_name(lls_metric m) {
  switch (m) {
  case LLS_METRIC_COSINE:
    return "cosine";
  case LLS_METRIC_L2:
    return "l2";
  case LLS_METRIC_IP:
    return "ip";
  case LLS_METRIC_L1:
    return "l1";
  }
  return NULL;
}

/* The names rs-llmspell's DistanceMetric gives the metrics (Euclidean,
 * InnerProduct, Manhattan), lowercased, so code and export files written
 * against it parse; lls_metric_name still answers the canonical name, which
 * is what is stored and exported. */
static const struct {
  const char *alias;
  lls_metric metric;
} METRIC_ALIASES[] = {
    {"euclidean", LLS_METRIC_L2},
    {"inner_product", LLS_METRIC_IP},
    {"innerproduct", LLS_METRIC_IP},
    {"manhattan", LLS_METRIC_L1},
};

int lls_metric_parse(const char *s, size_t len) {
  for (int m = LLS_METRIC_COSINE; m <= LLS_METRIC_L1; m++) {
    const char *name = lls_metric_name((lls_metric)m);
    if (strlen(name) == len && memcmp(name, s, len) == 0) return m;
  }
  for (size_t i = 0; i < sizeof METRIC_ALIASES / sizeof METRIC_ALIASES[0]; i++) {
    const char *name = METRIC_ALIASES[i].alias;
    if (strlen(name) == len && memcmp(name, s, len) == 0) return (int)METRIC_ALIASES[i].metric;
  }
  return -1;
}
