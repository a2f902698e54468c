/*
 * test_export_slots.c -- the export/import slots of the memory and SQLite
 * backends (kv_dump, kv_load, vec_dump, vec_has, sec_put, sec_dump,
 * sec_clear, check), driven through lls_memory_vt and lls_sqlite_vt
 * directly (no Lua). Every group runs against both vtables with the same
 * assertions; a few SQLite-only groups follow (schema, tenants, a
 * corrupted file).
 *
 *   built and run by spec/export_slots_c_spec.lua, which lists its sources
 *   (the base, value and backend layers and the two backends' folders)
 *   ./a.out [scratch_dir]
 *
 * scratch_dir (default: a fresh mkdtemp directory under /tmp) receives the
 * database files. Prints one line per group and exits non-zero on the
 * first failure. spec/export_slots_c_spec.lua builds and runs it.
 */
#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
      failf(__FILE__, __LINE__, "%s: %s failed: %s: %s", vt->name, #call,                   \
            lls_code_name(err.code), err.message);                                           \
  } while (0)

/* A call that must fail with code; its message must contain needle. */
#define FAILS(call, code_, needle)                                                           \
  do {                                                                                       \
    g_checks++;                                                                              \
    memset(&err, 0, sizeof err);                                                             \
    if ((call) == 0)                                                                         \
      failf(__FILE__, __LINE__, "%s: %s succeeded, expected an error", vt->name, #call);    \
    if (err.code != (code_))                                                                 \
      failf(__FILE__, __LINE__, "%s: %s: code %s, expected %s (%s)", vt->name, #call,       \
            lls_code_name(err.code), lls_code_name(code_), err.message);                     \
    if (strstr(err.message, (needle)) == NULL)                                               \
      failf(__FILE__, __LINE__, "%s: %s: message '%s' lacks '%s'", vt->name, #call,         \
            err.message, needle);                                                            \
  } while (0)

static lls_error err;
static const lls_backend_vt *vt; /* the backend under test */
static char g_dir[512];
static int g_seq; /* numbers fresh database files */

#define NOW ((int64_t)1700000000000000LL)
#define LATER (NOW + 3600 * (int64_t)1000000)

static const lls_str NONE = {NULL, 0};

static lls_str S(const char *s) {
  lls_str r = {s, strlen(s)};
  return r;
}

static int eq(lls_str a, const char *b) {
  return a.len == strlen(b) && memcmp(a.ptr, b, a.len) == 0;
}

static void db_path(char *out, size_t n, const char *name) {
  snprintf(out, n, "%s/%s", g_dir, name);
}

static lls_backend *open_at(const char *path, const char *tenant) {
  lls_config cfg = {path, tenant, NULL, 0};
  lls_backend *b = lls_backend_open(vt, &cfg, &err);
  CHECK(b != NULL, "%s: open %s (%s): %s", vt->name, path, tenant, err.message);
  return b;
}

/* A fresh, empty store of the backend under test. */
static lls_backend *open_fresh(void) {
  char path[600], name[64];
  if (vt == &lls_memory_vt) return open_at("", "default");
  snprintf(name, sizeof name, "x%d.db", ++g_seq);
  db_path(path, sizeof path, name);
  return open_at(path, "default");
}

static lls_kv_rec rec(const char *key, const char *value, const char *meta, const char *id,
                      int64_t created, int64_t updated, int64_t expires) {
  lls_kv_rec r;
  r.key = S(key);
  r.value = S(value);
  r.metadata = meta ? S(meta) : NONE;
  r.kv_id = id ? S(id) : NONE;
  r.created_at = created;
  r.updated_at = updated;
  r.expires_at = expires;
  return r;
}

static size_t load(lls_backend *b, const lls_kv_rec *recs, size_t n, lls_conflict mode) {
  size_t written = 99999;
  OK(vt->xport->kv_load(b, recs, n, mode, NOW, &written, &err));
  return written;
}

/* The keys kv_dump returns, joined by spaces. */
static const char *dump_keys(lls_backend *b, const char *after, size_t limit, int64_t now) {
  static char out[4096];
  lls_rows rows = {0};
  OK(vt->xport->kv_dump(b, after ? S(after) : NONE, now, limit, &rows, &err));
  size_t o = 0;
  out[0] = '\0';
  for (size_t i = 0; i < rows.count && o < sizeof out - 64; i++) {
    lls_str k = lls_row_key(&rows, i);
    o += (size_t)snprintf(out + o, sizeof out - o, "%s%.*s", i ? " " : "", (int)k.len, k.ptr);
  }
  lls_rows_free(&rows);
  return out;
}

#define EXPECT_KEYS(b, after, limit, now, want)                                              \
  do {                                                                                       \
    const char *k_ = dump_keys(b, after, limit, now);                                        \
    CHECK(strcmp(k_, want) == 0, "%s: kv_dump(after %s, limit %d) = '%s', expected '%s'",    \
          vt->name, after ? after : "-", (int)(limit), k_, want);                            \
  } while (0)

/* The row of key in a full dump at NOW; *found says whether there is one.
 * The returned rows must be freed by the caller. */
static size_t find_row(lls_backend *b, lls_rows *rows, const char *key, int *found) {
  lls_rows_reset(rows);
  OK(vt->xport->kv_dump(b, NONE, NOW, 0, rows, &err));
  for (size_t i = 0; i < rows->count; i++)
    if (eq(lls_row_key(rows, i), key)) return *found = 1, i;
  *found = 0;
  return 0;
}

static void expect_value(lls_backend *b, const char *key, const char *value, int line) {
  lls_str v;
  int found = 0;
  if (vt->kv->get(b, S(key), NOW, &v, &found, &err) != 0)
    failf(__FILE__, line, "%s: get %s: %s", vt->name, key, err.message);
  g_checks++;
  if (value == NULL && found)
    failf(__FILE__, line, "%s: key '%s' present ('%.*s'), expected absent", vt->name, key,
          (int)v.len, v.ptr);
  if (value != NULL && (!found || !eq(v, value)))
    failf(__FILE__, line, "%s: key '%s' = '%.*s' (found %d), expected '%s'", vt->name, key,
          found ? (int)v.len : 0, found ? v.ptr : "", found, value);
}
#define EXPECT_VALUE(b, key, value) expect_value(b, key, value, __LINE__)

/* ---- key-value records --------------------------------------------------- */

static void test_roundtrip(void) {
  lls_backend *b = open_fresh();
  static const char bin[] = {'a', '\0', 'b', (char)0xff, (char)0xc3};
  lls_kv_rec recs[4] = {
      rec("zeta", "z", "{\"n\":[1,2,{\"x\":null}],\"s\":\"\\u00e9\"}",
          "5f0c5d2a-0000-4000-8000-00000000000a", 111, 222, 0),
      rec("alpha", "", NULL, NULL, 10, 20, LATER),
      rec("mid", "", "null", "id-only", -5, 7, 0),
      rec("", "empty key", "{}", NULL, 1, 2, 0),
  };
  recs[2].value.ptr = bin;
  recs[2].value.len = sizeof bin;
  CHECK(load(b, recs, 4, LLS_CONFLICT_REPLACE) == 4, "%s: written", vt->name);

  lls_rows rows = {0};
  OK(vt->xport->kv_dump(b, NONE, NOW, 0, &rows, &err));
  CHECK(rows.count == 4, "%s: %zu rows", vt->name, rows.count);
  CHECK(eq(lls_row_key(&rows, 0), "") && eq(lls_row_key(&rows, 1), "alpha") &&
            eq(lls_row_key(&rows, 2), "mid") && eq(lls_row_key(&rows, 3), "zeta"),
        "%s: key order", vt->name);
  /* "" */
  CHECK(eq(lls_row_value(&rows, 0), "empty key") && eq(lls_row_meta(&rows, 0), "{}") &&
            lls_row_kv_id(&rows, 0).len == 0,
        "%s: empty key row", vt->name);
  /* alpha: no metadata, no id, a TTL */
  CHECK(lls_row_value(&rows, 1).len == 0 && lls_row_meta(&rows, 1).len == 0 &&
            lls_row_kv_id(&rows, 1).len == 0,
        "%s: alpha has no metadata or id", vt->name);
  CHECK(rows.rows[1].created_at == 10 && rows.rows[1].updated_at == 20 &&
            rows.rows[1].expires_at == LATER,
        "%s: alpha times %lld %lld %lld", vt->name, (long long)rows.rows[1].created_at,
        (long long)rows.rows[1].updated_at, (long long)rows.rows[1].expires_at);
  /* mid: binary value, negative created_at kept as given */
  lls_str v = lls_row_value(&rows, 2);
  CHECK(v.len == sizeof bin && memcmp(v.ptr, bin, sizeof bin) == 0, "%s: binary value",
        vt->name);
  CHECK(eq(lls_row_meta(&rows, 2), "null") && eq(lls_row_kv_id(&rows, 2), "id-only"),
        "%s: mid metadata/id", vt->name);
  CHECK(rows.rows[2].created_at == -5 && rows.rows[2].updated_at == 7 &&
            rows.rows[2].expires_at == 0,
        "%s: mid times", vt->name);
  /* zeta */
  CHECK(eq(lls_row_meta(&rows, 3), "{\"n\":[1,2,{\"x\":null}],\"s\":\"\\u00e9\"}"),
        "%s: zeta metadata '%.*s'", vt->name, (int)lls_row_meta(&rows, 3).len,
        lls_row_meta(&rows, 3).ptr);
  CHECK(eq(lls_row_kv_id(&rows, 3), "5f0c5d2a-0000-4000-8000-00000000000a"), "%s: zeta id",
        vt->name);
  CHECK(rows.rows[3].created_at == 111 && rows.rows[3].updated_at == 222, "%s: zeta times",
        vt->name);
  lls_rows_free(&rows);

  /* what the KV API sees */
  EXPECT_VALUE(b, "zeta", "z");
  EXPECT_VALUE(b, "", "empty key");
  lls_kv_stats st;
  OK(vt->kv->stats(b, NOW, &st, &err));
  CHECK(st.keys == 4, "%s: stats keys %lld", vt->name, (long long)st.keys);
  CHECK(st.bytes == (int64_t)(4 + 5 + 3 + sizeof bin + 1 + 9), "%s: stats bytes %lld "
        "(metadata and ids are not value bytes)", vt->name, (long long)st.bytes);
  vt->close(b);
  printf("%s: kv_load/kv_dump round trip ok\n", vt->name);
}

static void test_paging(void) {
  lls_backend *b = open_fresh();
  /* inserted out of order, in three batches */
  lls_kv_rec recs[25];
  char keys[25][8];
  for (int i = 0; i < 25; i++) {
    int k = (i * 7) % 25;
    snprintf(keys[i], sizeof keys[i], "k%02d", k);
    recs[i] = rec(keys[i], keys[i], NULL, NULL, k, k, 0);
  }
  CHECK(load(b, recs, 10, LLS_CONFLICT_REPLACE) == 10, "batch 1");
  CHECK(load(b, recs + 10, 10, LLS_CONFLICT_REPLACE) == 10, "batch 2");
  CHECK(load(b, recs + 20, 5, LLS_CONFLICT_REPLACE) == 5, "batch 3");
  EXPECT_KEYS(b, NULL, 10, NOW, "k00 k01 k02 k03 k04 k05 k06 k07 k08 k09");
  EXPECT_KEYS(b, "k09", 10, NOW, "k10 k11 k12 k13 k14 k15 k16 k17 k18 k19");
  EXPECT_KEYS(b, "k19", 10, NOW, "k20 k21 k22 k23 k24");
  EXPECT_KEYS(b, "k24", 10, NOW, "");
  EXPECT_KEYS(b, "k095", 3, NOW, "k10 k11 k12"); /* a resume point need not exist */
  EXPECT_KEYS(b, "", 2, NOW, "k00 k01");
  EXPECT_KEYS(b, "z", 0, NOW, "");

  /* walking every page gives every key once, in order */
  char last[8] = "";
  int have_last = 0, seen = 0;
  for (;;) {
    lls_rows rows = {0};
    OK(vt->xport->kv_dump(b, have_last ? S(last) : NONE, NOW, 4, &rows, &err));
    if (rows.count == 0) {
      lls_rows_free(&rows);
      break;
    }
    CHECK(rows.count <= 4, "page size");
    for (size_t i = 0; i < rows.count; i++) {
      char want[8];
      snprintf(want, sizeof want, "k%02d", seen++);
      CHECK(eq(lls_row_key(&rows, i), want), "%s: paging order at %d", vt->name, seen);
      CHECK(rows.rows[i].created_at == seen - 1, "times follow the row");
    }
    lls_str k = lls_row_key(&rows, rows.count - 1);
    memcpy(last, k.ptr, k.len);
    last[k.len] = '\0';
    have_last = 1;
    lls_rows_free(&rows);
  }
  CHECK(seen == 25, "%s: %d keys paged", vt->name, seen);
  vt->close(b);
  printf("%s: kv_dump paging ok\n", vt->name);
}

static void test_expired(void) {
  lls_backend *b = open_fresh();
  lls_kv_rec recs[4] = {
      rec("a", "1", NULL, NULL, 1, 1, NOW - 1), /* already expired at NOW */
      rec("b", "2", NULL, NULL, 1, 1, NOW),     /* expires_at == now: expired */
      rec("c", "3", NULL, NULL, 1, 1, NOW + 1),
      rec("d", "4", NULL, NULL, 1, 1, 0),
  };
  CHECK(load(b, recs, 4, LLS_CONFLICT_REPLACE) == 4, "written");
  EXPECT_KEYS(b, NULL, 0, NOW, "c d");
  EXPECT_KEYS(b, NULL, 0, NOW + 1, "d");
  EXPECT_KEYS(b, NULL, 0, NOW - 2, "a b c d");
  EXPECT_KEYS(b, NULL, 1, NOW, "c"); /* the limit counts visible rows */
  OK(vt->kv->set(b, S("e"), S("5"), NOW + 10, NOW, &err));
  EXPECT_KEYS(b, NULL, 0, NOW + 5, "d e");
  EXPECT_KEYS(b, NULL, 0, NOW + 10, "d");
  vt->close(b);
  printf("%s: expired rows left out of kv_dump ok\n", vt->name);
}

static void test_conflicts(void) {
  lls_backend *b = open_fresh();
  lls_kv_rec seed[2] = {
      rec("a", "old", "{\"v\":1}", "id-a", 5, 6, 0),
      rec("e", "dead", "{\"v\":2}", "id-e", 5, 6, NOW - 100), /* expired */
  };
  CHECK(load(b, seed, 2, LLS_CONFLICT_REPLACE) == 2, "seed");

  /* skip: the visible row wins; the expired one counts as absent */
  lls_kv_rec skip[3] = {
      rec("a", "new", "{\"v\":9}", "id-x", 50, 60, 0),
      rec("e", "alive", NULL, "id-e2", 51, 61, 0),
      rec("f", "fresh", NULL, NULL, 52, 62, 0),
  };
  CHECK(load(b, skip, 3, LLS_CONFLICT_SKIP) == 2, "%s: skip wrote 2", vt->name);
  EXPECT_VALUE(b, "a", "old");
  EXPECT_VALUE(b, "e", "alive");
  EXPECT_VALUE(b, "f", "fresh");
  lls_rows rows = {0};
  int found;
  size_t i = find_row(b, &rows, "a", &found);
  CHECK(found && eq(lls_row_meta(&rows, i), "{\"v\":1}") && eq(lls_row_kv_id(&rows, i), "id-a") &&
            rows.rows[i].created_at == 5,
        "%s: skipped row untouched", vt->name);
  i = find_row(b, &rows, "e", &found);
  CHECK(found && lls_row_meta(&rows, i).len == 0 && eq(lls_row_kv_id(&rows, i), "id-e2") &&
            rows.rows[i].created_at == 51 && rows.rows[i].updated_at == 61 &&
            rows.rows[i].expires_at == 0,
        "%s: the expired row was replaced whole", vt->name);

  /* error: nothing written when any key exists, whatever its position */
  lls_kv_rec bad[3] = {
      rec("g", "1", NULL, NULL, 1, 1, 0),
      rec("a", "2", NULL, NULL, 1, 1, 0),
      rec("h", "3", NULL, NULL, 1, 1, 0),
  };
  size_t written = 77;
  FAILS(vt->xport->kv_load(b, bad, 3, LLS_CONFLICT_ERROR, NOW, &written, &err), LLS_ECONFLICT,
        "key 'a' already exists");
  CHECK(written == 77, "written untouched on failure");
  EXPECT_VALUE(b, "g", NULL);
  EXPECT_VALUE(b, "h", NULL);
  EXPECT_VALUE(b, "a", "old");
  /* error over absent and expired keys goes through */
  lls_kv_rec dead[1] = {rec("x", "gone", NULL, NULL, 1, 1, NOW - 1)};
  CHECK(load(b, dead, 1, LLS_CONFLICT_REPLACE) == 1, "expired x");
  lls_kv_rec good[2] = {rec("g", "1", NULL, NULL, 1, 1, 0), rec("x", "back", NULL, NULL, 1, 1, 0)};
  CHECK(load(b, good, 2, LLS_CONFLICT_ERROR) == 2, "%s: error mode, no conflict", vt->name);
  EXPECT_VALUE(b, "x", "back");

  /* replace: the record wins whole, times included */
  lls_kv_rec rep[1] = {rec("a", "newest", "[1]", "id-a2", 500, 600, LATER)};
  CHECK(load(b, rep, 1, LLS_CONFLICT_REPLACE) == 1, "replace");
  i = find_row(b, &rows, "a", &found);
  CHECK(found && eq(lls_row_value(&rows, i), "newest") && eq(lls_row_meta(&rows, i), "[1]") &&
            eq(lls_row_kv_id(&rows, i), "id-a2") && rows.rows[i].created_at == 500 &&
            rows.rows[i].updated_at == 600 && rows.rows[i].expires_at == LATER,
        "%s: replaced row", vt->name);
  /* replacing drops metadata and id the record does not carry */
  lls_kv_rec plain[1] = {rec("a", "plain", NULL, NULL, 1, 2, 0)};
  CHECK(load(b, plain, 1, LLS_CONFLICT_REPLACE) == 1, "replace plain");
  i = find_row(b, &rows, "a", &found);
  CHECK(found && lls_row_meta(&rows, i).len == 0 && lls_row_kv_id(&rows, i).len == 0 &&
            rows.rows[i].expires_at == 0,
        "%s: replaced row has no metadata", vt->name);

  /* a key repeated within one call meets the copy written before it */
  lls_kv_rec dup_skip[2] = {rec("d1", "first", NULL, NULL, 1, 1, 0),
                            rec("d1", "second", NULL, NULL, 1, 1, 0)};
  CHECK(load(b, dup_skip, 2, LLS_CONFLICT_SKIP) == 1, "dup skip");
  EXPECT_VALUE(b, "d1", "first");
  lls_kv_rec dup_rep[2] = {rec("d2", "first", NULL, NULL, 1, 1, 0),
                           rec("d2", "second", NULL, NULL, 1, 1, 0)};
  CHECK(load(b, dup_rep, 2, LLS_CONFLICT_REPLACE) == 2, "dup replace");
  EXPECT_VALUE(b, "d2", "second");
  lls_kv_rec dup_err[2] = {rec("d3", "first", NULL, NULL, 1, 1, 0),
                           rec("d3", "second", NULL, NULL, 1, 1, 0)};
  FAILS(vt->xport->kv_load(b, dup_err, 2, LLS_CONFLICT_ERROR, NOW, &written, &err), LLS_ECONFLICT,
        "key 'd3' already exists");
  EXPECT_VALUE(b, "d3", NULL);

  CHECK(load(b, NULL, 0, LLS_CONFLICT_ERROR) == 0, "empty load");
  lls_rows_free(&rows);
  vt->close(b);
  printf("%s: kv_load on_conflict replace/skip/error ok\n", vt->name);
}

/* set() keeps what only export/import sees while the row is visible. */
static void test_set_keeps_metadata(void) {
  lls_backend *b = open_fresh();
  lls_kv_rec recs[2] = {
      rec("live", "v1", "{\"m\":1}", "id-live", 100, 100, 0),
      rec("dead", "v1", "{\"m\":2}", "id-dead", 100, 100, NOW - 1),
  };
  CHECK(load(b, recs, 2, LLS_CONFLICT_REPLACE) == 2, "seed");
  OK(vt->kv->set(b, S("live"), S("v2"), 0, NOW, &err));
  OK(vt->kv->set(b, S("dead"), S("v2"), 0, NOW, &err));
  lls_op op = {LLS_OP_SET, S("live"), S("v3"), 0};
  size_t deleted;
  OK(vt->kv->apply(b, &op, 1, NOW + 1, &deleted, &err));
  lls_rows rows = {0};
  int found;
  size_t i = find_row(b, &rows, "live", &found);
  CHECK(found && eq(lls_row_value(&rows, i), "v3") && eq(lls_row_meta(&rows, i), "{\"m\":1}") &&
            eq(lls_row_kv_id(&rows, i), "id-live") && rows.rows[i].created_at == 100 &&
            rows.rows[i].updated_at == NOW + 1,
        "%s: set kept metadata, id and created_at of a visible row", vt->name);
  i = find_row(b, &rows, "dead", &found);
  CHECK(found && lls_row_meta(&rows, i).len == 0 && lls_row_kv_id(&rows, i).len == 0 &&
            rows.rows[i].created_at == NOW,
        "%s: set over an expired row starts afresh", vt->name);
  lls_rows_free(&rows);
  vt->close(b);
  printf("%s: set() keeps metadata and kv_id of visible rows ok\n", vt->name);
}

/* ---- vectors ------------------------------------------------------------- */

typedef struct vrow {
  char id[32], scope[16], meta[64];
  float vec[4];
  int64_t created_at, updated_at, event_time, expires_at;
  int has_event_time;
} vrow;

typedef struct vgot {
  vrow r[64];
  size_t n;
  size_t stop_after; /* 0 = never */
} vgot;

static void copy_str(char *dst, size_t cap, lls_str s) {
  size_t n = s.len < cap - 1 ? s.len : cap - 1;
  memcpy(dst, s.ptr, n);
  dst[n] = '\0';
}

static int vsink(void *ud, const lls_vec_row *row, lls_error *e) {
  vgot *g = ud;
  if (g->stop_after && g->n == g->stop_after)
    return lls_error_set(e, LLS_EFORMAT, "stopped after %zu", g->n);
  CHECK(g->n < 64, "too many rows");
  vrow *r = &g->r[g->n++];
  copy_str(r->id, sizeof r->id, row->id);
  copy_str(r->scope, sizeof r->scope, row->scope);
  copy_str(r->meta, sizeof r->meta, row->metadata);
  CHECK(row->vector.len == sizeof r->vec, "vector bytes %zu", row->vector.len);
  memcpy(r->vec, row->vector.ptr, sizeof r->vec);
  r->created_at = row->created_at;
  r->updated_at = row->updated_at;
  r->event_time = row->event_time;
  r->has_event_time = row->has_event_time;
  r->expires_at = row->expires_at;
  return 0;
}

static int silent_sink(void *ud, const lls_vec_row *row, lls_error *e) {
  (void)ud, (void)row, (void)e;
  return 1;
}

static const char *vids(const vgot *g) {
  static char out[1024];
  size_t o = 0;
  out[0] = '\0';
  for (size_t i = 0; i < g->n && o < sizeof out - 40; i++)
    o += (size_t)snprintf(out + o, sizeof out - o, "%s%s", i ? " " : "", g->r[i].id);
  return out;
}

static void vec_dump(lls_backend *b, int64_t id, const char *after, size_t limit, vgot *g) {
  memset(g, 0, sizeof *g);
  OK(vt->xport->vec_dump(b, id, after ? S(after) : NONE, limit, vsink, g, &err));
}

#define EXPECT_VIDS(b, id, after, limit, want)                                               \
  do {                                                                                       \
    vgot g_;                                                                                 \
    vec_dump(b, id, after, limit, &g_);                                                      \
    CHECK(strcmp(vids(&g_), want) == 0, "%s: vec_dump(after %s, limit %d) = '%s', expected " \
          "'%s'", vt->name, after ? after : "-", (int)(limit), vids(&g_), want);             \
  } while (0)

static int64_t create(lls_backend *b, const char *name, int dim) {
  lls_coll_info info;
  memset(&info, 0, sizeof info);
  snprintf(info.name, sizeof info.name, "%s", name);
  info.dimension = dim;
  info.metric = LLS_METRIC_L2;
  info.m = 8;
  info.ef_construction = 100;
  info.ef_search = 40;
  OK(vt->vec->coll_create(b, &info, NOW, &err));
  return info.id;
}

static void put(lls_backend *b, int64_t coll, const char *id, float base, int64_t expires) {
  float v[4] = {base, base + 0.5f, -base, 1.0f / 3.0f};
  lls_vec_row r;
  memset(&r, 0, sizeof r);
  r.id = S(id);
  r.scope = S("user:1");
  r.vector.ptr = (const char *)v;
  r.vector.len = sizeof v;
  r.metadata = S("{\"k\":\"v\"}");
  r.created_at = 10;
  r.updated_at = 20;
  r.has_event_time = base > 2;
  r.event_time = 30;
  r.expires_at = expires;
  int64_t seq;
  OK(vt->vec->put(b, coll, &r, 1, 0, &seq, &err));
}

static void test_vectors(void) {
  lls_backend *b = open_fresh();
  int64_t docs = create(b, "docs", 4), other = create(b, "other", 4);
  const char *ids[] = {"b", "a", "c", "aa", "\xc3\xa9t\xc3\xa9", "B", "a b"};
  for (int i = 0; i < 7; i++) put(b, docs, ids[i], (float)i, i == 2 ? NOW - 1 : 0);
  put(b, other, "a0", 1, 0);
  put(b, other, "zz", 1, 0);

  /* id order (bytes), expired rows included, other collections left out */
  EXPECT_VIDS(b, docs, NULL, 0, "B a a b aa b c \xc3\xa9t\xc3\xa9");
  EXPECT_VIDS(b, docs, NULL, 2, "B a");
  EXPECT_VIDS(b, docs, "a", 2, "a b aa");
  EXPECT_VIDS(b, docs, "aa", 10, "b c \xc3\xa9t\xc3\xa9");
  EXPECT_VIDS(b, docs, "ab", 10, "b c \xc3\xa9t\xc3\xa9");
  EXPECT_VIDS(b, docs, "\xc3\xa9t\xc3\xa9", 10, "");
  EXPECT_VIDS(b, docs, "", 1, "B");
  EXPECT_VIDS(b, other, NULL, 0, "a0 zz");

  /* every field comes back */
  vgot g;
  vec_dump(b, docs, "b", 1, &g);
  CHECK(g.n == 1 && strcmp(g.r[0].id, "c") == 0, "one row");
  float want[4] = {2, 2.5f, -2, 1.0f / 3.0f};
  CHECK(memcmp(g.r[0].vec, want, sizeof want) == 0, "%s: vector bits", vt->name);
  CHECK(strcmp(g.r[0].scope, "user:1") == 0 && strcmp(g.r[0].meta, "{\"k\":\"v\"}") == 0,
        "%s: scope/metadata", vt->name);
  CHECK(g.r[0].created_at == 10 && g.r[0].updated_at == 20 && g.r[0].expires_at == NOW - 1 &&
            !g.r[0].has_event_time,
        "%s: c times", vt->name);
  vec_dump(b, docs, "c", 1, &g);
  CHECK(g.n == 1 && g.r[0].has_event_time && g.r[0].event_time == 30, "%s: event time",
        vt->name);

  /* a sink that stops the stream */
  memset(&g, 0, sizeof g);
  g.stop_after = 2;
  FAILS(vt->xport->vec_dump(b, docs, NONE, 0, vsink, &g, &err), LLS_EFORMAT, "stopped after 2");
  FAILS(vt->xport->vec_dump(b, docs, NONE, 0, silent_sink, NULL, &err), LLS_EIO, "stopped");

  /* vec_has */
  lls_str ask[5] = {S("a"), S("zz"), S("c"), S("A"), S("\xc3\xa9t\xc3\xa9")};
  unsigned char present[5];
  memset(present, 7, sizeof present);
  OK(vt->xport->vec_has(b, docs, ask, 5, present, &err));
  CHECK(present[0] == 1 && present[1] == 0 && present[2] == 1 && present[3] == 0 &&
            present[4] == 1,
        "%s: vec_has %d%d%d%d%d", vt->name, present[0], present[1], present[2], present[3],
        present[4]);
  OK(vt->xport->vec_has(b, other, ask, 2, present, &err));
  CHECK(present[0] == 0 && present[1] == 1, "%s: vec_has other", vt->name);
  OK(vt->xport->vec_has(b, docs, NULL, 0, present, &err));

  /* deleted rows are gone; unknown collections are not found */
  size_t deleted;
  int64_t seq;
  lls_str del[1] = {S("aa")};
  OK(vt->vec->del(b, docs, del, 1, &deleted, &seq, &err));
  EXPECT_VIDS(b, docs, "a b", 10, "b c \xc3\xa9t\xc3\xa9");
  OK(vt->xport->vec_has(b, docs, del, 1, present, &err));
  CHECK(present[0] == 0, "deleted row present");
  FAILS(vt->xport->vec_dump(b, 999, NONE, 0, vsink, &g, &err), LLS_ENOTFOUND, "999");
  FAILS(vt->xport->vec_has(b, 999, ask, 1, present, &err), LLS_ENOTFOUND, "999");
  int dropped;
  OK(vt->vec->coll_drop(b, "other", &dropped, &err));
  FAILS(vt->xport->vec_dump(b, other, NONE, 0, vsink, &g, &err), LLS_ENOTFOUND, "");
  vt->close(b);
  printf("%s: vec_dump/vec_has ok\n", vt->name);
}

/* ---- sections ------------------------------------------------------------ */

/* "section:ord=json" per row, joined by spaces. */
static const char *dump_sections(lls_backend *b, const char *after, int64_t after_ord,
                                 size_t limit) {
  static char out[4096];
  lls_rows rows = {0};
  OK(vt->xport->sec_dump(b, after ? S(after) : NONE, after_ord, limit, &rows, &err));
  size_t o = 0;
  out[0] = '\0';
  for (size_t i = 0; i < rows.count && o < sizeof out - 200; i++) {
    lls_str k = lls_row_key(&rows, i), v = lls_row_value(&rows, i);
    o += (size_t)snprintf(out + o, sizeof out - o, "%s%.*s:%lld=%.*s", i ? " " : "",
                          (int)k.len, k.ptr, (long long)rows.rows[i].created_at, (int)v.len,
                          v.ptr);
  }
  lls_rows_free(&rows);
  return out;
}

#define EXPECT_SECTIONS(b, after, ord, limit, want)                                          \
  do {                                                                                       \
    const char *s_ = dump_sections(b, after, ord, limit);                                    \
    CHECK(strcmp(s_, want) == 0, "%s: sec_dump(%s, %lld, %d) = '%s', expected '%s'",         \
          vt->name, after ? after : "-", (long long)(ord), (int)(limit), s_, want);          \
  } while (0)

static void put_sections(lls_backend *b, const char *const *spec, size_t n) {
  /* spec: section, ord, json triples (ord as text) */
  lls_str secs[16], json[16];
  int64_t ords[16];
  CHECK(n <= 16, "too many");
  for (size_t i = 0; i < n; i++) {
    secs[i] = S(spec[3 * i]);
    ords[i] = strtoll(spec[3 * i + 1], NULL, 10);
    json[i] = S(spec[3 * i + 2]);
  }
  OK(vt->xport->sec_put(b, secs, ords, json, n, &err));
}

static void test_sections(void) {
  lls_backend *b = open_fresh();
  EXPECT_SECTIONS(b, NULL, 0, 0, "");
  static const char *const first[] = {
      "sessions", "10", "{\"id\":10}",
      "sessions", "0", "{\"id\":0}",
      "sessions", "2", "{ \"id\" : 2 }", /* bytes are kept as given */
      "knowledge_graph", "-1", "{\"entities\":[],\"relationships\":[]}",
      "ab", "0", "\"ab0\"",
      "a", "1", "1.5",
      "a", "-1", "null",
      "a", "9000000000000", "true",
  };
  put_sections(b, first, 8);
  const char *all = "a:-1=null a:1=1.5 a:9000000000000=true ab:0=\"ab0\" "
                    "knowledge_graph:-1={\"entities\":[],\"relationships\":[]} "
                    "sessions:0={\"id\":0} sessions:2={ \"id\" : 2 } sessions:10={\"id\":10}";
  EXPECT_SECTIONS(b, NULL, 0, 0, all);
  EXPECT_SECTIONS(b, NULL, 0, 2, "a:-1=null a:1=1.5");
  EXPECT_SECTIONS(b, "a", 1, 2, "a:9000000000000=true ab:0=\"ab0\"");
  EXPECT_SECTIONS(b, "a", -2, 1, "a:-1=null");
  EXPECT_SECTIONS(b, "a", 9000000000000LL, 1, "ab:0=\"ab0\"");
  EXPECT_SECTIONS(b, "sessions", 0, 0, "sessions:2={ \"id\" : 2 } sessions:10={\"id\":10}");
  EXPECT_SECTIONS(b, "sessions", 10, 0, "");
  EXPECT_SECTIONS(b, "b", -100, 1,
                  "knowledge_graph:-1={\"entities\":[],\"relationships\":[]}");

  /* walking every page gives every record once, in order */
  char walked[4096] = "", last[64] = "";
  int64_t last_ord = 0;
  int have_last = 0;
  for (;;) {
    lls_rows rows = {0};
    OK(vt->xport->sec_dump(b, have_last ? S(last) : NONE, last_ord, 3, &rows, &err));
    if (rows.count == 0) {
      lls_rows_free(&rows);
      break;
    }
    for (size_t i = 0; i < rows.count; i++) {
      lls_str k = lls_row_key(&rows, i), v = lls_row_value(&rows, i);
      size_t o = strlen(walked);
      snprintf(walked + o, sizeof walked - o, "%s%.*s:%lld=%.*s", o ? " " : "", (int)k.len,
               k.ptr, (long long)rows.rows[i].created_at, (int)v.len, v.ptr);
    }
    lls_str k = lls_row_key(&rows, rows.count - 1);
    copy_str(last, sizeof last, k);
    last_ord = rows.rows[rows.count - 1].created_at;
    have_last = 1;
    lls_rows_free(&rows);
  }
  CHECK(strcmp(walked, all) == 0, "%s: paged sections '%s'", vt->name, walked);

  /* same (section, ord) replaces */
  static const char *const again[] = {"sessions", "2", "{\"id\":2,\"v\":2}"};
  put_sections(b, again, 1);
  EXPECT_SECTIONS(b, "sessions", 0, 1, "sessions:2={\"id\":2,\"v\":2}");

  /* clearing one section leaves the others (and "ab" is not "a") */
  OK(vt->xport->sec_clear(b, S("a"), &err));
  EXPECT_SECTIONS(b, NULL, 0, 2, "ab:0=\"ab0\" knowledge_graph:-1={\"entities\":[],"
                                 "\"relationships\":[]}");
  OK(vt->xport->sec_clear(b, S("nope"), &err));
  OK(vt->xport->sec_clear(b, S(""), &err));
  EXPECT_SECTIONS(b, NULL, 0, 0, "");

  /* a NUL in a section name is refused, nothing stored */
  lls_str secs[2] = {S("ok"), {"bad\0name", 8}};
  int64_t ords[2] = {0, 0};
  lls_str json[2] = {S("1"), S("2")};
  FAILS(vt->xport->sec_put(b, secs, ords, json, 2, &err), LLS_EINVALID, "NUL");
  EXPECT_SECTIONS(b, NULL, 0, 0, "");
  OK(vt->xport->sec_put(b, secs, ords, json, 0, &err));

  /* collections and key-value rows do not show up as sections */
  create(b, "S", 4);
  lls_kv_rec r[1] = {rec("Sx", "v", NULL, NULL, 1, 1, 0)};
  load(b, r, 1, LLS_CONFLICT_REPLACE);
  EXPECT_SECTIONS(b, NULL, 0, 0, "");
  vt->close(b);
  printf("%s: sec_put/sec_dump/sec_clear ok\n", vt->name);
}

/* ---- transactions -------------------------------------------------------- */

static void test_transactions(void) {
  lls_backend *b = open_fresh();
  lls_kv_rec base[1] = {rec("keep", "1", "{}", "id-keep", 1, 1, 0)};
  CHECK(load(b, base, 1, LLS_CONFLICT_REPLACE) == 1, "base");
  static const char *const s0[] = {"agent_state", "0", "{\"a\":0}"};
  put_sections(b, s0, 1);

  /* rollback undoes kv_load (inserts and replacements) and sec_put */
  OK(vt->begin(b, 0, &err));
  lls_kv_rec recs[2] = {rec("new", "2", NULL, NULL, 1, 1, 0),
                        rec("keep", "changed", "[]", "id-other", 9, 9, 0)};
  CHECK(load(b, recs, 2, LLS_CONFLICT_REPLACE) == 2, "in tx");
  static const char *const s1[] = {"agent_state", "0", "{\"a\":\"changed\"}",
                                   "agent_state", "1", "{\"a\":1}"};
  put_sections(b, s1, 2);
  OK(vt->xport->sec_clear(b, S("agent_state"), &err));
  put_sections(b, s1, 1);
  EXPECT_KEYS(b, NULL, 0, NOW, "keep new");
  OK(vt->rollback(b, 0, &err));
  EXPECT_KEYS(b, NULL, 0, NOW, "keep");
  EXPECT_VALUE(b, "keep", "1");
  lls_rows rows = {0};
  int found;
  size_t i = find_row(b, &rows, "keep", &found);
  CHECK(found && eq(lls_row_meta(&rows, i), "{}") && eq(lls_row_kv_id(&rows, i), "id-keep"),
        "%s: rollback restored metadata and id", vt->name);
  EXPECT_SECTIONS(b, NULL, 0, 0, "agent_state:0={\"a\":0}");

  /* savepoints: the inner rollback undoes only its part */
  OK(vt->begin(b, 0, &err));
  lls_kv_rec outer[1] = {rec("outer", "o", NULL, NULL, 1, 1, 0)};
  load(b, outer, 1, LLS_CONFLICT_REPLACE);
  OK(vt->begin(b, 1, &err));
  lls_kv_rec inner[1] = {rec("inner", "i", NULL, NULL, 1, 1, 0)};
  load(b, inner, 1, LLS_CONFLICT_REPLACE);
  static const char *const s2[] = {"sessions", "0", "{}"};
  put_sections(b, s2, 1);
  OK(vt->rollback(b, 1, &err));
  /* a failed error-mode load inside the transaction leaves the rest alone */
  lls_kv_rec clash[2] = {rec("z1", "1", NULL, NULL, 1, 1, 0),
                         rec("outer", "x", NULL, NULL, 1, 1, 0)};
  size_t written;
  FAILS(vt->xport->kv_load(b, clash, 2, LLS_CONFLICT_ERROR, NOW, &written, &err), LLS_ECONFLICT,
        "key 'outer' already exists");
  OK(vt->commit(b, 0, &err));
  EXPECT_KEYS(b, NULL, 0, NOW, "keep outer");
  EXPECT_SECTIONS(b, NULL, 0, 0, "agent_state:0={\"a\":0}");

  /* committed work stays */
  OK(vt->begin(b, 0, &err));
  load(b, inner, 1, LLS_CONFLICT_REPLACE);
  put_sections(b, s2, 1);
  OK(vt->commit(b, 0, &err));
  EXPECT_KEYS(b, NULL, 0, NOW, "inner keep outer");
  EXPECT_SECTIONS(b, NULL, 0, 0, "agent_state:0={\"a\":0} sessions:0={}");
  lls_rows_free(&rows);
  vt->close(b);
  printf("%s: transactions cover kv_load and sections ok\n", vt->name);
}

static void test_check_ok(void) {
  lls_backend *b = open_fresh();
  lls_kv_rec r[1] = {rec("k", "v", NULL, NULL, 1, 1, 0)};
  load(b, r, 1, LLS_CONFLICT_REPLACE);
  lls_rows problems = {0};
  OK(vt->check(b, &problems, &err));
  CHECK(problems.count == 0, "%s: %zu problems on a healthy store", vt->name, problems.count);
  lls_rows_free(&problems);
  vt->close(b);
  printf("%s: check on a healthy store ok\n", vt->name);
}

/* ---- SQLite only --------------------------------------------------------- */

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

/* Migration 3 is recorded, adds its column and table, and can run again
 * over a file that already has them (its bookkeeping row lost). */
static void test_schema(void) {
  char path[600];
  db_path(path, sizeof path, "schema.db");
  lls_backend *b = open_at(path, "acme");
  lls_rows rows = {0};
  OK(vt->migrations(b, &rows, &err));
  CHECK(rows.count == 13 && eq(lls_row_key(&rows, 2), "003_export"), "migration 3 listed");
  lls_rows_free(&rows);
  lls_kv_rec r[1] = {rec("k", "v", "{\"m\":1}", "id-k", 1, 2, 0)};
  load(b, r, 1, LLS_CONFLICT_REPLACE);
  static const char *const s[] = {"sessions", "-1", "{}"};
  put_sections(b, s, 1);
  vt->close(b);
  CHECK(sql_int(path, "SELECT count(*) FROM kv_store WHERE kv_id = 'id-k'"
                      " AND metadata = '{\"m\":1}' AND tenant_id = 'acme'") == 1,
        "kv_id and metadata columns");
  CHECK(sql_int(path, "SELECT count(*) FROM export_sections WHERE tenant_id = 'acme'"
                      " AND section = 'sessions' AND ord = -1 AND record = '{}'") == 1,
        "export_sections row");
  CHECK(sql_int(path, "SELECT count(*) FROM pragma_table_info('export_sections')") == 4,
        "export_sections columns");

  /* Migrations 3 and 4 forgotten: both run again over what they made. */
  sql_exec(path, "DELETE FROM llmspell_migrations WHERE version >= 3");
  b = open_at(path, "acme");
  vt->close(b);
  CHECK(sql_int(path, "SELECT count(*) FROM llmspell_migrations WHERE version = 3"
                      " AND name = 'export'") == 1,
        "migration 3 re-run and recorded");
  CHECK(sql_int(path, "SELECT count(*) FROM llmspell_migrations WHERE version = 4"
                      " AND name = 'checksums'") == 1,
        "migration 4 re-run and recorded");
  CHECK(sql_int(path, "SELECT count(*) FROM kv_store WHERE kv_id = 'id-k'") == 1,
        "re-running migration 3 kept the data");

  /* a version-2 file (no kv_id column, no export_sections, no checksums,
   * no application_id) is upgraded */
  sql_exec(path, "DELETE FROM llmspell_migrations WHERE version >= 3;"
                 " DROP TABLE export_sections; ALTER TABLE kv_store DROP COLUMN kv_id;"
                 " ALTER TABLE kv_store DROP COLUMN crc;"
                 " ALTER TABLE vector_embeddings DROP COLUMN crc; PRAGMA application_id = 0;");
  b = open_at(path, "acme");
  lls_str v;
  int found;
  OK(vt->kv->get(b, S("k"), NOW, &v, &found, &err));
  CHECK(found && eq(v, "v"), "row kept through the upgrade");
  OK(vt->xport->kv_dump(b, NONE, NOW, 0, &rows, &err));
  CHECK(rows.count == 1 && lls_row_kv_id(&rows, 0).len == 0 &&
            eq(lls_row_meta(&rows, 0), "{\"m\":1}"),
        "upgraded row: metadata kept, no kv_id");
  lls_rows_free(&rows);
  vt->close(b);
  printf("%s: migration 3 (columns, table, idempotent, upgrade) ok\n", vt->name);
}

static void test_tenants(void) {
  char path[600];
  db_path(path, sizeof path, "tenants.db");
  lls_backend *a = open_at(path, "t1"), *b = open_at(path, "t2");
  lls_kv_rec r[1] = {rec("k", "one", "{}", "id", 1, 1, 0)};
  load(a, r, 1, LLS_CONFLICT_REPLACE);
  static const char *const s[] = {"sessions", "0", "{\"t\":1}"};
  put_sections(a, s, 1);
  EXPECT_KEYS(b, NULL, 0, NOW, "");
  EXPECT_SECTIONS(b, NULL, 0, 0, "");
  /* the same key in another tenant is no conflict */
  CHECK(load(b, r, 1, LLS_CONFLICT_ERROR) == 1, "other tenant's key");
  OK(vt->xport->sec_clear(b, S(""), &err));
  EXPECT_SECTIONS(a, NULL, 0, 0, "sessions:0={\"t\":1}");
  int64_t coll = create(a, "docs", 4);
  put(a, coll, "x", 1, 0);
  vgot g;
  FAILS(vt->xport->vec_dump(b, coll, NONE, 0, vsink, &g, &err), LLS_ENOTFOUND, "");
  unsigned char present[1];
  lls_str ids[1] = {S("x")};
  FAILS(vt->xport->vec_has(b, coll, ids, 1, present, &err), LLS_ENOTFOUND, "");
  vt->close(a);
  vt->close(b);
  printf("%s: tenants see only their own records ok\n", vt->name);
}

static void copy_file(const char *from, const char *to) {
  FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
  CHECK(in != NULL && out != NULL, "copy %s -> %s", from, to);
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, in)) > 0) CHECK(fwrite(buf, 1, n, out) == n, "write");
  fclose(in);
  CHECK(fclose(out) == 0, "close copy");
}

