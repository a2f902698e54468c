/*
 * fuzz_snapshot.c -- the HNSW snapshot loader (csrc/vector/snapshot.c).
 *
 * Input: a snapshot as hnsw_serialize writes it. The target first rewrites
 * the trailing CRC-32C to match the bytes before it: the checksum guards
 * against accidents, not against an attacker, so the fields after it must
 * hold up on their own, and without the rewrite nearly every mutation
 * would stop at the checksum. (Inputs with bytes past the checksum still
 * fail it, which keeps that path covered.) A snapshot that loads is then
 * used: every slot read, searched (graph and brute force), written
 * again, changed (add, update, delete) and written and read once more.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "vector/hnsw.h"

#define K 8

/* CRC-32C, bitwise: the inputs are small, and an independent
 * implementation also checks the library's two. */
static uint32_t crc32c(const uint8_t *p, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int j = 0; j < 8; j++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
  }
  return c ^ 0xFFFFFFFFu;
}

typedef struct src {
  const uint8_t *p;
  size_t left;
} src;

static int read_src(void *ud, void *out, size_t n) {
  src *s = ud;
  if (n > s->left) return -1;
  memcpy(out, s->p, n);
  s->p += n;
  s->left -= n;
  return 0;
}

typedef struct sink {
  uint8_t *p;
  size_t len, cap;
} sink;

static int write_sink(void *ud, const void *p, size_t n) {
  sink *s = ud;
  if (s->len + n > s->cap) {
    size_t cap = s->cap ? s->cap : 4096;
    while (cap < s->len + n) cap *= 2;
    uint8_t *q = realloc(s->p, cap);
    if (!q) return -1;
    s->p = q;
    s->cap = cap;
  }
  memcpy(s->p + s->len, p, n);
  s->len += n;
  return 0;
}

static hnsw_index *load(const uint8_t *p, size_t n) {
  src s = {p, n};
  char err[160];
  hnsw_index *ix = hnsw_deserialize(read_src, &s, err, sizeof err);
  if (!ix) FUZZ_CHECK(strncmp(err, "hnsw snapshot: ", 15) == 0, "a load failed without a reason");
  return ix;
}

/* The index written out; aborts when it cannot be (the only failure
 * would be memory, which libFuzzer's limits keep far away). */
static sink save(const hnsw_index *ix) {
  sink s = {0};
  FUZZ_CHECK(hnsw_serialize(ix, write_sink, &s) == HNSW_OK, "a loaded index does not save");
  return s;
}

/* Hits must be live, distinct, and as many as asked when the search is
 * exhaustive. */
static void check_hits(const hnsw_index *ix, const hnsw_hit *hits, int n, size_t want) {
  FUZZ_CHECK(n >= 0 && (size_t)n <= want, "a search returned too many hits");
  for (int i = 0; i < n; i++) {
    FUZZ_CHECK(hnsw_is_live(ix, hits[i].slot), "a search returned a dead slot");
    for (int j = 0; j < i; j++) FUZZ_CHECK(hits[i].slot != hits[j].slot, "a slot came twice");
  }
}

/* Searches with the vector of the first live slot (zeros when none). */
static void search(const hnsw_index *ix, float *q) {
  size_t dim = hnsw_dim(ix), live = hnsw_count(ix);
  uint32_t limit = hnsw_slot_limit(ix);
  int found = 0;
  memset(q, 0, dim * sizeof *q);
  for (uint32_t s = 0; s < limit; s++) {
    const float *v = hnsw_vector(ix, s);
    FUZZ_CHECK(!v == !hnsw_is_live(ix, s), "hnsw_vector disagrees with hnsw_is_live");
    if (v && !found++) memcpy(q, v, dim * sizeof *q);
    (void)hnsw_distance(ix, q, s);
  }
  hnsw_hit hits[K];
  size_t want = live < K ? live : K;
  check_hits(ix, hits, hnsw_search(ix, q, K, 16, NULL, NULL, hits), want);
  int n = hnsw_brute_force(ix, q, K, NULL, NULL, hits);
  check_hits(ix, hits, n, want);
  FUZZ_CHECK((size_t)n == want, "brute force missed live vectors");
}

/* Saving, loading and saving again gives the same bytes. */
static void round_trip(const hnsw_index *ix) {
  sink a = save(ix);
  hnsw_index *back = load(a.p, a.len);
  FUZZ_CHECK(back != NULL, "a saved index does not load");
  sink b = save(back);
  FUZZ_CHECK(a.len == b.len && memcmp(a.p, b.p, a.len) == 0, "save/load/save changed bytes");
  FUZZ_CHECK(hnsw_count(back) == hnsw_count(ix), "the live count changed in a round trip");
  hnsw_free(back);
  free(a.p);
  free(b.p);
}

/* Writers on a loaded index: add, update and delete, then use it again. */
static void change(hnsw_index *ix, float *q) {
  size_t dim = hnsw_dim(ix);
  for (size_t i = 0; i < dim; i++) q[i] = (float)(i % 7) - 3.0f;
  uint32_t slot;
  int rc = hnsw_add(ix, q, &slot);
  FUZZ_CHECK(rc == HNSW_OK || rc == HNSW_ENOMEM, "add failed");
  uint32_t limit = hnsw_slot_limit(ix);
  for (uint32_t s = 0; s < limit; s++)
    if (hnsw_is_live(ix, s) && s != slot) {
      FUZZ_CHECK(hnsw_update(ix, s, q) != HNSW_ENOENT, "update missed a live slot");
      FUZZ_CHECK(hnsw_delete(ix, s) == HNSW_OK, "delete missed a live slot");
      break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t *copy = malloc(size ? size : 1);
  if (!copy) return 0;
  memcpy(copy, data, size);
  if (size >= 4) {
    uint32_t sum = crc32c(copy, size - 4);
    memcpy(copy + size - 4, &sum, 4);
  }
  hnsw_index *ix = load(copy, size);
  free(copy);
  if (!ix) return 0;
  float *q = malloc(hnsw_dim(ix) * sizeof *q);
  FUZZ_CHECK(q != NULL, "out of memory");
  search(ix, q);
  round_trip(ix);
  change(ix, q);
  search(ix, q);
  round_trip(ix);
  free(q);
  hnsw_free(ix);
  return 0;
}
