/*
 * import_rows.c -- what an import does with each record the parser
 * assembles (import_rows.h): check it, buffer it into a batch, and write
 * full batches through the backend's export/import slots.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/b64.h"
#include "base/limits.h"
#include "base/utf8.h"
#include "lua/import_rows.h"

/* ------------------------------------------------------------- batches */

static int kv_key_eq(void *ud, uintptr_t val, const char *key, size_t klen) {
  const lls_ijob *j = ud;
  const kvslot *s = &j->kv[val - 1];
  return s->klen == klen && memcmp(j->kvarena.data + s->koff, key, klen) == 0;
}

static int vec_id_eq(void *ud, uintptr_t val, const char *key, size_t klen) {
  const lls_ijob *j = ud;
  const vslot *s = &j->vs[val - 1];
  return s->ilen == klen && memcmp(j->varena.data + s->ioff, key, klen) == 0;
}

static int coll_name_eq(void *ud, uintptr_t val, const char *key, size_t klen) {
  const lls_ijob *j = ud;
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

/* Writes the kv batch. The arena's last `keep` bytes are not part of it
 * (a value decoded for the record being read): they move to its start. */
static int flush_kv_keep(lls_ijob *j, size_t keep) {
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
    const lls_xport_ops *x = j->h->vt->xport;
    if (x->kv_load(j->h->b, j->kvrecs, n, j->on_conflict, j->now, &written, &err) != 0)
      return lls_ijob_fail_backend(j, &err);
    j->st.kv_entries += (int64_t)written;
    j->st.skipped += (int64_t)(n - written);
  }
  j->nkv = 0;
  lls_buf *a = &j->kvarena;
  if (keep > 0) memmove(a->data, a->data + a->len - keep, keep);
  a->len = keep;
  hidx_clear(&j->kvseen);
  return 1;
}

static int flush_kv(lls_ijob *j) { return flush_kv_keep(j, 0); }

static int flush_vec(lls_ijob *j) {
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
        return lls_ijob_fail(j, LLS_EINVALID, "backend %s cannot check ids", vt->name);
      if (vt->xport->vec_has(j->h->b, coll_id, j->vids, n, j->vpresent, &err) != 0)
        return lls_ijob_fail_backend(j, &err);
      keep = 0;
      for (size_t i = 0; i < n; i++)
        if (!j->vpresent[i]) j->vrows[keep++] = j->vrows[i];
      j->st.skipped += (int64_t)(n - keep);
    }
    int64_t seq;
    int insert_only = j->on_conflict == LLS_CONFLICT_ERROR;
    if (keep > 0 && vt->vec->put(j->h->b, coll_id, j->vrows, keep, insert_only, &seq, &err) != 0)
      return lls_ijob_fail_backend(j, &err);
    j->st.vectors += (int64_t)keep;
  }
  j->nvec = 0;
  j->varena.len = 0;
  hidx_clear(&j->vseen);
  return 1;
}

static int flush_sec(lls_ijob *j) {
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
      return lls_ijob_fail_backend(j, &err);
  }
  j->nsec = 0;
  j->sarena.len = 0;
  return 1;
}

int lls_import_flush_all(lls_ijob *j) { return flush_kv(j) && flush_vec(j) && flush_sec(j); }

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
static int get_time(lls_ijob *j, const lls_value *rec, const char *name, int64_t def, int64_t *out,
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
  return lls_ijob_fail(j, LLS_EFORMAT, "%s: %s must be integer microseconds (or an RFC 3339 time)",
               lls_ijob_label(j, lb, sizeof lb), name);
}

/* An optional string field; *s gets it (len 0 and ptr NULL when absent). */
static int get_string(lls_ijob *j, const lls_value *rec, const char *name, lls_str *s) {
  const lls_value *v = field(rec, name);
  char lb[200];
  s->ptr = NULL;
  s->len = 0;
  if (v == NULL) return 1;
  if (v->type != LLS_VSTRING)
    return lls_ijob_fail(j, LLS_EFORMAT, "%s: %s must be a string",
                         lls_ijob_label(j, lb, sizeof lb), name);
  s->ptr = v->u.s.ptr;
  s->len = v->u.s.len;
  return 1;
}

