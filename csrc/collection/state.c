/*
 * state.c -- the in-memory side of a vector collection, and keeping it
 * in step with the backend's rows. No Lua here (lua/collection*.c are the
 * API).
 *
 * The backend's rows are the truth. An open collection keeps an HNSW graph
 * (vector/hnsw.c) plus, per slot, the entry's id, scope, metadata and
 * times, so searches and filters never touch the backend:
 *   - each backend write bumps the collection's change sequence (seq); the
 *     API calls coll_catch_up before every operation, which replays the
 *     changes other handles made since the seq this memory reflects;
 *   - coll_load starts from the latest snapshot (graph + slot -> id map)
 *     when the backend keeps one and streams the rows over it: rows the
 *     snapshot already holds cost no graph work, so reopening does not
 *     rebuild; a corrupt snapshot is set aside and the graph rebuilt.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collection/state.h"
#include "base/limits.h"
#include "value/json.h"

#define LOAD_CHUNK 4096       /* new rows added to the graph per batch */
#define PARALLEL_ADD_MIN 256 /* smaller writes are not worth starting threads */

static const char SNAP_MAGIC[8] = {'L', 'L', 'S', 'C', 'O', 'L', 'L', '1'};

static int entry_has_id(void *ud, uintptr_t val, const char *key, size_t klen) {
  const coll *c = ud;
  const entry *e = &c->entries[val - 1];
  return e->idlen == klen && memcmp(e->id, key, klen) == 0;
}

static int scope_has_name(void *ud, uintptr_t val, const char *key, size_t klen) {
  const coll *c = ud;
  const scope_stat *s = &c->scopes[val - 1];
  return s->len == klen && memcmp(s->name, key, klen) == 0;
}

/* Slot of id, or -1. */
int64_t coll_find_slot(const coll *c, const char *id, size_t len) {
  uintptr_t v = lls_hidx_find(&c->ids, lls_hash_bytes(id, len), id, len, entry_has_id,
                              (void *)c);
  return v ? (int64_t)v - 1 : -1;
}

/* Index of a scope name, creating it; -1 when out of memory. */
static int64_t scope_index(coll *c, const char *name, size_t len) {
  uint64_t h = lls_hash_bytes(name, len);
  uintptr_t v = lls_hidx_find(&c->scope_ids, h, name, len, scope_has_name, c);
  if (v) return (int64_t)v - 1;
  if (lls_hidx_reserve(&c->scope_ids, 1) != 0) return -1;
  if (c->nscopes == c->scap) {
    size_t cap = c->scap ? c->scap * 2 : 8;
    scope_stat *s = realloc(c->scopes, cap * sizeof *s);
    if (s == NULL) return -1;
    c->scopes = s;
    c->scap = cap;
  }
  scope_stat *s = &c->scopes[c->nscopes];
  s->name = malloc(len + 1);
  if (s->name == NULL) return -1;
  memcpy(s->name, name, len);
  s->name[len] = '\0';
  s->len = len;
  s->count = s->bytes = 0;
  size_t pos = lls_hidx_probe(&c->scope_ids, h, name, len, scope_has_name, c);
  lls_hidx_put_at(&c->scope_ids, pos, h, ++c->nscopes);
  return (int64_t)c->nscopes - 1;
}

/* Scope index of an existing scope name, or -1. */
int64_t coll_scope_lookup(const coll *c, const char *name, size_t len) {
  uintptr_t v = lls_hidx_find(&c->scope_ids, lls_hash_bytes(name, len), name, len,
                              scope_has_name, (void *)c);
  return v ? (int64_t)v - 1 : -1;
}


static void scope_account(coll *c, const entry *e, int sign) {
  scope_stat *s = &c->scopes[e->scope];
  s->count += sign;
  s->bytes += sign * (int64_t)(coll_vector_bytes(c) + e->meta_len);
  if (e->expires_at) c->expiring += sign;
}

static int ensure_entries(coll *c, size_t n) {
  if (n <= c->nentries) return 0;
  size_t cap = c->nentries ? c->nentries : 64;
  while (cap < n) cap *= 2;
  entry *e = realloc(c->entries, cap * sizeof *e);
  if (e == NULL) return -1;
  memset(e + c->nentries, 0, (cap - c->nentries) * sizeof *e);
  c->entries = e;
  c->nentries = cap;
  return 0;
}

static void entry_clear(entry *e) {
  free(e->id);
  lls_value_free(e->meta);
  memset(e, 0, sizeof *e);
}

