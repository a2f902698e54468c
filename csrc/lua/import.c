/*
 * import.c -- storage.importer(db): reads a document in the "Export
 * format" (export.c writes it; rs-llmspell's files are read too) into a
 * store, all or nothing.
 *
 * Streaming: yajl's event parser is fed 64 KiB at a time; a state machine
 * follows the document's outer structure and hands each record (one
 * kv_store entry, one vector, one passthrough-section item) to a value
 * builder (value.h), so only one record is ever assembled. Records are
 * checked, then buffered into batches (batch_size records, or 32 MiB)
 * that go to the backend through its export/import slots. An embedding
 * given as a JSON array is read straight into floats (strtof on the
 * number's text: no double rounding, no value tree for 768 numbers).
 *
 * data.vector_collections (export.c's addition) declares collections, so
 * empty ones are created too; without it a collection comes from its
 * records' fields, or is "vectors_<dimension>" with the default parameters.
 *
 * All or nothing: the whole import runs inside one transaction (a
 * savepoint inside db:transaction). Any failure -- malformed or truncated
 * JSON, a bad version (even one found at the end), a record that does
 * not check, a backend error, a progress function that raises -- rolls
 * it back, so the target holds exactly what it held before. dry_run
 * parses and checks everything and writes nothing.
 *
 * Lua errors: yajl callbacks never call Lua (they record an error and
 * return 0, which stops the parse); the progress function is called
 * between chunks. Every C resource of a run lives in a userdata whose
 * __gc frees it, and the run happens under lua_pcall, so whatever raises,
 * the transaction is rolled back and nothing leaks.
 */
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <yajl/yajl_parse.h>

#include "base/clock.h"
#include "lua/args.h"
#include "lua/error.h"
#include "lua/import.h"
#include "lua/store.h"
#include "value/json.h"
#include "base/utf8.h"
#include "base/hashidx.h"
#include "lua/xport.h"

#define LLS_IMPORTER_MT "llmspell.storage.Importer"
#define LLS_IMPORT_JOB_MT "llmspell.storage.ImportJob"
#define CHUNK (64 * 1024)
#define BATCH_BYTES ((size_t)32 << 20) /* a batch is written early once this big */
#define DEFAULT_BATCH 1000
#define MAX_BATCH 100000
#define PROGRESS_EVERY 1000
#define MAX_DIM 4096

typedef enum evt {
  E_NULL, E_BOOL, E_NUMBER, E_STRING, E_START_MAP, E_KEY, E_END_MAP, E_START_ARRAY,
  E_END_ARRAY
} evt;

/* Where the parser is in the document's outer structure. */
typedef enum pstate {
  P_START, /* before the document */
  P_TOP,   /* in the top object */
  P_DATA,  /* in "data" */
  P_KV,    /* in data.kv_store */
  P_COLLS, /* in data.vector_collections */
  P_VMAP,  /* in data.vector_embeddings */
  P_VEC,   /* in one dimension's array */
  P_SEC,   /* in a passthrough section's array */
  P_END    /* after the document */
} pstate;

/* What the value after the last key is. */
typedef enum expect { X_NONE, X_VERSION, X_DATA, X_SKIP, X_KV, X_COLLS, X_VMAP, X_SEC } expect;

typedef enum rkind { R_KV, R_COLL, R_VEC, R_SEC } rkind;

/* The embedding of the vector record being assembled. */
typedef enum emb { EMB_NONE, EMB_NEXT, EMB_CAPTURE } emb;

/* A KV record in the batch: offsets into the arena (it moves as it grows). */
typedef struct kvslot {
  size_t koff, klen, voff, vlen, moff, mlen, ioff, ilen;
  int64_t created_at, updated_at, expires_at;
} kvslot;

typedef struct vslot {
  size_t ioff, ilen, soff, slen, moff, mlen, voff;
  int64_t created_at, updated_at, event_time, expires_at;
  int has_event_time;
} vslot;

typedef struct secslot {
  size_t noff, nlen, joff, jlen;
  int64_t ord;
} secslot;

/* A collection the file's vectors go to. */
typedef struct ccache {
  lls_coll_info info;
  int exists; /* 0 only in a dry run: it would be created */
} ccache;

typedef struct ijob {
  /* input */
  FILE *f;
  const char *text; /* from_string: the Lua string (kept alive on the stack) */
  size_t text_len, text_pos;
  unsigned char *chunk;
  uint64_t offset;      /* bytes handed to the parser before the current chunk */
  int64_t bytes_total;  /* -1: unknown (a pipe) */
  yajl_handle y;
  lls_vbuild *vb;
  locale_t cloc;
  /* settings */
  lls_handle *h;
  lls_conflict on_conflict;
  int dry_run;
  size_t batch_size;
  int64_t now;
  /* the outer structure */
  pstate ps;
  expect ex;
  int skipping, skip_depth;
  int version_seen;
  const char *phase;
  char dimkey[16];
  int dim;
  lls_buf secname; /* the current passthrough section */
  int sec_single, sec_skip;
  int64_t idx;     /* index of the next record in its container */
  /* the record being assembled */
  int in_rec;
  rkind rk;
  emb em;
  int have_floats;
  lls_buf floats;
  lls_buf tmp;     /* scratch: decoded vector bytes, labels */
  /* batches */
  kvslot *kv;
  lls_kv_rec *kvrecs;
  size_t nkv, kvcap;
  lls_buf kvarena;
  lls_hidx kvseen;
  vslot *vs;
  lls_vec_row *vrows;
  lls_str *vids;
  unsigned char *vpresent;
  size_t nvec, vcap;
  lls_buf varena;
  lls_hidx vseen;
  size_t vcoll;    /* cache index of the batch's collection */
  secslot *ss;
  lls_str *snames, *sjson;
  int64_t *sords;
  size_t nsec, scap;
  lls_buf sarena;
  /* collections */
  ccache *colls;
  size_t ncolls, ccap;
  lls_hidx cidx;
  /* outcome */
  lls_xstats st;
  int64_t done, reported;
  const char *reported_phase;
  int failed, err_backend;
  lls_error err;
} ijob;

/* --------------------------------------------------------------- errors */

