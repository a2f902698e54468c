/*
 * test_pg_export_slots.c -- the export/import slots of the PostgreSQL
 * backend (kv_dump, kv_load, vec_dump, vec_has, sec_put, sec_dump,
 * sec_clear, check in csrc/backends/postgres/), driven through lls_postgres_vt.
 *
 *   cc -std=c11 -D_POSIX_C_SOURCE=200809L -fsanitize=address,undefined -Icsrc \
 *      -I$(pg_config --includedir) \
 *      $(find csrc/base csrc/backend csrc/backends/postgres -name '*.c') \
 *      spec/c/test_pg_export_slots.c -lpq
 *   LLMSPELL_TEST_PG_URL=postgresql:///postgres?host=...&user=postgres ./a.out
 *
 * The URL must name a superuser (the test creates roles, breaks the schema
 * on purpose for check(), and looks behind row-level security). Without it
 * the test fails. Everything lives in schema llmspell_pgexp_c and roles
 * llmspell_pgexp_{reader,app}, dropped and recreated at the start and left
 * behind at the end, so that spec/pg_export_slots_c_spec.lua can inspect
 * the rows with psql (and then drops them). Prints "ok: N checks passed"
 * and exits 0 when everything held.
 */
#include "backend/backend.h"

#include <libpq-fe.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCHEMA "llmspell_pgexp_c"
#define READER "llmspell_pgexp_reader"
#define APP "llmspell_pgexp_app"
#define APP_PASSWORD "pgexp-app"

/* A fixed "now" with a non-zero microsecond part, to check exactness. */
#define NOW INT64_C(1700000000123456)
#define SEC INT64_C(1000000)

#include "pg_check.h"

static const lls_backend_vt *vt = &lls_postgres_vt;

static long long sql_int(const char *q) { return atoll(sql("%s", q)); }

/* Ends every connection the library holds, as an administrator would. */
static void terminate_library_connections(void) {
  sql("SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity"
      " WHERE application_name = 'llmspell.storage'");
}

/* ------------------------------------------------------- handles, data */

static lls_backend *open_as(const char *url, const char *tenant) {
  lls_option opts[1] = {{"schema", SCHEMA, 0}};
  lls_config cfg = {url, tenant, opts, 1};
  lls_error err;
  lls_backend *b = lls_backend_open(&lls_postgres_vt, &cfg, &err);
  if (b == NULL) die("open %s: %s: %s", tenant, lls_code_name(err.code), err.message);
  return b;
}

static lls_str S(const char *s) {
  lls_str x = {s, strlen(s)};
  return x;
}

static int str_is(lls_str s, const char *want) {
  return s.len == strlen(want) && (s.len == 0 || memcmp(s.ptr, want, s.len) == 0);
}

static int bytes_are(lls_str s, const char *want, size_t n) {
  return s.len == n && (n == 0 || memcmp(s.ptr, want, n) == 0);
}

/* A record with the fixed times used throughout. */
static lls_kv_rec rec(const char *key, const char *value, const char *md, const char *id) {
  lls_kv_rec r;
  memset(&r, 0, sizeof r);
  r.key = S(key);
  r.value = S(value);
  r.metadata = S(md ? md : "");
  r.kv_id = S(id ? id : "");
  r.created_at = NOW - 7 * SEC + 1;
  r.updated_at = NOW - 3 * SEC + 2;
  return r;
}

/* The keys of rows joined with '|', for order checks. */
static const char *keys_of(const lls_rows *rows) {
  static char out[2048];
  size_t o = 0;
  out[0] = '\0';
  for (size_t i = 0; i < rows->count && o < sizeof out - 256; i++) {
    lls_str k = lls_row_key(rows, i);
    o += (size_t)snprintf(out + o, sizeof out - o, "%s%.*s", i ? "|" : "", (int)k.len, k.ptr);
  }
  return out;
}

/* Index of key in rows, -1 when absent. */
static long find_key(const lls_rows *rows, const char *key) {
  for (size_t i = 0; i < rows->count; i++)
    if (str_is(lls_row_key(rows, i), key)) return (long)i;
  return -1;
}

/* Every visible row, through kv_dump pages of `page` rows; checks that
 * consecutive pages continue where the last stopped. */
static void dump_all(lls_backend *b, int64_t now, size_t page, lls_rows *out) {
  lls_rows pg = {0};
  lls_buf after = {0};
  lls_error err;
  int first = 1;
  lls_rows_reset(out);
  for (;;) {
    lls_rows_reset(&pg);
    lls_str a = {first ? NULL : after.data ? after.data : "", after.len};
    if (vt->xport->kv_dump(b, a, now, page, &pg, &err) != 0)
      die("kv_dump: %s: %s", lls_code_name(err.code), err.message);
    CHECK(page == 0 || pg.count <= page, "page of %zu rows, limit %zu", pg.count, page);
    for (size_t i = 0; i < pg.count; i++) {
      lls_row *row = lls_rows_add_ext(out, lls_row_key(&pg, i), lls_row_value(&pg, i),
                                      lls_row_meta(&pg, i), lls_row_kv_id(&pg, i));
      if (row == NULL) die("out of memory");
      row->created_at = pg.rows[i].created_at;
      row->updated_at = pg.rows[i].updated_at;
      row->expires_at = pg.rows[i].expires_at;
    }
    if (page == 0 || pg.count < page) break;
    lls_str last = lls_row_key(&pg, pg.count - 1);
    after.len = 0;
    if (lls_buf_append(&after, last.ptr, last.len) != 0) die("out of memory");
    first = 0;
  }
  lls_rows_free(&pg);
  lls_buf_free(&after);
}

/* Every section record as "section#ord=json" lines, through pages. */
static const char *sections_of(lls_backend *b, size_t page) {
  static char out[4096];
  lls_rows pg = {0};
  lls_buf after = {0};
  int64_t after_ord = 0;
  lls_error err;
  int first = 1;
  size_t o = 0;
  out[0] = '\0';
  for (;;) {
    lls_rows_reset(&pg);
    lls_str a = {first ? NULL : after.data ? after.data : "", after.len};
    if (vt->xport->sec_dump(b, a, after_ord, page, &pg, &err) != 0)
      die("sec_dump: %s: %s", lls_code_name(err.code), err.message);
    for (size_t i = 0; i < pg.count && o < sizeof out - 512; i++) {
      lls_str s = lls_row_key(&pg, i), v = lls_row_value(&pg, i);
      o += (size_t)snprintf(out + o, sizeof out - o, "%s%.*s#%lld=%.*s", o ? "\n" : "",
                            (int)s.len, s.ptr, (long long)pg.rows[i].created_at, (int)v.len,
                            v.ptr);
    }
    if (page == 0 || pg.count < page) break;
    lls_str last = lls_row_key(&pg, pg.count - 1);
    after.len = 0;
    if (lls_buf_append(&after, last.ptr, last.len) != 0) die("out of memory");
    after_ord = pg.rows[pg.count - 1].created_at;
    first = 0;
  }
  lls_rows_free(&pg);
  lls_buf_free(&after);
  return out;
}

