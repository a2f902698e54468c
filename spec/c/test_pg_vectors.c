/*
 * test_pg_vectors.c -- the vector-collection slots of the PostgreSQL
 * backend (csrc/backends/postgres/), driven through lls_postgres_vt directly.
 *
 *   cc -std=c11 -D_POSIX_C_SOURCE=200809L -fsanitize=address,undefined -Icsrc \
 *      -I$(pg_config --includedir) \
 *      $(find csrc/base csrc/backend csrc/backends/postgres -name '*.c') \
 *      spec/c/test_pg_vectors.c -lpq -lpthread
 *   LLMSPELL_TEST_PG_URL=postgresql:///postgres?host=...&user=postgres ./a.out
 *
 * The URL must name a superuser (the test creates roles and inspects the
 * tables behind row-level security). Without it the test fails. Everything
 * lives in schema llmspell_pgvec_c and roles llmspell_pgvec_{reader,app},
 * dropped and recreated at the start and left behind at the end, so that
 * spec/pg_vectors_c_spec.lua can look at the rows with psql (and then drops
 * them). Prints "ok: N checks passed" and exits 0 when everything held.
 */
#include "backend/backend.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SCHEMA "llmspell_pgvec_c"
#define READER "llmspell_pgvec_reader"
#define APP "llmspell_pgvec_app"
#define APP_PASSWORD "pgvec-app"

/* A fixed "now" with a non-zero microsecond part, to check exactness. */
#define NOW INT64_C(1700000000123456)

#include "pg_check.h"

static long long sql_int(const char *fmt, const char *arg) {
  return atoll(sql(fmt, arg));
}

/* Runs SQL that may fail; returns 1 on success, 0 with the message in msg. */
static int sql_try(const char *q, char *msg, size_t cap) {
  PGresult *r = PQexec(admin, q);
  ExecStatusType s = PQresultStatus(r);
  int ok = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
  snprintf(msg, cap, "%s", ok ? "" : PQresultErrorMessage(r));
  PQclear(r);
  return ok;
}

/* Ends every connection the library holds, as an administrator would. */
static void terminate_library_connections(void) {
  sql("SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity"
      " WHERE application_name = 'llmspell.storage'");
}

/* ------------------------------------------------------- handles */

static lls_backend *open_as(const char *url, const char *tenant) {
  lls_option opts[1] = {{"schema", SCHEMA, 0}};
  lls_config cfg = {url, tenant, opts, 1};
  lls_error err;
  lls_backend *b = lls_backend_open(&lls_postgres_vt, &cfg, &err);
  if (b == NULL) die("open %s: %s: %s", tenant, lls_code_name(err.code), err.message);
  return b;
}

static lls_backend *open_pg(const char *tenant) { return open_as(pg_url, tenant); }

static const lls_backend_vt *vt = &lls_postgres_vt;

static lls_coll_info coll_info(const char *name, int dim) {
  lls_coll_info info;
  memset(&info, 0, sizeof info);
  snprintf(info.name, sizeof info.name, "%s", name);
  info.dimension = dim;
  info.metric = 1;
  info.m = 16;
  info.ef_construction = 200;
  info.ef_search = 50;
  return info;
}

static int64_t create(lls_backend *b, const char *name, int dim) {
  lls_coll_info info = coll_info(name, dim);
  lls_error err;
  if (vt->vec->coll_create(b, &info, NOW, &err) != 0)
    die("create %s: %s", name, err.message);
  return info.id;
}

/* ------------------------------------------------------- rows */

static lls_str S(const char *s) {
  lls_str x = {s, strlen(s)};
  return x;
}

/* dim float32 values, little-endian: base + j / 8. */
static char *make_vec(int dim, float base) {
  char *v = malloc((size_t)dim * 4);
  if (v == NULL) die("out of memory");
  for (int j = 0; j < dim; j++) {
    float f = base + (float)j / 8.0f;
    uint32_t u;
    memcpy(&u, &f, 4);
    for (int k = 0; k < 4; k++) v[j * 4 + k] = (char)(u >> (8 * k));
  }
  return v;
}

static lls_vec_row vrow(const char *id, const char *vec, int dim, const char *md) {
  lls_vec_row r;
  memset(&r, 0, sizeof r);
  r.id = S(id);
  r.scope = S("global");
  r.vector.ptr = vec;
  r.vector.len = (size_t)dim * 4;
  r.metadata = S(md);
  r.created_at = NOW;
  r.updated_at = NOW;
  return r;
}

typedef struct got_row {
  char *id, *scope, *md;
  char *vec;
  size_t veclen;
  int64_t created, updated, event, expires, seq;
  int has_event, deleted;
} got_row;

typedef struct collector {
  got_row *rows;
  size_t n, cap;
  size_t stop_after; /* 0 = never */
} collector;

static char *dup_str(lls_str s) {
  char *p = malloc(s.len + 1);
  if (p == NULL) die("out of memory");
  memcpy(p, s.ptr, s.len);
  p[s.len] = '\0';
  return p;
}

static int collect(void *ud, const lls_vec_row *row, lls_error *err) {
  collector *c = ud;
  if (c->stop_after && c->n == c->stop_after)
    return lls_error_set(err, LLS_EFORMAT, "collector: stop after %zu", c->stop_after);
  if (c->n == c->cap) {
    c->cap = c->cap ? c->cap * 2 : 16;
    c->rows = realloc(c->rows, c->cap * sizeof *c->rows);
    if (c->rows == NULL) die("out of memory");
  }
  got_row *g = &c->rows[c->n++];
  g->id = dup_str(row->id);
  g->scope = dup_str(row->scope);
  g->md = dup_str(row->metadata);
  g->vec = dup_str(row->vector);
  g->veclen = row->vector.len;
  g->created = row->created_at;
  g->updated = row->updated_at;
  g->event = row->event_time;
  g->has_event = row->has_event_time;
  g->expires = row->expires_at;
  g->seq = row->seq;
  g->deleted = row->deleted;
  return 0;
}

static void collector_free(collector *c) {
  for (size_t i = 0; i < c->n; i++) {
    free(c->rows[i].id);
    free(c->rows[i].scope);
    free(c->rows[i].md);
    free(c->rows[i].vec);
  }
  free(c->rows);
  memset(c, 0, sizeof *c);
}

static const got_row *find(const collector *c, const char *id) {
  for (size_t i = 0; i < c->n; i++)
    if (strcmp(c->rows[i].id, id) == 0) return &c->rows[i];
  return NULL;
}

/* vec_load into a fresh collector; returns the call's result. */
static int load(lls_backend *b, int64_t coll, int64_t since, collector *c, lls_error *err) {
  collector_free(c);
  return vt->vec->load(b, coll, since, collect, c, err);
}

/* "id@seq" or "-id@seq" (tombstone), comma-separated, in stream order. */
static const char *stream(const collector *c) {
  static char out[1024];
  size_t o = 0;
  out[0] = '\0';
  for (size_t i = 0; i < c->n && o < sizeof out - 64; i++)
    o += (size_t)snprintf(out + o, sizeof out - o, "%s%s%s@%lld", i ? "," : "",
                          c->rows[i].deleted ? "-" : "", c->rows[i].id,
                          (long long)c->rows[i].seq);
  return out;
}

static int seq_sorted(const collector *c) {
  for (size_t i = 1; i < c->n; i++)
    if (c->rows[i].seq < c->rows[i - 1].seq) return 0;
  return 1;
}