/* Records a failure for after the parse (callbacks must not raise). */
static int failf(ijob *j, lls_code code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static int failf(ijob *j, lls_code code, const char *fmt, ...) {
  if (j->failed) return 0;
  va_list ap;
  va_start(ap, fmt);
  j->err.code = code;
  j->err.sqlstate[0] = '\0';
  j->err.sqlite_code = 0;
  vsnprintf(j->err.message, sizeof j->err.message, fmt, ap);
  va_end(ap);
  j->failed = 1;
  return 0;
}

/* A backend failure, kept as the backend reported it. */
static int fail_backend(ijob *j, const lls_error *err) {
  if (!j->failed) {
    j->err = *err;
    j->failed = 1;
    j->err_backend = 1;
  }
  return 0;
}

static int oom(ijob *j) { return failf(j, LLS_EIO, "out of memory"); }

/* The current record's name for messages: "kv_store[3]",
 * "vector_embeddings.768[12]", "sessions[0]", "knowledge_graph". */
static const char *label(ijob *j, char *buf, size_t cap) {
  switch (j->rk) {
  case R_KV: snprintf(buf, cap, "kv_store[%lld]", (long long)j->idx); break;
  case R_COLL: snprintf(buf, cap, "vector_collections[%lld]", (long long)j->idx); break;
  case R_VEC:
    snprintf(buf, cap, "vector_embeddings.%s[%lld]", j->dimkey, (long long)j->idx);
    break;
  case R_SEC:
    if (j->sec_single)
      snprintf(buf, cap, "%.*s", (int)(j->secname.len > 100 ? 100 : j->secname.len),
               j->secname.data);
    else
      snprintf(buf, cap, "%.*s[%lld]", (int)(j->secname.len > 100 ? 100 : j->secname.len),
               j->secname.data, (long long)j->idx);
    break;
  }
  return buf;
}

/* ------------------------------------------------------------- batches */

static int kv_key_eq(void *ud, uintptr_t val, const char *key, size_t klen) {
  const ijob *j = ud;
  const kvslot *s = &j->kv[val - 1];
  return s->klen == klen && memcmp(j->kvarena.data + s->koff, key, klen) == 0;
}

static int vec_id_eq(void *ud, uintptr_t val, const char *key, size_t klen) {
  const ijob *j = ud;
  const vslot *s = &j->vs[val - 1];
  return s->ilen == klen && memcmp(j->varena.data + s->ioff, key, klen) == 0;
}

static int coll_name_eq(void *ud, uintptr_t val, const char *key, size_t klen) {
  const ijob *j = ud;
  const char *name = j->colls[val - 1].info.name;
  return strlen(name) == klen && memcmp(name, key, klen) == 0;
}

static void hidx_clear(lls_hidx *x) {
  if (x->slots != NULL) memset(x->slots, 0, x->nslots * sizeof *x->slots);
  x->count = 0;
}

/* Grows an array of `size`-byte items to hold one more. */
static int grow(void **p, size_t *cap, size_t n, size_t size) {
  if (n < *cap) return 0;
  size_t c = *cap ? *cap * 2 : 64;
  void *q = realloc(*p, c * size);
  if (q == NULL) return -1;
  *p = q;
  *cap = c;
  return 0;
}

static int flush_kv(ijob *j) {
  size_t n = j->nkv;
  if (n == 0) return 1;
  if (j->dry_run) {
    j->st.kv_entries += (int64_t)n;
  } else {
    for (size_t i = 0; i < n; i++) {
      const kvslot *s = &j->kv[i];
      const char *a = j->kvarena.data;
      lls_kv_rec *r = &j->kvrecs[i];
      r->key = (lls_str){a + s->koff, s->klen};
      r->value = (lls_str){a + s->voff, s->vlen};
      r->metadata = (lls_str){a + s->moff, s->mlen};
      r->kv_id = (lls_str){a + s->ioff, s->ilen};
      r->created_at = s->created_at;
      r->updated_at = s->updated_at;
      r->expires_at = s->expires_at;
    }
    size_t written = 0;
    lls_error err;
    if (j->h->vt->xport->kv_load(j->h->b, j->kvrecs, n, j->on_conflict, j->now, &written, &err) != 0)
      return fail_backend(j, &err);
    j->st.kv_entries += (int64_t)written;
    j->st.skipped += (int64_t)(n - written);
  }
  j->nkv = 0;
  j->kvarena.len = 0;
  hidx_clear(&j->kvseen);
  return 1;
}

static int flush_vec(ijob *j) {
  size_t n = j->nvec;
  if (n == 0) return 1;
  if (j->dry_run) {
    j->st.vectors += (int64_t)n;
  } else {
    const lls_backend_vt *vt = j->h->vt;
    const char *a = j->varena.data;
    for (size_t i = 0; i < n; i++) {
      const vslot *s = &j->vs[i];
      lls_vec_row *r = &j->vrows[i];
      memset(r, 0, sizeof *r);
      r->id = (lls_str){a + s->ioff, s->ilen};
      r->scope = (lls_str){a + s->soff, s->slen};
      r->vector = (lls_str){a + s->voff, (size_t)j->colls[j->vcoll].info.dimension * 4};
      r->metadata = (lls_str){a + s->moff, s->mlen};
      r->created_at = s->created_at;
      r->updated_at = s->updated_at;
      r->event_time = s->event_time;
      r->has_event_time = s->has_event_time;
      r->expires_at = s->expires_at;
      j->vids[i] = r->id;
    }
    int64_t coll_id = j->colls[j->vcoll].info.id;
    lls_error err;
    size_t keep = n;
    if (j->on_conflict == LLS_CONFLICT_SKIP) {
      if (vt->xport->vec_has == NULL)
        return failf(j, LLS_EINVALID, "backend %s cannot check ids", vt->name);
      if (vt->xport->vec_has(j->h->b, coll_id, j->vids, n, j->vpresent, &err) != 0)
        return fail_backend(j, &err);
      keep = 0;
      for (size_t i = 0; i < n; i++)
        if (!j->vpresent[i]) j->vrows[keep++] = j->vrows[i];
      j->st.skipped += (int64_t)(n - keep);
    }
    int64_t seq;
    int insert_only = j->on_conflict == LLS_CONFLICT_ERROR;
    if (keep > 0 && vt->vec->put(j->h->b, coll_id, j->vrows, keep, insert_only, &seq, &err) != 0)
      return fail_backend(j, &err);
    j->st.vectors += (int64_t)keep;
  }
  j->nvec = 0;
  j->varena.len = 0;
  hidx_clear(&j->vseen);
  return 1;
}

static int flush_sec(ijob *j) {
  size_t n = j->nsec;
  if (n == 0) return 1;
  if (!j->dry_run) {
    const char *a = j->sarena.data;
    for (size_t i = 0; i < n; i++) {
      const secslot *s = &j->ss[i];
      j->snames[i] = (lls_str){a + s->noff, s->nlen};
      j->sjson[i] = (lls_str){a + s->joff, s->jlen};
      j->sords[i] = s->ord;
    }
    lls_error err;
    if (j->h->vt->xport->sec_put(j->h->b, j->snames, j->sords, j->sjson, n, &err) != 0)
      return fail_backend(j, &err);
  }
  j->nsec = 0;
  j->sarena.len = 0;
  return 1;
}

static int flush_all(ijob *j) { return flush_kv(j) && flush_vec(j) && flush_sec(j); }

/* -------------------------------------------------------- field readers */

static const lls_value *field(const lls_value *rec, const char *name) {
  const lls_value *v = lls_value_get(rec, name, strlen(name));
  return v != NULL && v->type == LLS_VNULL ? NULL : v; /* null = absent */
}

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  unsigned yoe = (unsigned)(y - era * 400);
  unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const char *s, int n, int *out) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return 0;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return 1;
}

/* RFC 3339 ("2026-11-21T15:44:08.123456Z", offsets allowed) -> µs. */
static int parse_rfc3339(const char *s, size_t n, int64_t *out) {
  int Y, M, D, hh, mm, ss, oh = 0, om = 0;
  if (n < 20 || !digits(s, 4, &Y) || s[4] != '-' || !digits(s + 5, 2, &M) || s[7] != '-' ||
      !digits(s + 8, 2, &D) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
      !digits(s + 11, 2, &hh) || s[13] != ':' || !digits(s + 14, 2, &mm) || s[16] != ':' ||
      !digits(s + 17, 2, &ss))
    return 0;
  if (M < 1 || M > 12 || D < 1 || D > 31 || hh > 23 || mm > 59 || ss > 60) return 0;
  size_t i = 19;
  int64_t us = 0;
  if (i < n && s[i] == '.') {
    int nd = 0;
    for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++, nd++)
      if (nd < 6) us = us * 10 + (s[i] - '0');
    if (nd == 0) return 0;
    for (; nd < 6; nd++) us *= 10;
  }
  int sign = 0;
  if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
    i++;
  } else if (i + 6 == n && (s[i] == '+' || s[i] == '-') && digits(s + i + 1, 2, &oh) &&
             s[i + 3] == ':' && digits(s + i + 4, 2, &om)) {
    sign = s[i] == '+' ? 1 : -1;
    i = n;
  } else {
    return 0;
  }
  if (i != n) return 0;
  int64_t secs = days_from_civil(Y, (unsigned)M, (unsigned)D) * 86400 + hh * 3600 + mm * 60 +
                 ss - sign * (oh * 3600 + om * 60);
  *out = secs * 1000000 + us;
  return 1;
}

/* A time field: integer µs (a float is rounded; an RFC 3339 string is
 * read too); def when absent. */
static int get_time(ijob *j, const lls_value *rec, const char *name, int64_t def, int64_t *out,
                    int *present) {
  const lls_value *v = field(rec, name);
  char lb[200];
  if (present) *present = v != NULL;
  if (v == NULL) {
    *out = def;
    return 1;
  }
  if (v->type == LLS_VINT) {
    *out = v->u.i;
    return 1;
  }
  if (v->type == LLS_VFLOAT && fabs(v->u.f) < 9.2e18) {
    *out = (int64_t)llround(v->u.f);
    return 1;
  }
  if (v->type == LLS_VSTRING && parse_rfc3339(v->u.s.ptr, v->u.s.len, out)) return 1;
  return failf(j, LLS_EFORMAT, "%s: %s must be integer microseconds (or an RFC 3339 time)",
               label(j, lb, sizeof lb), name);
}