/* ------------------------------------------------------- vectors */

typedef struct got_row {
  char id[64], md[128];
  unsigned char vec[16];
  size_t veclen;
  char scope[32];
  int64_t created, updated, event, expires, seq;
  int has_event, deleted;
} got_row;

typedef struct collector {
  got_row rows[64];
  size_t n;
  size_t stop_after; /* 0 = never */
} collector;

static void copy_str(char *dst, size_t cap, lls_str s) {
  size_t n = s.len < cap - 1 ? s.len : cap - 1;
  memcpy(dst, s.ptr, n);
  dst[n] = '\0';
}

static int collect(void *ud, const lls_vec_row *row, lls_error *err) {
  collector *c = ud;
  if ((c->stop_after && c->n == c->stop_after) || c->n == 64)
    return lls_error_set(err, LLS_EFORMAT, "collector: stop after %zu", c->n);
  got_row *g = &c->rows[c->n++];
  copy_str(g->id, sizeof g->id, row->id);
  copy_str(g->md, sizeof g->md, row->metadata);
  copy_str(g->scope, sizeof g->scope, row->scope);
  g->veclen = row->vector.len < sizeof g->vec ? row->vector.len : sizeof g->vec;
  memcpy(g->vec, row->vector.ptr, g->veclen);
  g->created = row->created_at;
  g->updated = row->updated_at;
  g->event = row->event_time;
  g->has_event = row->has_event_time;
  g->expires = row->expires_at;
  g->seq = row->seq;
  g->deleted = row->deleted;
  return 0;
}

static lls_vec_row vrow(const char *id, const float *v, const char *md) {
  lls_vec_row r;
  memset(&r, 0, sizeof r);
  r.id = S(id);
  r.scope = S("global");
  r.vector.ptr = (const char *)v; /* the test runs on little-endian hosts */
  r.vector.len = 2 * sizeof(float);
  r.metadata = S(md);
  r.created_at = NOW - 5 * SEC + 7;
  r.updated_at = NOW - 2 * SEC + 9;
  return r;
}

static int64_t create(lls_backend *b, const char *name) {
  lls_coll_info info;
  lls_error err;
  memset(&info, 0, sizeof info);
  snprintf(info.name, sizeof info.name, "%s", name);
  info.dimension = 2;
  info.metric = 1;
  info.m = 16;
  info.ef_construction = 200;
  info.ef_search = 50;
  if (vt->vec->coll_create(b, &info, NOW, &err) != 0) die("create %s: %s", name, err.message);
  return info.id;
}

/* "id,id,..." of a vec_dump through pages of `page`. */
static const char *vec_ids(lls_backend *b, int64_t coll, size_t page, collector *all) {
  static char out[1024];
  collector pg;
  char after[64] = "";
  int first = 1;
  size_t o = 0;
  lls_error err;
  out[0] = '\0';
  all->n = 0;
  for (;;) {
    memset(&pg, 0, sizeof pg);
    lls_str a = {first ? NULL : after, strlen(after)};
    if (vt->xport->vec_dump(b, coll, a, page, collect, &pg, &err) != 0)
      die("vec_dump: %s: %s", lls_code_name(err.code), err.message);
    CHECK(page == 0 || pg.n <= page, "page of %zu rows, limit %zu", pg.n, page);
    for (size_t i = 0; i < pg.n && all->n < 64; i++) {
      all->rows[all->n++] = pg.rows[i];
      o += (size_t)snprintf(out + o, sizeof out - o, "%s%s", o ? "," : "", pg.rows[i].id);
    }
    if (page == 0 || pg.n < page) break;
    snprintf(after, sizeof after, "%s", pg.rows[pg.n - 1].id);
    first = 0;
  }
  return out;
}

/* ------------------------------------------------------- the tests */

static lls_backend *acme, *acme2, *globex;

static void test_migrations(void) {
  lls_rows rows = {0};
  lls_error err;
  OK(vt->migrations(acme, &rows, &err), err);
  CHECK(rows.count == 13, "%zu migrations", rows.count);
  if (rows.count == 13) CHECK(str_is(lls_row_key(&rows, 2), "003_export"), "%s", keys_of(&rows));
  if (rows.count == 13)
    CHECK(str_is(lls_row_key(&rows, 3), "004_sessions"), "%s", keys_of(&rows));
  lls_rows_free(&rows);
  CHECK(!strcmp(sql("SELECT relrowsecurity::text || relforcerowsecurity::text FROM pg_class"
                    " WHERE oid = '" SCHEMA ".export_sections'::regclass"),
                "truetrue"),
        "export_sections RLS");
  CHECK(!strcmp(sql("SELECT data_type FROM information_schema.columns WHERE table_schema = '"
                    SCHEMA "' AND table_name = 'kv_store' AND column_name = 'kv_id'"),
                "text"),
        "kv_store.kv_id");
  CHECK(!strcmp(sql("SELECT data_type || '/' || collation_name FROM information_schema.columns"
                    " WHERE table_schema = '" SCHEMA "' AND table_name = 'export_sections'"
                    " AND column_name = 'section'"),
                "text/C"),
        "export_sections.section");
  CHECK(!strcmp(sql("SELECT data_type FROM information_schema.columns WHERE table_schema = '"
                    SCHEMA "' AND table_name = 'export_sections' AND column_name = 'record'"),
                "text"),
        "export_sections.record");
}

/* Paging in key order (bytes: "" < "A" < "a" < "b" < "é"), expired rows
 * left out, values byte for byte, times to the microsecond. */
