/*
 * xport.c -- the PostgreSQL backend's export/import slots
 * (lls_xport_ops). Dumps are pages of a primary-key range read in one
 * statement each; loads are chunked statements inside one unit of work.
 */
#include "backends/postgres/xport.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backends/postgres/conn.h"
#include "backends/postgres/vectors.h"

/* Array parameters of kv_load (in pg->varr, which vector writes also use:
 * a handle runs one call at a time). */
enum { K_KEY, K_VAL, K_META, K_ID, K_CREATED, K_UPDATED, K_EXPIRES, K_WEIGHT, K_COUNT };
_Static_assert((int)K_COUNT <= (int)V_COUNT, "kv_load arrays live in varr");

/* -------------------------------------------------------------- key-value */

/* A page of visible rows after `after` (from the first when after.ptr is
 * NULL) in key order, with metadata (jsonb's text form) and kv_id. */
static int pg_kv_dump(lls_backend *b, lls_str after, int64_t now, size_t limit, lls_rows *out,
                      lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_bytes(&p, after.ptr, after.ptr ? after.len : 0);
  lls_pg_param_time(&p, now);
  lls_pg_param_limit(&p, limit);
  PGresult *r = lls_pg_run(pg, after.ptr ? ST_KV_DUMP : ST_KV_DUMP_FIRST, &p, 1, err);
  if (r == NULL) return -1;
  for (int i = 0, rows = PQntuples(r); i < rows; i++) {
    lls_row *row = lls_rows_add_ext(out, lls_pg_str_at(r, i, 0), lls_pg_str_at(r, i, 1),
                                    lls_pg_str_at(r, i, 2), lls_pg_str_at(r, i, 3));
    if (row == NULL) {
      PQclear(r);
      return lls_error_oom(err);
    }
    row->created_at = lls_pg_time_or_zero(r, i, 4);
    row->updated_at = lls_pg_time_or_zero(r, i, 5);
    row->expires_at = lls_pg_time_or_zero(r, i, 6);
  }
  PQclear(r);
  return 0;
}

/* The record kv_load sends for one key, and how many records of the batch
 * it stands for (what *written counts when it is written). */
typedef struct kv_pick {
  size_t i;
  int64_t weight;
} kv_pick;

static int cmp_pick(const void *a, const void *b) {
  const kv_pick *x = a, *y = b;
  return x->i < y->i ? -1 : x->i > y->i;
}

static int rec_visible(const lls_kv_rec *r, int64_t now) {
  return r->expires_at == 0 || r->expires_at > now;
}

/* One statement cannot write a row twice, so a key given more than once is
 * reduced to the record that applying the batch in order would leave, with
 * the count that order would write: replace, the last (all of them
 * written); skip, the first visible one (it and the expired ones before it
 * written, the rest skipped), else the last; error, the last, unless a
 * visible record precedes another of its key (*dup names it: the later one
 * would meet an existing key). picks come out in batch order. */
static int plan_kv_load(const lls_kv_rec *recs, size_t n, lls_conflict oc, int64_t now,
                        kv_pick *picks, size_t *npicks, lls_str *dup) {
  lls_pg_id_ref *refs = malloc(n * sizeof *refs);
  if (refs == NULL) return -1;
  for (size_t i = 0; i < n; i++) refs[i].id = recs[i].key, refs[i].i = i;
  qsort(refs, n, sizeof *refs, lls_pg_cmp_id_ref);
  dup->ptr = NULL;
  dup->len = 0;
  *npicks = 0;
  for (size_t g = 0, e; g < n; g = e) {
    for (e = g + 1; e < n && lls_str_cmp(refs[e].id, refs[g].id) == 0; e++) {
    }
    size_t chosen = e - 1;
    if (oc == LLS_CONFLICT_SKIP) {
      for (size_t j = g; j < e; j++)
        if (rec_visible(&recs[refs[j].i], now)) {
          chosen = j;
          break;
        }
    } else if (oc == LLS_CONFLICT_ERROR && dup->ptr == NULL) {
      for (size_t j = g; j + 1 < e; j++)
        if (rec_visible(&recs[refs[j].i], now)) *dup = refs[g].id;
    }
    picks[*npicks].i = refs[chosen].i;
    picks[*npicks].weight = (int64_t)(chosen - g + 1);
    (*npicks)++;
  }
  free(refs);
  qsort(picks, *npicks, sizeof *picks, cmp_pick);
  return 0;
}

/* Fills kv_load's arrays with the picks from *pos on, up to about
 * PUT_CHUNK_BYTES (at least one); *pos moves past them. -1 when out of
 * memory or an element is over 2 GB. */