/* Forgets slot's entry and its id (the graph slot is the caller's). */
static void forget_entry(coll *c, uint32_t slot) {
  entry *e = &c->entries[slot];
  if (e->id == NULL) return;
  if (e->meta) scope_account(c, e, -1);
  size_t pos = lls_hidx_probe(&c->ids, lls_hash_bytes(e->id, e->idlen), e->id, e->idlen,
                              entry_has_id, c);
  if (c->ids.slots[pos].val) lls_hidx_remove_at(&c->ids, pos);
  entry_clear(e);
}

void coll_free(coll *c) {
  if (c == NULL) return;
  for (size_t i = 0; i < c->nentries; i++) entry_clear(&c->entries[i]);
  free(c->entries);
  for (size_t i = 0; i < c->nscopes; i++) free(c->scopes[i].name);
  free(c->scopes);
  lls_hidx_free(&c->ids);
  lls_hidx_free(&c->scope_ids);
  hnsw_free(c->ix);
  free(c);
}

/* ------------------------------------------------- applying backend rows */

static int hnsw_fail(int rc, lls_error *err) {
  return lls_error_set(err, rc == HNSW_ENOMEM ? LLS_EIO : LLS_EINVALID, "vector index: %s",
                       hnsw_strerror(rc));
}

/* Rows whose vectors join the graph together (hnsw_add_batch), so a load
 * of many new rows uses every core. */
typedef struct pending {
  float *vecs;
  entry *entries;
  size_t n;
} pending;

/* Fills e (id, scope, metadata, times) from row r. 0 or -1 + err. */
static int entry_from_row(coll *c, const lls_vec_row *r, entry *e, lls_error *err) {
  char msg[200];
  memset(e, 0, sizeof *e);
  e->meta = lls_json_decode(r->metadata.ptr, r->metadata.len, msg, sizeof msg);
  if (e->meta == NULL)
    return lls_error_set(err, LLS_EFORMAT, "row '%.*s': metadata: %s", (int)r->id.len,
                         r->id.ptr, msg);
  e->meta_len = r->metadata.len;
  e->id = malloc(r->id.len + 1);
  int64_t scope = scope_index(c, r->scope.ptr, r->scope.len);
  if (e->id == NULL || scope < 0) {
    entry_clear(e);
    return lls_error_oom(err);
  }
  memcpy(e->id, r->id.ptr, r->id.len);
  e->id[r->id.len] = '\0';
  e->idlen = r->id.len;
  e->scope = (uint32_t)scope;
  e->created_at = r->created_at;
  e->updated_at = r->updated_at;
  e->event_time = r->event_time;
  e->has_event_time = r->has_event_time;
  e->expires_at = r->expires_at;
  return 0;
}

/* Installs e at slot (taking ownership), replacing what was there. */
static int install_entry(coll *c, uint32_t slot, entry *e, lls_error *err) {
  if (ensure_entries(c, (size_t)slot + 1) != 0 || lls_hidx_reserve(&c->ids, 1) != 0) {
    entry_clear(e);
    return lls_error_oom(err);
  }
  forget_entry(c, slot);
  c->entries[slot] = *e;
  size_t pos = lls_hidx_probe(&c->ids, lls_hash_bytes(e->id, e->idlen), e->id, e->idlen,
                              entry_has_id, c);
  lls_hidx_put_at(&c->ids, pos, lls_hash_bytes(e->id, e->idlen), (uintptr_t)slot + 1);
  scope_account(c, e, +1);
  return 0;
}

static int flush_pending(coll *c, pending *p, lls_error *err) {
  if (p->n == 0) return 0;
  uint32_t *slots = malloc(p->n * sizeof *slots);
  if (slots == NULL) return lls_error_oom(err);
  int rc = hnsw_add_batch(c->ix, p->vecs, p->n, slots, c->threads);
  if (rc < 0) {
    free(slots);
    return hnsw_fail(rc, err);
  }
  int status = 0;
  for (size_t i = 0; i < p->n; i++) {
    if (status == 0)
      status = install_entry(c, slots[i], &p->entries[i], err);
    else
      entry_clear(&p->entries[i]);
  }
  free(slots);
  p->n = 0;
  return status;
}

static void pending_free(pending *p) {
  for (size_t i = 0; i < p->n; i++) entry_clear(&p->entries[i]);
  free(p->vecs);
  free(p->entries);
  memset(p, 0, sizeof *p);
}

/* Applies one row version or tombstone. New rows go through `p` when given
 * (batched graph inserts), one by one otherwise. */