static int64_t cur_seq(lls_backend *b, int64_t coll, int64_t *count) {
  int64_t seq = -1, n = -1;
  lls_error err;
  if (vt->vec->coll_seq(b, coll, &seq, &n, &err) != 0) die("coll_seq: %s", err.message);
  if (count) *count = n;
  return seq;
}

typedef struct names {
  char list[1024];
  int64_t ids[16];
  int n;
} names;

static int collect_name(void *ud, const lls_coll_info *info, lls_error *err) {
  names *nm = ud;
  (void)err;
  size_t o = strlen(nm->list);
  snprintf(nm->list + o, sizeof nm->list - o, "%s%s", nm->n ? "|" : "", info->name);
  if (nm->n < 16) nm->ids[nm->n] = info->id;
  nm->n++;
  return 0;
}

static const char *list_names(lls_backend *b, const char *prefix) {
  static names nm;
  lls_error err;
  memset(&nm, 0, sizeof nm);
  if (vt->vec->coll_list(b, S(prefix), collect_name, &nm, &err) != 0)
    die("coll_list: %s", err.message);
  return nm.list;
}

/* ------------------------------------------------------- the tests */

static lls_backend *acme, *acme2, *globex;
static int64_t docs; /* acme's "docs" */

static void test_migrations(void) {
  lls_rows rows = {0};
  lls_error err;
  OK(vt->migrations(acme, &rows, &err), err);
  CHECK(rows.count == 13, "%zu migrations", rows.count);
  if (rows.count == 13) {
    lls_str k0 = lls_row_key(&rows, 0), k1 = lls_row_key(&rows, 1);
    CHECK(k0.len == 12 && !memcmp(k0.ptr, "001_kv_store", 12), "%.*s", (int)k0.len, k0.ptr);
    CHECK(k1.len == 11 && !memcmp(k1.ptr, "002_vectors", 11), "%.*s", (int)k1.len, k1.ptr);
  }
  lls_rows_free(&rows);
  for (int i = 0; i < 4; i++) {
    static const char *t[] = {"collections", "vectors", "vector_tombstones",
                              "vector_snapshots"};
    char q[256];
    snprintf(q, sizeof q,
             "SELECT relrowsecurity::text || relforcerowsecurity::text FROM pg_class"
             " WHERE oid = '" SCHEMA ".%s'::regclass", t[i]);
    CHECK(!strcmp(sql("%s", q), "truetrue"), "RLS on %s: %s", t[i], sql("%s", q));
  }
}

static void test_collections(void) {
  lls_error err;
  lls_coll_info info = coll_info("docs", 4);
  OK(vt->vec->coll_create(acme, &info, NOW, &err), err);
  docs = info.id;
  CHECK(info.id > 0 && info.seq == 0 && info.count == 0 && info.created_at == NOW,
        "id %lld seq %lld", (long long)info.id, (long long)info.seq);

  lls_coll_info again = coll_info("docs", 8);
  FAILS(vt->vec->coll_create(acme, &again, NOW, &err), err, LLS_ECONFLICT);
  CHECK(strstr(err.message, "'docs'") != NULL, "%s", err.message);

  /* another tenant may use the same name */
  lls_coll_info g = coll_info("docs", 3);
  OK(vt->vec->coll_create(globex, &g, NOW, &err), err);
  CHECK(g.id != docs, "same id %lld", (long long)g.id);

  lls_coll_info got;
  int found = -1;
  OK(vt->vec->coll_get(acme, "docs", &got, &found, &err), err);
  CHECK(found == 1 && got.id == docs && got.dimension == 4 && got.metric == 1 && got.m == 16 &&
            got.ef_construction == 200 && got.ef_search == 50 && got.created_at == NOW &&
            got.seq == 0 && got.count == 0 && !strcmp(got.name, "docs"),
        "found %d dim %d created %lld", found, got.dimension, (long long)got.created_at);
  OK(vt->vec->coll_get(globex, "docs", &got, &found, &err), err);
  CHECK(found == 1 && got.id == g.id && got.dimension == 3, "globex sees %lld",
        (long long)got.id);
  OK(vt->vec->coll_get(acme, "nope", &got, &found, &err), err);
  CHECK(found == 0, "found %d", found);

  create(acme, "doc", 2);
  create(acme, "docs/2", 2);
  create(acme, "do%s", 2);
  create(acme, "e\xc3\xa9", 2);
  CHECK(!strcmp(list_names(acme, ""), "do%s|doc|docs|docs/2|e\xc3\xa9"), "%s",
        list_names(acme, ""));
  CHECK(!strcmp(list_names(acme, "doc"), "doc|docs|docs/2"), "%s", list_names(acme, "doc"));
  CHECK(!strcmp(list_names(acme, "do%"), "do%s"), "%s", list_names(acme, "do%"));
  CHECK(!strcmp(list_names(acme, "docs/"), "docs/2"), "%s", list_names(acme, "docs/"));
  CHECK(!strcmp(list_names(acme, "e\xc3\xa9"), "e\xc3\xa9"), "%s", list_names(acme, "e"));
  CHECK(!strcmp(list_names(acme, "x"), ""), "%s", list_names(acme, "x"));
  CHECK(!strcmp(list_names(globex, ""), "docs"), "%s", list_names(globex, ""));

  /* a sink that stops the listing */
  names nm;
  memset(&nm, 0, sizeof nm);
  int drop = -1;
  OK(vt->vec->coll_drop(acme, "do%s", &drop, &err), err);
  CHECK(drop == 1, "dropped %d", drop);
  OK(vt->vec->coll_drop(acme, "do%s", &drop, &err), err);
  CHECK(drop == 0, "dropped again %d", drop);
  CHECK(!strcmp(list_names(acme, "do"), "doc|docs|docs/2"), "%s", list_names(acme, "do"));
}