/* An optional string field; *s gets it (len 0 and ptr NULL when absent). */
static int get_string(ijob *j, const lls_value *rec, const char *name, lls_str *s) {
  const lls_value *v = field(rec, name);
  char lb[200];
  s->ptr = NULL;
  s->len = 0;
  if (v == NULL) return 1;
  if (v->type != LLS_VSTRING)
    return failf(j, LLS_EFORMAT, "%s: %s must be a string", label(j, lb, sizeof lb), name);
  s->ptr = v->u.s.ptr;
  s->len = v->u.s.len;
  return 1;
}

static int get_int(ijob *j, const lls_value *rec, const char *name, int64_t lo, int64_t hi,
                   int def, int *out) {
  const lls_value *v = field(rec, name);
  char lb[200];
  if (v == NULL) {
    *out = def;
    return 1;
  }
  if (v->type != LLS_VINT || v->u.i < lo || v->u.i > hi)
    return failf(j, LLS_EFORMAT, "%s: %s must be an integer in [%lld, %lld]",
                 label(j, lb, sizeof lb), name, (long long)lo, (long long)hi);
  *out = (int)v->u.i;
  return 1;
}

/* Appends the canonical JSON text of v to a, recording where. */
static int put_json(ijob *j, lls_buf *a, const lls_value *v, size_t *off, size_t *len) {
  char msg[300], lb[200];
  *off = a->len;
  if (lls_json_encode(v, a, msg, sizeof msg) != 0)
    return failf(j, LLS_EFORMAT, "%s: %s", label(j, lb, sizeof lb), msg);
  *len = a->len - *off;
  return 1;
}

static int put_bytes(ijob *j, lls_buf *a, const char *p, size_t n, size_t *off, size_t *len) {
  *off = a->len;
  *len = n;
  if (n > 0 && lls_buf_append(a, p, n) != 0) return oom(j);
  return 1;
}

/* -------------------------------------------------------------- records */

static int take_kv(ijob *j, const lls_value *rec) {
  char lb[200];
  if (rec->type != LLS_VOBJECT)
    return failf(j, LLS_EFORMAT, "%s is not an object", label(j, lb, sizeof lb));
  lls_str key, b64, id;
  if (!get_string(j, rec, "key", &key) || !get_string(j, rec, "value", &b64) ||
      !get_string(j, rec, "kv_id", &id))
    return 0;
  if (key.ptr == NULL) return failf(j, LLS_EFORMAT, "%s: no key", label(j, lb, sizeof lb));
  if (key.len > LLS_XPORT_MAX_KEY ||
      lls_utf8_bad_at((const unsigned char *)key.ptr, key.len) != key.len)
    return failf(j, LLS_EFORMAT, "%s: key must be UTF-8 text without NUL bytes, at most %d "
                 "bytes", label(j, lb, sizeof lb), LLS_XPORT_MAX_KEY);
  if (b64.ptr == NULL)
    return failf(j, LLS_EFORMAT, "%s (key '%.100s'): no value", label(j, lb, sizeof lb),
                 key.ptr);
  int64_t created, updated, expires;
  if (!get_time(j, rec, "created_at", j->now, &created, NULL) ||
      !get_time(j, rec, "updated_at", created, &updated, NULL) ||
      !get_time(j, rec, "expires_at", 0, &expires, NULL))
    return 0;
  j->done++;
  if (expires != 0 && expires <= j->now) { /* already expired: nothing to keep */
    j->st.skipped++;
    return 1;
  }
  /* a key twice in one batch: the earlier one is written first */
  uint64_t hash = lls_hash_bytes(key.ptr, key.len);
  if (lls_hidx_find(&j->kvseen, hash, key.ptr, key.len, kv_key_eq, j) && !flush_kv(j)) return 0;
  size_t cap = j->kvcap;
  if (grow((void **)&j->kv, &j->kvcap, j->nkv, sizeof *j->kv) != 0) return oom(j);
  if (j->kvcap != cap) {
    lls_kv_rec *r = realloc(j->kvrecs, j->kvcap * sizeof *r);
    if (r == NULL) return oom(j);
    j->kvrecs = r;
  }
  kvslot *s = &j->kv[j->nkv];
  memset(s, 0, sizeof *s);
  lls_buf *a = &j->kvarena;
  size_t before = a->len;
  if (!put_bytes(j, a, key.ptr, key.len, &s->koff, &s->klen)) return 0;
  s->voff = a->len;
  int rc = lls_b64_decode(a, b64.ptr, b64.len);
  if (rc == -2) return oom(j);
  if (rc != 0) {
    a->len = before;
    return failf(j, LLS_EFORMAT, "%s (key '%.100s'): value is not base64",
                 label(j, lb, sizeof lb), key.ptr);
  }
  s->vlen = a->len - s->voff;
  const lls_value *md = field(rec, "metadata");
  if (md != NULL && !put_json(j, a, md, &s->moff, &s->mlen)) return 0;
  if (!put_bytes(j, a, id.ptr, id.len, &s->ioff, &s->ilen)) return 0;
  s->created_at = created;
  s->updated_at = updated;
  s->expires_at = expires;
  if (lls_hidx_reserve(&j->kvseen, 1) != 0) return oom(j);
  size_t pos = lls_hidx_probe(&j->kvseen, hash, key.ptr, key.len, kv_key_eq, j);
  j->nkv++;
  lls_hidx_put_at(&j->kvseen, pos, hash, j->nkv);
  if (j->nkv >= j->batch_size || a->len >= BATCH_BYTES) return flush_kv(j);
  return 1;
}

/* Reads pgvector text "[1,2.5,-3e-2]" into floats. -1 when malformed. */
static int64_t parse_pgvector(ijob *j, const char *s, size_t n) {
  j->floats.len = 0;
  if (n < 2 || s[0] != '[' || s[n - 1] != ']') return -1;
  /* a NUL-terminated copy for strtof */
  j->tmp.len = 0;
  if (lls_buf_append(&j->tmp, s + 1, n - 2) != 0 || lls_buf_append(&j->tmp, "", 1) != 0)
    return -2;
  const char *p = j->tmp.data, *end = j->tmp.data + n - 2;
  int64_t count = 0;
  while (*p == ' ') p++;
  if (p == end) return 0;
  for (;;) {
    char *e;
    errno = 0;
    float f = strtof(p, &e);
    if (e == p) return -1;
    if (lls_buf_append(&j->floats, &f, sizeof f) != 0) return -2;
    count++;
    p = e;
    while (*p == ' ') p++;
    if (p == end) return count;
    if (*p != ',') return -1;
    p++;
    while (*p == ' ') p++;
  }
}

/* The collection the vector record goes to, looked up or created. */
static int resolve_coll(ijob *j, const char *name, const lls_coll_info *want, size_t *index) {
  char lb[200];
  size_t len = strlen(name);
  uint64_t hash = lls_hash_bytes(name, len);
  uintptr_t at = lls_hidx_find(&j->cidx, hash, name, len, coll_name_eq, j);
  if (at == 0) {
    const lls_backend_vt *vt = j->h->vt;
    if (vt->vec->coll_get == NULL || vt->vec->coll_create == NULL)
      return failf(j, LLS_EINVALID, "backend %s has no vector collections", vt->name);
    if (grow((void **)&j->colls, &j->ccap, j->ncolls, sizeof *j->colls) != 0 ||
        lls_hidx_reserve(&j->cidx, 1) != 0)
      return oom(j);
    ccache *c = &j->colls[j->ncolls];
    memset(c, 0, sizeof *c);
    int found;
    lls_error err;
    if (vt->vec->coll_get(j->h->b, name, &c->info, &found, &err) != 0) return fail_backend(j, &err);
    if (found) {
      c->exists = 1;
    } else {
      c->info = *want;
      if (!j->dry_run) {
        if (vt->vec->coll_create(j->h->b, &c->info, j->now, &err) != 0) return fail_backend(j, &err);
        c->exists = 1;
      }
    }
    j->ncolls++;
    at = j->ncolls;
    size_t pos = lls_hidx_probe(&j->cidx, hash, name, len, coll_name_eq, j);
    lls_hidx_put_at(&j->cidx, pos, hash, at);
    j->st.collections++;
  }
  const lls_coll_info *info = &j->colls[at - 1].info;
  if (info->dimension != want->dimension)
    return failf(j, LLS_ECONFLICT, "%s: collection '%s' has dimension %d, the record %d",
                 label(j, lb, sizeof lb), name, info->dimension, want->dimension);
  *index = at - 1;
  return 1;
}