static int apply_row(coll *c, const lls_vec_row *r, pending *p, lls_error *err) {
  int64_t slot = coll_find_slot(c, r->id.ptr, r->id.len);
  if (r->deleted) {
    if (slot >= 0) {
      hnsw_delete(c->ix, (uint32_t)slot);
      forget_entry(c, (uint32_t)slot);
    }
    return 0;
  }
  size_t dim = (size_t)c->info.dimension;
  if (r->vector.len != dim * 4)
    return lls_error_set(err, LLS_EFORMAT, "row '%.*s': vector has %zu bytes, expected %zu",
                         (int)r->id.len, r->id.ptr, r->vector.len, dim * 4);
  entry e;
  if (entry_from_row(c, r, &e, err) != 0) return -1;
  if (slot >= 0) {
    /* A snapshot slot or a changed row: the graph is redone only when the
     * vector itself changed. */
    const float *cur = hnsw_vector(c->ix, (uint32_t)slot);
    if (cur == NULL || memcmp(cur, r->vector.ptr, dim * 4) != 0) {
      float *v = malloc(dim * sizeof *v);
      if (v == NULL) return entry_clear(&e), lls_error_oom(err);
      memcpy(v, r->vector.ptr, dim * 4);
      int rc = hnsw_update(c->ix, (uint32_t)slot, v);
      free(v);
      if (rc < 0) return entry_clear(&e), hnsw_fail(rc, err);
    }
    return install_entry(c, (uint32_t)slot, &e, err);
  }
  if (p != NULL) {
    if (p->vecs == NULL) {
      p->vecs = malloc(LOAD_CHUNK * dim * sizeof(float));
      p->entries = malloc(LOAD_CHUNK * sizeof(entry));
      if (p->vecs == NULL || p->entries == NULL) return entry_clear(&e), lls_error_oom(err);
    }
    memcpy(p->vecs + p->n * dim, r->vector.ptr, dim * 4);
    p->entries[p->n++] = e;
    return p->n == LOAD_CHUNK ? flush_pending(c, p, err) : 0;
  }
  float *v = malloc(dim * sizeof *v);
  if (v == NULL) return entry_clear(&e), lls_error_oom(err);
  memcpy(v, r->vector.ptr, dim * 4);
  uint32_t s;
  int rc = hnsw_add(c->ix, v, &s);
  free(v);
  if (rc < 0) return entry_clear(&e), hnsw_fail(rc, err);
  return install_entry(c, s, &e, err);
}

typedef struct load_ctx {
  coll *c;
  pending *p;
} load_ctx;

static int load_sink(void *ud, const lls_vec_row *row, lls_error *err) {
  load_ctx *ctx = ud;
  return apply_row(ctx->c, row, ctx->p, err);
}

/* ------------------------------------------------------------ snapshots */

/* Snapshot blob: magic, seq, the slot -> id map, its hash, then the graph
 * as hnsw_serialize writes it (which has its own CRC-32C). */
typedef struct reader {
  const unsigned char *p;
  size_t left;
} reader;

static int read_bytes(void *ud, void *out, size_t n) {
  reader *r = ud;
  if (n > r->left) return -1;
  memcpy(out, r->p, n);
  r->p += n;
  r->left -= n;
  return 0;
}

static int write_buf(void *ud, const void *p, size_t n) {
  return lls_buf_append(ud, p, n);
}

static int encode_snapshot(const coll *c, lls_buf *out) {
  out->len = 0;
  uint64_t seq = (uint64_t)c->seq;
  uint32_t n = 0;
  for (size_t i = 0; i < c->nentries; i++) n += c->entries[i].id != NULL;
  if (lls_buf_append(out, SNAP_MAGIC, 8) != 0 || lls_buf_append(out, &seq, 8) != 0 ||
      lls_buf_append(out, &n, 4) != 0)
    return -1;
  size_t map_start = out->len;
  for (size_t i = 0; i < c->nentries; i++) {
    const entry *e = &c->entries[i];
    if (e->id == NULL) continue;
    uint32_t slot = (uint32_t)i, len = (uint32_t)e->idlen;
    if (lls_buf_append(out, &slot, 4) != 0 || lls_buf_append(out, &len, 4) != 0 ||
        lls_buf_append(out, e->id, e->idlen) != 0)
      return -1;
  }
  uint64_t h = lls_hash_bytes(out->data + map_start, out->len - map_start);
  if (lls_buf_append(out, &h, 8) != 0) return -1;
  return hnsw_serialize(c->ix, write_buf, out) == HNSW_OK ? 0 : -1;
}

