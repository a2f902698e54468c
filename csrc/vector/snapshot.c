/*
 * snapshot.c -- the snapshot format of the HNSW index (see snapshot.h):
 * hnsw_serialize, hnsw_deserialize and the CRC-32C that guards them.
 */
#include "vector/snapshot.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vector/hnsw_internal.h"

#ifdef LLS_X86
#include <immintrin.h>
#endif

/*
 * CRC-32C (Castagnoli). With SSE4.2 the crc32 instruction does 8 bytes a
 * step; otherwise slicing-by-8 with tables built per snapshot (8 KiB, a few
 * microseconds), which keeps the tables off global state.
 */
typedef struct crc {
  uint32_t v;
  int hw;
  uint32_t (*t)[256];
} crc;

#ifdef LLS_X86
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t c, const unsigned char *p,
                                                         size_t n) {
  uint64_t c64 = c;
  for (; n >= 8; n -= 8, p += 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    c64 = _mm_crc32_u64(c64, w);
  }
  c = (uint32_t)c64;
  for (; n; n--) c = _mm_crc32_u8(c, *p++);
  return c;
}
#endif

static int crc_init(crc *k) {
  k->v = 0xFFFFFFFFu;
  k->t = NULL;
  k->hw = 0;
#if defined(LLS_X86) && !defined(HNSW_NO_HW_CRC) /* tests force the table path */
  __builtin_cpu_init();
  k->hw = __builtin_cpu_supports("sse4.2");
  if (k->hw) return HNSW_OK;
#endif
  k->t = malloc(8 * sizeof *k->t);
  if (!k->t) return HNSW_ENOMEM;
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int j = 0; j < 8; j++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
    k->t[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; i++)
    for (int j = 1; j < 8; j++) k->t[j][i] = (k->t[j - 1][i] >> 8) ^ k->t[0][k->t[j - 1][i] & 255];
  return HNSW_OK;
}

static void crc_update(crc *k, const void *data, size_t n) {
  const unsigned char *p = data;
#ifdef LLS_X86
  if (k->hw) {
    k->v = crc_hw(k->v, p, n);
    return;
  }
#endif
  uint32_t c = k->v;
  uint32_t(*t)[256] = k->t;
  for (; n >= 8; n -= 8, p += 8) {
    uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                       (uint32_t)p[3] << 24);
    c = t[7][lo & 255] ^ t[6][(lo >> 8) & 255] ^ t[5][(lo >> 16) & 255] ^ t[4][lo >> 24] ^
        t[3][p[4]] ^ t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]];
  }
  for (; n; n--) c = (c >> 8) ^ t[0][(c ^ *p++) & 255];
  k->v = c;
}

static uint32_t crc_final(const crc *k) { return k->v ^ 0xFFFFFFFFu; }

static void crc_done(crc *k) { free(k->t); }

#define SNAP_MAGIC "LLSHNSW"
#define SNAP_VERSION 1u
#define SNAP_ENDIAN 0x01020304u

/* The fixed header, written field by field as u32/u64 in host order (the
 * endian marker makes a foreign-endian snapshot fail cleanly). */
typedef struct snap_head {
  char magic[8];
  uint32_t version, endian;
  uint32_t dim, metric, m, efc;
  uint32_t nslots, live, nfree, ep;
  int32_t maxlevel;
  uint32_t reserved;
  uint64_t seed, rng;
} snap_head;

typedef struct writer {
  hnsw_write_fn fn;
  void *ud;
  crc k;
  unsigned char *buf;
  size_t len, cap;
  int failed;
} writer;

static void w_flush(writer *w) {
  if (w->len && !w->failed) {
    crc_update(&w->k, w->buf, w->len);
    if (w->fn(w->ud, w->buf, w->len)) w->failed = 1;
  }
  w->len = 0;
}

static void w_put(writer *w, const void *p, size_t n) {
  const unsigned char *b = p;
  while (n && !w->failed) {
    size_t room = w->cap - w->len, take = n < room ? n : room;
    memcpy(w->buf + w->len, b, take);
    w->len += take;
    b += take;
    n -= take;
    if (w->len == w->cap) w_flush(w);
  }
}

