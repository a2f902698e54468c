/*
 * export_rows.c -- the data part of an export document: kv_store,
 * vector_collections, vector_embeddings and the passthrough sections,
 * each read from the backend a page at a time (vt->xport->kv_dump,
 * vec_dump, sec_dump) and written as it is read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/hashidx.h"
#include "base/utf8.h"
#include "lua/error.h"
#include "lua/export_rows.h"
#include "lua/sections.h"

static int str_is(lls_str s, const char *lit) {
  return s.len == strlen(lit) && memcmp(s.ptr, lit, s.len) == 0;
}

/* A stable id for a row stored without one: two hashes of (tenant, key)
 * as an RFC 9562 version 8 UUID, so exporting the same row twice (or
 * after a roundtrip that stored it) gives the same kv_id. */
static void derive_kv_id(lls_xjob *j, lls_str key, char out[37]) {
  lls_buf *b = &j->rec;
  b->len = 0;
  if (lls_buf_append(b, j->tenant, strlen(j->tenant) + 1) != 0 ||
      lls_buf_append(b, key.ptr, key.len) != 0) {
    j->oom = 1;
    out[0] = '\0';
    return;
  }
  uint64_t h1 = lls_hash_bytes(b->data, b->len);
  if (lls_buf_append(b, "\1", 1) != 0) {
    j->oom = 1;
    out[0] = '\0';
    return;
  }
  uint64_t h2 = lls_hash_bytes(b->data, b->len);
  unsigned char u[16];
  for (int i = 0; i < 8; i++) {
    u[i] = (unsigned char)(h1 >> (56 - 8 * i));
    u[8 + i] = (unsigned char)(h2 >> (56 - 8 * i));
  }
  u[6] = (unsigned char)((u[6] & 0x0f) | 0x80);
  u[8] = (unsigned char)((u[8] & 0x3f) | 0x80);
  static const char hex[] = "0123456789abcdef";
  int w = 0;
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[w++] = '-';
    out[w++] = hex[u[i] >> 4];
    out[w++] = hex[u[i] & 15];
  }
  out[w] = '\0';
}

/* ---------------------------------------------------------- key-value */