static void test_put_and_seq(void) {
  lls_error err;
  int64_t seq = -1, count;
  char *va = make_vec(4, 1.0f), *vb = make_vec(4, 2.0f), *vc = make_vec(4, 3.0f);
  char *vb2 = make_vec(4, -2.5f), *vd = make_vec(4, 4.0f);

  lls_vec_row rows[3] = {vrow("a", va, 4, "{\"b\": 1, \"a\": [1, 2.5, \"x\"]}"),
                         vrow("b", vb, 4, "{}"), vrow("c", vc, 4, "{\"n\": 9007199254740993}")};
  rows[0].scope = S("tenant:acme");
  rows[0].has_event_time = 1;
  rows[0].event_time = NOW - 5;
  rows[0].expires_at = NOW + 1000001;
  rows[0].updated_at = NOW + 7;
  OK(vt->vec->put(acme, docs, rows, 3, 1, &seq, &err), err);
  CHECK(seq == 1, "seq %lld", (long long)seq);
  CHECK(cur_seq(acme, docs, &count) == 1 && count == 3, "count %lld", (long long)count);

  /* add with an existing id: conflict naming it, nothing written */
  lls_vec_row conflict[2] = {vrow("d", vd, 4, "{}"), vrow("b", vb2, 4, "{}")};
  FAILS(vt->vec->put(acme, docs, conflict, 2, 1, &seq, &err), err, LLS_ECONFLICT);
  CHECK(strstr(err.message, "'b'") != NULL, "%s", err.message);
  CHECK(cur_seq(acme, docs, &count) == 1 && count == 3, "after conflict: count %lld",
        (long long)count);
  /* the same id twice in one add */
  lls_vec_row twice[2] = {vrow("e", vd, 4, "{}"), vrow("e", vb2, 4, "{}")};
  FAILS(vt->vec->put(acme, docs, twice, 2, 1, &seq, &err), err, LLS_ECONFLICT);
  CHECK(strstr(err.message, "'e'") != NULL, "%s", err.message);
  CHECK(cur_seq(acme, docs, &count) == 1 && count == 3, "count %lld", (long long)count);

  collector c = {0};
  OK(load(acme, docs, 0, &c, &err), err);
  CHECK(c.n == 3 && find(&c, "d") == NULL && find(&c, "e") == NULL, "%s", stream(&c));

  /* upsert: one replaced, one new */
  lls_vec_row up[2] = {vrow("b", vb2, 4, "{\"v\": 2}"), vrow("d", vd, 4, "{}")};
  up[0].created_at = NOW + 100;
  OK(vt->vec->put(acme, docs, up, 2, 0, &seq, &err), err);
  CHECK(seq == 2, "seq %lld", (long long)seq);
  CHECK(cur_seq(acme, docs, &count) == 2 && count == 4, "count %lld", (long long)count);

  /* upsert with the same id twice: the last one wins */
  lls_vec_row x2[2] = {vrow("x", va, 4, "{\"version\": 1}"), vrow("x", vc, 4, "{\"version\": 2}")};
  OK(vt->vec->put(acme, docs, x2, 2, 0, &seq, &err), err);
  CHECK(seq == 3, "seq %lld", (long long)seq);
  CHECK(cur_seq(acme, docs, &count) == 3 && count == 5, "count %lld", (long long)count);

  /* an empty put writes nothing and leaves seq */
  OK(vt->vec->put(acme, docs, rows, 0, 0, &seq, &err), err);
  CHECK(seq == 3 && cur_seq(acme, docs, NULL) == 3, "seq %lld", (long long)seq);

  OK(load(acme, docs, 0, &c, &err), err);
  CHECK(c.n == 5 && seq_sorted(&c), "%s", stream(&c));
  const got_row *a = find(&c, "a"), *b = find(&c, "b"), *x = find(&c, "x");
  CHECK(a && a->seq == 1 && !a->deleted && !strcmp(a->scope, "tenant:acme") &&
            a->veclen == 16 && !memcmp(a->vec, va, 16) && a->created == NOW &&
            a->updated == NOW + 7 && a->has_event && a->event == NOW - 5 &&
            a->expires == NOW + 1000001,
        "row a");
  /* jsonb: keys reordered, spacing normalised, numbers exact */
  CHECK(a && !strcmp(a->md, "{\"a\": [1, 2.5, \"x\"], \"b\": 1}"), "md %s", a ? a->md : "");
  const got_row *cr = find(&c, "c");
  CHECK(cr && !strcmp(cr->md, "{\"n\": 9007199254740993}") && !cr->has_event &&
            cr->expires == 0,
        "md %s", cr ? cr->md : "");
  CHECK(b && b->seq == 2 && !memcmp(b->vec, vb2, 16) && !strcmp(b->md, "{\"v\": 2}") &&
            b->created == NOW + 100 && !strcmp(b->scope, "global"),
        "row b");
  CHECK(x && x->seq == 3 && !memcmp(x->vec, vc, 16) && !strcmp(x->md, "{\"version\": 2}"),
        "row x");
  collector_free(&c);

  /* metadata jsonb cannot hold: \u0000 and non-JSON */
  lls_vec_row bad = vrow("nul", va, 4, "{\"k\": \"a\\u0000b\"}");
  FAILS(vt->vec->put(acme, docs, &bad, 1, 0, &seq, &err), err, LLS_EINVALID);
  CHECK(strstr(err.message, "\\u0000") != NULL && !strcmp(err.sqlstate, "22P05"), "%s",
        err.message);
  bad = vrow("notjson", va, 4, "{oops");
  FAILS(vt->vec->put(acme, docs, &bad, 1, 1, &seq, &err), err, LLS_EINVALID);
  CHECK(strstr(err.message, "JSON") != NULL, "%s", err.message);
  CHECK(cur_seq(acme, docs, &count) == 3 && count == 5, "count %lld", (long long)count);

  free(va), free(vb), free(vc), free(vb2), free(vd);
}

static void test_delete_and_since(void) {
  lls_error err;
  int64_t seq, count;
  size_t deleted = 99;
  lls_str ids[2] = {S("a"), S("missing")};
  OK(vt->vec->del(acme, docs, ids, 2, &deleted, &seq, &err), err);
  CHECK(deleted == 1 && seq == 4, "deleted %zu seq %lld", deleted, (long long)seq);
  CHECK(cur_seq(acme, docs, &count) == 4 && count == 4, "count %lld", (long long)count);
  /* nothing there: no write, seq unchanged */
  OK(vt->vec->del(acme, docs, ids + 1, 1, &deleted, &seq, &err), err);
  CHECK(deleted == 0 && seq == 4 && cur_seq(acme, docs, NULL) == 4, "deleted %zu seq %lld",
        deleted, (long long)seq);
  OK(vt->vec->del(acme, docs, ids, 0, &deleted, &seq, &err), err);
  CHECK(deleted == 0 && seq == 4, "seq %lld", (long long)seq);

  /* re-add after delete: the tombstone, then the row, in seq order */
  char *va = make_vec(4, 9.0f);
  lls_vec_row a = vrow("a", va, 4, "{\"again\": true}");
  OK(vt->vec->put(acme, docs, &a, 1, 1, &seq, &err), err);
  CHECK(seq == 5, "seq %lld", (long long)seq);
  collector c = {0};
  OK(load(acme, docs, 3, &c, &err), err);
  CHECK(!strcmp(stream(&c), "-a@4,a@5"), "%s", stream(&c));
  if (c.n == 2)
    CHECK(c.rows[0].deleted && !c.rows[1].deleted && !memcmp(c.rows[1].vec, va, 16) &&
              !strcmp(c.rows[1].md, "{\"again\": true}") && c.rows[0].veclen == 0,
          "stream rows");
  OK(load(acme, docs, 4, &c, &err), err);
  CHECK(!strcmp(stream(&c), "a@5"), "%s", stream(&c));
  OK(load(acme, docs, 5, &c, &err), err);
  CHECK(c.n == 0, "%s", stream(&c));
  OK(load(acme, docs, 2, &c, &err), err);
  CHECK(!strcmp(stream(&c), "x@3,-a@4,a@5"), "%s", stream(&c));

  lls_str cd[3] = {S("c"), S("d"), S("c")};
  OK(vt->vec->del(acme, docs, cd, 3, &deleted, &seq, &err), err);
  CHECK(deleted == 2 && seq == 6, "deleted %zu seq %lld", deleted, (long long)seq);
  CHECK(cur_seq(acme, docs, &count) == 6 && count == 3, "count %lld", (long long)count);
  OK(load(acme, docs, 5, &c, &err), err);
  CHECK(!strcmp(stream(&c), "-c@6,-d@6") || !strcmp(stream(&c), "-d@6,-c@6"), "%s",
        stream(&c));
  /* a full load never shows tombstones */
  OK(load(acme, docs, 0, &c, &err), err);
  CHECK(c.n == 3 && find(&c, "a") && find(&c, "b") && find(&c, "x") && seq_sorted(&c), "%s",
        stream(&c));
  for (size_t i = 0; i < c.n; i++) CHECK(!c.rows[i].deleted, "%s deleted", c.rows[i].id);
  collector_free(&c);
  free(va);
}