static void test_kv_dump(void) {
  lls_error err;
  static const char bin[] = {'x', '\0', (char)0xff, 'y'};
  const char *keys[] = {"b", "", "a", "\xc3\xa9", "A", "a/1", "a/2"};
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
    OK(vt->kv->set(acme, S(keys[i]), S(keys[i]), 0, NOW, &err), err);
  OK(vt->kv->set(acme, S("bin"), (lls_str){bin, sizeof bin}, NOW + 60 * SEC, NOW, &err), err);
  OK(vt->kv->set(acme, S("gone"), S("x"), NOW + SEC, NOW - SEC, &err), err); /* expires at NOW+1s */
  OK(vt->kv->set(acme, S("zz-expired"), S("x"), NOW - 1, NOW - SEC, &err), err);

  lls_rows all = {0};
  const char *want = "|A|a|a/1|a/2|b|bin|gone|\xc3\xa9";
  for (size_t page = 0; page <= 4; page++) {
    dump_all(acme, NOW, page, &all);
    CHECK(!strcmp(keys_of(&all), want), "page %zu: %s", page, keys_of(&all));
  }
  /* a second later "gone" has expired too */
  dump_all(acme, NOW + SEC, 3, &all);
  CHECK(!strcmp(keys_of(&all), "|A|a|a/1|a/2|b|bin|\xc3\xa9"), "%s", keys_of(&all));
  long i = find_key(&all, "bin");
  CHECK(i >= 0, "bin missing");
  if (i >= 0) {
    CHECK(bytes_are(lls_row_value(&all, (size_t)i), bin, sizeof bin), "binary value");
    CHECK(all.rows[i].created_at == NOW && all.rows[i].updated_at == NOW, "times %lld %lld",
          (long long)all.rows[i].created_at, (long long)all.rows[i].updated_at);
    CHECK(all.rows[i].expires_at == NOW + 60 * SEC, "expires %lld",
          (long long)all.rows[i].expires_at);
    CHECK(all.rows[i].mlen == 0 && all.rows[i].ilen == 0, "set() rows carry no metadata/id");
  }
  i = find_key(&all, "");
  CHECK(i == 0 && lls_row_value(&all, 0).len == 0, "empty key first");

  /* after a key that is not stored; after the last key */
  lls_rows pg = {0};
  OK(vt->xport->kv_dump(acme, S("a/10"), NOW, 2, &pg, &err), err);
  CHECK(!strcmp(keys_of(&pg), "a/2|b"), "%s", keys_of(&pg));
  lls_rows_reset(&pg);
  OK(vt->xport->kv_dump(acme, S("\xc3\xa9"), NOW, 10, &pg, &err), err);
  CHECK(pg.count == 0, "%zu rows after the last key", pg.count);
  lls_rows_free(&pg);
  lls_rows_free(&all);
  OK(vt->kv->clear(acme, &err), err);
}

/* replace: every record written with its own times, metadata and kv_id,
 * over visible and expired rows alike. */
static void test_kv_load_replace(void) {
  lls_error err;
  size_t written = 99;
  OK(vt->kv->set(acme, S("old"), S("stored"), 0, NOW, &err), err);
  OK(vt->kv->set(acme, S("stale"), S("stored"), NOW - 1, NOW - SEC, &err), err);
  static const char bin[] = {'\0', (char)0x80, '\0'};
  lls_kv_rec r[5];
  r[0] = rec("old", "new", "{\"b\":[true,null,1.5],\"a\":{\"x\":9007199254740993}}",
             "2f4c9d1e-0000-4000-8000-000000000001");
  r[1] = rec("stale", "fresh", NULL, NULL);
  r[2] = rec("bin", "", "null", "id-bin");
  r[2].value = (lls_str){bin, sizeof bin};
  r[2].expires_at = NOW + 30 * SEC;
  r[3] = rec("expired-record", "x", NULL, NULL);
  r[3].expires_at = NOW - 1; /* written (as given), invisible */
  r[4] = rec("plain", "p", "{}", NULL);
  OK(vt->xport->kv_load(acme, r, 5, LLS_CONFLICT_REPLACE, NOW, &written, &err), err);
  CHECK(written == 5, "written %zu", written);

  lls_rows all = {0};
  dump_all(acme, NOW, 2, &all);
  CHECK(!strcmp(keys_of(&all), "bin|old|plain|stale"), "%s", keys_of(&all));
  long i = find_key(&all, "old");
  if (i >= 0) {
    CHECK(str_is(lls_row_value(&all, (size_t)i), "new"), "value");
    /* jsonb normalises: keys ordered, spaces after ':' and ',' */
    CHECK(str_is(lls_row_meta(&all, (size_t)i),
                 "{\"a\": {\"x\": 9007199254740993}, \"b\": [true, null, 1.5]}"),
          "metadata %.*s", (int)lls_row_meta(&all, (size_t)i).len,
          lls_row_meta(&all, (size_t)i).ptr);
    CHECK(str_is(lls_row_kv_id(&all, (size_t)i), "2f4c9d1e-0000-4000-8000-000000000001"),
          "kv_id");
    CHECK(all.rows[i].created_at == NOW - 7 * SEC + 1 &&
              all.rows[i].updated_at == NOW - 3 * SEC + 2 && all.rows[i].expires_at == 0,
          "times %lld %lld %lld", (long long)all.rows[i].created_at,
          (long long)all.rows[i].updated_at, (long long)all.rows[i].expires_at);
  }
  i = find_key(&all, "stale");
  if (i >= 0)
    CHECK(str_is(lls_row_value(&all, (size_t)i), "fresh") && all.rows[i].mlen == 0 &&
              all.rows[i].ilen == 0,
          "stale replaced, no metadata or id");
  i = find_key(&all, "bin");
  if (i >= 0) {
    CHECK(bytes_are(lls_row_value(&all, (size_t)i), bin, sizeof bin), "binary value");
    CHECK(str_is(lls_row_meta(&all, (size_t)i), "null"), "JSON null metadata");
    CHECK(str_is(lls_row_kv_id(&all, (size_t)i), "id-bin"), "kv_id");
    CHECK(all.rows[i].expires_at == NOW + 30 * SEC, "expires");
  }
  i = find_key(&all, "plain");
  if (i >= 0) CHECK(str_is(lls_row_meta(&all, (size_t)i), "{}"), "empty object metadata");
  CHECK(sql_int("SELECT count(*) FROM " SCHEMA ".kv_store WHERE tenant_id = 'acme'"
                " AND key = 'expired-record'") == 1,
        "an expired record is stored as given");
  /* and the KV API reads what was loaded */
  lls_str v;
  int found;
  OK(vt->kv->get(acme, S("old"), NOW, &v, &found, &err), err);
  CHECK(found && str_is(v, "new"), "get after load");

  /* set() keeps metadata and kv_id while the row is visible (it is the
   * same record), a delete-then-set in one batch starts a new one */
  OK(vt->kv->set(acme, S("old"), S("newer"), 0, NOW + SEC, &err), err);
  lls_op ops[2] = {{LLS_OP_DELETE, S("bin"), {NULL, 0}, 0}, {LLS_OP_SET, S("bin"), S("b"), 0}};
  size_t deleted;
  OK(vt->kv->apply(acme, ops, 2, NOW + SEC, &deleted, &err), err);
  dump_all(acme, NOW + SEC, 0, &all);
  i = find_key(&all, "old");
  if (i >= 0)
    CHECK(str_is(lls_row_value(&all, (size_t)i), "newer") &&
              str_is(lls_row_kv_id(&all, (size_t)i), "2f4c9d1e-0000-4000-8000-000000000001") &&
              all.rows[i].mlen > 0 && all.rows[i].created_at == NOW - 7 * SEC + 1,
          "set() over a loaded row keeps kv_id, metadata, created_at");
  i = find_key(&all, "bin");
  if (i >= 0)
    CHECK(all.rows[i].mlen == 0 && all.rows[i].ilen == 0, "delete+set starts a new record");

  /* duplicates in one batch: the last one wins, every record counts */
  lls_kv_rec d[3] = {rec("dup", "1", NULL, "i1"), rec("dup", "2", NULL, "i2"),
                     rec("other", "o", NULL, NULL)};
  OK(vt->xport->kv_load(acme, d, 3, LLS_CONFLICT_REPLACE, NOW, &written, &err), err);
  CHECK(written == 3, "written %zu", written);
  dump_all(acme, NOW, 0, &all);
  i = find_key(&all, "dup");
  if (i >= 0)
    CHECK(str_is(lls_row_value(&all, (size_t)i), "2") &&
              str_is(lls_row_kv_id(&all, (size_t)i), "i2"),
          "last duplicate wins");
  OK(vt->xport->kv_load(acme, d, 0, LLS_CONFLICT_ERROR, NOW, &written, &err), err);
  CHECK(written == 0, "empty batch");
  lls_rows_free(&all);
  OK(vt->kv->clear(acme, &err), err);
}