/* n zero bytes. */
static void w_zeros(writer *w, size_t n) {
  static const uint32_t zeros[64];
  while (n) {
    size_t t = n < sizeof zeros ? n : sizeof zeros;
    w_put(w, zeros, t);
    n -= t;
  }
}

static void put_head(writer *w, const hnsw_index *ix) {
  snap_head h;
  memset(&h, 0, sizeof h);
  memcpy(h.magic, SNAP_MAGIC, 8);
  h.version = SNAP_VERSION;
  h.endian = SNAP_ENDIAN;
  h.dim = (uint32_t)ix->dim;
  h.metric = (uint32_t)ix->metric;
  h.m = (uint32_t)ix->m;
  h.efc = (uint32_t)ix->efc;
  h.nslots = (uint32_t)ix->nslots;
  h.live = (uint32_t)ix->live;
  h.nfree = (uint32_t)ix->nfree;
  h.ep = ix->ep;
  h.maxlevel = ix->maxlevel;
  h.seed = ix->seed;
  h.rng = ix->rng;
  w_put(w, &h, sizeof h);
}

/* One slot: level, flags, 2 zero bytes, then the level-0 block minus aux
 * (count, every link position, vector), then the upper lists. Unused link
 * positions hold stale ids: they are written as zeros so equal graphs give
 * equal bytes. */
static void put_slot(writer *w, const hnsw_index *ix, uint32_t s) {
  size_t links_bytes = (1 + ix->maxm0) * sizeof(uint32_t);
  unsigned char lf[4] = {ix->levels[s], ix->flags[s], 0, 0};
  w_put(w, lf, 4);
  const uint32_t *ll = links0(ix, s);
  w_put(w, ll, (1 + ll[0]) * sizeof *ll);
  w_zeros(w, links_bytes - (1 + ll[0]) * sizeof *ll);
  w_put(w, vec_of(ix, s), ix->dim * sizeof(float));
  for (int l = 1; l <= ix->levels[s]; l++) {
    const uint32_t *ul = links_at(ix, s, l);
    w_put(w, ul, (1 + ul[0]) * sizeof *ul);
    w_zeros(w, (ix->maxm - ul[0]) * sizeof *ul);
  }
}

int hnsw_serialize(const hnsw_index *ix, hnsw_write_fn write, void *ud) {
  if (!ix || !write) return HNSW_EINVAL;
  writer w = {.fn = write, .ud = ud, .cap = 1u << 16};
  if (crc_init(&w.k)) return HNSW_ENOMEM;
  w.buf = malloc(w.cap);
  if (!w.buf) {
    crc_done(&w.k);
    return HNSW_ENOMEM;
  }
  put_head(&w, ix);
  for (size_t s = 0; s < ix->nslots && !w.failed; s++) put_slot(&w, ix, (uint32_t)s);
  w_put(&w, ix->free_slots, ix->nfree * sizeof *ix->free_slots);
  w_flush(&w);
  uint32_t sum = crc_final(&w.k);
  if (!w.failed && write(ud, &sum, sizeof sum)) w.failed = 1;
  free(w.buf);
  crc_done(&w.k);
  return w.failed ? HNSW_EIO : HNSW_OK;
}

/* ---- reading ------------------------------------------------------------------ */

typedef struct reader {
  hnsw_read_fn fn;
  void *ud;
  crc k;
  char *err; /* the caller's message buffer (may be NULL) */
  size_t errlen;
} reader;

static int r_get(reader *r, void *p, size_t n) {
  if (n == 0) return 0;
  if (r->fn(r->ud, p, n)) return -1;
  crc_update(&r->k, p, n);
  return 0;
}

