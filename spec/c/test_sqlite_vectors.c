/*
 * test_sqlite_vectors.c -- the SQLite backend's vector-collection slots,
 * driven through lls_sqlite_vt directly (no Lua).
 *
 *   cc -std=c11 -D_POSIX_C_SOURCE=200809L -O1 -g -fsanitize=address,undefined \
 *      -Icsrc <every .c of csrc/base, csrc/backend, csrc/backends/sqlite> \
 *      csrc/vector/distance.c spec/c/test_sqlite_vectors.c -lsqlite3 -lm
 *   ./a.out [scratch_dir]
 *
 * scratch_dir (default: a fresh mkdtemp directory under /tmp) receives the
 * database files. Prints one line per group and exits non-zero on the first
 * failure. spec/sqlite_vectors_c_spec.lua builds and runs it.
 */
#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend/backend.h"
#include "vector/distance.h"

char *mkdtemp(char *template); /* POSIX 2008, not declared under strict C11 */

#include "check.h"

/* A call that must succeed: shows the backend's error otherwise. */
#define OK(call)                                                                             \
  do {                                                                                       \
    g_checks++;                                                                              \
    if ((call) != 0)                                                                         \
      failf(__FILE__, __LINE__, "%s failed: %s: %s", #call, lls_code_name(err.code),        \
            err.message);                                                                    \
  } while (0)