/* skip: visible rows stay untouched, expired ones count as absent. */
static void test_kv_load_skip(void) {
  lls_error err;
  size_t written;
  OK(vt->kv->set(acme, S("keep"), S("stored"), 0, NOW - SEC, &err), err);
  OK(vt->kv->set(acme, S("stale"), S("stored"), NOW - 1, NOW - SEC, &err), err);
  lls_kv_rec r[6] = {rec("keep", "record", "{}", "k"), rec("stale", "record", NULL, "s"),
                     rec("new", "record", NULL, NULL),
                     /* in-batch: an expired record, then a visible one, then another:
                      * in order, the first two are written and the third skipped */
                     rec("d", "1", NULL, NULL), rec("d", "2", NULL, NULL),
                     rec("d", "3", NULL, NULL)};
  r[3].expires_at = NOW - 5;
  OK(vt->xport->kv_load(acme, r, 6, LLS_CONFLICT_SKIP, NOW, &written, &err), err);
  CHECK(written == 4, "written %zu (stale, new, d twice)", written);
  lls_rows all = {0};
  dump_all(acme, NOW, 0, &all);
  CHECK(!strcmp(keys_of(&all), "d|keep|new|stale"), "%s", keys_of(&all));
  long i = find_key(&all, "keep");
  if (i >= 0)
    CHECK(str_is(lls_row_value(&all, (size_t)i), "stored") && all.rows[i].ilen == 0 &&
              all.rows[i].created_at == NOW - SEC,
          "a visible row is untouched");
  i = find_key(&all, "stale");
  if (i >= 0)
    CHECK(str_is(lls_row_value(&all, (size_t)i), "record") &&
              str_is(lls_row_kv_id(&all, (size_t)i), "s"),
          "an expired row is replaced");
  i = find_key(&all, "d");
  if (i >= 0) CHECK(str_is(lls_row_value(&all, (size_t)i), "2"), "first visible record wins");
  /* all present: nothing written */
  OK(vt->xport->kv_load(acme, r, 3, LLS_CONFLICT_SKIP, NOW, &written, &err), err);
  CHECK(written == 0, "written %zu", written);
  lls_rows_free(&all);
  OK(vt->kv->clear(acme, &err), err);
}

/* error: any visible key -> conflict naming it, nothing written; inside a
 * transaction the transaction stays usable. */
static void test_kv_load_error(void) {
  lls_error err;
  size_t written = 7;
  OK(vt->kv->set(acme, S("taken"), S("stored"), 0, NOW, &err), err);
  OK(vt->kv->set(acme, S("stale"), S("stored"), NOW - 1, NOW - SEC, &err), err);
  lls_kv_rec r[3] = {rec("a-new", "1", NULL, NULL), rec("taken", "2", NULL, NULL),
                     rec("z-new", "3", NULL, NULL)};
  FAILS(vt->xport->kv_load(acme, r, 3, LLS_CONFLICT_ERROR, NOW, &written, &err), err, LLS_ECONFLICT);
  CHECK(strstr(err.message, "key 'taken' already exists") != NULL, "%s", err.message);
  lls_rows all = {0};
  dump_all(acme, NOW, 0, &all);
  CHECK(!strcmp(keys_of(&all), "taken"), "nothing written: %s", keys_of(&all));

  /* inside a transaction: the failure leaves it usable and nothing of the
   * batch behind; what the transaction did before stays */
  OK(vt->begin(acme, 0, &err), err);
  OK(vt->kv->set(acme, S("before"), S("b"), 0, NOW, &err), err);
  FAILS(vt->xport->kv_load(acme, r, 3, LLS_CONFLICT_ERROR, NOW, &written, &err), err, LLS_ECONFLICT);
  OK(vt->kv->set(acme, S("after"), S("a"), 0, NOW, &err), err);
  OK(vt->commit(acme, 0, &err), err);
  dump_all(acme, NOW, 0, &all);
  CHECK(!strcmp(keys_of(&all), "after|before|taken"), "%s", keys_of(&all));

  /* an expired row is absent: loading over it is fine */
  lls_kv_rec s[2] = {rec("stale", "s", NULL, "sid"), rec("fresh", "f", NULL, NULL)};
  OK(vt->xport->kv_load(acme, s, 2, LLS_CONFLICT_ERROR, NOW, &written, &err), err);
  CHECK(written == 2, "written %zu", written);
  /* a key given twice after a visible record meets that record */
  lls_kv_rec d[2] = {rec("dup", "1", NULL, NULL), rec("dup", "2", NULL, NULL)};
  FAILS(vt->xport->kv_load(acme, d, 2, LLS_CONFLICT_ERROR, NOW, &written, &err), err, LLS_ECONFLICT);
  CHECK(strstr(err.message, "key 'dup' already exists") != NULL, "%s", err.message);
  /* ... but not after an expired one */
  d[0].expires_at = NOW - 1;
  OK(vt->xport->kv_load(acme, d, 2, LLS_CONFLICT_ERROR, NOW, &written, &err), err);
  CHECK(written == 2, "written %zu", written);
  dump_all(acme, NOW, 0, &all);
  CHECK(!strcmp(keys_of(&all), "after|before|dup|fresh|stale|taken"), "%s", keys_of(&all));
  lls_rows_free(&all);
  OK(vt->kv->clear(acme, &err), err);
}