static int take_vec(ijob *j, const lls_value *rec) {
  char lb[200], who[300];
  if (rec->type != LLS_VOBJECT)
    return failf(j, LLS_EFORMAT, "%s is not an object", label(j, lb, sizeof lb));
  lls_str id, scope, coll, metric;
  if (!get_string(j, rec, "id", &id)) return 0;
  if (id.ptr == NULL || id.len == 0 || id.len > LLS_XPORT_MAX_ID || memchr(id.ptr, 0, id.len))
    return failf(j, LLS_EFORMAT, "%s: id must be a string of 1..%d bytes without NUL",
                 label(j, lb, sizeof lb), LLS_XPORT_MAX_ID);
  snprintf(who, sizeof who, "%s (id '%.*s')", label(j, lb, sizeof lb),
           (int)(id.len > 100 ? 100 : id.len), id.ptr);
  int dim;
  if (!get_int(j, rec, "dimension", 1, MAX_DIM, j->dim, &dim)) return 0;
  if (dim != j->dim)
    return failf(j, LLS_EFORMAT, "%s: dimension %d under key \"%s\"", who, dim, j->dimkey);
  size_t dbytes = (size_t)dim * 4;
  /* the embedding, as packed float32 in j->floats */
  const lls_value *e = field(rec, "embedding");
  if (j->have_floats && (e == NULL || e->type == LLS_VNULL)) {
    size_t got = j->floats.len / 4;
    if (got != (size_t)dim)
      return failf(j, LLS_EFORMAT, "%s: %zu numbers, dimension says %d", who, got, dim);
  } else if (e == NULL) {
    return failf(j, LLS_EFORMAT, "%s: no embedding", who);
  } else if (e->type != LLS_VSTRING) {
    return failf(j, LLS_EFORMAT, "%s: embedding must be base64 text, pgvector text or an "
                 "array of numbers", who);
  } else if (e->u.s.len > 0 && e->u.s.ptr[0] == '[') {
    int64_t got = parse_pgvector(j, e->u.s.ptr, e->u.s.len);
    if (got == -2) return oom(j);
    if (got < 0) return failf(j, LLS_EFORMAT, "%s: embedding is not pgvector text", who);
    if (got != dim)
      return failf(j, LLS_EFORMAT, "%s: %lld numbers, dimension says %d", who, (long long)got,
                   dim);
  } else {
    j->floats.len = 0;
    int rc = lls_b64_decode(&j->floats, e->u.s.ptr, e->u.s.len);
    if (rc == -2) return oom(j);
    if (rc != 0) return failf(j, LLS_EFORMAT, "%s: embedding is not base64", who);
    if (j->floats.len != dbytes)
      return failf(j, LLS_EFORMAT, "%s: %zu bytes of float32 (%zu numbers), dimension says %d",
                   who, j->floats.len, j->floats.len / 4, dim);
  }
  for (int i = 0; i < dim; i++) {
    float f;
    memcpy(&f, j->floats.data + 4 * (size_t)i, 4);
    if (!isfinite(f))
      return failf(j, LLS_EFORMAT, "%s: embedding[%d] is not a finite float32", who, i);
  }
  const lls_value *md = field(rec, "metadata");
  if (md != NULL && md->type != LLS_VOBJECT)
    return failf(j, LLS_EFORMAT, "%s: metadata must be an object", who);
  if (!get_string(j, rec, "scope", &scope) || !get_string(j, rec, "collection", &coll) ||
      !get_string(j, rec, "metric", &metric))
    return 0;
  if (scope.ptr != NULL && (scope.len == 0 || scope.len > LLS_XPORT_MAX_NAME))
    return failf(j, LLS_EFORMAT, "%s: scope must be 1..%d bytes", who, LLS_XPORT_MAX_NAME);
  lls_coll_info want;
  memset(&want, 0, sizeof want);
  if (coll.ptr == NULL) {
    snprintf(want.name, sizeof want.name, "vectors_%d", dim);
  } else {
    if (!lls_xcoll_name_ok(coll.ptr, coll.len))
      return failf(j, LLS_EFORMAT, "%s: collection name '%.100s' is not 1..255 letters, "
                   "digits and _ - . : /", who, coll.ptr);
    memcpy(want.name, coll.ptr, coll.len);
  }
  want.dimension = dim;
  want.metric = 0;
  if (metric.ptr != NULL && (want.metric = lls_metric_parse(metric.ptr, metric.len)) < 0)
    return failf(j, LLS_EFORMAT, "%s: metric must be \"cosine\", \"l2\", \"ip\" or \"l1\"",
                 who);
  if (!get_int(j, rec, "m", 2, 128, 16, &want.m) ||
      !get_int(j, rec, "ef_construction", 1, 10000, 200, &want.ef_construction) ||
      !get_int(j, rec, "ef_search", 1, 100000, 50, &want.ef_search))
    return 0;
  int64_t created, updated, event_time, expires;
  int has_event;
  if (!get_time(j, rec, "created_at", j->now, &created, NULL) ||
      !get_time(j, rec, "updated_at", created, &updated, NULL) ||
      !get_time(j, rec, "event_time", 0, &event_time, &has_event) ||
      !get_time(j, rec, "expires_at", 0, &expires, NULL))
    return 0;
  size_t ci = 0;
  if (!resolve_coll(j, want.name, &want, &ci)) return 0;
  j->done++;
  /* a new collection, a repeated id or a full batch: write what is buffered */
  uint64_t hash = lls_hash_bytes(id.ptr, id.len);
  if (j->nvec > 0 && (ci != j->vcoll || lls_hidx_find(&j->vseen, hash, id.ptr, id.len,
                                                      vec_id_eq, j)))
    if (!flush_vec(j)) return 0;
  j->vcoll = ci;
  size_t cap = j->vcap;
  if (grow((void **)&j->vs, &j->vcap, j->nvec, sizeof *j->vs) != 0) return oom(j);
  if (j->vcap != cap) {
    lls_vec_row *r = realloc(j->vrows, j->vcap * sizeof *r);
    if (r != NULL) j->vrows = r;
    lls_str *ids = realloc(j->vids, j->vcap * sizeof *ids);
    if (ids != NULL) j->vids = ids;
    unsigned char *pr = realloc(j->vpresent, j->vcap);
    if (pr != NULL) j->vpresent = pr;
    if (r == NULL || ids == NULL || pr == NULL) return oom(j);
  }
  vslot *s = &j->vs[j->nvec];
  memset(s, 0, sizeof *s);
  lls_buf *a = &j->varena;
  if (!put_bytes(j, a, id.ptr, id.len, &s->ioff, &s->ilen)) return 0;
  if (scope.ptr == NULL) scope = (lls_str){"global", 6};
  if (!put_bytes(j, a, scope.ptr, scope.len, &s->soff, &s->slen)) return 0;
  if (md != NULL) {
    if (!put_json(j, a, md, &s->moff, &s->mlen)) return 0;
  } else if (!put_bytes(j, a, "{}", 2, &s->moff, &s->mlen)) {
    return 0;
  }
  size_t vlen;
  if (!put_bytes(j, a, j->floats.data, dbytes, &s->voff, &vlen)) return 0;
  s->created_at = created;
  s->updated_at = updated;
  s->event_time = event_time;
  s->has_event_time = has_event;
  s->expires_at = expires;
  if (lls_hidx_reserve(&j->vseen, 1) != 0) return oom(j);
  size_t pos = lls_hidx_probe(&j->vseen, hash, id.ptr, id.len, vec_id_eq, j);
  j->nvec++;
  lls_hidx_put_at(&j->vseen, pos, hash, j->nvec);
  if (j->nvec >= j->batch_size || a->len >= BATCH_BYTES) return flush_vec(j);
  return 1;
}

/* A collection declared in data.vector_collections: created unless the
 * store has it (then it must have the same dimension). */