static int kv_load_arrays(pg_backend *pg, const lls_kv_rec *recs, const kv_pick *picks,
                          size_t npicks, size_t *pos, size_t *count) {
  for (int a = 0; a < K_COUNT; a++)
    if (lls_pg_arr_init(&pg->varr[a]) != 0) return -1;
  size_t bytes = 0, i = *pos;
  int meta_null = 0, id_null = 0, exp_null = 0;
  for (; i < npicks; i++) {
    const lls_kv_rec *r = &recs[picks[i].i];
    size_t size = r->key.len + r->value.len + r->metadata.len + r->kv_id.len + 64;
    if (i > *pos && bytes + size > PUT_CHUNK_BYTES) break;
    bytes += size;
    if (lls_pg_arr_add(&pg->varr[K_KEY], r->key.ptr, r->key.len) != 0 ||
        lls_pg_arr_add(&pg->varr[K_VAL], r->value.ptr, r->value.len) != 0 ||
        lls_pg_arr_add_opt(&pg->varr[K_META], r->metadata) != 0 ||
        lls_pg_arr_add_opt(&pg->varr[K_ID], r->kv_id) != 0 ||
        lls_pg_arr_add_time(&pg->varr[K_CREATED], r->created_at) != 0 ||
        lls_pg_arr_add_time(&pg->varr[K_UPDATED], r->updated_at) != 0 ||
        lls_pg_arr_add_expiry(&pg->varr[K_EXPIRES], r->expires_at) != 0 ||
        lls_pg_arr_add_int8(&pg->varr[K_WEIGHT], picks[i].weight) != 0)
      return -1;
    meta_null |= r->metadata.len == 0;
    id_null |= r->kv_id.len == 0;
    exp_null |= r->expires_at == 0;
  }
  *count = i - *pos;
  *pos = i;
  static const Oid elem[K_COUNT] = {OID_TEXT, OID_BYTEA, OID_TEXT, OID_TEXT,
                                    OID_TSTZ, OID_TSTZ,  OID_TSTZ, OID_INT8};
  for (int a = 0; a < K_COUNT; a++)
    lls_pg_arr_finish(&pg->varr[a], elem[a], *count,
                      (a == K_META && meta_null) || (a == K_ID && id_null) ||
                          (a == K_EXPIRES && exp_null));
  return 0;
}

/* Writes the records as given (times, metadata, kv_id) in one unit: a
 * savepoint inside the caller's transaction, a transaction of its own
 * outside one, so that error mode can undo a chunk that met an existing
 * key. One statement per PUT_CHUNK_BYTES of records (one, for any usual
 * batch). */
static int pg_kv_load(lls_backend *b, const lls_kv_rec *recs, size_t n, lls_conflict oc,
                      int64_t now, size_t *written, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  *written = 0;
  if (n == 0) return 0;
  kv_pick *picks = malloc(n * sizeof *picks);
  size_t npicks;
  lls_str dup;
  if (picks == NULL || plan_kv_load(recs, n, oc, now, picks, &npicks, &dup) != 0) {
    free(picks);
    return lls_error_oom(err);
  }
  if (dup.ptr != NULL) {
    free(picks);
    return lls_error_set(err, LLS_ECONFLICT, "key '%.*s' already exists (given twice)",
                         lls_pg_msg_len(dup, 200), dup.ptr);
  }
  if (lls_pg_unit_begin(pg, 0, err) != 0) {
    free(picks);
    return -1;
  }
  int64_t total = 0;
  for (size_t pos = 0, chunk; pos < npicks;) {
    if (kv_load_arrays(pg, recs, picks, npicks, &pos, &chunk) != 0) {
      lls_error_set(err, LLS_EIO, "out of memory (or an element over 2 GB)");
      goto fail;
    }
    pg_params p = {0};
    lls_pg_param_tenant(&p, pg);
    lls_pg_param_time(&p, now);
    for (int a = 0; a < K_COUNT; a++) lls_pg_param_buf(&p, &pg->varr[a]);
    PGresult *r = lls_pg_run(pg, oc == LLS_CONFLICT_REPLACE ? ST_KV_LOAD_REPLACE : ST_KV_LOAD_SKIP,
                             &p, 0, err);
    if (r == NULL) {
      lls_pg_metadata_error(err);
      goto fail;
    }
    if (oc != LLS_CONFLICT_REPLACE && PQntuples(r) > 0) {
      total += lls_pg_int8_at(r, 0, 0);
      if (oc == LLS_CONFLICT_ERROR && !PQgetisnull(r, 0, 1)) {
        lls_str key = lls_pg_str_at(r, 0, 1);
        lls_error_set(err, LLS_ECONFLICT, "key '%.*s' already exists", lls_pg_msg_len(key, 200),
                      key.ptr);
        PQclear(r);
        goto fail;
      }
    }
    PQclear(r);
  }
  free(picks);
  lls_pg_trim_arrays(pg);
  if (lls_pg_unit_end(pg, 0, 1, err) != 0) return -1;
  *written = oc == LLS_CONFLICT_REPLACE ? n : (size_t)total;
  return 0;
fail:
  free(picks);
  lls_pg_trim_arrays(pg);
  lls_pg_unit_end(pg, 0, 0, NULL);
  return -1;
}