/* Metadata PostgreSQL's jsonb refuses is the caller's error (invalid),
 * and a transaction survives it. */
static void test_kv_load_bad_metadata(void) {
  lls_error err;
  size_t written;
  lls_kv_rec bad = rec("k", "v", "{not json", NULL);
  FAILS(vt->xport->kv_load(acme, &bad, 1, LLS_CONFLICT_REPLACE, NOW, &written, &err), err,
        LLS_EINVALID);
  CHECK(strstr(err.message, "metadata") != NULL, "%s", err.message);
  OK(vt->begin(acme, 0, &err), err);
  bad = rec("k", "v", "{\"a\":\"\\u0000\"}", NULL);
  FAILS(vt->xport->kv_load(acme, &bad, 1, LLS_CONFLICT_SKIP, NOW, &written, &err), err, LLS_EINVALID);
  OK(vt->kv->set(acme, S("still"), S("usable"), 0, NOW, &err), err);
  OK(vt->commit(acme, 0, &err), err);
  lls_rows all = {0};
  dump_all(acme, NOW, 0, &all);
  CHECK(!strcmp(keys_of(&all), "still"), "%s", keys_of(&all));
  lls_rows_free(&all);
  OK(vt->kv->clear(acme, &err), err);
}

/* Rolling back the caller's transaction undoes kv_load and sec_put. */
static void test_rollback(void) {
  lls_error err;
  size_t written;
  lls_kv_rec r[2] = {rec("t1", "1", "{\"m\":1}", "id1"), rec("t2", "2", NULL, NULL)};
  lls_str secs[2] = {S("agent_state"), S("sessions")};
  int64_t ords[2] = {0, -1};
  lls_str json[2] = {S("{\"a\":1}"), S("[]")};
  OK(vt->begin(acme, 0, &err), err);
  OK(vt->xport->kv_load(acme, r, 2, LLS_CONFLICT_REPLACE, NOW, &written, &err), err);
  OK(vt->xport->sec_put(acme, secs, ords, json, 2, &err), err);
  /* a savepoint level too */
  OK(vt->begin(acme, 1, &err), err);
  OK(vt->xport->sec_put(acme, secs, ords, json, 1, &err), err);
  OK(vt->rollback(acme, 1, &err), err);
  lls_rows all = {0};
  dump_all(acme, NOW, 0, &all);
  CHECK(all.count == 2, "inside: %zu rows", all.count);
  OK(vt->rollback(acme, 0, &err), err);
  dump_all(acme, NOW, 0, &all);
  CHECK(all.count == 0, "after rollback: %s", keys_of(&all));
  CHECK(!strcmp(sections_of(acme, 0), ""), "sections after rollback: %s", sections_of(acme, 0));
  lls_rows_free(&all);
}

/* A batch whose values exceed one statement's chunk is written in several
 * statements, still all or nothing. */
static void test_kv_load_chunked(void) {
  lls_error err;
  size_t written;
  size_t big = (size_t)30 << 20;
  char *v = malloc(big);
  if (v == NULL) die("out of memory");
  memset(v, 'x', big);
  lls_kv_rec r[4];
  const char *keys[4] = {"big1", "big2", "big3", "taken"};
  for (int i = 0; i < 4; i++) {
    r[i] = rec(keys[i], "", NULL, NULL);
    r[i].value = (lls_str){v, big};
  }
  r[3].value = S("small");
  OK(vt->kv->set(acme, S("taken"), S("stored"), 0, NOW, &err), err);
  FAILS(vt->xport->kv_load(acme, r, 4, LLS_CONFLICT_ERROR, NOW, &written, &err), err, LLS_ECONFLICT);
  CHECK(sql_int("SELECT count(*) FROM " SCHEMA ".kv_store WHERE tenant_id = 'acme'") == 1,
        "a conflict in the last chunk undid the first ones");
  OK(vt->xport->kv_load(acme, r, 4, LLS_CONFLICT_REPLACE, NOW, &written, &err), err);
  CHECK(written == 4, "written %zu", written);
  CHECK(sql_int("SELECT sum(octet_length(value)) FROM " SCHEMA ".kv_store WHERE tenant_id"
                " = 'acme'") == (long long)(3 * big + 5),
        "three big values and one small");
  free(v);
  OK(vt->kv->clear(acme, &err), err);
}