static int take_coll(ijob *j, const lls_value *rec) {
  char lb[200];
  if (rec->type != LLS_VOBJECT)
    return failf(j, LLS_EFORMAT, "%s is not an object", label(j, lb, sizeof lb));
  lls_str name, metric;
  if (!get_string(j, rec, "name", &name) || !get_string(j, rec, "metric", &metric)) return 0;
  if (name.ptr == NULL || !lls_xcoll_name_ok(name.ptr, name.len))
    return failf(j, LLS_EFORMAT, "%s: name must be 1..255 letters, digits and _ - . : /",
                 label(j, lb, sizeof lb));
  lls_coll_info want;
  memset(&want, 0, sizeof want);
  memcpy(want.name, name.ptr, name.len);
  if (field(rec, "dimension") == NULL)
    return failf(j, LLS_EFORMAT, "%s: no dimension", label(j, lb, sizeof lb));
  if (!get_int(j, rec, "dimension", 1, MAX_DIM, 0, &want.dimension) ||
      !get_int(j, rec, "m", 2, 128, 16, &want.m) ||
      !get_int(j, rec, "ef_construction", 1, 10000, 200, &want.ef_construction) ||
      !get_int(j, rec, "ef_search", 1, 100000, 50, &want.ef_search))
    return 0;
  if (metric.ptr != NULL && (want.metric = lls_metric_parse(metric.ptr, metric.len)) < 0)
    return failf(j, LLS_EFORMAT, "%s: metric must be \"cosine\", \"l2\", \"ip\" or \"l1\"",
                 label(j, lb, sizeof lb));
  size_t ci;
  return resolve_coll(j, want.name, &want, &ci);
}

/* 1 when the store already holds records of the current section. */
static int section_exists(ijob *j, int *exists) {
  lls_rows rows = {0};
  lls_error err;
  lls_str name = {j->secname.data, j->secname.len};
  int rc = j->h->vt->xport->sec_dump(j->h->b, name, INT64_MIN, 1, &rows, &err);
  if (rc != 0) {
    lls_rows_free(&rows);
    return fail_backend(j, &err);
  }
  *exists = 0;
  if (rows.count > 0) {
    lls_str k = lls_row_key(&rows, 0);
    *exists = k.len == name.len && memcmp(k.ptr, name.ptr, name.len) == 0;
  }
  lls_rows_free(&rows);
  return 1;
}

/* A passthrough section starts (its key is in j->secname). */
static int begin_section(ijob *j) {
  lls_str name = {j->secname.data, j->secname.len};
  if (name.len == 0 || name.len > LLS_XPORT_MAX_NAME || memchr(name.ptr, 0, name.len))
    return failf(j, LLS_EFORMAT, "data: section name must be 1..%d bytes without NUL",
                 LLS_XPORT_MAX_NAME);
  /* records of an earlier occurrence of the same key go first */
  if (!flush_sec(j)) return 0;
  if (lls_xstats_add(&j->st, name, 0) != 0) return oom(j);
  j->sec_skip = 0;
  if (j->dry_run) return 1;
  const lls_backend_vt *vt = j->h->vt;
  if (vt->xport->sec_put == NULL || vt->xport->sec_clear == NULL || vt->xport->sec_dump == NULL)
    return failf(j, LLS_EINVALID, "backend %s cannot store section '%.*s'", vt->name,
                 (int)name.len, name.ptr);
  lls_error err;
  if (j->on_conflict == LLS_CONFLICT_REPLACE) {
    if (vt->xport->sec_clear(j->h->b, name, &err) != 0) return fail_backend(j, &err);
    return 1;
  }
  int exists;
  if (!section_exists(j, &exists)) return 0;
  if (exists && j->on_conflict == LLS_CONFLICT_ERROR)
    return failf(j, LLS_ECONFLICT, "section '%.*s' already holds records", (int)name.len,
                 name.ptr);
  j->sec_skip = exists;
  return 1;
}

static int take_sec(ijob *j, const lls_value *v) {
  lls_str name = {j->secname.data, j->secname.len};
  int64_t ord = j->sec_single ? -1 : j->idx;
  int64_t count = j->sec_single ? lls_xstats_single(&j->st, name, v) : 1;
  j->done++;
  if (j->sec_skip) {
    j->st.skipped += count;
    return 1;
  }
  if (lls_xstats_add(&j->st, name, count) != 0) return oom(j);
  size_t cap = j->scap;
  if (grow((void **)&j->ss, &j->scap, j->nsec, sizeof *j->ss) != 0) return oom(j);
  if (j->scap != cap) {
    lls_str *a = realloc(j->snames, j->scap * sizeof *a);
    if (a != NULL) j->snames = a;
    lls_str *b = realloc(j->sjson, j->scap * sizeof *b);
    if (b != NULL) j->sjson = b;
    int64_t *c = realloc(j->sords, j->scap * sizeof *c);
    if (c != NULL) j->sords = c;
    if (a == NULL || b == NULL || c == NULL) return oom(j);
  }
  secslot *s = &j->ss[j->nsec];
  if (!put_bytes(j, &j->sarena, name.ptr, name.len, &s->noff, &s->nlen) ||
      !put_json(j, &j->sarena, v, &s->joff, &s->jlen))
    return 0;
  s->ord = ord;
  j->nsec++;
  if (j->nsec >= j->batch_size || j->sarena.len >= BATCH_BYTES) return flush_sec(j);
  return 1;
}

/* ------------------------------------------------------ the state machine */

static int feed(ijob *j, evt t, const char *p, size_t n) {
  lls_vbuild *b = j->vb;
  switch (t) {
  case E_NULL: return lls_vbuild_null(b);
  case E_BOOL: return lls_vbuild_bool(b, (int)n);
  case E_NUMBER: return lls_vbuild_number(b, p, n);
  case E_STRING: return lls_vbuild_string(b, p, n);
  case E_START_MAP: return lls_vbuild_start_map(b);
  case E_KEY: return lls_vbuild_map_key(b, p, n);
  case E_END_MAP: return lls_vbuild_end_map(b);
  case E_START_ARRAY: return lls_vbuild_start_array(b);
  case E_END_ARRAY: return lls_vbuild_end_array(b);
  }
  return 0;
}

/* An event inside the record being assembled. */
static int rec_event(ijob *j, evt t, const char *p, size_t n) {
  char lb[200];
  if (j->em == EMB_CAPTURE) {
    if (t == E_NUMBER) {
      char small[64];
      if (n >= sizeof small)
        return failf(j, LLS_EFORMAT, "%s: embedding number too long", label(j, lb, sizeof lb));
      memcpy(small, p, n);
      small[n] = '\0';
      float f = strtof(small, NULL); /* the parse runs under the "C" locale */
      if (lls_buf_append(&j->floats, &f, sizeof f) != 0) return oom(j);
      return 1;
    }
    if (t != E_END_ARRAY)
      return failf(j, LLS_EFORMAT, "%s: embedding array must hold numbers only",
                   label(j, lb, sizeof lb));
    j->em = EMB_NONE;
    j->have_floats = 1;
    t = E_NULL; /* the record's tree gets a placeholder */
  } else if (j->em == EMB_NEXT) {
    j->em = EMB_NONE;
    if (t == E_START_ARRAY) {
      j->em = EMB_CAPTURE;
      j->floats.len = 0;
      return 1;
    }
  }
  if (t == E_KEY && j->rk == R_VEC && lls_vbuild_depth(j->vb) == 1 && n == 9 &&
      memcmp(p, "embedding", 9) == 0)
    j->em = EMB_NEXT;
  if (!feed(j, t, p, n))
    return failf(j, LLS_EFORMAT, "%s: %s", label(j, lb, sizeof lb), lls_vbuild_error(j->vb));
  if (lls_vbuild_depth(j->vb) > 0) return 1;
  lls_value *v = lls_vbuild_take(j->vb);
  if (v == NULL) return oom(j);
  j->in_rec = 0;
  int rc = j->rk == R_KV     ? take_kv(j, v)
           : j->rk == R_COLL ? take_coll(j, v)
           : j->rk == R_VEC  ? take_vec(j, v)
                             : take_sec(j, v);
  lls_value_free(v);
  j->idx++;
  return rc;
}

static int start_record(ijob *j, rkind k, evt t, const char *p, size_t n) {
  lls_vbuild_reset(j->vb);
  j->in_rec = 1;
  j->rk = k;
  j->em = EMB_NONE;
  j->have_floats = 0;
  return rec_event(j, t, p, n);
}

static int is_value_start(evt t) { return t != E_KEY && t != E_END_MAP && t != E_END_ARRAY; }

static int start_skip(ijob *j, evt t) {
  if (t == E_START_MAP || t == E_START_ARRAY) {
    j->skipping = 1;
    j->skip_depth = 1;
  }
  return 1;
}