/* ---------------------------------------------------------------- vectors */

/* A page of rows with id > after_id in id order, handed to the sink once
 * the whole page has arrived (so a retried read never repeats a row). */
static int pg_vec_dump(lls_backend *b, int64_t coll_id, lls_str after_id, size_t limit,
                       lls_vec_sink sink, void *ud, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_int8(&p, coll_id);
  lls_pg_param_bytes(&p, after_id.ptr, after_id.ptr ? after_id.len : 0);
  lls_pg_param_limit(&p, limit);
  PGresult *r = lls_pg_run(pg, ST_VEC_DUMP, &p, 1, err);
  if (r == NULL) return -1;
  int rows = PQntuples(r);
  if (rows == 0) {
    PQclear(r);
    return lls_pg_coll_missing(err, coll_id);
  }
  err->code = LLS_OK;
  err->message[0] = '\0';
  for (int i = 0; i < rows; i++) {
    if (PQgetisnull(r, i, 0)) continue; /* the collection, without rows */
    lls_vec_row row;
    lls_pg_vec_row_at(r, i, &row);
    if (sink(ud, &row, err) != 0) {
      PQclear(r);
      return lls_error_stopped(err);
    }
  }
  PQclear(r);
  return 0;
}

static int cmp_str(const void *a, const void *b) {
  return lls_str_cmp(*(const lls_str *)a, *(const lls_str *)b);
}

/* One primary-key probe per id (= ANY), then each asked id looked up in
 * the sorted answer, so repeated ids are all marked. */
static int pg_vec_has(lls_backend *b, int64_t coll_id, const lls_str *ids, size_t n,
                      unsigned char *present, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  lls_buf *a = &pg->varr[V_ID];
  if (n > 0) memset(present, 0, n);
  if (lls_pg_arr_init(a) != 0) return lls_error_oom(err);
  for (size_t i = 0; i < n; i++)
    if (lls_pg_arr_add(a, ids[i].ptr, ids[i].len) != 0) {
      lls_pg_trim_arrays(pg);
      return lls_error_oom(err);
    }
  lls_pg_arr_finish(a, OID_TEXT, n, 0);
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_int8(&p, coll_id);
  lls_pg_param_buf(&p, a);
  PGresult *r = lls_pg_run(pg, ST_VEC_HAS, &p, 1, err);
  lls_pg_trim_arrays(pg);
  if (r == NULL) return -1;
  int rows = PQntuples(r);
  if (rows == 0) {
    PQclear(r);
    return lls_pg_coll_missing(err, coll_id);
  }
  lls_str *found = malloc((size_t)rows * sizeof *found);
  if (found == NULL) {
    PQclear(r);
    return lls_error_oom(err);
  }
  size_t nfound = 0;
  for (int i = 0; i < rows; i++)
    if (!PQgetisnull(r, i, 0)) found[nfound++] = lls_pg_str_at(r, i, 0);
  qsort(found, nfound, sizeof *found, cmp_str);
  for (size_t i = 0; i < n && nfound > 0; i++)
    present[i] = bsearch(&ids[i], found, nfound, sizeof *found, cmp_str) != NULL;
  free(found);
  PQclear(r);
  return 0;
}

/* --------------------------------------------------------------- sections */

typedef struct sec_ref {
  lls_str section;
  int64_t ord;
  size_t i;
} sec_ref;

/* By (section, ord), then by position. */
static int cmp_sec_ref(const void *a, const void *b) {
  const sec_ref *x = a, *y = b;
  int c = lls_str_cmp(x->section, y->section);
  if (c != 0) return c;
  if (x->ord != y->ord) return x->ord < y->ord ? -1 : 1;
  return x->i < y->i ? -1 : x->i > y->i;
}

/* Marks in keep[] the last record of each (section, ord): the one a batch
 * applied in order would leave (one statement cannot write a row twice). */
static int dedupe_sections(const lls_str *sections, const int64_t *ords, size_t n,
                           unsigned char *keep) {
  sec_ref *refs = malloc(n * sizeof *refs);
  if (refs == NULL) return -1;
  for (size_t i = 0; i < n; i++) {
    refs[i].section = sections[i];
    refs[i].ord = ords[i];
    refs[i].i = i;
    keep[i] = 0;
  }
  qsort(refs, n, sizeof *refs, cmp_sec_ref);
  for (size_t g = 0, e; g < n; g = e) {
    for (e = g + 1;
         e < n && lls_str_cmp(refs[e].section, refs[g].section) == 0 && refs[e].ord == refs[g].ord;
         e++) {
    }
    keep[refs[e - 1].i] = 1;
  }
  free(refs);
  return 0;
}