static void test_vec_dump_has(void) {
  lls_error err;
  int64_t docs = create(acme, "docs"), empty = create(acme, "empty");
  int64_t theirs = create(globex, "docs"), seq;
  float v[6][2] = {{1, 2}, {3, 4}, {5, 6}, {7, 8}, {0.1f, -0.0f}, {1e-39f, 3.5f}};
  const char *ids[6] = {"b", "a", "\xc3\xa9", "Z", "a1", "c"};
  lls_vec_row rows[6];
  for (int i = 0; i < 6; i++) rows[i] = vrow(ids[i], v[i], "{\"n\":1}");
  rows[4].has_event_time = 1;
  rows[4].event_time = NOW - 11;
  rows[4].expires_at = NOW + 99;
  rows[5].scope = S("user:1");
  rows[5].metadata = S("{\"b\":[1,2],\"a\":\"x\"}");
  OK(vt->vec->put(acme, docs, rows, 6, 0, &seq, &err), err);
  /* a deleted row is not dumped */
  lls_str del = S("c");
  size_t deleted;
  OK(vt->vec->del(acme, docs, &del, 1, &deleted, &seq, &err), err);

  collector all;
  for (size_t page = 0; page <= 3; page++)
    CHECK(!strcmp(vec_ids(acme, docs, page, &all), "Z,a,a1,b,\xc3\xa9"), "page %zu: %s", page,
          vec_ids(acme, docs, page, &all));
  vec_ids(acme, docs, 2, &all);
  const got_row *g = &all.rows[2]; /* a1 */
  CHECK(!strcmp(g->id, "a1") && g->veclen == 8 && !memcmp(g->vec, v[4], 8),
        "a1 vector bit for bit");
  CHECK(g->has_event && g->event == NOW - 11 && g->expires == NOW + 99, "a1 times");
  CHECK(g->created == NOW - 5 * SEC + 7 && g->updated == NOW - 2 * SEC + 9, "created/updated");
  CHECK(!strcmp(g->md, "{\"n\": 1}") && !strcmp(g->scope, "global") && !g->deleted &&
            g->seq > 0,
        "md %s scope %s", g->md, g->scope);
  CHECK(!all.rows[0].has_event && all.rows[0].expires == 0, "Z has no event time, no expiry");

  /* after an id that is not stored; the empty collection; sink stop */
  collector c;
  memset(&c, 0, sizeof c);
  OK(vt->xport->vec_dump(acme, docs, S("a0"), 2, collect, &c, &err), err);
  CHECK(c.n == 2 && !strcmp(c.rows[0].id, "a1") && !strcmp(c.rows[1].id, "b"), "after a0");
  memset(&c, 0, sizeof c);
  OK(vt->xport->vec_dump(acme, empty, (lls_str){NULL, 0}, 10, collect, &c, &err), err);
  CHECK(c.n == 0, "%zu rows in an empty collection", c.n);
  memset(&c, 0, sizeof c);
  c.stop_after = 1;
  FAILS(vt->xport->vec_dump(acme, docs, (lls_str){NULL, 0}, 10, collect, &c, &err), err, LLS_EFORMAT);
  /* another tenant's collection, a dropped one */
  memset(&c, 0, sizeof c);
  FAILS(vt->xport->vec_dump(acme, theirs, (lls_str){NULL, 0}, 10, collect, &c, &err), err,
        LLS_ENOTFOUND);
  FAILS(vt->xport->vec_dump(globex, docs, (lls_str){NULL, 0}, 10, collect, &c, &err), err,
        LLS_ENOTFOUND);
  CHECK(c.n == 0, "another tenant's rows reached the sink");

  /* vec_has: present, absent, repeated, deleted, another tenant's */
  lls_str q[6] = {S("a"), S("nope"), S("Z"), S("a"), S("c"), S("\xc3\xa9")};
  unsigned char present[6];
  memset(present, 7, sizeof present);
  OK(vt->xport->vec_has(acme, docs, q, 6, present, &err), err);
  CHECK(present[0] == 1 && present[1] == 0 && present[2] == 1 && present[3] == 1 &&
            present[4] == 0 && present[5] == 1,
        "present %d%d%d%d%d%d", present[0], present[1], present[2], present[3], present[4],
        present[5]);
  memset(present, 7, sizeof present);
  OK(vt->xport->vec_has(acme, empty, q, 6, present, &err), err);
  CHECK(!memcmp(present, "\0\0\0\0\0\0", 6), "nothing in an empty collection");
  OK(vt->xport->vec_has(acme, docs, q, 0, present, &err), err);
  FAILS(vt->xport->vec_has(globex, docs, q, 1, present, &err), err, LLS_ENOTFOUND);
  FAILS(vt->xport->vec_has(acme, theirs, q, 1, present, &err), err, LLS_ENOTFOUND);
  int dropped;
  OK(vt->vec->coll_drop(acme, "empty", &dropped, &err), err);
  FAILS(vt->xport->vec_has(acme, empty, q, 1, present, &err), err, LLS_ENOTFOUND);
  FAILS(vt->xport->vec_dump(acme, empty, (lls_str){NULL, 0}, 1, collect, &c, &err), err,
        LLS_ENOTFOUND);
}

/* Section records: exact bytes, (section, ord) order with -1 first,
 * paging, upsert, duplicates, clearing, the empty name refused. */
static void test_sections(void) {
  lls_error err;
  lls_str secs[7] = {S("sessions"), S("agent_state"), S("knowledge_graph"), S("agent_state"),
                     S("agent_state"), S("sessions"), S("Z")};
  int64_t ords[7] = {0, 1, -1, 0, 10, 1, -1};
  lls_str json[7] = {S("{\"id\":\"s0\",  \"n\": 1.50}"), S("{\"b\":2,\"a\":1}"),
                     S("{\"entities\":[],\"relationships\":[]}"), S("\"caf\xc3\xa9\""),
                     S("[1,2,3]"), S("{\"id\":\"s1\"}"), S("null")};
  OK(vt->xport->sec_put(acme, secs, ords, json, 7, &err), err);
  const char *want = "Z#-1=null\n"
                     "agent_state#0=\"caf\xc3\xa9\"\n"
                     "agent_state#1={\"b\":2,\"a\":1}\n"
                     "agent_state#10=[1,2,3]\n"
                     "knowledge_graph#-1={\"entities\":[],\"relationships\":[]}\n"
                     "sessions#0={\"id\":\"s0\",  \"n\": 1.50}\n"
                     "sessions#1={\"id\":\"s1\"}";
  for (size_t page = 0; page <= 4; page++)
    CHECK(!strcmp(sections_of(acme, page), want), "page %zu:\n%s", page,
          sections_of(acme, page));
  /* after a position between records */
  lls_rows pg = {0};
  OK(vt->xport->sec_dump(acme, S("agent_state"), 2, 2, &pg, &err), err);
  CHECK(pg.count == 2 && pg.rows[0].created_at == 10 && str_is(lls_row_key(&pg, 1),
                                                               "knowledge_graph"),
        "after (agent_state, 2): %s", keys_of(&pg));
  lls_rows_free(&pg);

  /* upsert on (section, ord); duplicates in a batch: the last wins */
  lls_str s2[3] = {S("sessions"), S("sessions"), S("sessions")};
  int64_t o2[3] = {1, 2, 2};
  lls_str j2[3] = {S("{\"id\":\"s1b\"}"), S("{\"v\":1}"), S("{\"v\":2}")};
  OK(vt->xport->sec_put(acme, s2, o2, j2, 3, &err), err);
  const char *out = sections_of(acme, 0);
  CHECK(strstr(out, "sessions#1={\"id\":\"s1b\"}\nsessions#2={\"v\":2}") != NULL &&
            strstr(out, "\"s1\"") == NULL,
        "%s", out);

  /* another tenant sees none of it, and clearing there changes nothing here */
  CHECK(!strcmp(sections_of(globex, 0), ""), "globex sees %s", sections_of(globex, 0));
  lls_str gs = S("sessions");
  int64_t go = 0;
  lls_str gj = S("{\"globex\":true}");
  OK(vt->xport->sec_put(globex, &gs, &go, &gj, 1, &err), err);
  OK(vt->xport->sec_clear(globex, S("agent_state"), &err), err);
  OK(vt->xport->sec_clear(globex, (lls_str){NULL, 0}, &err), err);
  CHECK(!strcmp(sections_of(globex, 0), ""), "globex after clear: %s", sections_of(globex, 0));
  CHECK(strstr(sections_of(acme, 0), "agent_state#0=") != NULL, "acme lost sections");
  OK(vt->xport->sec_put(globex, &gs, &go, &gj, 1, &err), err); /* left for the RLS checks */

  /* empty section names are refused */
  lls_str e = S("");
  FAILS(vt->xport->sec_put(acme, &e, &go, &gj, 1, &err), err, LLS_EINVALID);

  OK(vt->xport->sec_clear(acme, S("agent_state"), &err), err);
  out = sections_of(acme, 0);
  CHECK(strstr(out, "agent_state") == NULL && strstr(out, "sessions#0=") != NULL, "%s", out);
  OK(vt->xport->sec_clear(acme, S("no_such_section"), &err), err);
  OK(vt->xport->sec_clear(acme, S(""), &err), err);
  CHECK(!strcmp(sections_of(acme, 0), ""), "after clearing all: %s", sections_of(acme, 0));
  CHECK(!strcmp(sections_of(globex, 0), "sessions#0={\"globex\":true}"), "globex: %s",
        sections_of(globex, 0));
  /* leave some acme records for the RLS checks */
  OK(vt->xport->sec_put(acme, secs, ords, json, 3, &err), err);
  /* inside a transaction: a failing sec_put (NUL is not text) leaves it usable */
  OK(vt->begin(acme, 0, &err), err);
  static const char nul[] = {'"', '\0', '"'};
  lls_str bad = {nul, sizeof nul};
  FAILS(vt->xport->sec_put(acme, &gs, &go, &bad, 1, &err), err, LLS_EIO);
  OK(vt->xport->sec_put(acme, &gs, &o2[1], &j2[1], 1, &err), err);
  OK(vt->commit(acme, 0, &err), err);
  CHECK(strstr(sections_of(acme, 0), "sessions#2={\"v\":1}") != NULL, "%s",
        sections_of(acme, 0));
}