static int get_int(lls_ijob *j, const lls_value *rec, const char *name, int64_t lo, int64_t hi,
                   int def, int *out) {
  const lls_value *v = field(rec, name);
  char lb[200];
  /* set on every path: the compiler cannot see that lls_ijob_fail returns
   * 0, so at -O3 it thinks a caller may read it after a failure */
  *out = def;
  if (v == NULL) return 1;
  if (v->type != LLS_VINT || v->u.i < lo || v->u.i > hi)
    return lls_ijob_fail(j, LLS_EFORMAT, "%s: %s must be an integer in [%lld, %lld]",
                 lls_ijob_label(j, lb, sizeof lb), name, (long long)lo, (long long)hi);
  *out = (int)v->u.i;
  return 1;
}

/* 1 when a string of v (at any depth) holds a NUL byte. Stored metadata
 * takes what the Lua API takes, UTF-8 text without NUL (JSON carries
 * "\u0000", PostgreSQL's jsonb cannot); keys never hold one (json.c). The
 * depth is the parser's, bounded. */
static int has_nul(const lls_value *v) {
  switch (v->type) {
  case LLS_VSTRING: return v->u.s.len > 0 && memchr(v->u.s.ptr, '\0', v->u.s.len) != NULL;
  case LLS_VARRAY:
    for (size_t i = 0; i < v->u.a.n; i++)
      if (has_nul(v->u.a.items[i])) return 1;
    return 0;
  case LLS_VOBJECT:
    for (size_t i = 0; i < v->u.o.n; i++)
      if (has_nul(v->u.o.members[i].value)) return 1;
    return 0;
  default: return 0;
  }
}

/* Checks the metadata of a record (who names it for messages). */
static int metadata_ok(lls_ijob *j, const lls_value *md, const char *who) {
  if (md != NULL && has_nul(md))
    return lls_ijob_fail(j, LLS_EFORMAT, "%s: metadata strings must be UTF-8 text without NUL "
                         "bytes", who);
  return 1;
}

/* Appends the canonical JSON text of v to a, recording where. */
static int put_json(lls_ijob *j, lls_buf *a, const lls_value *v, size_t *off, size_t *len) {
  char msg[300], lb[200];
  *off = a->len;
  if (lls_json_encode(v, a, msg, sizeof msg) != 0)
    return lls_ijob_fail(j, LLS_EFORMAT, "%s: %s", lls_ijob_label(j, lb, sizeof lb), msg);
  *len = a->len - *off;
  return 1;
}

static int put_bytes(lls_ijob *j, lls_buf *a, const char *p, size_t n, size_t *off, size_t *len) {
  *off = a->len;
  *len = n;
  if (n > 0 && lls_buf_append(a, p, n) != 0) return lls_ijob_oom(j);
  return 1;
}

/* -------------------------------------------------------------- records */

/* A present expires_at is a time like any other, 0 and negative ones
 * included: at or before the import's now, the record has expired and is
 * skipped. Absent (or null) means it never expires. A kept record's time
 * is then after now, so never the stores' 0 ("never"). */
static int expired(const lls_ijob *j, int has_expiry, int64_t expires_at) {
  return has_expiry && expires_at <= j->now;
}

/* A kv record's checked fields. The value is either decoded already (it
 * streamed past: the arena's last bytes, from j->val_off) or base64 text. */
typedef struct kvin {
  lls_str key, b64, id;
  int decoded;
  const lls_value *md;
  int64_t created, updated, expires;
  int has_expiry;
  char who[300]; /* "kv_store[3] (key 'k')" */
} kvin;