static void test_tenants(void) {
  lls_error err;
  int64_t seq, count;
  size_t deleted;
  char *v = make_vec(4, 0.5f);
  lls_vec_row r = vrow("intruder", v, 4, "{}");
  int64_t before = cur_seq(acme, docs, &count);

  FAILS(vt->vec->coll_seq(globex, docs, &seq, &count, &err), err, LLS_ENOTFOUND);
  FAILS(vt->vec->put(globex, docs, &r, 1, 0, &seq, &err), err, LLS_ENOTFOUND);
  lls_str id = S("b");
  FAILS(vt->vec->del(globex, docs, &id, 1, &deleted, &seq, &err), err, LLS_ENOTFOUND);
  collector c = {0};
  FAILS(load(globex, docs, 0, &c, &err), err, LLS_ENOTFOUND);
  FAILS(load(globex, docs, 1, &c, &err), err, LLS_ENOTFOUND);
  CHECK(c.n == 0, "globex got %zu rows", c.n);
  FAILS(vt->vec->snap_save(globex, docs, 1, "x", 1, &err), err, LLS_ENOTFOUND);
  lls_buf buf = {0};
  int found = -1;
  OK(vt->vec->snap_load(globex, docs, &buf, &seq, &found, &err), err);
  CHECK(found == 0, "globex found acme's snapshot");

  /* globex drops its own "docs" only */
  int dropped;
  OK(vt->vec->coll_drop(globex, "docs", &dropped, &err), err);
  CHECK(dropped == 1, "dropped %d", dropped);
  CHECK(cur_seq(acme, docs, &count) == before && count == 3, "acme's docs changed");
  OK(load(acme, docs, 0, &c, &err), err);
  CHECK(c.n == 3 && find(&c, "intruder") == NULL, "%s", stream(&c));

  /* globex data for the raw-SQL checks */
  int64_t gdocs = create(globex, "docs", 4);
  lls_vec_row g[2] = {vrow("g1", v, 4, "{\"t\": \"globex\"}"), vrow("g2", v, 4, "{}")};
  OK(vt->vec->put(globex, gdocs, g, 2, 1, &seq, &err), err);
  OK(vt->vec->del(globex, gdocs, &g[1].id, 1, &deleted, &seq, &err), err);
  OK(vt->vec->snap_save(globex, gdocs, seq, "globex-snap", 11, &err), err);
  OK(load(acme, docs, 0, &c, &err), err);
  CHECK(find(&c, "g1") == NULL, "acme sees globex's row");
  collector_free(&c);
  lls_buf_free(&buf);
  free(v);
}

static void test_two_handles(void) {
  lls_error err;
  int64_t seq, count;
  lls_coll_info info;
  int found;
  OK(vt->vec->coll_get(acme2, "docs", &info, &found, &err), err);
  CHECK(found && info.id == docs && info.seq == cur_seq(acme, docs, &count) &&
            info.count == count,
        "acme2 sees seq %lld", (long long)info.seq);
  int64_t s0 = info.seq;
  char *v = make_vec(4, 7.0f);
  lls_vec_row y = vrow("y", v, 4, "{\"from\": \"acme\"}");
  OK(vt->vec->put(acme, docs, &y, 1, 1, &seq, &err), err);
  CHECK(cur_seq(acme2, docs, &count) == s0 + 1 && count == 4, "acme2 seq");
  collector c = {0};
  OK(load(acme2, docs, s0, &c, &err), err);
  CHECK(!strcmp(stream(&c), "y@7") && c.n == 1 && !memcmp(c.rows[0].vec, v, 16), "%s",
        stream(&c));
  /* and the other way round, a delete */
  size_t deleted;
  OK(vt->vec->del(acme2, docs, &y.id, 1, &deleted, &seq, &err), err);
  OK(load(acme, docs, s0 + 1, &c, &err), err);
  CHECK(!strcmp(stream(&c), "-y@8"), "%s", stream(&c));
  collector_free(&c);
  free(v);
}

static void test_transactions(void) {
  lls_error err;
  int64_t seq, count, count0;
  size_t deleted;
  char *v = make_vec(4, 11.0f);
  int64_t s0 = cur_seq(acme, docs, &count0);
  collector before = {0}, after = {0};
  OK(load(acme, docs, 0, &before, &err), err);

  /* rollback restores rows, tombstones and seq */
  OK(vt->begin(acme, 0, &err), err);
  lls_vec_row z = vrow("z", v, 4, "{}");
  OK(vt->vec->put(acme, docs, &z, 1, 1, &seq, &err), err);
  CHECK(seq == s0 + 1, "seq %lld", (long long)seq);
  lls_str b = S("b");
  OK(vt->vec->del(acme, docs, &b, 1, &deleted, &seq, &err), err);
  CHECK(deleted == 1 && seq == s0 + 2, "seq %lld", (long long)seq);
  CHECK(cur_seq(acme, docs, &count) == s0 + 2 && count == count0, "in tx");
  /* a change stream inside the transaction sees its own writes */
  collector c = {0};
  OK(load(acme, docs, s0, &c, &err), err);
  CHECK(!strcmp(stream(&c), "z@9,-b@10"), "%s", stream(&c));
  OK(load(acme, docs, 0, &c, &err), err); /* the cursor was closed: declare again */
  CHECK(find(&c, "z") && !find(&c, "b"), "%s", stream(&c));
  OK(vt->vec->snap_save(acme, docs, s0 + 2, "in-tx", 5, &err), err);
  OK(vt->rollback(acme, 0, &err), err);
  CHECK(cur_seq(acme, docs, &count) == s0 && count == count0, "seq %lld after rollback",
        (long long)cur_seq(acme, docs, NULL));
  OK(load(acme, docs, 0, &after, &err), err);
  CHECK(after.n == before.n && find(&after, "b") && !find(&after, "z"), "%s", stream(&after));
  OK(load(acme, docs, s0, &c, &err), err);
  CHECK(c.n == 0, "%s", stream(&c));
  lls_buf buf = {0};
  int found;
  OK(vt->vec->snap_load(acme, docs, &buf, &seq, &found, &err), err);
  CHECK(found == 0, "snapshot of a rolled-back transaction survived");

  /* a savepoint undoes only its part */
  OK(vt->begin(acme, 0, &err), err);
  OK(vt->vec->put(acme, docs, &z, 1, 1, &seq, &err), err);
  OK(vt->begin(acme, 1, &err), err);
  lls_vec_row w = vrow("w", v, 4, "{}");
  OK(vt->vec->put(acme, docs, &w, 1, 1, &seq, &err), err);
  CHECK(seq == s0 + 2, "seq %lld", (long long)seq);
  OK(vt->rollback(acme, 1, &err), err);
  CHECK(cur_seq(acme, docs, NULL) == s0 + 1, "after savepoint rollback");
  /* a failed write inside the transaction leaves it usable */
  lls_vec_row dup = vrow("a", v, 4, "{}");
  FAILS(vt->vec->put(acme, docs, &dup, 1, 1, &seq, &err), err, LLS_ECONFLICT);
  lls_vec_row nul = vrow("n", v, 4, "{\"x\": \"\\u0000\"}");
  FAILS(vt->vec->put(acme, docs, &nul, 1, 0, &seq, &err), err, LLS_EINVALID);
  lls_str none = S("none");
  OK(vt->vec->del(acme, docs, &none, 1, &deleted, &seq, &err), err);
  CHECK(deleted == 0 && seq == s0 + 1, "seq %lld", (long long)seq);
  lls_vec_row u = vrow("u", v, 4, "{}");
  OK(vt->vec->put(acme, docs, &u, 1, 0, &seq, &err), err);
  CHECK(seq == s0 + 2, "seq %lld", (long long)seq);
  OK(vt->commit(acme, 0, &err), err);
  CHECK(cur_seq(acme, docs, &count) == s0 + 2 && count == count0 + 2, "after commit");
  OK(load(acme, docs, s0, &c, &err), err);
  CHECK(!strcmp(stream(&c), "z@9,u@10"), "%s", stream(&c));
  lls_str zu[2] = {S("z"), S("u")};
  OK(vt->vec->del(acme, docs, zu, 2, &deleted, &seq, &err), err);
  CHECK(deleted == 2, "deleted %zu", deleted);

  collector_free(&c);
  collector_free(&before);
  collector_free(&after);
  lls_buf_free(&buf);
  free(v);
}