/* Loads a snapshot blob: graph into c->ix, ids into unconfirmed entries
 * (meta NULL). Returns 0, or -1 with a reason in c->snapshot_error (the
 * caller then rebuilds from rows). */
static int decode_snapshot(coll *c, const lls_buf *blob, int64_t *seq) {
  reader r = {(const unsigned char *)blob->data, blob->len};
  char magic[8];
  uint64_t s;
  uint32_t n;
  const char *why = "truncated header";
  if (read_bytes(&r, magic, 8) != 0 || read_bytes(&r, &s, 8) != 0 ||
      read_bytes(&r, &n, 4) != 0)
    goto bad;
  why = "not a collection snapshot";
  if (memcmp(magic, SNAP_MAGIC, 8) != 0) goto bad;
  const unsigned char *map_start = r.p;
  for (uint32_t i = 0; i < n; i++) {
    uint32_t slot, len;
    why = "truncated id map";
    if (read_bytes(&r, &slot, 4) != 0 || read_bytes(&r, &len, 4) != 0 || len > r.left ||
        len == 0 || len > LLS_MAX_ID)
      goto bad;
    r.p += len;
    r.left -= len;
    (void)slot;
  }
  uint64_t h;
  why = "id map checksum mismatch";
  if (read_bytes(&r, &h, 8) != 0 ||
      h != lls_hash_bytes((const char *)map_start, (size_t)(r.p - 8 - map_start)))
    goto bad;
  reader g = r;
  char msg[120];
  hnsw_index *ix = hnsw_deserialize(read_bytes, &g, msg, sizeof msg);
  if (ix == NULL) {
    snprintf(c->snapshot_error, sizeof c->snapshot_error, "graph: %s", msg);
    return -1;
  }
  why = "snapshot does not match the collection's parameters";
  if ((int)hnsw_dim(ix) != c->info.dimension || (int)hnsw_metric(ix) != c->info.metric) {
    hnsw_free(ix);
    goto bad;
  }
  hnsw_free(c->ix);
  c->ix = ix;
  /* Second pass: the map is known good now. */
  r.p = map_start;
  r.left = blob->len - (size_t)(map_start - (const unsigned char *)blob->data);
  for (uint32_t i = 0; i < n; i++) {
    uint32_t slot = 0, len = 0;
    read_bytes(&r, &slot, 4); /* checked in the first pass */
    read_bytes(&r, &len, 4);
    why = "id map names a slot the graph does not hold";
    if (!hnsw_is_live(ix, slot) || coll_find_slot(c, (const char *)r.p, len) >= 0) goto bad_map;
    why = "out of memory";
    if (ensure_entries(c, (size_t)slot + 1) != 0 || lls_hidx_reserve(&c->ids, 1) != 0)
      goto bad_map;
    entry *e = &c->entries[slot];
    e->id = malloc(len + 1);
    if (e->id == NULL) goto bad_map;
    memcpy(e->id, r.p, len);
    e->id[len] = '\0';
    e->idlen = len;
    uint64_t hh = lls_hash_bytes(e->id, len);
    lls_hidx_put_at(&c->ids, lls_hidx_probe(&c->ids, hh, e->id, len, entry_has_id, c), hh,
                    (uintptr_t)slot + 1);
    r.p += len;
    r.left -= len;
  }
  *seq = (int64_t)s;
  return 0;
bad_map:
  for (size_t i = 0; i < c->nentries; i++) forget_entry(c, (uint32_t)i);
bad:
  snprintf(c->snapshot_error, sizeof c->snapshot_error, "%s", why);
  return -1;
}

/* ------------------------------------------------- loading and catching up */

static uint64_t seed_of(const coll *c) { return (uint64_t)c->info.id * 0x9E3779B97F4A7C15ULL + 1; }

/* Empties the in-memory state and starts a fresh graph. */
int coll_reset(coll *c, lls_error *err) {
  for (size_t i = 0; i < c->nentries; i++) entry_clear(&c->entries[i]);
  for (size_t i = 0; i < c->nscopes; i++) free(c->scopes[i].name);
  c->nscopes = 0;
  c->expiring = 0;
  lls_hidx_free(&c->ids);
  lls_hidx_free(&c->scope_ids);
  hnsw_free(c->ix);
  c->ix = hnsw_new((size_t)c->info.dimension, (lls_metric)c->info.metric,
                   (size_t)c->info.m, (size_t)c->info.ef_construction, 0, seed_of(c));
  if (c->ix == NULL) return lls_error_oom(err);
  return 0;
}

typedef struct seq_sink {
  coll *c;
  int64_t max_seq;
} seq_sink;