/* Writes "hnsw snapshot: " and the message to the caller's buffer;
 * returns -1, so a check can `return fail(...)`. */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int fail(reader *r, const char *fmt, ...) {
  if (!r->err || !r->errlen) return -1;
  int n = snprintf(r->err, r->errlen, "hnsw snapshot: ");
  if (n >= 0 && (size_t)n < r->errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err + n, r->errlen - (size_t)n, fmt, ap);
    va_end(ap);
  }
  return -1;
}

/* The header's own consistency; the body is checked against it later. */
static int check_head(reader *r, const snap_head *h) {
  if (memcmp(h->magic, SNAP_MAGIC, 8) != 0) return fail(r, "not an index snapshot (bad magic)");
  if (h->endian != SNAP_ENDIAN) return fail(r, "written on a machine of other byte order");
  if (h->version != SNAP_VERSION) return fail(r, "unsupported version %u", (unsigned)h->version);
  if (h->dim < 1 || h->dim > HNSW_MAX_DIM) return fail(r, "bad dimension %u", (unsigned)h->dim);
  if (!lls_metric_name((lls_metric)h->metric))
    return fail(r, "bad metric %u", (unsigned)h->metric);
  if (h->m < 2 || h->m > HNSW_MAX_M) return fail(r, "bad M %u", (unsigned)h->m);
  if (h->efc < h->m || h->efc > (1u << 24))
    return fail(r, "bad ef_construction %u", (unsigned)h->efc);
  if (h->nslots >= NONE || (uint64_t)h->live + h->nfree != h->nslots)
    return fail(r, "inconsistent slot counts");
  if (h->reserved != 0) return fail(r, "bad header");
  if (h->live == 0 ? (h->ep != NONE || h->maxlevel != -1)
                   : (h->ep >= h->nslots || h->maxlevel < 0 || h->maxlevel > MAX_LEVEL))
    return fail(r, "bad entry point");
  return 0;
}

/* A link list of slot s: at most max links, each to another slot below
 * nslots. */
static int check_links(reader *r, const uint32_t *ll, size_t max, uint32_t nslots, uint32_t s) {
  if (ll[0] > max) return fail(r, "bad link count at slot %u", (unsigned)s);
  for (uint32_t j = 0; j < ll[0]; j++)
    if (ll[1 + j] >= nslots || ll[1 + j] == s) return fail(r, "bad link at slot %u", (unsigned)s);
  return 0;
}

/* Reads slot s (written by put_slot) into storage grown as the data
 * arrives, so a lying count cannot force a huge allocation before the
 * stream runs dry. Counts a deleted slot in *ndeleted. */
static int read_slot(reader *r, hnsw_index *ix, uint32_t nslots, uint32_t s, size_t *ndeleted) {
  if (hnsw_grow_slots(ix, (size_t)s + 1)) return fail(r, "out of memory");
  unsigned char lf[4];
  if (r_get(r, lf, 4)) return fail(r, "truncated at slot %u", (unsigned)s);
  if (lf[0] > MAX_LEVEL || (lf[1] & ~F_DELETED) || lf[2] || lf[3])
    return fail(r, "bad slot header at slot %u", (unsigned)s);
  ix->levels[s] = lf[0];
  ix->flags[s] = lf[1];
  *ndeleted += lf[1] & F_DELETED;
  uint32_t *ll = links0(ix, s);
  float *v = vec_of(ix, s);
  size_t links_bytes = (1 + ix->maxm0) * sizeof(uint32_t);
  if (r_get(r, ll, links_bytes) || r_get(r, v, ix->dim * sizeof(float)))
    return fail(r, "truncated at slot %u", (unsigned)s);
  if (check_links(r, ll, ix->maxm0, nslots, s)) return -1;
  v[-1] = ix->metric == LLS_METRIC_COSINE ? inv_norm(ix->kern, v, ix->dim) : 0.0f;
  size_t up = (size_t)lf[0] * ix->upper_stride;
  if (up > UINT32_MAX - ix->upper_len) return fail(r, "too many upper-level links");
  if (hnsw_reserve_upper(ix, up)) return fail(r, "out of memory");
  ix->upper_off[s] = (uint32_t)ix->upper_len;
  /* (only when there is something: the arena may not exist yet) */
  if (up && r_get(r, ix->upper + ix->upper_len, up * sizeof(uint32_t)))
    return fail(r, "truncated at slot %u", (unsigned)s);
  ix->upper_len += up;
  ix->nslots = (size_t)s + 1;
  for (int l = 1; l <= lf[0]; l++)
    if (check_links(r, links_at(ix, s, l), ix->maxm, nslots, s)) return -1;
  return 0;
}