typedef struct writer {
  lls_backend *b;
  int64_t coll, seq;
  int rc;
  volatile int done;
  lls_error err;
} writer;

static void *write_one(void *arg) {
  writer *w = arg;
  char *v = make_vec(4, 21.0f);
  lls_vec_row r = vrow("p2", v, 4, "{}");
  w->rc = vt->vec->put(w->b, w->coll, &r, 1, 0, &w->seq, &w->err);
  w->done = 1;
  free(v);
  return NULL;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Writers of one collection are serialised by its row: the second waits
 * for the first's commit and gets the next seq. */
static void test_serialised_writers(void) {
  lls_error err;
  int64_t seq;
  char *v = make_vec(4, 20.0f);
  OK(vt->begin(acme, 0, &err), err);
  lls_vec_row p1 = vrow("p1", v, 4, "{}");
  OK(vt->vec->put(acme, docs, &p1, 1, 0, &seq, &err), err);
  writer w = {acme2, docs, 0, -1, 0, {0}};
  pthread_t t;
  if (pthread_create(&t, NULL, write_one, &w) != 0) die("pthread_create");
  sleep_ms(300);
  CHECK(!w.done, "the second writer did not wait for the first");
  OK(vt->commit(acme, 0, &err), err);
  pthread_join(t, NULL);
  CHECK(w.rc == 0 && w.seq == seq + 1, "second writer: rc %d seq %lld (first %lld): %s", w.rc,
        (long long)w.seq, (long long)seq, w.err.message);
  collector c = {0};
  OK(load(acme, docs, seq - 1, &c, &err), err);
  char want[64];
  snprintf(want, sizeof want, "p1@%lld,p2@%lld", (long long)seq, (long long)seq + 1);
  CHECK(!strcmp(stream(&c), want), "%s", stream(&c));
  collector_free(&c);
  free(v);
}

static void test_sink_stop(void) {
  lls_error err;
  collector c = {0};
  c.stop_after = 2;
  err.code = LLS_OK;
  int rc = vt->vec->load(acme, docs, 0, collect, &c, &err);
  CHECK(rc != 0 && err.code == LLS_EFORMAT && strstr(err.message, "stop after 2"),
        "rc %d %s: %s", rc, lls_code_name(err.code), err.message);
  CHECK(c.n == 2, "%zu rows", c.n);
  c.stop_after = 0;
  OK(load(acme, docs, 0, &c, &err), err); /* the handle goes on working */
  CHECK(c.n > 2, "%zu rows", c.n);
  /* the same inside a transaction: the cursor is closed, the transaction intact */
  OK(vt->begin(acme, 0, &err), err);
  collector_free(&c);
  c.stop_after = 1;
  rc = vt->vec->load(acme, docs, 0, collect, &c, &err);
  CHECK(rc != 0 && err.code == LLS_EFORMAT, "in tx: %s", err.message);
  c.stop_after = 0;
  OK(load(acme, docs, 0, &c, &err), err);
  CHECK(c.n > 2, "%zu rows", c.n);
  OK(vt->commit(acme, 0, &err), err);
  collector_free(&c);
}

static void test_snapshots(void) {
  lls_error err;
  lls_buf buf = {0};
  int64_t seq = -7;
  int found = -1;
  int64_t s = cur_seq(acme, docs, NULL);
  OK(vt->vec->snap_load(acme, docs, &buf, &seq, &found, &err), err);
  CHECK(found == 0, "found %d", found);

  OK(vt->vec->snap_save(acme, docs, s, "hello\0world", 11, &err), err);
  OK(vt->vec->snap_load(acme2, docs, &buf, &seq, &found, &err), err);
  CHECK(found == 1 && seq == s && buf.len == 11 && !memcmp(buf.data, "hello\0world", 11),
        "found %d seq %lld len %zu", found, (long long)seq, buf.len);
  /* an older snapshot does not replace a newer one */
  OK(vt->vec->snap_save(acme, docs, s - 1, "older", 5, &err), err);
  OK(vt->vec->snap_load(acme, docs, &buf, &seq, &found, &err), err);
  CHECK(found == 1 && seq == s && buf.len == 11, "len %zu seq %lld", buf.len, (long long)seq);

  /* larger than one part (32 MB): split, reassembled byte for byte */
  size_t big = ((size_t)70 << 20) + 12345;
  unsigned char *data = malloc(big);
  if (data == NULL) die("out of memory");
  uint32_t x = 2463534242u;
  for (size_t i = 0; i < big; i++) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    data[i] = (unsigned char)x;
  }
  OK(vt->vec->snap_save(acme, docs, s, data, big, &err), err);
  char where[32];
  snprintf(where, sizeof where, "%lld", (long long)docs);
  CHECK(sql_int("SELECT count(*) FROM " SCHEMA ".vector_snapshots WHERE collection_id = %s",
                where) == 3,
        "parts");
  OK(vt->vec->snap_load(acme2, docs, &buf, &seq, &found, &err), err);
  CHECK(found == 1 && seq == s && buf.len == big && !memcmp(buf.data, data, big),
        "big: len %zu", buf.len);
  /* a smaller one replaces every old part */
  OK(vt->vec->snap_save(acme, docs, s + 0, "", 0, &err), err);
  OK(vt->vec->snap_load(acme, docs, &buf, &seq, &found, &err), err);
  CHECK(found == 1 && buf.len == 0, "empty: found %d len %zu", found, buf.len);
  OK(vt->vec->snap_save(acme, docs, s, "acme-snap", 9, &err), err);
  OK(vt->vec->snap_load(acme, docs, &buf, &seq, &found, &err), err);
  CHECK(found == 1 && buf.len == 9 && !memcmp(buf.data, "acme-snap", 9), "len %zu", buf.len);
  CHECK(sql_int("SELECT count(*) FROM " SCHEMA ".vector_snapshots WHERE collection_id = %s",
                where) == 1,
        "parts left over");
  free(data);
  lls_buf_free(&buf);
}

/* Backdates a tombstone by two hours (as if deleted long ago). */
static void age_tombstone(int64_t coll, const char *id) {
  sql("UPDATE " SCHEMA ".vector_tombstones SET deleted_at = deleted_at - interval '2 hours'"
      " WHERE collection_id = %lld AND id = '%s'", (long long)coll, id);
}