static int key_is(const char *p, size_t n, const char *lit) {
  return n == strlen(lit) && memcmp(p, lit, n) == 0;
}

static int event(ijob *j, evt t, const char *p, size_t n) {
  if (j->failed) return 0;
  if (j->skipping) {
    if (t == E_START_MAP || t == E_START_ARRAY) j->skip_depth++;
    else if ((t == E_END_MAP || t == E_END_ARRAY) && --j->skip_depth == 0) j->skipping = 0;
    return 1;
  }
  if (j->in_rec) return rec_event(j, t, p, n);
  switch (j->ps) {
  case P_START:
    if (t != E_START_MAP)
      return failf(j, LLS_EFORMAT, "the document is not a JSON object (not an export file?)");
    j->ps = P_TOP;
    return 1;
  case P_TOP:
    if (t == E_KEY) {
      j->ex = key_is(p, n, "version") ? X_VERSION : key_is(p, n, "data") ? X_DATA : X_SKIP;
      return 1;
    }
    if (t == E_END_MAP) {
      j->ps = P_END;
      return 1;
    }
    if (j->ex == X_VERSION) {
      j->version_seen = 1;
      if (t != E_STRING)
        return failf(j, LLS_EVERSION, "\"version\" must be a string (\"%s\")", LLS_XPORT_VERSION);
      if (!key_is(p, n, LLS_XPORT_VERSION))
        return failf(j, LLS_EVERSION, "unsupported export format version \"%.*s\" (this "
                     "library reads \"%s\")", (int)(n > 40 ? 40 : n), p, LLS_XPORT_VERSION);
      return 1;
    }
    if (j->ex == X_DATA) {
      if (t == E_NULL) return 1;
      if (t != E_START_MAP) return failf(j, LLS_EFORMAT, "\"data\" is not an object");
      j->ps = P_DATA;
      return 1;
    }
    return start_skip(j, t);
  case P_DATA:
    if (t == E_KEY) {
      if (key_is(p, n, "kv_store")) {
        j->ex = X_KV;
      } else if (key_is(p, n, "vector_collections")) {
        j->ex = X_COLLS;
      } else if (key_is(p, n, "vector_embeddings")) {
        j->ex = X_VMAP;
      } else {
        j->ex = X_SEC;
        j->secname.len = 0;
        if (lls_buf_append(&j->secname, p, n) != 0 || lls_buf_append(&j->secname, "", 1) != 0)
          return oom(j);
        j->secname.len = n;
      }
      return 1;
    }
    if (t == E_END_MAP) {
      j->ps = P_TOP;
      return 1;
    }
    if (t == E_NULL) return 1; /* an absent section (rs-llmspell writes None as null) */
    if (j->ex == X_KV) {
      if (t != E_START_ARRAY) return failf(j, LLS_EFORMAT, "data.kv_store is not an array");
      j->ps = P_KV;
      j->idx = 0;
      j->phase = "kv_store";
      return 1;
    }
    if (j->ex == X_COLLS) {
      if (t != E_START_ARRAY)
        return failf(j, LLS_EFORMAT, "data.vector_collections is not an array");
      j->ps = P_COLLS;
      j->idx = 0;
      j->phase = "vector_embeddings";
      return 1;
    }
    if (j->ex == X_VMAP) {
      if (t != E_START_MAP)
        return failf(j, LLS_EFORMAT, "data.vector_embeddings is not an object");
      j->ps = P_VMAP;
      j->phase = "vector_embeddings";
      return 1;
    }
    if (!begin_section(j)) return 0;
    j->phase = "sections";
    j->idx = 0;
    if (t == E_START_ARRAY) {
      j->ps = P_SEC;
      j->sec_single = 0;
      return 1;
    }
    j->sec_single = 1;
    return start_record(j, R_SEC, t, p, n);
  case P_KV:
    if (t == E_END_ARRAY) {
      j->ps = P_DATA;
      return 1;
    }
    if (t != E_START_MAP)
      return failf(j, LLS_EFORMAT, "kv_store[%lld] is not an object", (long long)j->idx);
    return start_record(j, R_KV, t, p, n);
  case P_COLLS:
    if (t == E_END_ARRAY) {
      j->ps = P_DATA;
      return 1;
    }
    if (t != E_START_MAP)
      return failf(j, LLS_EFORMAT, "vector_collections[%lld] is not an object",
                   (long long)j->idx);
    return start_record(j, R_COLL, t, p, n);
  case P_VMAP:
    if (t == E_KEY) {
      int d = 0;
      size_t k = 0;
      while (k < n && k < 5 && p[k] >= '0' && p[k] <= '9') d = d * 10 + (p[k++] - '0');
      if (n == 0 || k != n || d < 1 || d > MAX_DIM || p[0] == '0')
        return failf(j, LLS_EFORMAT, "vector_embeddings: key \"%.*s\" is not a dimension "
                     "(1..%d)", (int)(n > 40 ? 40 : n), p, MAX_DIM);
      j->dim = d;
      snprintf(j->dimkey, sizeof j->dimkey, "%d", d);
      return 1;
    }
    if (t == E_END_MAP) {
      j->ps = P_DATA;
      return 1;
    }
    if (t == E_NULL) return 1;
    if (t != E_START_ARRAY)
      return failf(j, LLS_EFORMAT, "vector_embeddings.%s is not an array", j->dimkey);
    j->ps = P_VEC;
    j->idx = 0;
    return 1;
  case P_VEC:
    if (t == E_END_ARRAY) {
      j->ps = P_VMAP;
      return 1;
    }
    if (t != E_START_MAP)
      return failf(j, LLS_EFORMAT, "vector_embeddings.%s[%lld] is not an object", j->dimkey,
                   (long long)j->idx);
    return start_record(j, R_VEC, t, p, n);
  case P_SEC:
    if (t == E_END_ARRAY) {
      j->ps = P_DATA;
      return 1;
    }
    if (!is_value_start(t)) return failf(j, LLS_EFORMAT, "malformed section");
    return start_record(j, R_SEC, t, p, n);
  case P_END:
    break;
  }
  return failf(j, LLS_EFORMAT, "data after the end of the document");
}

/* yajl's callbacks: each one an event. */
static int y_null(void *ctx) { return event(ctx, E_NULL, NULL, 0); }
static int y_bool(void *ctx, int b) { return event(ctx, E_BOOL, NULL, (size_t)(b != 0)); }
static int y_number(void *ctx, const char *s, size_t len) {
  return event(ctx, E_NUMBER, s, len);
}
static int y_string(void *ctx, const unsigned char *s, size_t len) {
  return event(ctx, E_STRING, (const char *)s, len);
}
static int y_start_map(void *ctx) { return event(ctx, E_START_MAP, NULL, 0); }
static int y_key(void *ctx, const unsigned char *s, size_t len) {
  return event(ctx, E_KEY, (const char *)s, len);
}
static int y_end_map(void *ctx) { return event(ctx, E_END_MAP, NULL, 0); }
static int y_start_array(void *ctx) { return event(ctx, E_START_ARRAY, NULL, 0); }
static int y_end_array(void *ctx) { return event(ctx, E_END_ARRAY, NULL, 0); }

static const yajl_callbacks CALLBACKS = {
    y_null,     y_bool,     NULL,      NULL,          y_number,    y_string,
    y_start_map, y_key,     y_end_map, y_start_array, y_end_array,
};

/* ---------------------------------------- \u escapes (what yajl misses) */

/* yajl turns an unpaired UTF-16 surrogate escape into '?' and pairs a
 * high surrogate with any following \u escape, silently changing the
 * text (json.c checks whole texts the same way); this checks the stream
 * as it passes, across chunk boundaries. */
typedef struct esc_scan {
  int st;          /* 0 text, 1 after '\', 2 in \u digits, 3 want '\', 4 want 'u' */
  int left, low;   /* hex digits still to read; reading a low surrogate */
  unsigned cp;
  uint64_t start;  /* offset of the escape being read */
} esc_scan;