/* Every slot, then the checks that need all of them. */
static int read_slots(reader *r, hnsw_index *ix, const snap_head *h) {
  size_t ndeleted = 0;
  for (uint32_t s = 0; s < h->nslots; s++)
    if (read_slot(r, ix, h->nslots, s, &ndeleted)) return -1;
  if (ndeleted != h->nfree) return fail(r, "deleted slots do not match the free list");
  /* an upper-level link must land on a node that has that level */
  for (uint32_t s = 0; s < h->nslots; s++)
    for (int l = 1; l <= ix->levels[s]; l++) {
      const uint32_t *ul = links_at(ix, s, l);
      for (uint32_t j = 0; j < ul[0]; j++)
        if (ix->levels[ul[1 + j]] < l)
          return fail(r, "link above a node's level at slot %u", (unsigned)s);
    }
  return 0;
}

/* The free list: each deleted slot exactly once. */
static int read_free_list(reader *r, hnsw_index *ix, const snap_head *h) {
  if (!h->nfree) return 0;
  if (r_get(r, ix->free_slots, h->nfree * sizeof(uint32_t)))
    return fail(r, "truncated free list");
  unsigned char *seen = calloc(h->nslots, 1);
  if (!seen) return fail(r, "out of memory");
  int rc = 0;
  for (uint32_t i = 0; i < h->nfree && !rc; i++) {
    uint32_t s = ix->free_slots[i];
    if (s >= h->nslots || !(ix->flags[s] & F_DELETED) || seen[s])
      rc = fail(r, "bad free list");
    else
      seen[s] = 1;
  }
  free(seen);
  return rc;
}

/* The entry point against the slots, then the checksum of all of it. */
static int check_tail(reader *r, const hnsw_index *ix, const snap_head *h) {
  if (h->live && ((ix->flags[h->ep] & F_DELETED) || ix->levels[h->ep] != h->maxlevel))
    return fail(r, "bad entry point");
  uint32_t want = crc_final(&r->k), got;
  if (r->fn(r->ud, &got, sizeof got)) return fail(r, "truncated checksum");
  if (want != got) return fail(r, "checksum mismatch (corrupt snapshot)");
  return 0;
}

static hnsw_index *read_index(reader *r) {
  snap_head h;
  if (r_get(r, &h, sizeof h)) {
    fail(r, "truncated header");
    return NULL;
  }
  if (check_head(r, &h)) return NULL;
  hnsw_index *ix = hnsw_new(h.dim, (lls_metric)h.metric, h.m, h.efc, 0, h.seed);
  if (!ix) {
    fail(r, "out of memory");
    return NULL;
  }
  ix->rng = h.rng;
  if (read_slots(r, ix, &h) || read_free_list(r, ix, &h) || check_tail(r, ix, &h)) {
    hnsw_free(ix);
    return NULL;
  }
  ix->live = h.live;
  ix->nfree = h.nfree;
  ix->ep = h.ep;
  ix->maxlevel = h.maxlevel;
  return ix;
}

hnsw_index *hnsw_deserialize(hnsw_read_fn read, void *ud, char *err, size_t errlen) {
  reader r = {.fn = read, .ud = ud, .err = err, .errlen = errlen};
  if (err && errlen) err[0] = 0;
  if (!read) {
    fail(&r, "no reader");
    return NULL;
  }
  if (crc_init(&r.k)) {
    fail(&r, "out of memory");
    return NULL;
  }
  hnsw_index *ix = read_index(&r);
  crc_done(&r.k);
  return ix;
}