/* A damaged page of a copy is reported; the original stays healthy. */
static void test_corruption(void) {
  char path[600], bad[600];
  db_path(path, sizeof path, "good.db");
  db_path(bad, sizeof bad, "bad.db");
  lls_backend *b = open_at(path, "default");
  char value[200];
  memset(value, 'v', sizeof value - 1);
  value[sizeof value - 1] = '\0';
  lls_kv_rec recs[100];
  char keys[100][32];
  for (int batch = 0; batch < 20; batch++) {
    for (int i = 0; i < 100; i++) {
      snprintf(keys[i], sizeof keys[i], "key-%05d", batch * 100 + i);
      recs[i] = rec(keys[i], value, "{\"x\":1}", NULL, 1, 1, 0);
    }
    load(b, recs, 100, LLS_CONFLICT_REPLACE);
  }
  lls_rows problems = {0};
  OK(vt->check(b, &problems, &err));
  CHECK(problems.count == 0, "good file: %zu problems", problems.count);
  vt->close(b); /* checkpoints the WAL into the file */
  CHECK(access(bad, F_OK) != 0 || unlink(bad) == 0, "unlink");
  copy_file(path, bad);

  long long pages = sql_int(bad, "PRAGMA page_count");
  long long psize = sql_int(bad, "PRAGMA page_size");
  CHECK(pages > 20, "%lld pages", pages);
  /* garbage over a page near the end (key-value leaves, written last) */
  FILE *f = fopen(bad, "r+b");
  CHECK(f != NULL, "open copy");
  CHECK(fseek(f, (long)((pages - 3) * psize), SEEK_SET) == 0, "seek");
  for (long long i = 0; i < psize; i++) fputc((int)((i * 131 + 7) & 0xff), f);
  CHECK(fclose(f) == 0, "close");

  b = open_at(bad, "default");
  OK(vt->check(b, &problems, &err));
  CHECK(problems.count >= 1, "corrupted copy: no problem reported");
  lls_str where = lls_row_key(&problems, 0), what = lls_row_value(&problems, 0);
  CHECK(eq(where, "integrity_check") && what.len > 0, "problem row '%.*s': '%.*s'",
        (int)where.len, where.ptr, (int)what.len, what.ptr);
  printf("  first problem: %.*s\n", (int)what.len, what.ptr);
  lls_rows_free(&problems);
  vt->close(b);

  b = open_at(path, "default");
  OK(vt->check(b, &problems, &err));
  CHECK(problems.count == 0, "original: %zu problems", problems.count);
  lls_rows_free(&problems);
  vt->close(b);
  printf("%s: check reports a corrupted page ok\n", vt->name);
}

int main(int argc, char **argv) {
  if (argc > 1) {
    snprintf(g_dir, sizeof g_dir, "%s", argv[1]);
  } else {
    snprintf(g_dir, sizeof g_dir, "/tmp/lls-export-slots-XXXXXX");
    CHECK(mkdtemp(g_dir) != NULL, "mkdtemp");
  }
  const lls_backend_vt *vts[] = {&lls_memory_vt, &lls_sqlite_vt};
  for (size_t i = 0; i < sizeof vts / sizeof vts[0]; i++) {
    vt = vts[i];
    test_roundtrip();
    test_paging();
    test_expired();
    test_conflicts();
    test_set_keeps_metadata();
    test_vectors();
    test_sections();
    test_transactions();
    test_check_ok();
  }
  vt = &lls_sqlite_vt;
  test_schema();
  test_tenants();
  test_corruption();
  if (argc <= 1) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
  }
  printf("ok: %d checks passed\n", g_checks);
  return 0;
}