static int kv_check(lls_ijob *j, const lls_value *rec, kvin *in) {
  char lb[200];
  if (rec->type != LLS_VOBJECT)
    return lls_ijob_fail(j, LLS_EFORMAT, "%s is not an object", lls_ijob_label(j, lb, sizeof lb));
  if (!get_string(j, rec, "key", &in->key) || !get_string(j, rec, "value", &in->b64) ||
      !get_string(j, rec, "kv_id", &in->id))
    return 0;
  if (in->key.ptr == NULL)
    return lls_ijob_fail(j, LLS_EFORMAT, "%s: no key", lls_ijob_label(j, lb, sizeof lb));
  if (!lls_text_ok(in->key, 0, LLS_MAX_KEY))
    return lls_ijob_fail(j, LLS_EFORMAT, "%s: key must be UTF-8 text without NUL bytes, at most %d "
                 "bytes", lls_ijob_label(j, lb, sizeof lb), LLS_MAX_KEY);
  snprintf(in->who, sizeof in->who, "%s (key '%.100s')", lls_ijob_label(j, lb, sizeof lb),
           in->key.ptr);
  in->decoded = j->have_value;
  j->have_value = 0;
  if (!in->decoded && in->b64.ptr == NULL)
    return lls_ijob_fail(j, LLS_EFORMAT, "%s: no value", in->who);
  if (in->decoded && j->val_bad)
    return lls_ijob_fail(j, LLS_EFORMAT, "%s: value is not base64", in->who);
  if (in->id.ptr != NULL && !lls_text_ok(in->id, 0, SIZE_MAX))
    return lls_ijob_fail(j, LLS_EFORMAT, "%s: kv_id must be UTF-8 text without NUL bytes",
                         in->who);
  in->md = field(rec, "metadata");
  if (!metadata_ok(j, in->md, in->who)) return 0;
  return get_time(j, rec, "created_at", j->now, &in->created, NULL) &&
         get_time(j, rec, "updated_at", in->created, &in->updated, NULL) &&
         get_time(j, rec, "expires_at", 0, &in->expires, &in->has_expiry);
}

/* Appends the value's bytes to the arena (unless they are there). */
static int kv_value(lls_ijob *j, const kvin *in, kvslot *s) {
  lls_buf *a = &j->kvarena;
  if (in->decoded) {
    s->voff = j->val_off;
    s->vlen = a->len - j->val_off;
    return 1;
  }
  s->voff = a->len;
  int rc = lls_b64_decode(a, in->b64.ptr, in->b64.len);
  if (rc == -2) return lls_ijob_oom(j);
  if (rc != 0) return lls_ijob_fail(j, LLS_EFORMAT, "%s: value is not base64", in->who);
  s->vlen = a->len - s->voff;
  return 1;
}

int lls_import_take_kv(lls_ijob *j, const lls_value *rec) {
  kvin in;
  if (!kv_check(j, rec, &in)) return 0;
  lls_buf *a = &j->kvarena;
  j->done++;
  if (expired(j, in.has_expiry, in.expires)) { /* skipped, but its value must be base64 too */
    kvslot probe;
    size_t mark = in.decoded ? j->val_off : a->len;
    int ok = kv_value(j, &in, &probe);
    a->len = mark;
    j->st.skipped++;
    return ok;
  }
  /* a key twice in one batch: the earlier one is written first */
  uint64_t hash = lls_hash_bytes(in.key.ptr, in.key.len);
  if (lls_hidx_find(&j->kvseen, hash, in.key.ptr, in.key.len, kv_key_eq, j)) {
    size_t keep = in.decoded ? a->len - j->val_off : 0;
    if (!flush_kv_keep(j, keep)) return 0;
    j->val_off = a->len - keep; /* where the kept value now starts */
  }
  size_t cap = j->kvcap;
  if (grow((void **)&j->kv, &j->kvcap, j->nkv, sizeof *j->kv) != 0) return lls_ijob_oom(j);
  if (j->kvcap != cap) {
    lls_kv_rec *r = realloc(j->kvrecs, j->kvcap * sizeof *r);
    if (r == NULL) return lls_ijob_oom(j);
    j->kvrecs = r;
  }
  kvslot *s = &j->kv[j->nkv];
  memset(s, 0, sizeof *s);
  if (!kv_value(j, &in, s) || !put_bytes(j, a, in.key.ptr, in.key.len, &s->koff, &s->klen))
    return 0;
  if (in.md != NULL && !put_json(j, a, in.md, &s->moff, &s->mlen)) return 0;
  if (!put_bytes(j, a, in.id.ptr, in.id.len, &s->ioff, &s->ilen)) return 0;
  s->created_at = in.created;
  s->updated_at = in.updated;
  s->expires_at = in.expires;
  if (lls_hidx_reserve(&j->kvseen, 1) != 0) return lls_ijob_oom(j);
  size_t pos = lls_hidx_probe(&j->kvseen, hash, in.key.ptr, in.key.len, kv_key_eq, j);
  j->nkv++;
  lls_hidx_put_at(&j->kvseen, pos, hash, j->nkv);
  if (j->nkv >= j->batch_size || a->len >= LLS_IMPORT_BATCH_BYTES) return flush_kv(j);
  return 1;
}