/* Tenants: nothing of acme's is visible through globex. */
static void test_tenants(void) {
  lls_error err;
  size_t written;
  lls_kv_rec r = rec("secret", "acme's", "{}", "acme-id");
  OK(vt->xport->kv_load(acme, &r, 1, LLS_CONFLICT_REPLACE, NOW, &written, &err), err);
  lls_rows all = {0};
  dump_all(globex, NOW, 0, &all);
  CHECK(all.count == 0, "globex sees %s", keys_of(&all));
  /* error mode in globex does not see acme's key */
  OK(vt->xport->kv_load(globex, &r, 1, LLS_CONFLICT_ERROR, NOW, &written, &err), err);
  dump_all(acme, NOW, 0, &all);
  CHECK(!strcmp(keys_of(&all), "secret"), "%s", keys_of(&all));
  OK(vt->kv->clear(globex, &err), err);
  dump_all(acme2, NOW, 0, &all);
  CHECK(!strcmp(keys_of(&all), "secret"), "second acme handle: %s", keys_of(&all));
  lls_rows_free(&all);
}

static int has_problem(const lls_rows *p, const char *where, const char *what) {
  for (size_t i = 0; i < p->count; i++) {
    lls_str k = lls_row_key(p, i), v = lls_row_value(p, i);
    char buf[512];
    snprintf(buf, sizeof buf, "%.*s", (int)v.len, v.ptr);
    if (str_is(k, where) && strstr(buf, what) != NULL) return 1;
  }
  return 0;
}

static const char *problems_of(const lls_rows *p) {
  static char out[2048];
  size_t o = 0;
  out[0] = '\0';
  for (size_t i = 0; i < p->count && o < sizeof out - 600; i++) {
    lls_str k = lls_row_key(p, i), v = lls_row_value(p, i);
    o += (size_t)snprintf(out + o, sizeof out - o, "%s%.*s: %.*s", i ? "; " : "", (int)k.len,
                          k.ptr, (int)v.len, v.ptr);
  }
  return out;
}

/* check(): healthy, then each thing it looks at broken in turn (and put
 * back), one problem row per failure. */
static void test_check(void) {
  lls_error err;
  lls_rows p = {0};
  OK(vt->check(acme, &p, &err), err);
  CHECK(p.count == 0, "healthy: %s", problems_of(&p));

  sql("UPDATE " SCHEMA ".collections SET count = count + 5 WHERE tenant_id = 'acme'"
      " AND name = 'docs'");
  lls_rows_reset(&p);
  OK(vt->check(acme, &p, &err), err);
  CHECK(p.count == 1 && has_problem(&p, "docs", "count says 10, vectors has 5"), "%s",
        problems_of(&p));
  lls_rows_reset(&p);
  OK(vt->check(globex, &p, &err), err);
  CHECK(p.count == 0, "globex sees acme's count problem: %s", problems_of(&p));
  sql("UPDATE " SCHEMA ".collections SET count = count - 5 WHERE tenant_id = 'acme'"
      " AND name = 'docs'");

  sql("ALTER TABLE " SCHEMA ".export_sections NO FORCE ROW LEVEL SECURITY");
  sql("ALTER TABLE " SCHEMA ".vectors DISABLE ROW LEVEL SECURITY");
  sql("ALTER POLICY kv_store_tenant_isolation ON " SCHEMA ".kv_store"
      " RENAME TO kv_store_renamed");
  lls_rows_reset(&p);
  OK(vt->check(acme, &p, &err), err);
  CHECK(p.count == 3 && has_problem(&p, "export_sections", "not forced") &&
            has_problem(&p, "vectors", "disabled") &&
            has_problem(&p, "kv_store", "kv_store_tenant_isolation is missing"),
        "%s", problems_of(&p));
  sql("ALTER TABLE " SCHEMA ".export_sections FORCE ROW LEVEL SECURITY");
  sql("ALTER TABLE " SCHEMA ".vectors ENABLE ROW LEVEL SECURITY");
  sql("ALTER POLICY kv_store_renamed ON " SCHEMA ".kv_store"
      " RENAME TO kv_store_tenant_isolation");

  sql("UPDATE " SCHEMA ".llmspell_migrations SET name = 'renamed' WHERE version = 2");
  sql("INSERT INTO " SCHEMA ".llmspell_migrations (version, name) VALUES (999, 'future')");
  lls_rows_reset(&p);
  OK(vt->check(acme, &p, &err), err);
  CHECK(p.count == 2 && has_problem(&p, "llmspell_migrations", "recorded as 'renamed'") &&
            has_problem(&p, "llmspell_migrations", "migration 999 ('future') is unknown"),
        "%s", problems_of(&p));
  sql("UPDATE " SCHEMA ".llmspell_migrations SET name = 'vectors' WHERE version = 2");
  sql("DELETE FROM " SCHEMA ".llmspell_migrations WHERE version = 999");
  sql("ALTER TABLE " SCHEMA ".export_sections RENAME TO export_sections_x");
  lls_rows_reset(&p);
  OK(vt->check(acme, &p, &err), err);
  CHECK(p.count == 1 && has_problem(&p, "export_sections", "missing"), "%s", problems_of(&p));
  sql("ALTER TABLE " SCHEMA ".export_sections_x RENAME TO export_sections");

  lls_rows_reset(&p);
  OK(vt->check(acme, &p, &err), err);
  CHECK(p.count == 0, "healthy again: %s", problems_of(&p));
  lls_rows_free(&p);
}