static void test_tomb_floor(void) {
  lls_error err;
  int64_t seq;
  size_t deleted;
  int64_t hist = create(acme, "hist", 2);
  char *v = make_vec(2, 1.0f);
  lls_vec_row rows[5] = {vrow("r1", v, 2, "{}"), vrow("r2", v, 2, "{}"), vrow("r3", v, 2, "{}"),
                         vrow("r4", v, 2, "{}"), vrow("r5", v, 2, "{}")};
  OK(vt->vec->put(acme, hist, rows, 5, 1, &seq, &err), err);             /* 1 */
  OK(vt->vec->del(acme, hist, &rows[0].id, 1, &deleted, &seq, &err), err); /* 2 */
  OK(vt->vec->del(acme, hist, &rows[1].id, 1, &deleted, &seq, &err), err); /* 3 */
  lls_vec_row r6 = vrow("r6", v, 2, "{}");
  OK(vt->vec->put(acme, hist, &r6, 1, 1, &seq, &err), err);               /* 4 */
  CHECK(seq == 4, "seq %lld", (long long)seq);
  age_tombstone(hist, "r1");
  age_tombstone(hist, "r2");

  /* a snapshot at 2 covers r1's tombstone (seq 2), not r2's (seq 3) */
  OK(vt->vec->snap_save(acme, hist, 2, "s2", 2, &err), err);
  char where[64];
  snprintf(where, sizeof where, "%lld", (long long)hist);
  CHECK(sql_int("SELECT count(*) FROM " SCHEMA ".vector_tombstones WHERE collection_id = %s",
                where) == 1,
        "tombstones after first prune");
  CHECK(sql_int("SELECT tomb_floor FROM " SCHEMA ".collections WHERE id = %s", where) == 2,
        "floor");
  collector c = {0};
  FAILS(load(acme, hist, 1, &c, &err), err, LLS_EVERSION);
  CHECK(strstr(err.message, "collection history pruned; reload") != NULL, "%s", err.message);
  CHECK(c.n == 0, "rows before the version error");
  OK(load(acme, hist, 2, &c, &err), err);
  CHECK(!strcmp(stream(&c), "-r2@3,r6@4"), "%s", stream(&c));
  OK(load(acme, hist, 0, &c, &err), err);
  CHECK(c.n == 4, "%s", stream(&c));

  /* a young tombstone survives a covering snapshot */
  OK(vt->vec->del(acme, hist, &rows[2].id, 1, &deleted, &seq, &err), err); /* 5 */
  OK(vt->vec->snap_save(acme2, hist, 5, "s5", 2, &err), err);
  const char *left = sql("SELECT string_agg(id, ',') FROM " SCHEMA ".vector_tombstones"
                         " WHERE collection_id = %s", where);
  CHECK(!strcmp(left, "r3"), "tombstones left: %s", left);
  CHECK(sql_int("SELECT tomb_floor FROM " SCHEMA ".collections WHERE id = %s", where) == 3,
        "floor");
  FAILS(load(acme2, hist, 2, &c, &err), err, LLS_EVERSION);
  OK(load(acme2, hist, 3, &c, &err), err);
  CHECK(!strcmp(stream(&c), "r6@4,-r3@5"), "%s", stream(&c));
  /* since = 0 is a full reload, never refused */
  OK(load(acme2, hist, 0, &c, &err), err);
  CHECK(c.n == 3, "%s", stream(&c));
  collector_free(&c);
  free(v);
}

/* Counts statements the server ran, when pg_stat_statements is loaded
 * (-1 otherwise); the counting query itself is left out. */
static long long statements_run(void) {
  char msg[512];
  if (!sql_try("SELECT 1 FROM pg_stat_statements LIMIT 1", msg, sizeof msg)) return -1;
  return atoll(sql("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements"
                   " WHERE query NOT LIKE '%%pg_stat_statements%%'"));
}

static double seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_bulk(void) {
  enum { N = 10000, DIM = 768 };
  lls_error err;
  int64_t seq, count;
  int64_t bulk = create(acme, "bulk", DIM);
  lls_vec_row *rows = calloc(N, sizeof *rows);
  char (*ids)[16] = calloc(N, 16);
  char (*mds)[32] = calloc(N, 32);
  char **vecs = calloc(N, sizeof *vecs);
  if (rows == NULL || ids == NULL || mds == NULL || vecs == NULL) die("out of memory");
  for (int i = 0; i < N; i++) {
    snprintf(ids[i], 16, "v%05d", i);
    snprintf(mds[i], 32, "{\"i\": %d}", i);
    vecs[i] = make_vec(DIM, (float)i);
    rows[i] = vrow(ids[i], vecs[i], DIM, mds[i]);
  }
  {
    char msg[512];
    sql_try("CREATE EXTENSION IF NOT EXISTS pg_stat_statements", msg, sizeof msg);
  }
  cur_seq(acme, bulk, NULL); /* connection warm, statements prepared */
  long long st0 = statements_run();
  double t0 = seconds();
  OK(vt->vec->put(acme, bulk, rows, N, 1, &seq, &err), err);
  double t1 = seconds();
  long long st1 = statements_run();
  CHECK(seq == 1 && cur_seq(acme, bulk, &count) == 1 && count == N, "count %lld",
        (long long)count);
  if (st0 >= 0) {
    printf("bulk add: %d x %d-d in %.2f s, %lld statements\n", N, DIM, t1 - t0, st1 - st0);
    CHECK(st1 - st0 <= 4, "%lld statements for one bulk add", st1 - st0);
  } else {
    printf("bulk add: %d x %d-d in %.2f s (pg_stat_statements not loaded: statements not"
           " counted)\n", N, DIM, t1 - t0);
  }

  /* streamed back across many fetches, every byte intact */
  collector c = {0};
  OK(load(acme, bulk, 0, &c, &err), err);
  CHECK(c.n == N, "%zu rows", c.n);
  int bad = 0;
  for (size_t i = 0; i < c.n; i++) {
    int k = atoi(c.rows[i].id + 1);
    char want[32];
    snprintf(want, sizeof want, "{\"i\": %d}", k);
    if (k < 0 || k >= N || c.rows[i].veclen != DIM * 4 ||
        memcmp(c.rows[i].vec, vecs[k], DIM * 4) != 0 || strcmp(c.rows[i].md, want) != 0 ||
        c.rows[i].seq != 1)
      bad++;
  }
  CHECK(bad == 0, "%d rows differ", bad);

  /* replace all: count stays, one more seq */
  st0 = statements_run();
  OK(vt->vec->put(acme, bulk, rows, N, 0, &seq, &err), err);
  st1 = statements_run();
  CHECK(seq == 2 && cur_seq(acme, bulk, &count) == 2 && count == N, "count %lld",
        (long long)count);
  if (st0 >= 0) CHECK(st1 - st0 <= 4, "%lld statements for one bulk upsert", st1 - st0);

  lls_str *del = calloc(N / 2, sizeof *del);
  if (del == NULL) die("out of memory");
  for (int i = 0; i < N / 2; i++) del[i] = S(ids[i * 2]);
  size_t deleted;
  st0 = statements_run();
  OK(vt->vec->del(acme, bulk, del, N / 2, &deleted, &seq, &err), err);
  st1 = statements_run();
  CHECK(deleted == N / 2 && seq == 3 && cur_seq(acme, bulk, &count) == 3 && count == N / 2,
        "deleted %zu count %lld", deleted, (long long)count);
  if (st0 >= 0) CHECK(st1 - st0 <= 4, "%lld statements for one bulk delete", st1 - st0);
  OK(load(acme, bulk, 2, &c, &err), err);
  CHECK(c.n == N / 2, "%zu tombstones", c.n);
  for (size_t i = 0; i < c.n; i++)
    if (!c.rows[i].deleted || c.rows[i].seq != 3) bad++;
  CHECK(bad == 0, "bad tombstones");
  OK(vt->vec->snap_save(acme, bulk, 3, "bulk-snap", 9, &err), err);

  /* drop: rows, tombstones and snapshot go with the collection */
  int dropped;
  OK(vt->vec->coll_drop(acme, "bulk", &dropped, &err), err);
  CHECK(dropped == 1, "dropped %d", dropped);
  char where[64];
  snprintf(where, sizeof where, "%lld", (long long)bulk);
  const char *left = sql("SELECT (SELECT count(*) FROM " SCHEMA ".vectors"
                         " WHERE collection_id = %s) + (SELECT count(*) FROM " SCHEMA
                         ".vector_tombstones WHERE collection_id = %s) + (SELECT count(*)"
                         " FROM " SCHEMA ".vector_snapshots WHERE collection_id = %s)",
                         where, where, where);
  CHECK(!strcmp(left, "0"), "%s rows left after drop", left);
  lls_coll_info info;
  int found;
  OK(vt->vec->coll_get(acme, "bulk", &info, &found, &err), err);
  CHECK(found == 0, "still found");
  FAILS(vt->vec->coll_seq(acme, bulk, &seq, &count, &err), err, LLS_ENOTFOUND);
  FAILS(vt->vec->put(acme, bulk, rows, 1, 0, &seq, &err), err, LLS_ENOTFOUND);
  FAILS(load(acme, bulk, 0, &c, &err), err, LLS_ENOTFOUND);
  OK(vt->vec->coll_drop(acme, "bulk", &dropped, &err), err);
  CHECK(dropped == 0, "dropped twice");

  collector_free(&c);
  for (int i = 0; i < N; i++) free(vecs[i]);
  free(vecs);
  free(rows);
  free(ids);
  free(mds);
  free(del);
}