static int catch_up_sink(void *ud, const lls_vec_row *row, lls_error *err) {
  seq_sink *s = ud;
  if (row->seq > s->max_seq) s->max_seq = row->seq;
  return apply_row(s->c, row, NULL, err);
}



int coll_catch_up(lls_backend *b, coll *c, lls_error *err) {
  int64_t seq, count;
  if (b->vt->vec->coll_seq(b, c->info.id, &seq, &count, err) != 0) return -1;
  if (seq == c->seq) return 0;
  seq_sink s = {c, seq};
  if (b->vt->vec->load(b, c->info.id, c->seq, catch_up_sink, &s, err) != 0) {
    /* History pruned (or none kept): start over. */
    if (err->code == LLS_EVERSION) return coll_load(b, c, err);
    c->stale = 1;
    return -1;
  }
  c->seq = s.max_seq;
  c->catch_ups++;
  return 0;
}

int coll_load(lls_backend *b, coll *c, lls_error *err) {
  const lls_backend_vt *vt = b->vt;
  int64_t seq0, count;
  c->from_snapshot = c->rebuilt = 0;
  c->snapshot_error[0] = '\0';
  c->snap_seq = -1;
  c->loads++;
  if (coll_reset(c, err) != 0) return -1;
  if (vt->vec->coll_seq(b, c->info.id, &seq0, &count, err) != 0) return -1;
  if (vt->vec->snap_load != NULL) {
    lls_buf blob = {0};
    int64_t snap_seq = 0;
    int found = 0;
    int rc = vt->vec->snap_load(b, c->info.id, &blob, &snap_seq, &found, err);
    if (rc == 0 && found) {
      int64_t s;
      if (decode_snapshot(c, &blob, &s) == 0) {
        c->from_snapshot = 1;
        c->snap_seq = snap_seq;
      } else {
        c->rebuilt = 1;
        rc = coll_reset(c, err);
      }
    }
    lls_buf_free(&blob);
    if (rc != 0) return -1;
  }
  pending p = {0};
  load_ctx ctx = {c, &p};
  int rc = vt->vec->load(b, c->info.id, 0, load_sink, &ctx, err);
  if (rc == 0) rc = flush_pending(c, &p, err);
  pending_free(&p);
  if (rc != 0) {
    c->stale = 1;
    return -1;
  }
  /* Snapshot slots no row confirmed were deleted after the snapshot. */
  for (size_t i = 0; i < c->nentries; i++) {
    if (c->entries[i].id != NULL && c->entries[i].meta == NULL) {
      hnsw_delete(c->ix, (uint32_t)i);
      forget_entry(c, (uint32_t)i);
    }
  }
  c->seq = seq0;
  c->stale = 0;
  return coll_catch_up(b, c, err);
}

int coll_save_snapshot(lls_backend *b, coll *c, int in_txn, lls_error *err) {
  if (b->vt->vec->snap_save == NULL || c->seq == c->snap_seq || in_txn || c->stale)
    return 0;
  lls_buf blob = {0};
  if (encode_snapshot(c, &blob) != 0) {
    lls_buf_free(&blob);
    return lls_error_oom(err);
  }
  int rc = b->vt->vec->snap_save(b, c->info.id, c->seq, blob.data, blob.len, err);
  lls_buf_free(&blob);
  if (rc == 0) c->snap_seq = c->seq;
  return rc;
}


/* ------------------------------------------------------- for the API */

void coll_remove(coll *c, uint32_t slot) {
  hnsw_delete(c->ix, slot);
  forget_entry(c, slot);
}

int64_t coll_live_count(const coll *c, int64_t now) {
  int64_t n = (int64_t)hnsw_count(c->ix);
  if (c->expiring == 0) return n;
  for (size_t i = 0; i < c->nentries; i++)
    if (c->entries[i].id && coll_expired(&c->entries[i], now)) n--;
  return n;
}

int coll_apply_rows(coll *c, const lls_vec_row *rows, size_t n, lls_error *err) {
  pending p = {0};
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++)
    rc = apply_row(c, &rows[i], n >= PARALLEL_ADD_MIN ? &p : NULL, err);
  if (rc == 0) rc = flush_pending(c, &p, err);
  pending_free(&p);
  return rc;
}

void coll_after_write(lls_backend *b, coll *c, int64_t before, int64_t seq) {
  lls_error err;
  if (seq == before + 1) {
    c->seq = seq;
    return;
  }
  c->seq = before;
  if (coll_catch_up(b, c, &err) != 0) c->stale = 1;
}