/* Reads reconnect once outside a transaction; kv_load never retries. */
static void test_reconnect(void) {
  lls_error err;
  size_t written;
  lls_rows pg = {0};
  terminate_library_connections();
  OK(vt->xport->kv_dump(acme, (lls_str){NULL, 0}, NOW, 10, &pg, &err), err);
  CHECK(pg.count == 1, "kv_dump after reconnect: %s", keys_of(&pg));
  terminate_library_connections();
  lls_rows_reset(&pg);
  OK(vt->xport->sec_dump(acme, (lls_str){NULL, 0}, 0, 10, &pg, &err), err);
  CHECK(pg.count > 0, "sec_dump after reconnect");
  terminate_library_connections();
  lls_rows_reset(&pg);
  OK(vt->check(acme, &pg, &err), err);
  CHECK(pg.count == 0, "check after reconnect: %s", problems_of(&pg));
  terminate_library_connections();
  lls_kv_rec r = rec("lost", "x", NULL, NULL);
  FAILS(vt->xport->kv_load(acme, &r, 1, LLS_CONFLICT_REPLACE, NOW, &written, &err), err,
        LLS_ECONNECTION);
  lls_rows_reset(&pg);
  OK(vt->xport->kv_dump(acme, (lls_str){NULL, 0}, NOW, 10, &pg, &err), err);
  CHECK(find_key(&pg, "lost") < 0, "a lost kv_load was applied");
  lls_rows_free(&pg);
}

/* Raw SQL as a role without BYPASSRLS sees only the tenant it names. */
static void test_rls_raw_sql(void) {
  sql("GRANT USAGE ON SCHEMA " SCHEMA " TO " READER);
  sql("GRANT SELECT ON ALL TABLES IN SCHEMA " SCHEMA " TO " READER);
  long long acme_n = sql_int("SELECT count(*) FROM " SCHEMA ".export_sections WHERE tenant_id"
                             " = 'acme'");
  long long all = sql_int("SELECT count(*) FROM " SCHEMA ".export_sections");
  CHECK(acme_n > 0 && all > acme_n, "acme %lld of %lld", acme_n, all);
  sql("SET ROLE " READER);
  long long none = sql_int("SELECT count(*) FROM " SCHEMA ".export_sections");
  sql("SELECT set_config('app.current_tenant_id', 'acme', false)");
  long long seen = sql_int("SELECT count(*) FROM " SCHEMA ".export_sections");
  long long other = sql_int("SELECT count(*) FROM " SCHEMA ".export_sections"
                            " WHERE tenant_id <> 'acme'");
  sql("SELECT set_config('app.current_tenant_id', '', false)");
  sql("RESET ROLE");
  CHECK(none == 0, "%lld rows without a tenant", none);
  CHECK(seen == acme_n && other == 0, "reader as acme sees %lld (%lld foreign)", seen, other);
}

/* The library opened as a LOGIN role without BYPASSRLS and the documented
 * privileges: every slot works, check() included (the catalogs it reads
 * are public), and WITH CHECK refuses another tenant's section rows. */
static void test_app_role(void) {
  sql("GRANT USAGE ON SCHEMA " SCHEMA " TO " APP);
  sql("GRANT SELECT ON " SCHEMA ".llmspell_migrations TO " APP);
  sql("GRANT SELECT, INSERT, UPDATE, DELETE ON " SCHEMA ".kv_store, " SCHEMA ".collections, "
      SCHEMA ".vectors, " SCHEMA ".vector_tombstones, " SCHEMA ".vector_snapshots, " SCHEMA
      ".export_sections TO " APP);
  sql("GRANT USAGE ON SEQUENCE " SCHEMA ".collections_id_seq TO " APP);
  char url[2048];
  snprintf(url, sizeof url, "%s%suser=" APP "%spassword=" APP_PASSWORD, pg_url,
           strstr(pg_url, "://") ? (strchr(pg_url, '?') ? "&" : "?") : " ",
           strstr(pg_url, "://") ? "&" : " ");
  lls_backend *app = open_as(url, "acme");
  lls_error err;
  size_t written;
  lls_kv_rec r = rec("from-app", "v", "{\"k\":1}", "app-id");
  OK(vt->xport->kv_load(app, &r, 1, LLS_CONFLICT_SKIP, NOW, &written, &err), err);
  CHECK(written == 1, "written %zu", written);
  lls_rows all = {0};
  dump_all(app, NOW, 0, &all);
  CHECK(!strcmp(keys_of(&all), "from-app|secret"), "%s", keys_of(&all));
  lls_str s = S("app_section");
  int64_t o = 0;
  lls_str j = S("{}");
  OK(vt->xport->sec_put(app, &s, &o, &j, 1, &err), err);
  CHECK(strstr(sections_of(app, 0), "app_section#0={}") != NULL &&
            strstr(sections_of(app, 0), "globex") == NULL,
        "%s", sections_of(app, 0));
  lls_coll_info info;
  int found;
  OK(vt->vec->coll_get(app, "docs", &info, &found, &err), err);
  unsigned char present = 0;
  lls_str id = S("a");
  OK(vt->xport->vec_has(app, info.id, &id, 1, &present, &err), err);
  CHECK(found && present == 1, "vec_has as the app role");
  collector c;
  memset(&c, 0, sizeof c);
  OK(vt->xport->vec_dump(app, info.id, (lls_str){NULL, 0}, 0, collect, &c, &err), err);
  CHECK(c.n == 5, "vec_dump as the app role: %zu", c.n);
  lls_rows_reset(&all);
  OK(vt->check(app, &all, &err), err);
  CHECK(all.count == 0, "check as the app role: %s", problems_of(&all));
  OK(vt->xport->sec_clear(app, s, &err), err);
  lls_rows_free(&all);
  vt->close(app);

  sql("SET ROLE " APP);
  sql("SELECT set_config('app.current_tenant_id', 'acme', false)");
  PGresult *res = PQexec(admin, "INSERT INTO " SCHEMA ".export_sections VALUES"
                                " ('globex', 'sneaky', 0, '{}')");
  int refused = PQresultStatus(res) != PGRES_COMMAND_OK &&
                strstr(PQresultErrorMessage(res), "row-level security") != NULL;
  PQclear(res);
  sql("SELECT set_config('app.current_tenant_id', '', false)");
  sql("RESET ROLE");
  CHECK(refused, "the app role wrote another tenant's section row");
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

  acme = open_as(pg_url, "acme");
  acme2 = open_as(pg_url, "acme");
  globex = open_as(pg_url, "globex");

  test_migrations();
  test_kv_dump();
  test_kv_load_replace();
  test_kv_load_skip();
  test_kv_load_error();
  test_kv_load_bad_metadata();
  test_rollback();
  test_kv_load_chunked();
  test_vec_dump_has();
  test_sections();
  test_tenants();
  test_check();
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