/* A put bigger than one statement's chunk (64 MB) is still one write: one
 * seq, all or nothing. */
static void test_chunked(void) {
  enum { N = 24000, DIM = 768 }; /* 74 MB of vectors: two statements */
  lls_error err;
  int64_t seq, count;
  int64_t big = create(acme, "chunked", DIM);
  lls_vec_row *rows = calloc(N, sizeof *rows);
  char (*ids)[16] = calloc(N, 16);
  char *vec = make_vec(DIM, 1.5f);
  if (rows == NULL || ids == NULL) die("out of memory");
  for (int i = 0; i < N; i++) {
    snprintf(ids[i], 16, "c%05d", i);
    rows[i] = vrow(ids[i], vec, DIM, "{}");
  }
  /* one row exists: the add conflicts in its second statement, and the
   * first statement's rows are undone too */
  OK(vt->vec->put(acme, big, &rows[N - 1], 1, 1, &seq, &err), err);
  long long st0 = statements_run();
  FAILS(vt->vec->put(acme, big, rows, N, 1, &seq, &err), err, LLS_ECONFLICT);
  long long st1 = statements_run();
  CHECK(strstr(err.message, ids[N - 1]) != NULL, "%s", err.message);
  CHECK(cur_seq(acme, big, &count) == 1 && count == 1, "count %lld after a failed add",
        (long long)count);
  if (st0 >= 0) CHECK(st1 - st0 == 5, "%lld statements for a two-chunk add", st1 - st0);
  OK(vt->vec->put(acme, big, rows, N, 0, &seq, &err), err);
  CHECK(seq == 2 && cur_seq(acme, big, &count) == 2 && count == N, "count %lld",
        (long long)count);
  collector c = {0};
  OK(load(acme, big, 1, &c, &err), err);
  CHECK(c.n == N, "%zu rows", c.n);
  int bad = 0;
  for (size_t i = 0; i < c.n; i++)
    if (c.rows[i].seq != 2 || memcmp(c.rows[i].vec, vec, DIM * 4) != 0) bad++;
  CHECK(bad == 0, "%d rows differ", bad);
  int dropped;
  OK(vt->vec->coll_drop(acme, "chunked", &dropped, &err), err);
  collector_free(&c);
  free(rows);
  free(ids);
  free(vec);
}

static void test_reconnect(void) {
  lls_error err;
  int64_t seq, count;
  int found;
  lls_coll_info info;
  collector c = {0};
  lls_buf buf = {0};

  terminate_library_connections();
  OK(vt->vec->coll_get(acme, "docs", &info, &found, &err), err);
  CHECK(found, "coll_get after reconnect");
  terminate_library_connections();
  OK(load(acme, docs, 0, &c, &err), err);
  CHECK(c.n > 0, "vec_load after reconnect");
  terminate_library_connections();
  OK(load(acme, docs, 1, &c, &err), err);
  terminate_library_connections();
  CHECK(strstr(list_names(acme, "doc"), "docs") != NULL, "coll_list after reconnect");
  terminate_library_connections();
  OK(vt->vec->snap_load(acme, docs, &buf, &seq, &found, &err), err);
  CHECK(found, "snap_load after reconnect");
  terminate_library_connections();
  OK(vt->vec->coll_seq(acme, docs, &seq, &count, &err), err);

  /* writes are never retried: reported, not applied; the next call reconnects */
  char *v = make_vec(4, 30.0f);
  lls_vec_row lost = vrow("lost", v, 4, "{}");
  terminate_library_connections();
  FAILS(vt->vec->put(acme, docs, &lost, 1, 0, &seq, &err), err, LLS_ECONNECTION);
  int64_t count2;
  OK(vt->vec->coll_seq(acme, docs, &seq, &count2, &err), err);
  int64_t s1 = seq;
  OK(load(acme, docs, 0, &c, &err), err);
  CHECK(find(&c, "lost") == NULL && count2 == count, "a lost write was applied");
  terminate_library_connections();
  size_t deleted;
  lls_str b = S("b");
  FAILS(vt->vec->del(acme, docs, &b, 1, &deleted, &seq, &err), err, LLS_ECONNECTION);
  CHECK(cur_seq(acme, docs, &count2) == s1 && count2 == count, "a lost delete was applied");
  terminate_library_connections();
  FAILS(vt->vec->snap_save(acme, docs, s1, "lost", 4, &err), err, LLS_ECONNECTION);
  OK(vt->vec->put(acme, docs, &lost, 1, 0, &seq, &err), err);
  CHECK(seq == s1 + 1, "seq %lld", (long long)seq);
  OK(vt->vec->del(acme, docs, &lost.id, 1, &deleted, &seq, &err), err);

  /* inside a transaction a lost connection fails the call, never reconnects */
  OK(vt->begin(acme, 0, &err), err);
  terminate_library_connections();
  FAILS(load(acme, docs, 0, &c, &err), err, LLS_ECONNECTION);
  FAILS(vt->vec->put(acme, docs, &lost, 1, 0, &seq, &err), err, LLS_ECONNECTION);
  vt->rollback(acme, 0, &err);
  OK(vt->vec->coll_seq(acme, docs, &seq, &count2, &err), err);
  CHECK(seq == s1 + 2, "seq %lld", (long long)seq);

  collector_free(&c);
  lls_buf_free(&buf);
  free(v);
}

/* Raw SQL as a role without BYPASSRLS sees only the tenant it names. */
static void test_rls_raw_sql(void) {
  sql("GRANT USAGE ON SCHEMA " SCHEMA " TO " READER);
  sql("GRANT SELECT ON ALL TABLES IN SCHEMA " SCHEMA " TO " READER);
  static const char *tables[] = {"collections", "vectors", "vector_tombstones",
                                 "vector_snapshots"};
  for (int i = 0; i < 4; i++) {
    const char *t = tables[i];
    long long all_acme = sql_int("SELECT count(*) FROM " SCHEMA ".%s WHERE tenant_id = 'acme'",
                                 t);
    long long all = sql_int("SELECT count(*) FROM " SCHEMA ".%s", t);
    CHECK(all_acme > 0 && all > all_acme, "%s: acme %lld of %lld", t, all_acme, all);
    sql("SET ROLE " READER);
    long long none = sql_int("SELECT count(*) FROM " SCHEMA ".%s", t);
    sql("SELECT set_config('app.current_tenant_id', 'acme', false)");
    long long seen = sql_int("SELECT count(*) FROM " SCHEMA ".%s", t);
    long long other = sql_int("SELECT count(*) FROM " SCHEMA ".%s WHERE tenant_id <> 'acme'",
                              t);
    sql("SELECT set_config('app.current_tenant_id', '', false)");
    sql("RESET ROLE");
    CHECK(none == 0, "%s: %lld rows without a tenant", t, none);
    CHECK(seen == all_acme && other == 0, "%s: reader as acme sees %lld (%lld foreign)", t,
          seen, other);
  }
}