/* Upserts on (tenant, section, ord), one statement per PUT_CHUNK_BYTES of
 * records, all in one unit. An empty section name is refused: sec_clear
 * reads it as "every section". */
static int pg_sec_put(lls_backend *b, const lls_str *sections, const int64_t *ords,
                      const lls_str *json, size_t n, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  if (n == 0) return 0;
  for (size_t i = 0; i < n; i++)
    if (sections[i].len == 0)
      return lls_error_set(err, LLS_EINVALID, "section name must not be empty");
  unsigned char *keep = malloc(n);
  if (keep == NULL || dedupe_sections(sections, ords, n, keep) != 0) {
    free(keep);
    return lls_error_oom(err);
  }
  if (lls_pg_unit_begin(pg, 0, err) != 0) {
    free(keep);
    return -1;
  }
  for (size_t pos = 0; pos < n;) {
    size_t count = 0, bytes = 0;
    lls_buf *s = &pg->varr[0], *o = &pg->varr[1], *j = &pg->varr[2];
    if (lls_pg_arr_init(s) != 0 || lls_pg_arr_init(o) != 0 || lls_pg_arr_init(j) != 0) goto oom;
    for (; pos < n; pos++) {
      if (!keep[pos]) continue;
      size_t size = sections[pos].len + json[pos].len + 32;
      if (count > 0 && bytes + size > PUT_CHUNK_BYTES) break;
      bytes += size;
      if (lls_pg_arr_add(s, sections[pos].ptr, sections[pos].len) != 0 ||
          lls_pg_arr_add_int8(o, ords[pos]) != 0 ||
          lls_pg_arr_add(j, json[pos].ptr, json[pos].len) != 0)
        goto oom;
      count++;
    }
    if (count == 0) break; /* only replaced duplicates were left */
    lls_pg_arr_finish(s, OID_TEXT, count, 0);
    lls_pg_arr_finish(o, OID_INT8, count, 0);
    lls_pg_arr_finish(j, OID_TEXT, count, 0);
    pg_params p = {0};
    lls_pg_param_tenant(&p, pg);
    lls_pg_param_buf(&p, s);
    lls_pg_param_buf(&p, o);
    lls_pg_param_buf(&p, j);
    PGresult *r = lls_pg_run(pg, ST_SEC_PUT, &p, 0, err);
    if (r == NULL) goto fail;
    PQclear(r);
  }
  free(keep);
  lls_pg_trim_arrays(pg);
  return lls_pg_unit_end(pg, 0, 1, err);
oom:
  lls_error_set(err, LLS_EIO, "out of memory (or a record over 2 GB)");
fail:
  free(keep);
  lls_pg_trim_arrays(pg);
  lls_pg_unit_end(pg, 0, 0, NULL);
  return -1;
}

/* A page of section records after (after_section, after_ord) in (section,
 * ord) order. Section names are never empty, so ('', INT64_MIN) lies
 * before every record and serves as "from the first". */
static int pg_sec_dump(lls_backend *b, lls_str after_section, int64_t after_ord, size_t limit,
                       lls_rows *out, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_bytes(&p, after_section.ptr, after_section.ptr ? after_section.len : 0);
  lls_pg_param_int8(&p, after_section.ptr ? after_ord : INT64_MIN);
  lls_pg_param_limit(&p, limit);
  PGresult *r = lls_pg_run(pg, ST_SEC_DUMP, &p, 1, err);
  if (r == NULL) return -1;
  for (int i = 0, rows = PQntuples(r); i < rows; i++) {
    lls_str sec = lls_pg_str_at(r, i, 0), rec = lls_pg_str_at(r, i, 2);
    lls_row *row = lls_rows_add(out, sec.ptr, sec.len, rec.ptr, rec.len);
    if (row == NULL) {
      PQclear(r);
      return lls_error_oom(err);
    }
    row->created_at = lls_pg_int8_at(r, i, 1);
  }
  PQclear(r);
  return 0;
}

static int pg_sec_clear(lls_backend *b, lls_str section, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  if (section.len > 0) lls_pg_param_bytes(&p, section.ptr, section.len);
  PGresult *r = lls_pg_write_one(pg, section.len > 0 ? ST_SEC_CLEAR : ST_SEC_CLEAR_ALL, &p, err);
  if (r == NULL) return -1;
  PQclear(r);
  return 0;
}

const lls_xport_ops lls_postgres_xport_ops = {
    .kv_dump = pg_kv_dump,
    .kv_load = pg_kv_load,
    .vec_dump = pg_vec_dump,
    .vec_has = pg_vec_has,
    .sec_put = pg_sec_put,
    .sec_dump = pg_sec_dump,
    .sec_clear = pg_sec_clear,
};