static int hexval(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* The offset of an unpaired surrogate escape in p[0..n) (at offset base
 * of the stream), or -1. */
static int64_t esc_check(esc_scan *s, const unsigned char *p, size_t n, uint64_t base) {
  size_t i = 0;
  while (i < n) {
    if (s->st == 0) {
      const unsigned char *q = memchr(p + i, '\\', n - i);
      if (q == NULL) return -1;
      i = (size_t)(q - p);
      s->st = 1;
      s->start = base + i;
      i++;
      continue;
    }
    unsigned char c = p[i++];
    switch (s->st) {
    case 1:
      if (c == 'u') {
        s->st = 2;
        s->left = 4;
        s->cp = 0;
        s->low = 0;
      } else {
        s->st = 0;
      }
      break;
    case 2: {
      int v = hexval(c);
      if (v < 0) { /* malformed: yajl reports it */
        s->st = 0;
        break;
      }
      s->cp = s->cp * 16 + (unsigned)v;
      if (--s->left > 0) break;
      if (s->low) {
        if (s->cp < 0xDC00 || s->cp > 0xDFFF) return (int64_t)s->start;
        s->st = 0;
      } else if (s->cp >= 0xDC00 && s->cp <= 0xDFFF) {
        return (int64_t)s->start;
      } else if (s->cp >= 0xD800 && s->cp <= 0xDBFF) {
        s->st = 3;
      } else {
        s->st = 0;
      }
      break;
    }
    case 3:
      if (c != '\\') return (int64_t)s->start;
      s->st = 4;
      break;
    case 4:
      if (c != 'u') return (int64_t)s->start;
      s->st = 2;
      s->left = 4;
      s->cp = 0;
      s->low = 1;
      break;
    }
  }
  return -1;
}

/* ------------------------------------------------------------ the run */

static void job_release(ijob *j) {
  if (j->y != NULL) yajl_free(j->y);
  j->y = NULL;
  lls_vbuild_free(j->vb);
  j->vb = NULL;
  if (j->f != NULL) fclose(j->f);
  j->f = NULL;
  if (j->cloc != (locale_t)0) freelocale(j->cloc);
  j->cloc = (locale_t)0;
  free(j->chunk);
  j->chunk = NULL;
  lls_buf_free(&j->secname);
  lls_buf_free(&j->floats);
  lls_buf_free(&j->tmp);
  free(j->kv);
  free(j->kvrecs);
  lls_buf_free(&j->kvarena);
  lls_hidx_free(&j->kvseen);
  free(j->vs);
  free(j->vrows);
  free(j->vids);
  free(j->vpresent);
  lls_buf_free(&j->varena);
  lls_hidx_free(&j->vseen);
  free(j->ss);
  free(j->snames);
  free(j->sjson);
  free(j->sords);
  lls_buf_free(&j->sarena);
  free(j->colls);
  lls_hidx_free(&j->cidx);
  lls_xstats_free(&j->st);
  j->kv = NULL, j->kvrecs = NULL, j->vs = NULL, j->vrows = NULL, j->vids = NULL;
  j->vpresent = NULL, j->ss = NULL, j->snames = NULL, j->sjson = NULL, j->sords = NULL;
  j->colls = NULL;
}

static int job_gc(lua_State *L) {
  job_release(luaL_checkudata(L, 1, LLS_IMPORT_JOB_MT));
  return 0;
}

/* Raises the recorded failure; format errors say where in the input. */
static int raise_failure(lua_State *L, ijob *j, uint64_t at) {
  if (j->err.code == LLS_EFORMAT) {
    size_t len = strlen(j->err.message);
    snprintf(j->err.message + len, sizeof j->err.message - len, " (at byte %llu)",
             (unsigned long long)at);
  }
  return lls_raise(L, &j->err, j->err_backend ? j->h->vt->name : NULL);
}

static int raise_syntax(lua_State *L, ijob *j, const unsigned char *buf, size_t n, uint64_t at) {
  unsigned char *m = yajl_get_error(j->y, 0, buf, n);
  const char *s = m != NULL ? (const char *)m : "malformed";
  size_t len = strlen(s);
  while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == ' ' || s[len - 1] == '.')) len--;
  char msg[300];
  snprintf(msg, sizeof msg, "invalid JSON at byte %llu: %.*s", (unsigned long long)at, (int)len,
           s);
  if (m != NULL) yajl_free_error(j->y, m);
  return lls_raisef(L, LLS_EFORMAT, "%s", msg);
}

static void report(lua_State *L, ijob *j, int fn, const char *phase, int force) {
  if (!fn) return;
  if (!force && j->done - j->reported < PROGRESS_EVERY && phase == j->reported_phase) return;
  j->reported = j->done;
  j->reported_phase = phase;
  lls_xprogress(L, fn, j->done, -1, phase, 1, (int64_t)(j->offset), j->bytes_total);
  if (j->h->b == NULL) lls_raisef(L, LLS_ECLOSED, "store was closed during the import");
}

/* Next piece of input into *p; 0 at the end. */
static size_t next_chunk(lua_State *L, ijob *j, const unsigned char **p) {
  if (j->f != NULL) {
    size_t n = fread(j->chunk, 1, CHUNK, j->f);
    if (n == 0 && ferror(j->f)) lls_raisef(L, LLS_EIO, "cannot read the import file: %s",
                                           strerror(errno));
    *p = j->chunk;
    return n;
  }
  size_t n = j->text_len - j->text_pos;
  if (n > CHUNK) n = CHUNK;
  *p = (const unsigned char *)j->text + j->text_pos;
  j->text_pos += n;
  return n;
}

/* The protected part: (job, progress|nil). */
static int import_body(lua_State *L) {
  ijob *j = lua_touserdata(L, 1);
  int fn = lua_isnil(L, 2) ? 0 : 2;
  double t0 = lls_xclock();
  esc_scan esc = {0, 0, 0, 0, 0};
  j->phase = "kv_store";
  for (;;) {
    const unsigned char *buf;
    size_t n = next_chunk(L, j, &buf);
    if (n == 0) break;
    int64_t bad = esc_check(&esc, buf, n, j->offset);
    if (bad >= 0)
      return lls_raisef(L, LLS_EFORMAT, "invalid JSON at byte %lld: unpaired UTF-16 surrogate "
                        "in \\u escape", (long long)bad + 1);
    /* numbers are read in the "C" locale whatever the host set */
    locale_t old = j->cloc != (locale_t)0 ? uselocale(j->cloc) : (locale_t)0;
    yajl_status st = yajl_parse(j->y, buf, n);
    if (old != (locale_t)0) uselocale(old);
    if (st != yajl_status_ok) {
      uint64_t at = j->offset + yajl_get_bytes_consumed(j->y);
      if (j->failed) return raise_failure(L, j, at);
      return raise_syntax(L, j, buf, n, at);
    }
    j->offset += n;
    j->st.bytes = (int64_t)j->offset;
    report(L, j, fn, j->phase, 0);
  }
  locale_t old = j->cloc != (locale_t)0 ? uselocale(j->cloc) : (locale_t)0;
  yajl_status st = yajl_complete_parse(j->y);
  if (old != (locale_t)0) uselocale(old);
  if (st != yajl_status_ok) {
    if (j->failed) return raise_failure(L, j, j->offset);
    char msg[64];
    snprintf(msg, sizeof msg, "%llu", (unsigned long long)j->offset);
    return lls_raisef(L, LLS_EFORMAT, "invalid JSON at byte %s: the input ends inside the "
                      "document (truncated?)", msg);
  }
  if (j->ps != P_END) /* an empty input */
    return lls_raisef(L, LLS_EFORMAT, "invalid JSON at byte 0: empty input");
  if (!j->version_seen)
    return lls_raisef(L, LLS_EVERSION, "the document has no \"version\" (not an export file?)");
  if (!flush_all(j)) return raise_failure(L, j, j->offset);
  j->st.seconds = lls_xclock() - t0;
  report(L, j, fn, "done", 1);
  return 0;
}

/* ------------------------------------------------------ the Lua object */

typedef struct importer {
  int closed;
} importer;

static lls_handle *check_importer(lua_State *L, int idx) {
  importer *im = luaL_checkudata(L, idx, LLS_IMPORTER_MT);
  if (im->closed) lls_raisef(L, LLS_ECLOSED, "importer is closed");
  lua_getiuservalue(L, idx, 1);
  return lls_check_handle(L, -1);
}

static const char *const OPT_FIELDS[] = {"on_conflict", "dry_run", "batch_size", "progress",
                                         NULL};