/* The library opened as a LOGIN role without BYPASSRLS: every slot works
 * with the documented privileges, and WITH CHECK refuses foreign rows. */
static void test_app_role(void) {
  sql("GRANT USAGE ON SCHEMA " SCHEMA " TO " APP);
  sql("GRANT SELECT ON " SCHEMA ".llmspell_migrations TO " APP);
  sql("GRANT SELECT, INSERT, UPDATE, DELETE ON " SCHEMA ".kv_store, " SCHEMA ".collections, "
      SCHEMA ".vectors, " SCHEMA ".vector_tombstones, " SCHEMA ".vector_snapshots TO " APP);
  sql("GRANT USAGE ON SEQUENCE " SCHEMA ".collections_id_seq TO " APP);
  char url[2048];
  snprintf(url, sizeof url, "%s%suser=" APP "%spassword=" APP_PASSWORD, pg_url,
           strstr(pg_url, "://") ? (strchr(pg_url, '?') ? "&" : "?") : " ",
           strstr(pg_url, "://") ? "&" : " ");
  lls_backend *app = open_as(url, "acme");
  lls_error err;
  int64_t seq, count;
  size_t deleted;
  int found, dropped;

  lls_coll_info info;
  OK(vt->vec->coll_get(app, "docs", &info, &found, &err), err);
  CHECK(found && info.id == docs, "app sees acme's docs");
  OK(vt->vec->coll_get(app, "hist", &info, &found, &err), err);
  CHECK(found, "hist");
  lls_coll_info mine = coll_info("appcol", 2);
  OK(vt->vec->coll_create(app, &mine, NOW, &err), err);
  FAILS(vt->vec->coll_create(app, &mine, NOW, &err), err, LLS_ECONFLICT);
  char *v = make_vec(2, 3.0f);
  lls_vec_row rows[2] = {vrow("k1", v, 2, "{\"by\": \"app\"}"), vrow("k2", v, 2, "{}")};
  OK(vt->vec->put(app, mine.id, rows, 2, 1, &seq, &err), err);
  FAILS(vt->vec->put(app, mine.id, rows, 1, 1, &seq, &err), err, LLS_ECONFLICT);
  OK(vt->vec->put(app, mine.id, rows, 2, 0, &seq, &err), err);
  OK(vt->vec->del(app, mine.id, &rows[1].id, 1, &deleted, &seq, &err), err);
  CHECK(deleted == 1 && seq == 3, "seq %lld", (long long)seq);
  collector c = {0};
  OK(load(app, mine.id, 1, &c, &err), err);
  CHECK(!strcmp(stream(&c), "k1@2,-k2@3"), "%s", stream(&c));
  age_tombstone(mine.id, "k2");
  OK(vt->vec->snap_save(app, mine.id, seq, "app-snap", 8, &err), err);
  FAILS(load(app, mine.id, 1, &c, &err), err, LLS_EVERSION);
  lls_buf buf = {0};
  OK(vt->vec->snap_load(app, mine.id, &buf, &seq, &found, &err), err);
  CHECK(found && buf.len == 8, "app snapshot");
  OK(vt->vec->coll_seq(app, mine.id, &seq, &count, &err), err);
  CHECK(seq == 3 && count == 1, "seq %lld count %lld", (long long)seq, (long long)count);
  /* another tenant's collection id is not reachable */
  int64_t gid = sql_int("SELECT id FROM " SCHEMA ".collections WHERE tenant_id = '%s'",
                        "globex");
  FAILS(vt->vec->coll_seq(app, gid, &seq, &count, &err), err, LLS_ENOTFOUND);
  FAILS(vt->vec->put(app, gid, rows, 1, 0, &seq, &err), err, LLS_ENOTFOUND);
  OK(vt->begin(app, 0, &err), err);
  OK(vt->vec->put(app, mine.id, rows, 1, 0, &seq, &err), err);
  OK(vt->rollback(app, 0, &err), err);
  OK(vt->vec->coll_drop(app, "appcol", &dropped, &err), err);
  CHECK(dropped == 1, "dropped %d", dropped);
  vt->close(app);

  /* WITH CHECK: the role cannot write rows of another tenant */
  char msg[512];
  sql("SET ROLE " APP);
  sql("SELECT set_config('app.current_tenant_id', 'acme', false)");
  int ok = sql_try("INSERT INTO " SCHEMA ".collections (tenant_id, name, dimension, metric, m,"
                   " ef_construction, ef_search, created_at) VALUES ('globex', 'sneaky', 2, 0,"
                   " 16, 200, 50, now())",
                   msg, sizeof msg);
  char q[512];
  snprintf(q, sizeof q,
           "INSERT INTO " SCHEMA ".vectors VALUES (%lld, 'globex', 'sneaky', 'global',"
           " '\\x00'::bytea, '{}', now(), now(), NULL, NULL, 1)",
           (long long)gid);
  char msg2[512];
  int ok2 = sql_try(q, msg2, sizeof msg2);
  sql("SELECT set_config('app.current_tenant_id', '', false)");
  sql("RESET ROLE");
  CHECK(!ok && strstr(msg, "row-level security"), "collections insert: %s", msg);
  CHECK(!ok2 && strstr(msg2, "row-level security"), "vectors insert: %s", msg2);
  collector_free(&c);
  lls_buf_free(&buf);
  free(v);
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  pg_url = getenv("LLMSPELL_TEST_PG_URL");
  if (pg_url == NULL || *pg_url == '\0')
    die("LLMSPELL_TEST_PG_URL is not set: run through `make test` (it starts a throwaway"
        " PostgreSQL) or point it at a server, as a superuser");
  admin = PQconnectdb(pg_url);
  if (PQstatus(admin) != CONNECTION_OK) die("admin connection: %s", PQerrorMessage(admin));
  PQsetNoticeProcessor(admin, NULL, NULL);
  sql("SET client_min_messages = warning");
  sql("DROP SCHEMA IF EXISTS " SCHEMA " CASCADE");
  sql("DROP ROLE IF EXISTS " READER);
  sql("DROP ROLE IF EXISTS " APP);
  sql("CREATE ROLE " READER " NOLOGIN NOSUPERUSER NOBYPASSRLS");
  sql("CREATE ROLE " APP " LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD '" APP_PASSWORD "'");

  acme = open_pg("acme");
  acme2 = open_pg("acme");
  globex = open_pg("globex");

  test_migrations();
  test_collections();
  test_put_and_seq();
  test_delete_and_since();
  test_tenants();
  test_two_handles();
  test_transactions();
  test_serialised_writers();
  test_sink_stop();
  test_snapshots();
  test_tomb_floor();
  test_bulk();
  test_chunked();
  test_reconnect();
  test_rls_raw_sql();
  test_app_role();

  vt->close(acme);
  vt->close(acme2);
  vt->close(globex);
  PQfinish(admin);
  if (failures) {
    fprintf(stderr, "%d of %d checks failed\n", failures, checks);
    return 1;
  }
  printf("ok: %d checks passed\n", checks);
  return 0;
}