/* A call that must fail with code; its message must contain needle. */
#define FAILS(call, code_, needle)                                                           \
  do {                                                                                       \
    g_checks++;                                                                              \
    memset(&err, 0, sizeof err);                                                             \
    if ((call) == 0) failf(__FILE__, __LINE__, "%s succeeded, expected an error", #call);    \
    if (err.code != (code_))                                                                 \
      failf(__FILE__, __LINE__, "%s: code %s, expected %s (%s)", #call,                     \
            lls_code_name(err.code), lls_code_name(code_), err.message);                     \
    if (strstr(err.message, (needle)) == NULL)                                               \
      failf(__FILE__, __LINE__, "%s: message '%s' lacks '%s'", #call, err.message, needle);  \
  } while (0)

static double mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static lls_error err;
static const lls_backend_vt *vt = &lls_sqlite_vt;
static char g_dir[512];

/* ---- helpers ----------------------------------------------------------- */

static lls_backend *open_db(const char *path, const char *tenant) {
  lls_config cfg = {path, tenant, NULL, 0};
  lls_backend *b = lls_backend_open(vt, &cfg, &err);
  CHECK(b != NULL, "open %s (%s): %s", path, tenant, err.message);
  return b;
}

static void db_path(char *out, size_t n, const char *name) {
  snprintf(out, n, "%s/%s", g_dir, name);
}

static lls_str S(const char *s) {
  lls_str r = {s, strlen(s)};
  return r;
}

static int64_t create(lls_backend *b, const char *name, int dim, int metric) {
  lls_coll_info info;
  memset(&info, 0, sizeof info);
  snprintf(info.name, sizeof info.name, "%s", name);
  info.dimension = dim;
  info.metric = metric;
  info.m = 16;
  info.ef_construction = 200;
  info.ef_search = 50;
  info.seq = 99; /* the backend must reset it */
  OK(vt->vec->coll_create(b, &info, 1700000000000000LL, &err));
  CHECK(info.id > 0 && info.seq == 0 && info.count == 0, "create %s: id %lld seq %lld", name,
        (long long)info.id, (long long)info.seq);
  CHECK(info.created_at == 1700000000000000LL, "created_at");
  return info.id;
}

static void seq_count(lls_backend *b, int64_t id, int64_t *seq, int64_t *count) {
  OK(vt->vec->coll_seq(b, id, seq, count, &err));
}

static void expect_seq(lls_backend *b, int64_t id, int64_t seq, int64_t count, int line) {
  int64_t s, c;
  seq_count(b, id, &s, &c);
  if (s != seq || c != count)
    failf(__FILE__, line, "coll_seq: (%lld, %lld), expected (%lld, %lld)", (long long)s,
          (long long)c, (long long)seq, (long long)count);
}
#define EXPECT_SEQ(b, id, seq, count) expect_seq(b, id, seq, count, __LINE__)

/* Rows are built in owned storage, since lls_vec_row only borrows. */
typedef struct rowbuf {
  char id[600], scope[64], meta[256];
  float vec[1024];
  lls_vec_row row;
} rowbuf;

static lls_vec_row *mkrow(rowbuf *rb, const char *id, int dim, float base, const char *meta) {
  memset(rb, 0, sizeof *rb);
  snprintf(rb->id, sizeof rb->id, "%s", id);
  snprintf(rb->scope, sizeof rb->scope, "global");
  snprintf(rb->meta, sizeof rb->meta, "%s", meta ? meta : "{}");
  for (int i = 0; i < dim; i++) rb->vec[i] = base + (float)i * 0.25f;
  rb->row.id = S(rb->id);
  rb->row.scope = S(rb->scope);
  rb->row.vector.ptr = (const char *)rb->vec;
  rb->row.vector.len = (size_t)dim * sizeof(float);
  rb->row.metadata = S(rb->meta);
  rb->row.created_at = 1000;
  rb->row.updated_at = 2000;
  rb->row.seq = 12345; /* ignored by the backend */
  return &rb->row;
}

/* One streamed row, copied (the sink's strings are borrowed). */
typedef struct got_row {
  char *id, *scope, *meta;
  char *vec;
  size_t vlen;
  int64_t created_at, updated_at, event_time, expires_at, seq;
  int has_event_time, deleted;
} got_row;

typedef struct got {
  got_row *r;
  size_t n, cap;
  size_t stop_after; /* 0 = never stop */
} got;

static char *dup_str(lls_str s) {
  char *p = malloc(s.len + 1);
  CHECK(p != NULL, "malloc");
  if (s.len) memcpy(p, s.ptr, s.len);
  p[s.len] = '\0';
  return p;
}

static int sink(void *ud, const lls_vec_row *row, lls_error *e) {
  got *g = ud;
  if (g->stop_after && g->n == g->stop_after)
    return lls_error_set(e, LLS_EFORMAT, "sink stopped after %zu rows", g->n);
  if (g->n == g->cap) {
    g->cap = g->cap ? g->cap * 2 : 16;
    g->r = realloc(g->r, g->cap * sizeof *g->r);
    CHECK(g->r != NULL, "realloc");
  }
  got_row *r = &g->r[g->n++];
  r->id = dup_str(row->id);
  r->scope = dup_str(row->scope);
  r->meta = dup_str(row->metadata);
  r->vec = dup_str(row->vector);
  r->vlen = row->vector.len;
  r->created_at = row->created_at;
  r->updated_at = row->updated_at;
  r->event_time = row->event_time;
  r->has_event_time = row->has_event_time;
  r->expires_at = row->expires_at;
  r->seq = row->seq;
  r->deleted = row->deleted;
  return 0;
}

/* Stops without saying why. */
static int silent_sink(void *ud, const lls_vec_row *row, lls_error *e) {
  (void)ud, (void)row, (void)e;
  return 1;
}

static void got_free(got *g) {
  for (size_t i = 0; i < g->n; i++) {
    free(g->r[i].id);
    free(g->r[i].scope);
    free(g->r[i].meta);
    free(g->r[i].vec);
  }
  free(g->r);
  memset(g, 0, sizeof *g);
}

static void load(lls_backend *b, int64_t id, int64_t since, got *g) {
  got_free(g);
  OK(vt->vec->load(b, id, since, sink, g, &err));
  for (size_t i = 1; i < g->n; i++)
    CHECK(g->r[i - 1].seq <= g->r[i].seq, "vec_load(%lld) not in seq order at %zu",
          (long long)since, i);
}

/* "id:seq" or "-id:seq" for tombstones, joined by spaces. */
static const char *trace(const got *g) {
  static char out[4096];
  size_t o = 0;
  out[0] = '\0';
  for (size_t i = 0; i < g->n && o < sizeof out - 64; i++)
    o += (size_t)snprintf(out + o, sizeof out - o, "%s%s%s:%lld", i ? " " : "",
                          g->r[i].deleted ? "-" : "", g->r[i].id, (long long)g->r[i].seq);
  return out;
}

#define EXPECT_TRACE(g, want)                                                                \
  CHECK(strcmp(trace(g), want) == 0, "stream '%s', expected '%s'", trace(g), want)

static const got_row *find(const got *g, const char *id) {
  for (size_t i = 0; i < g->n; i++)
    if (strcmp(g->r[i].id, id) == 0) return &g->r[i];
  return NULL;
}

/* Raw SQL through a separate connection, as the sqlite3 tool would. */
static long long sql_int(const char *path, const char *sql) {
  sqlite3 *db;
  sqlite3_stmt *s;
  CHECK(sqlite3_open(path, &db) == SQLITE_OK, "raw open %s", path);
  sqlite3_busy_timeout(db, 5000);
  CHECK(sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK, "raw prepare %s: %s", sql,
        sqlite3_errmsg(db));
  int rc = sqlite3_step(s);
  long long v = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
  CHECK(rc == SQLITE_ROW || rc == SQLITE_DONE, "raw step %s: %s", sql, sqlite3_errmsg(db));
  sqlite3_finalize(s);
  sqlite3_close(db);
  return v;
}

static void sql_exec(const char *path, const char *sql) {
  sqlite3 *db;
  CHECK(sqlite3_open(path, &db) == SQLITE_OK, "raw open %s", path);
  sqlite3_busy_timeout(db, 5000);
  char *msg = NULL;
  int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
  CHECK(rc == SQLITE_OK, "raw exec %s: %s", sql, msg ? msg : "?");
  sqlite3_free(msg);
  sqlite3_close(db);
}

/* ---- collections ------------------------------------------------------- */

typedef struct names {
  char buf[2048];
  int64_t count_sum;
} names;

static int name_sink(void *ud, const lls_coll_info *info, lls_error *e) {
  (void)e;
  names *n = ud;
  size_t len = strlen(n->buf);
  snprintf(n->buf + len, sizeof n->buf - len, "%s%s", len ? "," : "", info->name);
  n->count_sum += info->count;
  return 0;
}

static int failing_sink(void *ud, const lls_coll_info *info, lls_error *e) {
  (void)info;
  return ++*(int *)ud == 2 ? lls_error_set(e, LLS_EFORMAT, "enough") : 0;
}

static const char *list(lls_backend *b, const char *prefix) {
  static names n;
  memset(&n, 0, sizeof n);
  OK(vt->vec->coll_list(b, S(prefix), name_sink, &n, &err));
  return n.buf;
}

#define EXPECT_LIST(b, prefix, want)                                                         \
  do {                                                                                       \
    const char *l_ = list(b, prefix);                                                        \
    CHECK(strcmp(l_, want) == 0, "coll_list('%s') = '%s', expected '%s'", prefix, l_, want); \
  } while (0)

static void test_collections(void) {
  char path[600];
  db_path(path, sizeof path, "coll.db");
  lls_backend *b = open_db(path, "acme");

  lls_rows rows = {0};
  OK(vt->migrations(b, &rows, &err));
  CHECK(rows.count == 13, "%zu migrations", rows.count);
  lls_str k0 = lls_row_key(&rows, 0), k1 = lls_row_key(&rows, 1), k3 = lls_row_key(&rows, 3);
  CHECK(k0.len == 12 && memcmp(k0.ptr, "001_kv_store", 12) == 0, "migration 1 name");
  CHECK(k1.len == 11 && memcmp(k1.ptr, "002_vectors", 11) == 0, "migration 2 name");
  CHECK(k3.len == 13 && memcmp(k3.ptr, "004_checksums", 13) == 0, "migration 4 name");
  lls_str k4 = lls_row_key(&rows, 4);
  CHECK(k4.len == 12 && memcmp(k4.ptr, "005_sessions", 12) == 0, "migration 5 name");
  lls_rows_free(&rows);

  int64_t docs = create(b, "docs", 384, LLS_METRIC_COSINE);
  lls_coll_info info;
  int found = 0;
  OK(vt->vec->coll_get(b, "docs", &info, &found, &err));
  CHECK(found && info.id == docs && strcmp(info.name, "docs") == 0, "coll_get docs");
  CHECK(info.dimension == 384 && info.metric == LLS_METRIC_COSINE && info.m == 16 &&
            info.ef_construction == 200 && info.ef_search == 50 && info.seq == 0 &&
            info.count == 0 && info.created_at == 1700000000000000LL,
        "coll_get fields");
  CHECK(sql_int(path, "SELECT count(*) FROM vector_collections WHERE metric = 'cosine'"
                      " AND tenant_id = 'acme'") == 1,
        "metric stored as text");
  OK(vt->vec->coll_get(b, "nope", &info, &found, &err));
  CHECK(!found, "absent collection found");

  lls_coll_info dup;
  memset(&dup, 0, sizeof dup);
  snprintf(dup.name, sizeof dup.name, "docs");
  dup.dimension = 8;
  FAILS(vt->vec->coll_create(b, &dup, 1, &err), LLS_ECONFLICT, "collection 'docs' already exists");
  dup.metric = 17;
  snprintf(dup.name, sizeof dup.name, "badmetric");
  FAILS(vt->vec->coll_create(b, &dup, 1, &err), LLS_EINVALID, "metric");

  /* every metric round-trips */
  int metrics[] = {LLS_METRIC_L2, LLS_METRIC_IP, LLS_METRIC_L1};
  const char *mnames[] = {"m:l2", "m:ip", "m:l1"};
  for (int i = 0; i < 3; i++) {
    create(b, mnames[i], 3, metrics[i]);
    OK(vt->vec->coll_get(b, mnames[i], &info, &found, &err));
    CHECK(found && info.metric == metrics[i] && info.dimension == 3, "metric %d", metrics[i]);
  }

  /* literal prefixes, name (byte) order */
  const char *more[] = {"a:2", "a:1", "a%", "a_x", "ab", "b:1", "a", "\xc3\xa9t\xc3\xa9",
                        "\xf4\x8f\xbf\xbfz"};
  for (size_t i = 0; i < sizeof more / sizeof more[0]; i++) create(b, more[i], 4, 0);
  EXPECT_LIST(b, "a:", "a:1,a:2");
  EXPECT_LIST(b, "a%", "a%");
  EXPECT_LIST(b, "a_", "a_x");
  EXPECT_LIST(b, "a", "a,a%,a:1,a:2,a_x,ab");
  EXPECT_LIST(b, "m:", "m:ip,m:l1,m:l2");
  EXPECT_LIST(b, "zz", "");
  EXPECT_LIST(b, "\xc3\xa9", "\xc3\xa9t\xc3\xa9");
  EXPECT_LIST(b, "\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbfz");
  EXPECT_LIST(b, "",
              "a,a%,a:1,a:2,a_x,ab,b:1,docs,m:ip,m:l1,m:l2,\xc3\xa9t\xc3\xa9,"
              "\xf4\x8f\xbf\xbfz");

  /* a sink that fails stops the listing with its own error */
  int calls = 0;
  FAILS(vt->vec->coll_list(b, S(""), failing_sink, &calls, &err), LLS_EFORMAT, "enough");
  CHECK(calls == 2, "listing went on after the sink failed (%d calls)", calls);

  /* another tenant on the same file sees none of it */
  lls_backend *o = open_db(path, "other");
  EXPECT_LIST(o, "", "");
  OK(vt->vec->coll_get(o, "docs", &info, &found, &err));
  CHECK(!found, "other tenant sees acme's collection");
  int64_t odocs = create(o, "docs", 8, LLS_METRIC_L2);
  CHECK(odocs != docs, "same id for two tenants");
  EXPECT_LIST(o, "", "docs");
  int64_t s, c;
  FAILS(vt->vec->coll_seq(o, docs, &s, &c, &err), LLS_ENOTFOUND, "does not exist");
  rowbuf rb;
  FAILS(vt->vec->put(o, docs, mkrow(&rb, "x", 384, 0, NULL), 1, 0, &s, &err), LLS_ENOTFOUND,
        "does not exist");
  got g = {0};
  FAILS(vt->vec->load(o, docs, 0, sink, &g, &err), LLS_ENOTFOUND, "does not exist");
  int dropped = 1;
  OK(vt->vec->coll_drop(o, "a:1", &dropped, &err));
  CHECK(!dropped, "other tenant dropped acme's collection");
  EXPECT_SEQ(b, docs, 0, 0);
  OK(vt->vec->coll_get(b, "docs", &info, &found, &err));
  CHECK(found && info.dimension == 384, "acme's docs changed by other tenant");
  vt->close(o);
  vt->close(b);

  /* reopening applies no migration again and keeps everything */
  long long applied = sql_int(path, "SELECT max(applied_at) FROM llmspell_migrations");
  b = open_db(path, "acme");
  CHECK(sql_int(path, "SELECT count(*) FROM llmspell_migrations") == 13, "migrations reapplied");
  CHECK(sql_int(path, "SELECT max(applied_at) FROM llmspell_migrations") == applied,
        "applied_at changed");
  EXPECT_LIST(b, "a:", "a:1,a:2");
  vt->close(b);
  printf("collections: create/get/list/prefix/tenants ok\n");
}

/* A file written before migration 2 existed gains the vector tables on
 * open, and keeps its key-value rows. */
static void test_upgrade(void) {
  char path[600];
  db_path(path, sizeof path, "v1.db");
  sql_exec(path,
           "CREATE TABLE llmspell_migrations (version INTEGER PRIMARY KEY,"
           " name TEXT NOT NULL, applied_at INTEGER NOT NULL);"
           "INSERT INTO llmspell_migrations VALUES (1, 'kv_store', 1);"
           "CREATE TABLE kv_store (tenant_id TEXT NOT NULL, key TEXT NOT NULL,"
           " value BLOB NOT NULL, metadata TEXT, created_at INTEGER NOT NULL,"
           " updated_at INTEGER NOT NULL, expires_at INTEGER,"
           " PRIMARY KEY (tenant_id, key)) WITHOUT ROWID;"
           "INSERT INTO kv_store VALUES ('acme', 'k', x'76', NULL, 1, 1, NULL);");
  lls_backend *b = open_db(path, "acme");
  CHECK(sql_int(path, "SELECT count(*) FROM llmspell_migrations WHERE version = 2"
                      " AND name = 'vectors' AND applied_at > 1") == 1,
        "migration 2 not recorded");
  lls_str v;
  int found;
  OK(vt->kv->get(b, S("k"), 5, &v, &found, &err));
  CHECK(found && v.len == 1 && v.ptr[0] == 'v', "key-value row lost in the upgrade");
  int64_t id = create(b, "docs", 2, 0);
  EXPECT_SEQ(b, id, 0, 0);
  vt->close(b);
  printf("upgrade: a version-1 file gains the vector tables ok\n");
}

/* ---- rows, seq, tombstones --------------------------------------------- */

static void test_rows(void) {
  char path[600];
  db_path(path, sizeof path, "rows.db");
  lls_backend *b = open_db(path, "acme");
  int64_t id = create(b, "docs", 4, LLS_METRIC_COSINE);
  int64_t seq = -1, s, c;
  rowbuf rb[4];
  lls_vec_row rows[4];
  got g = {0};

  /* empty writes change nothing */
  OK(vt->vec->put(b, id, rows, 0, 1, &seq, &err));
  CHECK(seq == 0, "empty put seq %lld", (long long)seq);
  size_t deleted = 9;
  OK(vt->vec->del(b, id, NULL, 0, &deleted, &seq, &err));
  CHECK(seq == 0 && deleted == 0, "empty delete");
  EXPECT_SEQ(b, id, 0, 0);

  rows[0] = *mkrow(&rb[0], "doc1", 4, 1.0f, "{\"n\":1}");
  rows[1] = *mkrow(&rb[1], "doc2", 4, 2.0f, "{\"n\":2,\"s\":\"\xc3\xa9\"}");
  rows[2] = *mkrow(&rb[2], "doc3", 4, 3.0f, NULL);
  rows[1].has_event_time = 1;
  rows[1].event_time = -5; /* before the epoch is still a time */
  rows[2].expires_at = 987654321;
  snprintf(rb[2].scope, sizeof rb[2].scope, "tenant:acme");
  rows[2].scope = S(rb[2].scope);
  OK(vt->vec->put(b, id, rows, 3, 1, &seq, &err));
  CHECK(seq == 1, "first put seq %lld", (long long)seq);
  EXPECT_SEQ(b, id, 1, 3);

  load(b, id, 0, &g);
  EXPECT_TRACE(&g, "doc1:1 doc2:1 doc3:1");
  for (int i = 0; i < 3; i++) {
    const got_row *r = find(&g, rb[i].id);
    CHECK(r && r->vlen == 16 && memcmp(r->vec, rb[i].vec, 16) == 0, "%s vector", rb[i].id);
    CHECK(strcmp(r->meta, rb[i].meta) == 0, "%s metadata '%s'", rb[i].id, r->meta);
    CHECK(strcmp(r->scope, rb[i].scope) == 0, "%s scope", rb[i].id);
    CHECK(r->created_at == 1000 && r->updated_at == 2000 && !r->deleted, "%s times", rb[i].id);
  }
  CHECK(!find(&g, "doc1")->has_event_time && find(&g, "doc1")->expires_at == 0, "doc1 times");
  CHECK(find(&g, "doc2")->has_event_time && find(&g, "doc2")->event_time == -5, "event_time");
  CHECK(find(&g, "doc3")->expires_at == 987654321, "expires_at");
  CHECK(sql_int(path, "SELECT count(*) FROM vector_embeddings WHERE expires_at IS NULL") == 2,
        "never-expiring rows store NULL");
  CHECK(sql_int(path, "SELECT count(*) FROM vector_embeddings WHERE typeof(vector) = 'blob'"
                      " AND length(vector) = 16 AND tenant_id = 'acme'") == 3,
        "vector is a 16-byte blob with tenant_id");

  /* insert_only with one existing id: conflict naming it, nothing written */
  rows[0] = *mkrow(&rb[0], "doc4", 4, 4.0f, NULL);
  rows[1] = *mkrow(&rb[1], "doc2", 4, 9.0f, "{\"changed\":true}");
  FAILS(vt->vec->put(b, id, rows, 2, 1, &seq, &err), LLS_ECONFLICT, "id 'doc2' already exists");
  EXPECT_SEQ(b, id, 1, 3);
  load(b, id, 0, &g);
  EXPECT_TRACE(&g, "doc1:1 doc2:1 doc3:1");
  CHECK(strcmp(find(&g, "doc2")->meta, "{\"n\":2,\"s\":\"\xc3\xa9\"}") == 0, "doc2 changed");

  /* a duplicate inside one add is a conflict too */
  rows[0] = *mkrow(&rb[0], "dup", 4, 4.0f, NULL);
  rows[1] = *mkrow(&rb[1], "dup", 4, 4.0f, NULL);
  FAILS(vt->vec->put(b, id, rows, 2, 1, &seq, &err), LLS_ECONFLICT, "id 'dup' already exists");
  EXPECT_SEQ(b, id, 1, 3);

  /* a vector of the wrong length is refused, nothing written */
  rows[0] = *mkrow(&rb[0], "doc5", 4, 4.0f, NULL);
  rows[1] = *mkrow(&rb[1], "short", 3, 4.0f, NULL);
  FAILS(vt->vec->put(b, id, rows, 2, 0, &seq, &err), LLS_EINVALID, "id 'short'");
  EXPECT_SEQ(b, id, 1, 3);

  /* upsert: replace one, add one; one seq for the whole write */
  rows[0] = *mkrow(&rb[0], "doc2", 4, 9.0f, "{\"changed\":true}");
  rows[1] = *mkrow(&rb[1], "doc5", 4, 5.0f, NULL);
  rows[0].created_at = 1000;
  rows[0].updated_at = 3000;
  OK(vt->vec->put(b, id, rows, 2, 0, &seq, &err));
  CHECK(seq == 2, "upsert seq %lld", (long long)seq);
  EXPECT_SEQ(b, id, 2, 4);
  load(b, id, 1, &g);
  EXPECT_TRACE(&g, "doc2:2 doc5:2");
  CHECK(strcmp(find(&g, "doc2")->meta, "{\"changed\":true}") == 0, "doc2 not replaced");
  CHECK(memcmp(find(&g, "doc2")->vec, rb[0].vec, 16) == 0, "doc2 vector not replaced");
  CHECK(!find(&g, "doc2")->has_event_time && find(&g, "doc2")->updated_at == 3000,
        "replacement carries the new row's fields");
  load(b, id, 2, &g);
  EXPECT_TRACE(&g, "");

  /* upsert of an existing id only: count unchanged */
  OK(vt->vec->put(b, id, rows, 1, 0, &seq, &err));
  CHECK(seq == 3, "seq %lld", (long long)seq);
  EXPECT_SEQ(b, id, 3, 4);

  /* deletes: absent ids ignored; nothing deleted, seq unchanged */
  lls_str ids[3] = {S("doc1"), S("missing"), S("doc1")};
  OK(vt->vec->del(b, id, ids, 3, &deleted, &seq, &err));
  CHECK(deleted == 1 && seq == 4, "delete: %zu, seq %lld", deleted, (long long)seq);
  EXPECT_SEQ(b, id, 4, 3);
  OK(vt->vec->del(b, id, &ids[1], 2, &deleted, &seq, &err));
  CHECK(deleted == 0 && seq == 4, "no-op delete: %zu, seq %lld", deleted, (long long)seq);
  EXPECT_SEQ(b, id, 4, 3);
  load(b, id, 3, &g);
  EXPECT_TRACE(&g, "-doc1:4");
  CHECK(g.r[0].vlen == 0 && strcmp(g.r[0].meta, "") == 0, "tombstone carries no data");
  load(b, id, 0, &g);
  EXPECT_TRACE(&g, "doc3:1 doc5:2 doc2:3");
  CHECK(g.n == 3 && !find(&g, "doc1"), "full load after delete: %s", trace(&g));
  for (size_t i = 0; i < g.n; i++) CHECK(!g.r[i].deleted, "tombstone in full load");

  /* delete, then re-add: the tombstone streams before the row */
  rows[0] = *mkrow(&rb[0], "doc1", 4, 7.0f, "{\"again\":1}");
  OK(vt->vec->put(b, id, rows, 1, 1, &seq, &err));
  CHECK(seq == 5, "re-add seq %lld", (long long)seq);
  EXPECT_SEQ(b, id, 5, 4);
  load(b, id, 3, &g);
  EXPECT_TRACE(&g, "-doc1:4 doc1:5");
  load(b, id, 4, &g);
  EXPECT_TRACE(&g, "doc1:5");
  load(b, id, 0, &g);
  CHECK(g.n == 4 && find(&g, "doc1") && !find(&g, "doc1")->deleted &&
            strcmp(find(&g, "doc1")->meta, "{\"again\":1}") == 0,
        "full load after re-add: %s", trace(&g));
  /* ... and deleted again: one tombstone, at the newest seq */
  OK(vt->vec->del(b, id, ids, 1, &deleted, &seq, &err));
  CHECK(deleted == 1 && seq == 6, "second delete");
  load(b, id, 3, &g);
  EXPECT_TRACE(&g, "-doc1:6");
  load(b, id, 1, &g);
  EXPECT_TRACE(&g, "doc5:2 doc2:3 -doc1:6");
  CHECK(sql_int(path, "SELECT count(*) FROM vector_tombstones") == 1, "tombstones");

  /* ids with quotes and a 512-byte id */
  char longid[513];
  memset(longid, 'x', 512);
  longid[512] = '\0';
  rows[0] = *mkrow(&rb[0], "it's \"q\"", 4, 1.0f, NULL);
  rows[1] = *mkrow(&rb[1], longid, 4, 1.0f, NULL);
  OK(vt->vec->put(b, id, rows, 2, 1, &seq, &err));
  FAILS(vt->vec->put(b, id, rows, 1, 1, &seq, &err), LLS_ECONFLICT,
        "id 'it's \"q\"' already exists");
  FAILS(vt->vec->put(b, id, &rows[1], 1, 1, &seq, &err), LLS_ECONFLICT, "xxxxxxxxxx");
  lls_str ids2[2] = {S("it's \"q\""), S(longid)};
  OK(vt->vec->del(b, id, ids2, 2, &deleted, &seq, &err));
  CHECK(deleted == 2 && seq == 8, "quoted delete");

  /* a sink error stops the stream; the handle stays usable */
  got stop = {0};
  stop.stop_after = 1;
  FAILS(vt->vec->load(b, id, 0, sink, &stop, &err), LLS_EFORMAT, "sink stopped after 1 rows");
  got_free(&stop);
  FAILS(vt->vec->load(b, id, -1, sink, &g, &err), LLS_EINVALID, "since");
  memset(&err, 0, sizeof err);
  g_checks++;
  if (vt->vec->load(b, id, 0, silent_sink, NULL, &err) == 0 || err.code != LLS_EIO ||
      strstr(err.message, "stopped") == NULL)
    failf(__FILE__, __LINE__, "silent sink: %s %s", lls_code_name(err.code), err.message);
  rows[0] = *mkrow(&rb[0], "after", 4, 1.0f, NULL);
  OK(vt->vec->put(b, id, rows, 1, 1, &seq, &err));
  CHECK(seq == 9, "write after a stopped stream");
  FAILS(vt->vec->coll_seq(b, 424242, &s, &c, &err), LLS_ENOTFOUND, "collection 424242");

  got_free(&g);
  vt->close(b);
  printf("rows: put/conflict/upsert/delete/tombstones/re-add ok\n");
}

/* ---- transactions ------------------------------------------------------ */

static void test_transactions(void) {
  char path[600];
  db_path(path, sizeof path, "txn.db");
  lls_backend *b = open_db(path, "acme");
  int64_t id = create(b, "docs", 2, LLS_METRIC_L2);
  rowbuf rb[2];
  lls_vec_row r0, r1;
  int64_t seq;
  size_t deleted;
  got g = {0};

  r0 = *mkrow(&rb[0], "base", 2, 0, NULL);
  OK(vt->vec->put(b, id, &r0, 1, 1, &seq, &err));
  EXPECT_SEQ(b, id, 1, 1);

  /* begin; put; delete; rollback -> as before */
  OK(vt->begin(b, 0, &err));
  r1 = *mkrow(&rb[1], "tx", 2, 1, NULL);
  OK(vt->vec->put(b, id, &r1, 1, 1, &seq, &err));
  CHECK(seq == 2, "seq in txn");
  lls_str base_id = S("base");
  OK(vt->vec->del(b, id, &base_id, 1, &deleted, &seq, &err));
  CHECK(seq == 3 && deleted == 1, "delete in txn");
  EXPECT_SEQ(b, id, 3, 1);
  load(b, id, 1, &g);
  EXPECT_TRACE(&g, "tx:2 -base:3");
  OK(vt->rollback(b, 0, &err));
  EXPECT_SEQ(b, id, 1, 1);
  load(b, id, 0, &g);
  EXPECT_TRACE(&g, "base:1");
  CHECK(sql_int(path, "SELECT count(*) FROM vector_tombstones") == 0, "tombstone survived");

  /* a failing put inside a transaction unwinds alone */
  OK(vt->begin(b, 0, &err));
  OK(vt->vec->put(b, id, &r1, 1, 1, &seq, &err));
  lls_vec_row both[2] = {*mkrow(&rb[1], "new", 2, 3, NULL), r0};
  FAILS(vt->vec->put(b, id, both, 2, 1, &seq, &err), LLS_ECONFLICT, "id 'base' already exists");
  EXPECT_SEQ(b, id, 2, 2);
  /* nested: a savepoint rolled back, the outer committed */
  OK(vt->begin(b, 1, &err));
  r1 = *mkrow(&rb[1], "inner", 2, 4, NULL);
  OK(vt->vec->put(b, id, &r1, 1, 1, &seq, &err));
  CHECK(seq == 3, "inner seq");
  OK(vt->rollback(b, 1, &err));
  EXPECT_SEQ(b, id, 2, 2);
  OK(vt->vec->snap_save(b, id, 2, "snap", 4, &err));
  OK(vt->commit(b, 0, &err));
  EXPECT_SEQ(b, id, 2, 2);
  load(b, id, 0, &g);
  EXPECT_TRACE(&g, "base:1 tx:2");
  lls_buf snap = {0};
  int found;
  OK(vt->vec->snap_load(b, id, &snap, &seq, &found, &err));
  CHECK(found && seq == 2 && snap.len == 4 && memcmp(snap.data, "snap", 4) == 0,
        "snapshot saved in a transaction");
  lls_buf_free(&snap);

  /* drop inside a transaction, rolled back: still there */
  OK(vt->begin(b, 0, &err));
  int dropped;
  OK(vt->vec->coll_drop(b, "docs", &dropped, &err));
  CHECK(dropped, "drop in txn");
  int64_t s, c;
  FAILS(vt->vec->coll_seq(b, id, &s, &c, &err), LLS_ENOTFOUND, "does not exist");
  OK(vt->rollback(b, 0, &err));
  EXPECT_SEQ(b, id, 2, 2);

  /* create inside a transaction, rolled back: gone */
  OK(vt->begin(b, 0, &err));
  create(b, "ephemeral", 2, 0);
  OK(vt->rollback(b, 0, &err));
  lls_coll_info info;
  OK(vt->vec->coll_get(b, "ephemeral", &info, &found, &err));
  CHECK(!found, "rolled-back create survived");

  got_free(&g);
  vt->close(b);
  printf("transactions: rollback, savepoints, failures unwind ok\n");
}

/* ---- snapshots, pruning, drop ------------------------------------------ */

static void test_snapshots(void) {
  char path[600];
  db_path(path, sizeof path, "snap.db");
  lls_backend *b = open_db(path, "acme");
  int64_t id = create(b, "docs", 2, LLS_METRIC_IP);
  lls_buf out = {0};
  int64_t seq = -1;
  int found = 1;
  got g = {0};

  OK(vt->vec->snap_load(b, id, &out, &seq, &found, &err));
  CHECK(!found && out.len == 0, "snapshot of a new collection");
  OK(vt->vec->snap_save(b, id, 2, "abc", 3, &err));
  OK(vt->vec->snap_load(b, id, &out, &seq, &found, &err));
  CHECK(found && seq == 2 && out.len == 3 && memcmp(out.data, "abc", 3) == 0, "small snapshot");

  /* larger than one part (16 MiB): 40 MiB of a pattern */
  size_t big = (size_t)40 << 20;
  unsigned char *data = malloc(big);
  CHECK(data != NULL, "malloc");
  for (size_t i = 0; i < big; i++) data[i] = (unsigned char)((i * 2654435761u) >> 13);
  OK(vt->vec->snap_save(b, id, 5, data, big, &err));
  CHECK(sql_int(path, "SELECT count(*) FROM vector_snapshots") == 3, "40 MiB in 3 parts");
  memcpy(out.data, "zz", 2); /* replaced, not appended */
  OK(vt->vec->snap_load(b, id, &out, &seq, &found, &err));
  CHECK(found && seq == 5 && out.len == big && memcmp(out.data, data, big) == 0,
        "big snapshot round trip (%zu bytes, seq %lld)", out.len, (long long)seq);
  /* an older snapshot never replaces a newer one */
  OK(vt->vec->snap_save(b, id, 4, "old", 3, &err));
  OK(vt->vec->snap_load(b, id, &out, &seq, &found, &err));
  CHECK(found && seq == 5 && out.len == big, "older snapshot replaced a newer one");
  /* a newer (and empty) one does, and its parts shrink */
  OK(vt->vec->snap_save(b, id, 6, NULL, 0, &err));
  OK(vt->vec->snap_load(b, id, &out, &seq, &found, &err));
  CHECK(found && seq == 6 && out.len == 0, "empty snapshot");
  CHECK(sql_int(path, "SELECT count(*) FROM vector_snapshots") == 1, "stale parts left");
  OK(vt->vec->snap_save(b, id, 6, "same", 4, &err));
  OK(vt->vec->snap_load(b, id, &out, &seq, &found, &err));
  CHECK(found && seq == 6 && out.len == 4, "same-seq snapshot replaces");
  free(data);

  /* another tenant can neither read nor overwrite it */
  lls_backend *o = open_db(path, "other");
  FAILS(vt->vec->snap_load(o, id, &out, &seq, &found, &err), LLS_ENOTFOUND, "does not exist");
  FAILS(vt->vec->snap_save(o, id, 99, "x", 1, &err), LLS_ENOTFOUND, "does not exist");
  vt->close(o);

  /* tombstones: pruned only when covered by the snapshot and an hour old */
  int64_t t = create(b, "tomb", 2, 0);
  rowbuf rb[3];
  lls_vec_row rows[3] = {*mkrow(&rb[0], "x1", 2, 0, NULL), *mkrow(&rb[1], "x2", 2, 0, NULL),
                         *mkrow(&rb[2], "x3", 2, 0, NULL)};
  size_t deleted;
  OK(vt->vec->put(b, t, rows, 3, 1, &seq, &err));   /* 1 */
  OK(vt->vec->del(b, t, &rows[0].id, 1, &deleted, &seq, &err)); /* 2 */
  OK(vt->vec->del(b, t, &rows[1].id, 1, &deleted, &seq, &err)); /* 3 */
  OK(vt->vec->del(b, t, &rows[2].id, 1, &deleted, &seq, &err)); /* 4 */
  CHECK(seq == 4, "tomb seq");
  OK(vt->vec->snap_save(b, t, 3, "s3", 2, &err));
  CHECK(sql_int(path, "SELECT count(*) FROM vector_tombstones") == 3, "young tombstones pruned");
  load(b, t, 1, &g);
  EXPECT_TRACE(&g, "-x1:2 -x2:3 -x3:4");
  /* age all three; only those the snapshot (seq 3) covers go */
  sql_exec(path, "UPDATE vector_tombstones SET deleted_at = deleted_at - 7200000000");
  OK(vt->vec->snap_save(b, t, 3, "s3", 2, &err));
  CHECK(sql_int(path, "SELECT count(*) FROM vector_tombstones") == 1, "pruning");
  CHECK(sql_int(path, "SELECT tomb_floor FROM vector_collections WHERE name = 'tomb'") == 3,
        "tomb_floor");
  FAILS(vt->vec->load(b, t, 1, sink, &g, &err), LLS_EVERSION,
        "collection history pruned; reload");
  FAILS(vt->vec->load(b, t, 2, sink, &g, &err), LLS_EVERSION, "reload");
  load(b, t, 3, &g);
  EXPECT_TRACE(&g, "-x3:4");
  load(b, t, 0, &g);
  EXPECT_TRACE(&g, "");
  /* a young tombstone stays even when the snapshot covers it */
  sql_exec(path, "UPDATE vector_tombstones SET deleted_at = deleted_at + 7200000000");
  OK(vt->vec->snap_save(b, t, 4, "s4", 2, &err));
  CHECK(sql_int(path, "SELECT tomb_floor FROM vector_collections WHERE name = 'tomb'") == 3,
        "young x3 pruned");
  sql_exec(path, "UPDATE vector_tombstones SET deleted_at = deleted_at - 7200000000");
  OK(vt->vec->snap_save(b, t, 4, "s4", 2, &err));
  CHECK(sql_int(path, "SELECT tomb_floor FROM vector_collections WHERE name = 'tomb'") == 4,
        "floor 4");
  load(b, t, 4, &g);
  EXPECT_TRACE(&g, "");
  FAILS(vt->vec->load(b, t, 3, sink, &g, &err), LLS_EVERSION, "reload");

  /* drop removes rows, tombstones, snapshot and the collection */
  OK(vt->vec->put(b, id, rows, 2, 1, &seq, &err));
  OK(vt->vec->del(b, id, &rows[0].id, 1, &deleted, &seq, &err));
  char q[400];
  snprintf(q, sizeof q,
           "SELECT (SELECT count(*) FROM vector_embeddings WHERE collection_id = %lld)"
           " + (SELECT count(*) FROM vector_tombstones WHERE collection_id = %lld)"
           " + (SELECT count(*) FROM vector_snapshots WHERE collection_id = %lld)",
           (long long)id, (long long)id, (long long)id);
  CHECK(sql_int(path, q) == 3, "rows before drop");
  int dropped = 0;
  OK(vt->vec->coll_drop(b, "docs", &dropped, &err));
  CHECK(dropped, "drop");
  CHECK(sql_int(path, q) == 0, "rows left after drop");
  OK(vt->vec->coll_drop(b, "docs", &dropped, &err));
  CHECK(!dropped, "second drop");
  int64_t s, c;
  FAILS(vt->vec->coll_seq(b, id, &s, &c, &err), LLS_ENOTFOUND, "does not exist");
  FAILS(vt->vec->put(b, id, rows, 1, 0, &s, &err), LLS_ENOTFOUND, "does not exist");
  FAILS(vt->vec->snap_load(b, id, &out, &seq, &found, &err), LLS_ENOTFOUND, "does not exist");
  int64_t again = create(b, "docs", 2, 0);
  CHECK(again > t, "collection id reused: %lld", (long long)again);
  EXPECT_SEQ(b, again, 0, 0);
  EXPECT_LIST(b, "", "docs,tomb");

  lls_buf_free(&out);
  got_free(&g);
  vt->close(b);
  printf("snapshots: save/load/replace/parts/pruning/floor/drop ok\n");
}

/* ---- two handles on one file ------------------------------------------- */

static void test_two_handles(void) {
  char path[600];
  db_path(path, sizeof path, "two.db");
  lls_backend *a = open_db(path, "acme");
  lls_backend *b = open_db(path, "acme");
  int64_t id = create(a, "docs", 3, 0);
  lls_coll_info info;
  int found;
  OK(vt->vec->coll_get(b, "docs", &info, &found, &err));
  CHECK(found && info.id == id, "b sees a's collection");

  rowbuf rb[2];
  lls_vec_row rows[2] = {*mkrow(&rb[0], "p", 3, 1, NULL), *mkrow(&rb[1], "q", 3, 2, NULL)};
  int64_t seq, known = 0;
  got g = {0};
  OK(vt->vec->put(a, id, rows, 2, 1, &seq, &err));
  EXPECT_SEQ(b, id, 1, 2);
  load(b, id, known, &g);
  EXPECT_TRACE(&g, "p:1 q:1");
  known = 1;
  size_t deleted;
  OK(vt->vec->del(b, id, &rows[0].id, 1, &deleted, &seq, &err));
  EXPECT_SEQ(a, id, 2, 1);
  load(a, id, known, &g);
  EXPECT_TRACE(&g, "-p:2");

  /* a's open transaction is invisible to b until commit */
  OK(vt->begin(a, 0, &err));
  rows[0] = *mkrow(&rb[0], "r", 3, 3, NULL);
  OK(vt->vec->put(a, id, rows, 1, 0, &seq, &err));
  EXPECT_SEQ(b, id, 2, 1);
  OK(vt->commit(a, 0, &err));
  EXPECT_SEQ(b, id, 3, 2);
  load(b, id, 2, &g);
  EXPECT_TRACE(&g, "r:3");

  /* b drops; a's id-addressed calls then report not_found */
  int dropped;
  OK(vt->vec->coll_drop(b, "docs", &dropped, &err));
  int64_t s, c;
  FAILS(vt->vec->coll_seq(a, id, &s, &c, &err), LLS_ENOTFOUND, "does not exist");
  got_free(&g);
  vt->close(a);
  vt->close(b);

  /* :memory: works the same */
  lls_backend *m = open_db(":memory:", "default");
  int64_t mid = create(m, "mem", 3, 0);
  OK(vt->vec->put(m, mid, rows, 1, 1, &seq, &err));
  EXPECT_SEQ(m, mid, 1, 1);
  vt->close(m);
  printf("two handles: catch-up through coll_seq and vec_load ok\n");
}

/* ---- speed ------------------------------------------------------------- */

static void test_bulk(void) {
  char path[600];
  db_path(path, sizeof path, "bulk.db");
  lls_backend *b = open_db(path, "acme");
  enum { N = 10000, DIM = 768 };
  int64_t id = create(b, "bulk", DIM, 0);
  float *vecs = malloc((size_t)N * DIM * sizeof *vecs);
  lls_vec_row *rows = calloc(N, sizeof *rows);
  char(*ids)[16] = malloc((size_t)N * sizeof *ids);
  CHECK(vecs && rows && ids, "malloc");
  for (size_t i = 0; i < (size_t)N * DIM; i++) vecs[i] = (float)(i % 977) * 0.001f;
  for (int i = 0; i < N; i++) {
    snprintf(ids[i], sizeof ids[i], "doc%05d", i);
    rows[i].id = S(ids[i]);
    rows[i].scope = S("global");
    rows[i].vector.ptr = (const char *)(vecs + (size_t)i * DIM);
    rows[i].vector.len = DIM * sizeof(float);
    rows[i].metadata = S("{\"k\":1}");
    rows[i].created_at = rows[i].updated_at = i;
  }
  int64_t seq;
  double t0 = mono();
  OK(vt->vec->put(b, id, rows, N, 1, &seq, &err));
  double t_add = mono() - t0;
  EXPECT_SEQ(b, id, 1, N);
  t0 = mono();
  OK(vt->vec->put(b, id, rows, N, 0, &seq, &err));
  double t_upsert = mono() - t0;
  EXPECT_SEQ(b, id, 2, N);
  got g = {0};
  t0 = mono();
  load(b, id, 0, &g);
  double t_load = mono() - t0;
  CHECK(g.n == N, "loaded %zu", g.n);
  CHECK(memcmp(find(&g, "doc04242")->vec, vecs + (size_t)4242 * DIM, DIM * 4) == 0,
        "bulk vector");
  printf("bulk: %d x %d-d add %.3f s, upsert %.3f s, load %.3f s\n", N, DIM, t_add, t_upsert,
         t_load);
  /* generous: sanitizers slow everything several times over */
  CHECK(t_add < 10.0 && t_upsert < 10.0, "bulk writes too slow");
  got_free(&g);
  free(vecs);
  free(rows);
  free(ids);
  vt->close(b);
}

int main(int argc, char **argv) {
  if (argc > 1) {
    snprintf(g_dir, sizeof g_dir, "%s", argv[1]);
  } else {
    snprintf(g_dir, sizeof g_dir, "/tmp/lls-sqlite-vectors-XXXXXX");
    CHECK(mkdtemp(g_dir) != NULL, "mkdtemp");
  }
  test_collections();
  test_upgrade();
  test_rows();
  test_transactions();
  test_snapshots();
  test_two_handles();
  test_bulk();
  if (argc <= 1) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
  }
  printf("ok: %d checks passed\n", g_checks);
  return 0;
}