/* Reads the options at arg into j; pushes the progress function (or nil). */
static void read_options(lua_State *L, int arg, ijob *j) {
  j->on_conflict = LLS_CONFLICT_REPLACE;
  j->batch_size = DEFAULT_BATCH;
  if (lua_isnoneornil(L, arg)) {
    lua_pushnil(L);
    return;
  }
  luaL_checktype(L, arg, LUA_TTABLE);
  lls_check_fields(L, arg, arg, OPT_FIELDS, NULL, 0);
  if (lua_getfield(L, arg, "on_conflict") != LUA_TNIL) {
    const char *s = lua_tostring(L, -1);
    if (s != NULL && lua_type(L, -1) == LUA_TSTRING && strcmp(s, "replace") == 0)
      j->on_conflict = LLS_CONFLICT_REPLACE;
    else if (s != NULL && lua_type(L, -1) == LUA_TSTRING && strcmp(s, "skip") == 0)
      j->on_conflict = LLS_CONFLICT_SKIP;
    else if (s != NULL && lua_type(L, -1) == LUA_TSTRING && strcmp(s, "error") == 0)
      j->on_conflict = LLS_CONFLICT_ERROR;
    else
      luaL_argerror(L, arg, "option 'on_conflict' must be \"replace\", \"skip\" or \"error\"");
  }
  lua_pop(L, 1);
  if (lua_getfield(L, arg, "dry_run") != LUA_TNIL) {
    if (!lua_isboolean(L, -1)) luaL_argerror(L, arg, "option 'dry_run': boolean expected");
    j->dry_run = lua_toboolean(L, -1);
  }
  lua_pop(L, 1);
  if (lua_getfield(L, arg, "batch_size") != LUA_TNIL) {
    int isint;
    lua_Integer n = lua_tointegerx(L, -1, &isint);
    if (!isint || n < 1 || n > MAX_BATCH)
      luaL_argerror(L, arg, lua_pushfstring(L, "option 'batch_size' must be an integer in "
                                               "[1, %d]", MAX_BATCH));
    j->batch_size = (size_t)n;
  }
  lua_pop(L, 1);
  if (lua_getfield(L, arg, "progress") != LUA_TNIL && !lua_isfunction(L, -1))
    luaL_argerror(L, arg, "option 'progress': function expected");
}

static ijob *new_job(lua_State *L) {
  ijob *j = lua_newuserdatauv(L, sizeof *j, 0);
  memset(j, 0, sizeof *j);
  j->bytes_total = -1;
  if (luaL_newmetatable(L, LLS_IMPORT_JOB_MT)) {
    lua_pushcfunction(L, job_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  j->vb = lls_vbuild_new();
  j->y = yajl_alloc(&CALLBACKS, NULL, j);
  if (j->vb == NULL || j->y == NULL) luaL_error(L, "out of memory");
  /* yajl's defaults are what JSON wants (strings checked, no comments,
   * one value, no trailing garbage) */
  j->cloc = newlocale(LC_ALL_MASK, "C", (locale_t)0);
  return j;
}

/* from_file (file = 1) / from_string: leaves the stats table on the stack. */
static int run_import(lua_State *L, int file) {
  lua_settop(L, 3); /* the arguments keep their places below */
  lls_handle *h = check_importer(L, 1);
  int hidx = lua_gettop(L);
  size_t slen = 0;
  const char *src = luaL_checklstring(L, 2, &slen);
  ijob *j = new_job(L);
  int jidx = lua_gettop(L);
  read_options(L, 3, j);
  int pidx = lua_gettop(L);
  j->h = h;
  j->now = lls_now_us();
  if (file) {
    j->chunk = malloc(CHUNK);
    if (j->chunk == NULL) return luaL_error(L, "out of memory");
    j->f = fopen(src, "rb");
    if (j->f == NULL)
      return lls_raisef(L, LLS_EIO, "cannot open '%s': %s", src, strerror(errno));
    struct stat sb;
    if (fstat(fileno(j->f), &sb) == 0 && S_ISREG(sb.st_mode)) j->bytes_total = sb.st_size;
  } else {
    j->text = src; /* argument 2 keeps it alive */
    j->text_len = slen;
    j->bytes_total = (int64_t)slen;
  }
  lls_error err;
  int depth = h->txdepth;
  if (!j->dry_run) {
    if (h->vt->begin(h->b, depth, &err) != 0) {
      job_release(j);
      return lls_raise(L, &err, h->vt->name);
    }
    h->txdepth = depth + 1;
  }
  lua_pushcfunction(L, import_body);
  lua_pushvalue(L, jidx);
  lua_pushvalue(L, pidx);
  int status = lua_pcall(L, 2, 0, 0);
  if (h->b == NULL) { /* the progress function closed the store (and so rolled back) */
    job_release(j);
    if (status != LUA_OK) return lua_error(L);
    return lls_raisef(L, LLS_ECLOSED, "store was closed during the import");
  }
  if (!j->dry_run) {
    h->txdepth = depth;
    int rc = status == LUA_OK ? h->vt->commit(h->b, depth, &err) : 0;
    if (status != LUA_OK || rc != 0) {
      lls_error rerr;
      h->vt->rollback(h->b, depth, &rerr); /* best effort: the first error wins */
      lls_store_invalidate(L, hidx);
      job_release(j);
      if (status != LUA_OK) return lua_error(L);
      return lls_raise(L, &err, h->vt->name);
    }
    /* open collection objects reload on next use and see the new rows */
    lls_store_invalidate(L, hidx);
  } else if (status != LUA_OK) {
    job_release(j);
    return lua_error(L);
  }
  lls_xstats_push(L, &j->st);
  job_release(j);
  return 1;
}

/** imp:from_file(path [, opts]) --> stats
 * Imports the document in path, all or nothing. opts: on_conflict =
 * "replace" (default: the file wins) | "skip" (the store wins) | "error"
 * (raise "conflict"); dry_run = true (parse and check everything, count,
 * write nothing); batch_size = records per backend write (default 1000);
 * progress = function(done, total, phase, bytes, bytes_total) called
 * every 1000 records or so, when the phase changes and at the end (total
 * is nil: the record count is not known before the end; phase
 * "kv_store", "vector_embeddings", "sections", "done").
 * Raises "format" (malformed or truncated JSON with its byte offset, a
 * record that does not check, naming it), "version" (missing or
 * unsupported version), "conflict", "io"; the store is then unchanged. */
static int imp_from_file(lua_State *L) { return run_import(L, 1); }

/** imp:from_string(json [, opts]) --> stats (as from_file) */
static int imp_from_string(lua_State *L) { return run_import(L, 0); }

/** imp:close() -- idempotent; also __close and __gc. Later calls raise "closed". */
static int imp_close(lua_State *L) {
  importer *im = luaL_checkudata(L, 1, LLS_IMPORTER_MT);
  im->closed = 1;
  lua_pushnil(L);
  lua_setiuservalue(L, 1, 1);
  return 0;
}

static int imp_tostring(lua_State *L) {
  importer *im = luaL_checkudata(L, 1, LLS_IMPORTER_MT);
  lua_getiuservalue(L, 1, 1);
  lls_handle *h = luaL_testudata(L, -1, LLS_HANDLE_MT);
  if (im->closed || h == NULL)
    lua_pushliteral(L, "llmspell.storage.Importer (closed)");
  else if (h->b == NULL)
    lua_pushliteral(L, "llmspell.storage.Importer (store closed)");
  else
    lua_pushfstring(L, "llmspell.storage.Importer (%s %s, tenant %s)", h->vt->name,
                    h->vt->location(h->b), h->tenant);
  return 1;
}

/** storage.importer(db) --> importer ("llmspell.storage.Importer").
 * Raises "closed" when db is closed. */
static int new_importer(lua_State *L) {
  lls_check_handle(L, 1);
  importer *im = lua_newuserdatauv(L, sizeof *im, 1);
  im->closed = 0;
  luaL_setmetatable(L, LLS_IMPORTER_MT);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  return 1;
}

void lls_open_import(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"from_file", imp_from_file},
      {"from_string", imp_from_string},
      {"close", imp_close},
      {NULL, NULL},
  };
  static const luaL_Reg meta[] = {
      {"__gc", imp_close},
      {"__close", imp_close},
      {"__tostring", imp_tostring},
      {NULL, NULL},
  };
  luaL_newmetatable(L, LLS_IMPORTER_MT);
  luaL_setfuncs(L, meta, 0);
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_pushcfunction(L, new_importer);
  lua_setfield(L, -2, "importer");
}