/* Encodes code point cp (not a surrogate, at most U+10FFFF); its length. */
static size_t utf8_encode(unsigned long cp, unsigned char *e) {
  if (cp < 0x80) {
    e[0] = (unsigned char)cp;
    return 1;
  }
  if (cp < 0x800) {
    e[0] = (unsigned char)(0xC0 | (cp >> 6));
    e[1] = (unsigned char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    e[0] = (unsigned char)(0xE0 | (cp >> 12));
    e[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    e[2] = (unsigned char)(0x80 | (cp & 0x3F));
    return 3;
  }
  e[0] = (unsigned char)(0xF0 | (cp >> 18));
  e[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
  e[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
  e[3] = (unsigned char)(0x80 | (cp & 0x3F));
  return 4;
}

/* Where a prefix export starts: a key strictly below every key with the
 * prefix but above almost every key without it, built from valid UTF-8 so
 * every backend accepts it as a bound: the prefix with its last code point
 * decremented, followed by U+10FFFF (keys between that and the prefix are
 * skipped by the page loop, and in practice there are none). NULL ptr:
 * start from the first key. */
static lls_str prefix_start(lls_xjob *j, lls_str prefix) {
  lls_str none = {NULL, 0};
  const unsigned char *p = (const unsigned char *)prefix.ptr;
  if (prefix.len == 0) return none;
  size_t start = prefix.len - 1;
  while (start > 0 && (p[start] & 0xC0) == 0x80) start--;
  unsigned long cp;
  size_t n = prefix.len - start;
  if (n == 1) cp = p[start];
  else if (n == 2) cp = ((p[start] & 0x1Ful) << 6) | (p[start + 1] & 0x3Ful);
  else if (n == 3)
    cp = ((p[start] & 0x0Ful) << 12) | ((p[start + 1] & 0x3Ful) << 6) | (p[start + 2] & 0x3Ful);
  else
    cp = ((p[start] & 0x07ul) << 18) | ((p[start + 1] & 0x3Ful) << 12) |
         ((p[start + 2] & 0x3Ful) << 6) | (p[start + 3] & 0x3Ful);
  j->after.len = 0;
  if (lls_buf_append(&j->after, prefix.ptr, start) != 0) {
    j->oom = 1;
    return none;
  }
  if (cp > 1) {
    cp--;
    if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xD7FF; /* no surrogates */
    unsigned char e[4];
    size_t k = utf8_encode(cp, e);
    if (lls_buf_append(&j->after, e, k) != 0 ||
        lls_buf_append(&j->after, "\xF4\x8F\xBF\xBF", 4) != 0)
      j->oom = 1;
  }
  /* cp == 1: nothing valid lies between the prefix minus its last code
   * point and the prefix (the only candidates start with NUL) */
  lls_str s = {j->after.data ? j->after.data : "", j->after.len};
  return s;
}

static int cmp_bytes(lls_str a, lls_str b) {
  int c = memcmp(a.ptr, b.ptr, a.len < b.len ? a.len : b.len);
  return c ? c : (a.len > b.len) - (a.len < b.len);
}

static void write_kv_row(lua_State *L, lls_xjob *j, size_t i) {
  const lls_rows *r = &j->rows;
  const lls_row *row = &r->rows[i];
  lls_str key = lls_row_key(r, i), id = lls_row_kv_id(r, i), meta = lls_row_meta(r, i);
  gs(j, yajl_gen_map_open(j->g));
  g_key(j, "kv_id");
  if (id.len > 0) {
    g_str(j, id.ptr, id.len);
  } else {
    char uuid[37];
    derive_kv_id(j, key, uuid);
    g_str(j, uuid, strlen(uuid));
  }
  g_key(j, "tenant_id");
  g_str(j, j->tenant, strlen(j->tenant));
  g_key(j, "key");
  g_str(j, key.ptr, key.len);
  g_key(j, "value");
  lls_xjob_b64(j, lls_row_value(r, i));
  g_key(j, "metadata");
  if (meta.len == 0) {
    gs(j, yajl_gen_null(j->g));
  } else {
    lls_error err;
    if (lls_xjob_json(j, meta, "kv_store metadata", NULL, &err) != 0) {
      lls_error_set(&err, err.code, "key '%.*s': %s", (int)(key.len > 200 ? 200 : key.len),
                    key.ptr, err.message);
      lls_raise(L, &err, j->backend);
    }
  }
  g_key(j, "created_at");
  g_int(j, row->created_at);
  g_key(j, "updated_at");
  g_int(j, row->updated_at);
  if (row->expires_at != 0) {
    g_key(j, "expires_at");
    g_int(j, row->expires_at);
  }
  gs(j, yajl_gen_map_close(j->g));
}

void lls_export_kv(lua_State *L, lls_xjob *j, lls_handle *h, lls_str prefix) {
  lls_error err;
  int64_t now = lls_now_us();
  g_key(j, "kv_store");
  gs(j, yajl_gen_array_open(j->g));
  lls_str after = prefix_start(j, prefix);
  lls_xjob_check(L, j);
  for (;;) {
    lls_rows_reset(&j->rows);
    if (h->vt->xport->kv_dump(h->b, after, now, LLS_EXPORT_PAGE, &j->rows, &err) != 0)
      lls_raise(L, &err, h->vt->name);
    size_t n = j->rows.count;
    int past = 0;
    for (size_t i = 0; i < n && !past; i++) {
      lls_str key = lls_row_key(&j->rows, i);
      if (prefix.len > 0 && !lls_has_prefix(key, prefix)) {
        if (cmp_bytes(key, prefix) > 0) past = 1; /* beyond the prefix's range */
        continue;
      }
      write_kv_row(L, j, i);
      j->st.kv_entries++;
      j->done++;
    }
    lls_xjob_check(L, j);
    if (n == 0) break;
    lls_str last = lls_row_key(&j->rows, n - 1);
    j->after.len = 0;
    if (lls_buf_append(&j->after, last.ptr, last.len) != 0) luaL_error(L, "out of memory");
    after.ptr = j->after.data;
    after.len = j->after.len;
    lls_xjob_report(L, j, "kv_store", 0);
    lls_xjob_still_open(L, h);
    if (past || n < LLS_EXPORT_PAGE) break;
  }
  gs(j, yajl_gen_array_close(j->g));
}

/* ------------------------------------------------------------ vectors */

typedef struct vsink {
  lls_xjob *j;
  const lls_coll_info *c;
  int *group_open; /* the dimension's array is open in the document */
  size_t rows;
  lls_buf last;    /* id of the last row, to resume after */
} vsink;

static int vec_row_sink(void *ud, const lls_vec_row *row, lls_error *err) {
  vsink *s = ud;
  lls_xjob *j = s->j;
  const lls_coll_info *c = s->c;
  if (row->vector.len != (size_t)c->dimension * 4)
    return lls_error_set(err, LLS_EIO, "collection '%s', id '%.*s': stored vector has %zu "
                         "bytes, dimension %d needs %d", c->name, (int)row->id.len,
                         row->id.ptr, row->vector.len, c->dimension, c->dimension * 4);
  /* collections take any bytes but NUL in ids and scopes; JSON strings
   * cannot carry what is not UTF-8, so such a row stops the export */
  const unsigned char *idp = (const unsigned char *)row->id.ptr;
  const unsigned char *scp = (const unsigned char *)row->scope.ptr;
  if (lls_utf8_bad_at(idp, row->id.len) != row->id.len ||
      lls_utf8_bad_at(scp, row->scope.len) != row->scope.len)
    return lls_error_set(err, LLS_EFORMAT, "collection '%s': the id or scope of a row is not "
                         "UTF-8 text (JSON cannot carry it): id '%.*s'", c->name,
                         (int)(row->id.len > 100 ? 100 : row->id.len), row->id.ptr);
  if (!*s->group_open) {
    char dim[16];
    snprintf(dim, sizeof dim, "%d", c->dimension);
    g_key(j, dim);
    gs(j, yajl_gen_array_open(j->g));
    *s->group_open = 1;
  }
  gs(j, yajl_gen_map_open(j->g));
  g_key(j, "id");
  g_str(j, row->id.ptr, row->id.len);
  g_key(j, "tenant_id");
  g_str(j, j->tenant, strlen(j->tenant));
  g_key(j, "scope");
  g_str(j, row->scope.ptr, row->scope.len);
  g_key(j, "dimension");
  g_int(j, c->dimension);
  g_key(j, "embedding");
  lls_xjob_b64(j, row->vector);
  g_key(j, "metadata");
  lls_str md = row->metadata;
  if (md.len == 0 || (md.len == 2 && memcmp(md.ptr, "{}", 2) == 0)) {
    g_raw(j, "{}", 2);
  } else if (lls_xjob_json(j, row->metadata, "vector metadata", NULL, err) != 0) {
    char msg[sizeof err->message];
    snprintf(msg, sizeof msg, "%s", err->message);
    return lls_error_set(err, err->code, "collection '%s', id '%.*s': %s", c->name,
                         (int)(row->id.len > 200 ? 200 : row->id.len), row->id.ptr, msg);
  }
  g_key(j, "created_at");
  g_int(j, row->created_at);
  g_key(j, "updated_at");
  g_int(j, row->updated_at);
  g_key(j, "collection");
  g_str(j, c->name, strlen(c->name));
  g_key(j, "metric");
  const char *metric = lls_metric_name((lls_metric)c->metric);
  g_str(j, metric, strlen(metric));
  g_key(j, "m");
  g_int(j, c->m);
  g_key(j, "ef_construction");
  g_int(j, c->ef_construction);
  g_key(j, "ef_search");
  g_int(j, c->ef_search);
  if (row->has_event_time) {
    g_key(j, "event_time");
    g_int(j, row->event_time);
  }
  if (row->expires_at != 0) {
    g_key(j, "expires_at");
    g_int(j, row->expires_at);
  }
  gs(j, yajl_gen_map_close(j->g));
  s->last.len = 0;
  if (lls_buf_append(&s->last, row->id.ptr, row->id.len) != 0) j->oom = 1;
  s->rows++;
  if (lls_xjob_error(j, err) != 0) return -1;
  return 0;
}

static int coll_collect(void *ud, const lls_coll_info *info, lls_error *err) {
  lls_xjob *j = ud;
  /* Checked once here, so the writers can use the metric's name as is. */
  if (lls_metric_name((lls_metric)info->metric) == NULL)
    return lls_error_set(err, LLS_EFORMAT, "collection '%s': unknown stored metric %d",
                         info->name, info->metric);
  if (j->ncolls == j->ccap) {
    size_t cap = j->ccap ? j->ccap * 2 : 16;
    lls_coll_info *p = realloc(j->colls, cap * sizeof *p);
    if (p == NULL) return lls_error_set(err, LLS_EIO, "out of memory");
    j->colls = p;
    j->ccap = cap;
  }
  j->colls[j->ncolls++] = *info;
  return 0;
}

static int name_cmp(const void *a, const void *b) {
  return strcmp(((const lls_coll_info *)a)->name, ((const lls_coll_info *)b)->name);
}

static int dim_name_cmp(const void *a, const void *b) {
  const lls_coll_info *x = a, *y = b;
  if (x->dimension != y->dimension) return x->dimension < y->dimension ? -1 : 1;
  return strcmp(x->name, y->name);
}

/* Lists the collections to export into j->colls, in name order.
 * names (stack index, 0 = all): the array of names the caller chose. */
void lls_export_list_collections(lua_State *L, lls_xjob *j, lls_handle *h, int names) {
  lls_error err;
  lls_str all = {"", 0};
  if (h->vt->vec->coll_list == NULL) return;
  if (h->vt->vec->coll_list(h->b, all, coll_collect, j, &err) != 0) lls_raise(L, &err, h->vt->name);
  if (names) {
    size_t want = (size_t)lua_rawlen(L, names), kept = 0;
    for (size_t k = 1; k <= want; k++) {
      lua_rawgeti(L, names, (lua_Integer)k);
      const char *nm = lua_tostring(L, -1);
      size_t i = 0;
      while (i < j->ncolls && strcmp(j->colls[i].name, nm) != 0) i++;
      if (i == j->ncolls)
        lls_raisef(L, h->vt->name, LLS_ENOTFOUND, "no collection '%s'", nm);
      lua_pop(L, 1);
    }
    for (size_t i = 0; i < j->ncolls; i++) {
      int chosen = 0;
      for (size_t k = 1; k <= want && !chosen; k++) {
        lua_rawgeti(L, names, (lua_Integer)k);
        chosen = strcmp(lua_tostring(L, -1), j->colls[i].name) == 0;
        lua_pop(L, 1);
      }
      if (chosen) j->colls[kept++] = j->colls[i];
    }
    j->ncolls = kept;
  }
  /* backends list by name already; sorting again costs little and makes
   * the order independent of how a backend collates */
  if (j->ncolls > 1) qsort(j->colls, j->ncolls, sizeof *j->colls, name_cmp);
}

/* Every exported collection with its parameters, empty ones included
 * (their rows alone would not bring them back). Our addition to the
 * format: rs-llmspell ignores a key it does not know. */
void lls_export_collection_list(lls_xjob *j) {
  g_key(j, "vector_collections");
  gs(j, yajl_gen_array_open(j->g));
  for (size_t i = 0; i < j->ncolls; i++) { /* in name order (list_collections) */
    const lls_coll_info *c = &j->colls[i];
    gs(j, yajl_gen_map_open(j->g));
    g_key(j, "name");
    g_cstr(j, c->name);
    g_key(j, "dimension");
    g_int(j, c->dimension);
    g_key(j, "metric");
    g_cstr(j, lls_metric_name((lls_metric)c->metric));
    g_key(j, "m");
    g_int(j, c->m);
    g_key(j, "ef_construction");
    g_int(j, c->ef_construction);
    g_key(j, "ef_search");
    g_int(j, c->ef_search);
    gs(j, yajl_gen_map_close(j->g));
  }
  gs(j, yajl_gen_array_close(j->g));
  j->st.collections = (int64_t)j->ncolls;
}

void lls_export_vectors(lua_State *L, lls_xjob *j, lls_handle *h) {
  g_key(j, "vector_embeddings");
  gs(j, yajl_gen_map_open(j->g));
  /* grouped by dimension, ascending; by name within a dimension */
  if (j->ncolls > 1) qsort(j->colls, j->ncolls, sizeof *j->colls, dim_name_cmp);
  int group_open = 0;
  for (size_t ci = 0; ci < j->ncolls; ci++) {
    const lls_coll_info *c = &j->colls[ci];
    if (ci > 0 && c->dimension != j->colls[ci - 1].dimension && group_open) {
      gs(j, yajl_gen_array_close(j->g));
      group_open = 0;
    }
    if (h->vt->xport->vec_dump == NULL)
      lls_raisef(L, h->vt->name, LLS_EINVALID, "backend %s cannot export vectors",
                 h->vt->name);
    vsink s;
    memset(&s, 0, sizeof s);
    s.j = j;
    s.c = c;
    s.group_open = &group_open;
    lls_str after = {NULL, 0};
    for (;;) {
      lls_error err;
      s.rows = 0;
      int rc = h->vt->xport->vec_dump(h->b, c->id, after, LLS_EXPORT_PAGE, vec_row_sink, &s, &err);
      if (rc != 0) {
        lls_buf_free(&s.last);
        lls_raise(L, &err, h->vt->name);
      }
      j->st.vectors += (int64_t)s.rows;
      j->done += (int64_t)s.rows;
      if (s.rows == 0) break;
      /* the sink's copy of the last id becomes the resume point */
      j->after.len = 0;
      if (lls_buf_append(&j->after, s.last.data, s.last.len) != 0) {
        lls_buf_free(&s.last);
        luaL_error(L, "out of memory");
      }
      after.ptr = j->after.data;
      after.len = j->after.len;
      lls_xjob_report(L, j, "vector_embeddings", 0);
      lls_xjob_still_open(L, h);
      if (s.rows < LLS_EXPORT_PAGE) break;
    }
    lls_buf_free(&s.last);
  }
  if (group_open) gs(j, yajl_gen_array_close(j->g));
  gs(j, yajl_gen_map_close(j->g));
  lls_xjob_check(L, j);
}

/* ----------------------------------------------------------- sections */

void lls_export_sections(lua_State *L, lls_xjob *j, lls_handle *h) {
  if (h->vt->xport->sec_dump == NULL) return;
  lls_error err;
  lls_str after = {NULL, 0};
  int64_t after_ord = 0;
  lls_buf cur = {0};       /* the section being written */
  int have_cur = 0, mode = 0; /* mode: 0 skip rows, 1 array open */
  for (;;) {
    lls_rows_reset(&j->rows);
    if (h->vt->xport->sec_dump(h->b, after, after_ord, LLS_EXPORT_PAGE, &j->rows, &err) != 0) {
      lls_buf_free(&cur);
      lls_raise(L, &err, h->vt->name);
    }
    size_t n = j->rows.count;
    for (size_t i = 0; i < n; i++) {
      lls_str name = lls_row_key(&j->rows, i), json = lls_row_value(&j->rows, i);
      int64_t ord = j->rows.rows[i].created_at;
      lls_str cs = {cur.data, cur.len};
      if (!have_cur || cmp_bytes(name, cs) != 0) {
        if (mode == 1) gs(j, yajl_gen_array_close(j->g));
        mode = 0;
        cur.len = 0;
        if (lls_buf_append(&cur, name.ptr, name.len) != 0) j->oom = 1;
        have_cur = 1;
        /* names the document uses itself never come from an import; a
         * component's section is written from its tables (rows a store
         * kept from before the component existed stay unexported) */
        if (str_is(name, "kv_store") || str_is(name, "vector_embeddings") ||
            str_is(name, "vector_collections") || lls_section_find(name.ptr, name.len) != NULL ||
            !lls_xjob_wants(L, j, name.ptr, name.len))
          continue;
        g_str(j, name.ptr, name.len);
        if (ord < 0) {
          lls_value *v = NULL;
          if (lls_xjob_json(j, json, "section", &v, &err) != 0) {
            lls_buf_free(&cur);
            lls_raise(L, &err, j->backend);
          }
          int64_t cnt = lls_xstats_single(&j->st, name, v);
          lls_value_free(v);
          if (lls_xstats_add(&j->st, name, cnt) != 0) j->oom = 1;
          j->done++;
          continue; /* a single value: rows after it cannot be written */
        }
        gs(j, yajl_gen_array_open(j->g));
        mode = 1;
      }
      if (mode != 1) continue;
      if (lls_xjob_json(j, json, "section", NULL, &err) != 0) {
        lls_buf_free(&cur);
        lls_raise(L, &err, j->backend);
      }
      if (lls_xstats_add(&j->st, name, 1) != 0) j->oom = 1;
      j->done++;
    }
    if (lls_xjob_error(j, &err) != 0) {
      lls_buf_free(&cur);
      lls_raise(L, &err, j->backend);
    }
    if (n == 0) break;
    lls_str last = lls_row_key(&j->rows, n - 1);
    after_ord = j->rows.rows[n - 1].created_at;
    j->after.len = 0;
    if (lls_buf_append(&j->after, last.ptr, last.len) != 0) j->oom = 1;
    after.ptr = j->after.data;
    after.len = j->after.len;
    lls_xjob_report(L, j, "sections", 0);
    lls_xjob_still_open(L, h);
    if (n < LLS_EXPORT_PAGE) break;
  }
  if (mode == 1) gs(j, yajl_gen_array_close(j->g));
  lls_buf_free(&cur);
  lls_xjob_check(L, j);
}

/* ------------------------------------------------------------ counting */

/* The number of records the export will write, for progress (only
 * computed when there is a progress function: with a prefix, or for
 * sections, it costs a pass over keys or section rows). */
int64_t lls_export_count_total(lua_State *L, lls_xjob *j, lls_handle *h, lls_str prefix,
                               int sections) {
  lls_error err;
  int64_t total = 0;
  int64_t now = lls_now_us();
  if (prefix.len == 0) {
    lls_kv_stats ks;
    if (h->vt->kv->stats(h->b, now, &ks, &err) != 0) lls_raise(L, &err, h->vt->name);
    total += ks.keys;
  } else {
    lls_str after = {NULL, 0};
    for (;;) {
      lls_rows_reset(&j->rows);
      if (h->vt->kv->scan(h->b, prefix, after, now, LLS_EXPORT_PAGE, 1, &j->rows, &err) != 0)
        lls_raise(L, &err, h->vt->name);
      size_t n = j->rows.count;
      total += (int64_t)n;
      if (n < LLS_EXPORT_PAGE) break;
      lls_str last = lls_row_key(&j->rows, n - 1);
      j->after.len = 0;
      if (lls_buf_append(&j->after, last.ptr, last.len) != 0) luaL_error(L, "out of memory");
      after.ptr = j->after.data;
      after.len = j->after.len;
    }
  }
  for (size_t i = 0; i < j->ncolls; i++) total += j->colls[i].count;
  if (sections && h->vt->xport->sec_dump != NULL) {
    lls_str after = {NULL, 0};
    int64_t after_ord = 0;
    for (;;) {
      lls_rows_reset(&j->rows);
      if (h->vt->xport->sec_dump(h->b, after, after_ord, LLS_EXPORT_PAGE, &j->rows, &err) != 0)
        lls_raise(L, &err, h->vt->name);
      size_t n = j->rows.count;
      total += (int64_t)n;
      if (n < LLS_EXPORT_PAGE) break;
      lls_str last = lls_row_key(&j->rows, n - 1);
      after_ord = j->rows.rows[n - 1].created_at;
      j->after.len = 0;
      if (lls_buf_append(&j->after, last.ptr, last.len) != 0) luaL_error(L, "out of memory");
      after.ptr = j->after.data;
      after.len = j->after.len;
    }
  }
  return total;
}