/* Reads pgvector text "[1,2.5,-3e-2]" into floats. -1 when malformed. */
int64_t lls_import_pgvector(lls_ijob *j, const char *s, size_t n) {
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
static int resolve_coll(lls_ijob *j, const char *name, const lls_coll_info *want, size_t *index) {
  char lb[200];
  size_t len = strlen(name);
  uint64_t hash = lls_hash_bytes(name, len);
  uintptr_t at = lls_hidx_find(&j->cidx, hash, name, len, coll_name_eq, j);
  if (at == 0) {
    const lls_backend_vt *vt = j->h->vt;
    if (vt->vec->coll_get == NULL || vt->vec->coll_create == NULL)
      return lls_ijob_fail(j, LLS_EINVALID, "backend %s has no vector collections", vt->name);
    if (grow((void **)&j->colls, &j->ccap, j->ncolls, sizeof *j->colls) != 0 ||
        lls_hidx_reserve(&j->cidx, 1) != 0)
      return lls_ijob_oom(j);
    ccache *c = &j->colls[j->ncolls];
    memset(c, 0, sizeof *c);
    int found;
    lls_error err;
    if (vt->vec->coll_get(j->h->b, name, &c->info, &found, &err) != 0)
      return lls_ijob_fail_backend(j, &err);
    if (found) {
      c->exists = 1;
    } else {
      c->info = *want;
      if (!j->dry_run) {
        if (vt->vec->coll_create(j->h->b, &c->info, j->now, &err) != 0)
          return lls_ijob_fail_backend(j, &err);
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
    return lls_ijob_fail(j, LLS_ECONFLICT, "%s: collection '%s' has dimension %d, the record %d",
                 lls_ijob_label(j, lb, sizeof lb), name, info->dimension, want->dimension);
  *index = at - 1;
  return 1;
}

/* The record's embedding, as packed float32 in j->floats: base64,
 * pgvector text, or a JSON array (already read by the parser). */
static int vec_embedding(lls_ijob *j, const lls_value *rec, int dim, const char *who) {
  size_t dbytes = (size_t)dim * 4;
  const lls_value *e = field(rec, "embedding");
  if (j->have_floats && (e == NULL || e->type == LLS_VNULL) && j->emb_b64) {
    /* base64, decoded as it streamed */
    if (j->emb_bad) return lls_ijob_fail(j, LLS_EFORMAT, "%s: embedding is not base64", who);
    if (j->floats.len != dbytes)
      return lls_ijob_fail(j, LLS_EFORMAT, "%s: %zu bytes of float32 (%zu numbers), dimension "
                           "says %d", who, j->floats.len, j->floats.len / 4, dim);
  } else if (j->have_floats && (e == NULL || e->type == LLS_VNULL)) {
    size_t got = j->floats.len / 4;
    if (got != (size_t)dim)
      return lls_ijob_fail(j, LLS_EFORMAT, "%s: %zu numbers, dimension says %d", who, got, dim);
  } else if (e == NULL) {
    return lls_ijob_fail(j, LLS_EFORMAT, "%s: no embedding", who);
  } else if (e->type != LLS_VSTRING) {
    return lls_ijob_fail(j, LLS_EFORMAT, "%s: embedding must be base64 text, pgvector text or an "
                 "array of numbers", who);
  } else if (e->u.s.len > 0 && e->u.s.ptr[0] == '[') {
    int64_t got = lls_import_pgvector(j, e->u.s.ptr, e->u.s.len);
    if (got == -2) return lls_ijob_oom(j);
    if (got < 0) return lls_ijob_fail(j, LLS_EFORMAT, "%s: embedding is not pgvector text", who);
    if (got != dim)
      return lls_ijob_fail(j, LLS_EFORMAT, "%s: %lld numbers, dimension says %d", who,
                           (long long)got, dim);
  } else {
    j->floats.len = 0;
    int rc = lls_b64_decode(&j->floats, e->u.s.ptr, e->u.s.len);
    if (rc == -2) return lls_ijob_oom(j);
    if (rc != 0) return lls_ijob_fail(j, LLS_EFORMAT, "%s: embedding is not base64", who);
    if (j->floats.len != dbytes)
      return lls_ijob_fail(j, LLS_EFORMAT, "%s: %zu bytes of float32 (%zu numbers), dimension "
                           "says %d", who, j->floats.len, j->floats.len / 4, dim);
  }
  for (int i = 0; i < dim; i++) {
    float f;
    memcpy(&f, j->floats.data + 4 * (size_t)i, 4);
    if (!isfinite(f))
      return lls_ijob_fail(j, LLS_EFORMAT, "%s: embedding[%d] is not a finite float32", who, i);
  }
  return 1;
}

/* The collection a vector record names (or "vectors_<dimension>"), with
 * its parameters, into *want; its metadata and scope checked. */
static int vec_target(lls_ijob *j, const lls_value *rec, int dim, const char *who,
                      lls_coll_info *want, lls_str *scope) {
  lls_str coll, metric;
  const lls_value *md = field(rec, "metadata");
  if (md != NULL && md->type != LLS_VOBJECT)
    return lls_ijob_fail(j, LLS_EFORMAT, "%s: metadata must be an object", who);
  if (!metadata_ok(j, md, who)) return 0;
  if (!get_string(j, rec, "scope", scope) || !get_string(j, rec, "collection", &coll) ||
      !get_string(j, rec, "metric", &metric))
    return 0;
  if (scope->ptr != NULL && !lls_text_ok(*scope, 1, LLS_MAX_SCOPE))
    return lls_ijob_fail(j, LLS_EFORMAT, "%s: scope must be 1..%d bytes of UTF-8 without NUL", who,
                         LLS_MAX_SCOPE);
  memset(want, 0, sizeof *want);
  if (coll.ptr == NULL) {
    snprintf(want->name, sizeof want->name, "vectors_%d", dim);
  } else {
    if (!lls_name_ok(coll))
      return lls_ijob_fail(j, LLS_EFORMAT, "%s: collection name '%.100s' is not 1..255 letters, "
                   "digits and _ - . : /", who, coll.ptr);
    memcpy(want->name, coll.ptr, coll.len);
  }
  want->dimension = dim;
  want->metric = 0;
  if (metric.ptr != NULL && (want->metric = lls_metric_parse(metric.ptr, metric.len)) < 0)
    return lls_ijob_fail(j, LLS_EFORMAT, "%s: metric must be \"cosine\", \"l2\", \"ip\" or \"l1\" "
                         "(or \"euclidean\", \"inner_product\", \"manhattan\")",
                 who);
  if (!get_int(j, rec, "m", 2, 128, 16, &want->m) ||
      !get_int(j, rec, "ef_construction", 1, 10000, 200, &want->ef_construction) ||
      !get_int(j, rec, "ef_search", 1, 100000, 50, &want->ef_search))
    return 0;
  return 1;
}

/* Buffers a checked vector record for collection ci, writing the batch
 * first when the collection changes or the id repeats. */
static int vec_buffer(lls_ijob *j, const lls_value *rec, size_t ci, lls_str id, lls_str scope,
                      const int64_t times[4], int has_event) {
  size_t dbytes = (size_t)j->colls[ci].info.dimension * 4;
  const lls_value *md = field(rec, "metadata");
  /* a new collection, a repeated id or a full batch: write what is buffered */
  uint64_t hash = lls_hash_bytes(id.ptr, id.len);
  if (j->nvec > 0 && (ci != j->vcoll || lls_hidx_find(&j->vseen, hash, id.ptr, id.len,
                                                      vec_id_eq, j)))
    if (!flush_vec(j)) return 0;
  j->vcoll = ci;
  size_t cap = j->vcap;
  if (grow((void **)&j->vs, &j->vcap, j->nvec, sizeof *j->vs) != 0) return lls_ijob_oom(j);
  if (j->vcap != cap) {
    lls_vec_row *r = realloc(j->vrows, j->vcap * sizeof *r);
    if (r != NULL) j->vrows = r;
    lls_str *ids = realloc(j->vids, j->vcap * sizeof *ids);
    if (ids != NULL) j->vids = ids;
    unsigned char *pr = realloc(j->vpresent, j->vcap);
    if (pr != NULL) j->vpresent = pr;
    if (r == NULL || ids == NULL || pr == NULL) return lls_ijob_oom(j);
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
  s->created_at = times[0];
  s->updated_at = times[1];
  s->event_time = times[2];
  s->has_event_time = has_event;
  s->expires_at = times[3];
  if (lls_hidx_reserve(&j->vseen, 1) != 0) return lls_ijob_oom(j);
  size_t pos = lls_hidx_probe(&j->vseen, hash, id.ptr, id.len, vec_id_eq, j);
  j->nvec++;
  lls_hidx_put_at(&j->vseen, pos, hash, j->nvec);
  if (j->nvec >= j->batch_size || a->len >= LLS_IMPORT_BATCH_BYTES) return flush_vec(j);
  return 1;
}


int lls_import_take_vec(lls_ijob *j, const lls_value *rec) {
  char lb[200], who[300];
  if (rec->type != LLS_VOBJECT)
    return lls_ijob_fail(j, LLS_EFORMAT, "%s is not an object", lls_ijob_label(j, lb, sizeof lb));
  lls_str id, scope;
  if (!get_string(j, rec, "id", &id)) return 0;
  if (id.ptr == NULL || !lls_text_ok(id, 1, LLS_MAX_ID))
    return lls_ijob_fail(j, LLS_EFORMAT, "%s: id must be a string of 1..%d bytes without NUL",
                 lls_ijob_label(j, lb, sizeof lb), LLS_MAX_ID);
  snprintf(who, sizeof who, "%s (id '%.*s')", lls_ijob_label(j, lb, sizeof lb),
           (int)(id.len > 100 ? 100 : id.len), id.ptr);
  int dim;
  if (!get_int(j, rec, "dimension", 1, LLS_MAX_DIM, j->dim, &dim)) return 0;
  if (dim != j->dim)
    return lls_ijob_fail(j, LLS_EFORMAT, "%s: dimension %d under key \"%s\"", who, dim, j->dimkey);
  if (!vec_embedding(j, rec, dim, who)) return 0;
  lls_coll_info want;
  if (!vec_target(j, rec, dim, who, &want, &scope)) return 0;
  int64_t t[4];
  int has_event, has_expiry;
  if (!get_time(j, rec, "created_at", j->now, &t[0], NULL) ||
      !get_time(j, rec, "updated_at", t[0], &t[1], NULL) ||
      !get_time(j, rec, "event_time", 0, &t[2], &has_event) ||
      !get_time(j, rec, "expires_at", 0, &t[3], &has_expiry))
    return 0;
  /* the collection is made even when the record has expired: the file
   * says it exists */
  size_t ci = 0;
  if (!resolve_coll(j, want.name, &want, &ci)) return 0;
  j->done++;
  if (expired(j, has_expiry, t[3])) {
    j->st.skipped++;
    return 1;
  }
  return vec_buffer(j, rec, ci, id, scope, t, has_event);
}

/* A collection declared in data.vector_collections: created unless the
 * store has it (then it must have the same dimension). */
int lls_import_take_coll(lls_ijob *j, const lls_value *rec) {
  char lb[200];
  if (rec->type != LLS_VOBJECT)
    return lls_ijob_fail(j, LLS_EFORMAT, "%s is not an object", lls_ijob_label(j, lb, sizeof lb));
  lls_str name, metric;
  if (!get_string(j, rec, "name", &name) || !get_string(j, rec, "metric", &metric)) return 0;
  if (name.ptr == NULL || !lls_name_ok(name))
    return lls_ijob_fail(j, LLS_EFORMAT, "%s: name must be 1..255 letters, digits and _ - . : /",
                 lls_ijob_label(j, lb, sizeof lb));
  lls_coll_info want;
  memset(&want, 0, sizeof want);
  memcpy(want.name, name.ptr, name.len);
  if (field(rec, "dimension") == NULL)
    return lls_ijob_fail(j, LLS_EFORMAT, "%s: no dimension", lls_ijob_label(j, lb, sizeof lb));
  if (!get_int(j, rec, "dimension", 1, LLS_MAX_DIM, 0, &want.dimension) ||
      !get_int(j, rec, "m", 2, 128, 16, &want.m) ||
      !get_int(j, rec, "ef_construction", 1, 10000, 200, &want.ef_construction) ||
      !get_int(j, rec, "ef_search", 1, 100000, 50, &want.ef_search))
    return 0;
  if (metric.ptr != NULL && (want.metric = lls_metric_parse(metric.ptr, metric.len)) < 0)
    return lls_ijob_fail(j, LLS_EFORMAT, "%s: metric must be \"cosine\", \"l2\", \"ip\" or \"l1\" "
                         "(or \"euclidean\", \"inner_product\", \"manhattan\")",
                 lls_ijob_label(j, lb, sizeof lb));
  size_t ci;
  return resolve_coll(j, want.name, &want, &ci);
}

/* 1 when the store already holds records of the current section. */
static int section_exists(lls_ijob *j, int *exists) {
  lls_rows rows = {0};
  lls_error err;
  lls_str name = {j->secname.data, j->secname.len};
  int rc = j->h->vt->xport->sec_dump(j->h->b, name, INT64_MIN, 1, &rows, &err);
  if (rc != 0) {
    lls_rows_free(&rows);
    return lls_ijob_fail_backend(j, &err);
  }
  *exists = 0;
  if (rows.count > 0) {
    lls_str k = lls_row_key(&rows, 0);
    *exists = k.len == name.len && memcmp(k.ptr, name.ptr, name.len) == 0;
  }
  lls_rows_free(&rows);
  return 1;
}

/* A component's section starts: its records go to the codec, one by one,
 * inside the import's transaction. Passthrough records a store kept under
 * the same name (from before the component existed) are replaced by the
 * file's section when the file wins. */
static int begin_component(lls_ijob *j, lls_str name) {
  j->cpart = -1;
  if (j->dry_run) return 1;
  lls_error err;
  if ((j->cb = lls_backend_components(j->h->b, &err)) == NULL)
    return lls_ijob_fail_backend(j, &err);
  const lls_xport_ops *x = j->h->vt->xport;
  if (j->on_conflict == LLS_CONFLICT_REPLACE && x->sec_clear != NULL &&
      x->sec_clear(j->h->b, name, &err) != 0)
    return lls_ijob_fail_backend(j, &err);
  return 1;
}

/* Nesting of v: 0 for a scalar, 1 + the deepest member for an object or
 * array. Stops counting past limit, so a hostile tree costs no more. */
static int depth_of(const lls_value *v, int limit) {
  if (limit < 0) return 1;
  int d = 0;
  if (v->type == LLS_VARRAY) {
    for (size_t i = 0; i < v->u.a.n && d <= limit; i++) {
      int c = depth_of(v->u.a.items[i], limit - 1);
      if (c > d) d = c;
    }
    return d + 1;
  }
  if (v->type == LLS_VOBJECT) {
    for (size_t i = 0; i < v->u.o.n && d <= limit; i++) {
      int c = depth_of(v->u.o.members[i].value, limit - 1);
      if (c > d) d = c;
    }
    return d + 1;
  }
  return 0;
}

/* One record of a component's section (see begin_component). */
static int take_component(lls_ijob *j, const lls_value *v) {
  const lls_section_codec *c = j->codec;
  lls_str name = {c->name, strlen(c->name)};
  char lb[128];
  j->done++;
  if (c->parts == NULL && j->ps != P_SEC)
    return lls_ijob_fail(j, LLS_EFORMAT, "data.%s is not an array", c->name);
  if (c->parts != NULL && j->ps != P_CPART)
    return lls_ijob_fail(j, LLS_EFORMAT, "data.%s is not an object of arrays (%s, ...)",
                         c->name, c->parts[0]);
  int part = c->parts != NULL ? j->cpart : 0;
  /* what the store takes its export must write: a record nested deeper
   * than JSON's limit is refused here, with the encoder's path */
  if (depth_of(v, LLS_MAX_DEPTH) > LLS_MAX_DEPTH) {
    lls_buf tmp = {0};
    char msg[300];
    if (lls_json_encode(v, &tmp, msg, sizeof msg) == 0) snprintf(msg, sizeof msg, "too deep");
    lls_buf_free(&tmp);
    return lls_ijob_fail(j, LLS_EFORMAT, "%s: %s", lls_ijob_label(j, lb, sizeof lb), msg);
  }
  int written = 1;
  {
    lls_error err; /* a dry run checks the record too: cb is NULL then */
    if (c->load(j->dry_run ? NULL : j->cb, part, v, j->on_conflict, j->now, &written, &err) != 0) {
      if (err.code == LLS_EFORMAT || err.code == LLS_ECONFLICT || err.code == LLS_EINVALID)
        return lls_ijob_fail(j, err.code == LLS_EINVALID ? LLS_EFORMAT : err.code, "%s: %s",
                             lls_ijob_label(j, lb, sizeof lb), err.message);
      return lls_ijob_fail_backend(j, &err);
    }
  }
  if (!written) {
    j->st.skipped++;
    return 1;
  }
  if (lls_xstats_add(&j->st, name, 1) != 0) return lls_ijob_oom(j);
  if (c->parts != NULL) lls_xstats_part(&j->st, name, c->parts[part], 1);
  return 1;
}

/* A passthrough section starts (its key is in j->secname). */
int lls_import_begin_section(lls_ijob *j) {
  lls_str name = {j->secname.data, j->secname.len};
  if (!lls_text_ok(name, 1, LLS_MAX_SECTION))
    return lls_ijob_fail(j, LLS_EFORMAT, "data: section name must be 1..%d bytes without NUL",
                 LLS_MAX_SECTION);
  /* records of an earlier occurrence of the same key go first */
  if (!flush_sec(j)) return 0;
  if (lls_xstats_add(&j->st, name, 0) != 0) return lls_ijob_oom(j);
  j->sec_skip = 0;
  j->codec = lls_section_find(name.ptr, name.len);
  if (j->codec != NULL) return begin_component(j, name);
  if (j->dry_run) return 1;
  const lls_backend_vt *vt = j->h->vt;
  if (vt->xport->sec_put == NULL || vt->xport->sec_clear == NULL || vt->xport->sec_dump == NULL)
    return lls_ijob_fail(j, LLS_EINVALID, "backend %s cannot store section '%.*s'", vt->name,
                 (int)name.len, name.ptr);
  lls_error err;
  if (j->on_conflict == LLS_CONFLICT_REPLACE) {
    if (vt->xport->sec_clear(j->h->b, name, &err) != 0) return lls_ijob_fail_backend(j, &err);
    return 1;
  }
  int exists = 0;
  if (!section_exists(j, &exists)) return 0;
  if (exists && j->on_conflict == LLS_CONFLICT_ERROR)
    return lls_ijob_fail(j, LLS_ECONFLICT, "section '%.*s' already holds records", (int)name.len,
                 name.ptr);
  j->sec_skip = exists;
  return 1;
}

int lls_import_take_sec(lls_ijob *j, const lls_value *v) {
  if (j->codec != NULL) return take_component(j, v);
  lls_str name = {j->secname.data, j->secname.len};
  int64_t ord = j->sec_single ? -1 : j->idx;
  int64_t count = j->sec_single ? lls_xstats_single(&j->st, name, v) : 1;
  j->done++;
  if (j->sec_skip) {
    j->st.skipped += count;
    return 1;
  }
  if (lls_xstats_add(&j->st, name, count) != 0) return lls_ijob_oom(j);
  size_t cap = j->scap;
  if (grow((void **)&j->ss, &j->scap, j->nsec, sizeof *j->ss) != 0) return lls_ijob_oom(j);
  if (j->scap != cap) {
    lls_str *a = realloc(j->snames, j->scap * sizeof *a);
    if (a != NULL) j->snames = a;
    lls_str *b = realloc(j->sjson, j->scap * sizeof *b);
    if (b != NULL) j->sjson = b;
    int64_t *c = realloc(j->sords, j->scap * sizeof *c);
    if (c != NULL) j->sords = c;
    if (a == NULL || b == NULL || c == NULL) return lls_ijob_oom(j);
  }
  secslot *s = &j->ss[j->nsec];
  if (!put_bytes(j, &j->sarena, name.ptr, name.len, &s->noff, &s->nlen) ||
      !put_json(j, &j->sarena, v, &s->joff, &s->jlen))
    return 0;
  s->ord = ord;
  j->nsec++;
  if (j->nsec >= j->batch_size || j->sarena.len >= LLS_IMPORT_BATCH_BYTES) return flush_sec(j);
  return 1;
}

