/*
 * export.c -- storage.exporter(db): writes a store as the versioned JSON
 * document of DESIGN.md's "Export format" (version "1.0", the field names
 * of rs-llmspell's ExportFormat), and the helpers import.c shares
 * (xport.h).
 *
 * The document is streamed: yajl's generator prints into a 256 KiB buffer
 * that is written out whenever it fills, and the data is read a page at a
 * time (vt->xport->kv_dump, vt->xport->vec_dump, vt->xport->sec_dump), so memory stays bounded
 * whatever the store holds. Everything is read inside one transaction (a
 * savepoint inside db:transaction), so the file is one consistent view.
 *
 * One addition to rs-llmspell's layout: data.vector_collections lists every
 * exported collection with its parameters, so empty collections survive a
 * roundtrip (rs-llmspell ignores keys it does not know).
 *
 * The output is deterministic -- keys in byte order, collections grouped
 * by dimension ascending and then by name, rows by id, passthrough
 * sections by name, metadata re-encoded canonically (value.h) -- so two
 * exports of the same data differ only in exported_at.
 *
 * Lua errors: every C resource of a run lives in a userdata whose __gc
 * frees it, and the run itself happens under lua_pcall, so a progress
 * function that raises (or any other error) leaves nothing behind: the
 * transaction is ended, a partial file is removed, the error propagates.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/evp.h>
#include <yajl/yajl_gen.h>

#include "base/clock.h"
#include "lua/args.h"
#include "lua/error.h"
#include "lua/export.h"
#include "lua/store.h"
#include "value/json.h"
#include "base/utf8.h"
#include "base/hashidx.h"
#include "lua/xport.h"

#define LLS_EXPORTER_MT "llmspell.storage.Exporter"
#define LLS_EXPORT_JOB_MT "llmspell.storage.ExportJob"
#define PAGE 1000               /* rows per backend read; also the progress step */
#define FLUSH_AT (256 * 1024)   /* file output is written in pieces of this size */
#define B64_CHUNK (48 * 1024)   /* multiple of 3: EVP_EncodeBlock takes an int */
#define B64D_CHUNK (64 * 1024)  /* multiple of 4 */

/* ================================================ shared helpers (xport.h) */

int lls_xstats_add(lls_xstats *s, lls_str name, int64_t n) {
  /* sections arrive grouped, so the last one is almost always the hit */
  for (size_t i = s->nsections; i-- > 0;) {
    lls_xsection *x = &s->sections[i];
    if (x->len == name.len && memcmp(x->name, name.ptr, name.len) == 0) {
      x->count += n;
      return 0;
    }
  }
  if (s->nsections == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 8;
    lls_xsection *p = realloc(s->sections, cap * sizeof *p);
    if (p == NULL) return -1;
    s->sections = p;
    s->cap = cap;
  }
  char *copy = malloc(name.len + 1);
  if (copy == NULL) return -1;
  memcpy(copy, name.ptr, name.len);
  copy[name.len] = '\0';
  s->sections[s->nsections++] = (lls_xsection){copy, name.len, n};
  return 0;
}

static int str_is(lls_str s, const char *lit) {
  return s.len == strlen(lit) && memcmp(s.ptr, lit, s.len) == 0;
}

static int64_t array_len(const lls_value *obj, const char *key) {
  const lls_value *a = lls_value_get(obj, key, strlen(key));
  return a != NULL && a->type == LLS_VARRAY ? (int64_t)a->u.a.n : 0;
}

int64_t lls_xstats_single(lls_xstats *s, lls_str name, const lls_value *v) {
  if (v == NULL || v->type != LLS_VOBJECT) return 1;
  if (str_is(name, "knowledge_graph")) {
    int64_t e = array_len(v, "entities"), r = array_len(v, "relationships");
    s->entities += e;
    s->relationships += r;
    return e + r;
  }
  if (str_is(name, "artifacts")) {
    int64_t c = array_len(v, "content"), a = array_len(v, "artifacts");
    s->artifact_content += c;
    s->artifacts += a;
    return c + a;
  }
  return 1;
}

void lls_xstats_free(lls_xstats *s) {
  for (size_t i = 0; i < s->nsections; i++) free(s->sections[i].name);
  free(s->sections);
  memset(s, 0, sizeof *s);
}

/* rs-llmspell's ImportStats names for the array sections it knows. */
static const char *const STAT_NAMES[][2] = {
    {"agent_state", "agent_states"}, {"workflow_states", "workflow_states"},
    {"sessions", "sessions"},        {"procedural_memory", "patterns"},
    {"event_log", "events"},         {"hook_history", "hooks"},
};

static void set_int(lua_State *L, const char *name, int64_t v) {
  lua_pushinteger(L, (lua_Integer)v);
  lua_setfield(L, -2, name);
}

void lls_xstats_push(lua_State *L, const lls_xstats *s) {
  size_t nnamed = sizeof STAT_NAMES / sizeof STAT_NAMES[0];
  int64_t named[sizeof STAT_NAMES / sizeof STAT_NAMES[0]] = {0};
  int64_t total = s->kv_entries + s->vectors;
  lua_createtable(L, 0, 24);
  lua_createtable(L, 0, (int)s->nsections);
  for (size_t i = 0; i < s->nsections; i++) {
    const lls_xsection *x = &s->sections[i];
    lls_str nm = {x->name, x->len};
    total += x->count;
    for (size_t k = 0; k < nnamed; k++)
      if (str_is(nm, STAT_NAMES[k][0])) named[k] += x->count;
    lua_pushlstring(L, x->name, x->len);
    lua_pushinteger(L, (lua_Integer)x->count);
    lua_rawset(L, -3);
  }
  lua_setfield(L, -2, "sections");
  set_int(L, "kv_entries", s->kv_entries);
  set_int(L, "vectors", s->vectors);
  set_int(L, "collections", s->collections);
  set_int(L, "skipped", s->skipped);
  for (size_t k = 0; k < nnamed; k++) set_int(L, STAT_NAMES[k][1], named[k]);
  set_int(L, "entities", s->entities);
  set_int(L, "relationships", s->relationships);
  set_int(L, "artifact_content", s->artifact_content);
  set_int(L, "artifacts", s->artifacts);
  set_int(L, "total", total);
  set_int(L, "bytes", s->bytes);
  lua_pushnumber(L, s->seconds);
  lua_setfield(L, -2, "seconds");
}

int lls_b64_quoted(lls_buf *out, const void *p, size_t n) {
  size_t need = 4 * ((n + 2) / 3) + 3; /* quotes and the NUL EVP writes */
  if (lls_buf_reserve(out, need) != 0) return -1;
  char *w = out->data + out->len;
  *w++ = '"';
  const unsigned char *in = p;
  while (n > 0) {
    size_t take = n < B64_CHUNK ? n : B64_CHUNK;
    w += EVP_EncodeBlock((unsigned char *)w, in, (int)take);
    in += take;
    n -= take;
  }
  *w++ = '"';
  out->len = (size_t)(w - out->data);
  return 0;
}

static int b64_char(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '+' || c == '/';
}

int lls_b64_decode(lls_buf *out, const char *t, size_t n) {
  /* EVP_DecodeBlock skips blanks and does not say how much padding it
   * decoded, so the text is checked here first: alphabet characters,
   * then at most two '=' that complete the last group. */
  size_t body = n;
  while (body > 0 && t[body - 1] == '=') body--;
  size_t pad = n - body;
  if (pad > 2 || (pad > 0 && n % 4 != 0) || body % 4 == 1) return -1;
  for (size_t i = 0; i < body; i++)
    if (!b64_char((unsigned char)t[i])) return -1;
  size_t tail = body % 4; /* 0, 2 or 3 characters in an unpadded last group */
  size_t full = body - tail;
  size_t bytes = full / 4 * 3 + (tail ? tail - 1 : 0);
  if (lls_buf_reserve(out, bytes + 3) != 0) return -2;
  unsigned char *w = (unsigned char *)out->data + out->len;
  for (size_t off = 0; off < full; off += B64D_CHUNK) {
    size_t take = full - off < B64D_CHUNK ? full - off : B64D_CHUNK;
    if (EVP_DecodeBlock(w, (const unsigned char *)t + off, (int)take) < 0) return -1;
    w += take / 4 * 3;
  }
  if (tail) {
    char last[4] = {'A', 'A', '=', '='};
    memcpy(last, t + full, tail);
    unsigned char three[4];
    if (EVP_DecodeBlock(three, (const unsigned char *)last, 4) < 0) return -1;
    memcpy(w, three, tail - 1);
  }
  out->len += bytes;
  return 0;
}

int lls_xcoll_name_ok(const char *s, size_t len) {
  if (len == 0 || len > LLS_XPORT_MAX_NAME) return 0;
  for (size_t i = 0; i < len; i++) {
    char ch = s[i];
    int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
             ch == '_' || ch == '-' || ch == '.' || ch == ':' || ch == '/';
    if (!ok) return 0;
  }
  return 1;
}

double lls_xclock(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void lls_xprogress(lua_State *L, int fn, int64_t done, int64_t total, const char *phase,
                   int with_bytes, int64_t bytes, int64_t bytes_total) {
  lua_pushvalue(L, fn);
  lua_pushinteger(L, (lua_Integer)done);
  if (total >= 0) lua_pushinteger(L, (lua_Integer)total);
  else lua_pushnil(L);
  lua_pushstring(L, phase);
  if (with_bytes) {
    lua_pushinteger(L, (lua_Integer)bytes);
    if (bytes_total >= 0) lua_pushinteger(L, (lua_Integer)bytes_total);
    else lua_pushnil(L);
  }
  lua_call(L, with_bytes ? 5 : 3, 0);
}

/* ========================================================== the export */

/* One run of to_file / to_string: everything it allocates. */
typedef struct xjob {
  yajl_gen g;
  yajl_gen_status gst; /* first generator failure */
  FILE *f;             /* to_file: the output */
  char *path;          /* to_file: removed when the run fails */
  int remove_on_fail;  /* the path is a regular file this run created */
  lls_buf out;         /* to_string: the document; to_file: unwritten output */
  int werr;            /* errno of the first failed write */
  int oom;
  lls_rows rows;       /* the current page */
  lls_buf rec;         /* scratch: base64, canonical JSON, ids */
  lls_buf after;       /* resume point of the page loop */
  lls_coll_info *colls;
  size_t ncolls, ccap;
  lls_xstats st;
  /* progress */
  int progress;        /* stack index of the function, 0 = none */
  int64_t done, total, reported;
  const char *tenant;
} xjob;

static void job_release(xjob *j) {
  if (j->g != NULL) yajl_gen_free(j->g);
  j->g = NULL;
  if (j->f != NULL) fclose(j->f);
  j->f = NULL;
  if (j->path != NULL && j->remove_on_fail) remove(j->path);
  free(j->path);
  j->path = NULL;
  lls_buf_free(&j->out);
  lls_buf_free(&j->rec);
  lls_buf_free(&j->after);
  lls_rows_free(&j->rows);
  free(j->colls);
  j->colls = NULL;
  lls_xstats_free(&j->st);
}

static int job_gc(lua_State *L) {
  job_release(luaL_checkudata(L, 1, LLS_EXPORT_JOB_MT));
  return 0;
}

static void flush_out(xjob *j) {
  if (j->f == NULL || j->out.len == 0 || j->werr) return;
  if (fwrite(j->out.data, 1, j->out.len, j->f) != j->out.len) j->werr = errno ? errno : EIO;
  j->out.len = 0;
}

/* yajl's print callback: into the buffer, written out as it fills. */
static void print_cb(void *ctx, const char *s, size_t n) {
  xjob *j = ctx;
  if (j->oom || j->werr) return;
  if (lls_buf_append(&j->out, s, n) != 0) {
    j->oom = 1;
    return;
  }
  j->st.bytes += (int64_t)n;
  if (j->f != NULL && j->out.len >= FLUSH_AT) flush_out(j);
}

static void gs(xjob *j, yajl_gen_status st) {
  if (st != yajl_gen_status_ok && j->gst == yajl_gen_status_ok) j->gst = st;
}

static void g_key(xjob *j, const char *k) {
  gs(j, yajl_gen_string(j->g, (const unsigned char *)k, strlen(k)));
}

static void g_str(xjob *j, const char *p, size_t n) {
  gs(j, yajl_gen_string(j->g, (const unsigned char *)p, n));
}

static void g_cstr(xjob *j, const char *s) { g_key(j, s); }

static void g_int(xjob *j, int64_t v) { gs(j, yajl_gen_integer(j->g, (long long)v)); }

/* Writes p[0..n), already JSON text, as one value: yajl_gen_number
 * prints its argument as given, with the separators the position needs. */
static void g_raw(xjob *j, const char *p, size_t n) { gs(j, yajl_gen_number(j->g, p, n)); }

/* The state of the job as an error (0 when fine). */
static int job_error(xjob *j, lls_error *err) {
  if (j->oom) return lls_error_set(err, LLS_EIO, "out of memory");
  if (j->werr)
    return lls_error_set(err, LLS_EIO, "cannot write '%s': %s", j->path ? j->path : "?",
                         strerror(j->werr));
  if (j->gst != yajl_gen_status_ok)
    return lls_error_set(err, LLS_EFORMAT, "JSON generator failed (status %d): a stored "
                         "string is not valid UTF-8", (int)j->gst);
  return 0;
}

static void check_job(lua_State *L, xjob *j) {
  lls_error err;
  if (job_error(j, &err) != 0) lls_raise(L, &err, NULL);
}

/* Re-encodes stored JSON text canonically into j->rec and writes it; the
 * decoded value goes to *keep when asked (the caller frees it). Fails
 * with a message naming `what`. */
static int g_json(xjob *j, lls_str text, const char *what, lls_value **keep, lls_error *err) {
  char msg[300];
  lls_value *v = lls_json_decode(text.ptr, text.len, msg, sizeof msg);
  if (v == NULL)
    return lls_error_set(err, LLS_EFORMAT, "%s: stored JSON is invalid: %s", what, msg);
  j->rec.len = 0;
  int rc = lls_json_encode(v, &j->rec, msg, sizeof msg);
  if (rc == 0) g_raw(j, j->rec.data, j->rec.len);
  if (keep != NULL && rc == 0)
    *keep = v;
  else
    lls_value_free(v);
  if (rc != 0) return lls_error_set(err, LLS_EFORMAT, "%s: %s", what, msg);
  return 0;
}

static void g_b64(xjob *j, lls_str bytes) {
  j->rec.len = 0;
  if (lls_b64_quoted(&j->rec, bytes.ptr, bytes.len) != 0) {
    j->oom = 1;
    return;
  }
  g_raw(j, j->rec.data, j->rec.len);
}

/* A stable id for a row stored without one: two hashes of (tenant, key)
 * as an RFC 9562 version 8 UUID, so exporting the same row twice (or
 * after a roundtrip that stored it) gives the same kv_id. */
static void derive_kv_id(xjob *j, lls_str key, char out[37]) {
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

static void report(lua_State *L, xjob *j, const char *phase, int force) {
  if (!j->progress || (!force && j->done - j->reported < PAGE)) return;
  j->reported = j->done;
  lls_xprogress(L, j->progress, j->done, j->total > j->done ? j->total : j->done, phase, 0, 0, 0);
}

/* Raises when the progress function closed the store under us. */
static void still_open(lua_State *L, lls_handle *h) {
  if (h->b == NULL) lls_raisef(L, LLS_ECLOSED, "store was closed during the export");
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
static lls_str prefix_start(xjob *j, lls_str prefix) {
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

static void write_kv_row(lua_State *L, xjob *j, size_t i) {
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
  g_b64(j, lls_row_value(r, i));
  g_key(j, "metadata");
  if (meta.len == 0) {
    gs(j, yajl_gen_null(j->g));
  } else {
    lls_error err;
    if (g_json(j, meta, "kv_store metadata", NULL, &err) != 0) {
      lls_error_set(&err, err.code, "key '%.*s': %s", (int)(key.len > 200 ? 200 : key.len),
                    key.ptr, err.message);
      lls_raise(L, &err, NULL);
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

static void export_kv(lua_State *L, xjob *j, lls_handle *h, lls_str prefix) {
  lls_error err;
  int64_t now = lls_now_us();
  g_key(j, "kv_store");
  gs(j, yajl_gen_array_open(j->g));
  lls_str after = prefix_start(j, prefix);
  check_job(L, j);
  for (;;) {
    lls_rows_reset(&j->rows);
    if (h->vt->xport->kv_dump(h->b, after, now, PAGE, &j->rows, &err) != 0)
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
    check_job(L, j);
    if (n == 0) break;
    lls_str last = lls_row_key(&j->rows, n - 1);
    j->after.len = 0;
    if (lls_buf_append(&j->after, last.ptr, last.len) != 0) luaL_error(L, "out of memory");
    after.ptr = j->after.data;
    after.len = j->after.len;
    report(L, j, "kv_store", 0);
    still_open(L, h);
    if (past || n < PAGE) break;
  }
  gs(j, yajl_gen_array_close(j->g));
}

/* ------------------------------------------------------------ vectors */

typedef struct vsink {
  xjob *j;
  const lls_coll_info *c;
  int *group_open; /* the dimension's array is open in the document */
  size_t rows;
  lls_buf last;    /* id of the last row, to resume after */
} vsink;

static int vec_row_sink(void *ud, const lls_vec_row *row, lls_error *err) {
  vsink *s = ud;
  xjob *j = s->j;
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
  g_b64(j, row->vector);
  g_key(j, "metadata");
  lls_str md = row->metadata;
  if (md.len == 0 || (md.len == 2 && memcmp(md.ptr, "{}", 2) == 0)) {
    g_raw(j, "{}", 2);
  } else if (g_json(j, row->metadata, "vector metadata", NULL, err) != 0) {
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
  if (job_error(j, err) != 0) return -1;
  return 0;
}

static int coll_collect(void *ud, const lls_coll_info *info, lls_error *err) {
  xjob *j = ud;
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
static void list_collections(lua_State *L, xjob *j, lls_handle *h, int names) {
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
      if (i == j->ncolls) lls_raisef(L, LLS_ENOTFOUND, "no collection '%s'", nm);
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
static void export_collection_list(xjob *j) {
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

static void export_vectors(lua_State *L, xjob *j, lls_handle *h) {
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
      lls_raisef(L, LLS_EINVALID, "backend %s cannot export vectors", h->vt->name);
    vsink s;
    memset(&s, 0, sizeof s);
    s.j = j;
    s.c = c;
    s.group_open = &group_open;
    lls_str after = {NULL, 0};
    for (;;) {
      lls_error err;
      s.rows = 0;
      int rc = h->vt->xport->vec_dump(h->b, c->id, after, PAGE, vec_row_sink, &s, &err);
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
      report(L, j, "vector_embeddings", 0);
      still_open(L, h);
      if (s.rows < PAGE) break;
    }
    lls_buf_free(&s.last);
  }
  if (group_open) gs(j, yajl_gen_array_close(j->g));
  gs(j, yajl_gen_map_close(j->g));
  check_job(L, j);
}

/* ----------------------------------------------------------- sections */

static void export_sections(lua_State *L, xjob *j, lls_handle *h) {
  if (h->vt->xport->sec_dump == NULL) return;
  lls_error err;
  lls_str after = {NULL, 0};
  int64_t after_ord = 0;
  lls_buf cur = {0};       /* the section being written */
  int have_cur = 0, mode = 0; /* mode: 0 skip rows, 1 array open */
  for (;;) {
    lls_rows_reset(&j->rows);
    if (h->vt->xport->sec_dump(h->b, after, after_ord, PAGE, &j->rows, &err) != 0) {
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
        /* names the document uses itself never come from an import */
        if (str_is(name, "kv_store") || str_is(name, "vector_embeddings") ||
            str_is(name, "vector_collections"))
          continue;
        g_str(j, name.ptr, name.len);
        if (ord < 0) {
          lls_value *v = NULL;
          if (g_json(j, json, "section", &v, &err) != 0) {
            lls_buf_free(&cur);
            lls_raise(L, &err, NULL);
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
      if (g_json(j, json, "section", NULL, &err) != 0) {
        lls_buf_free(&cur);
        lls_raise(L, &err, NULL);
      }
      if (lls_xstats_add(&j->st, name, 1) != 0) j->oom = 1;
      j->done++;
    }
    if (job_error(j, &err) != 0) {
      lls_buf_free(&cur);
      lls_raise(L, &err, NULL);
    }
    if (n == 0) break;
    lls_str last = lls_row_key(&j->rows, n - 1);
    after_ord = j->rows.rows[n - 1].created_at;
    j->after.len = 0;
    if (lls_buf_append(&j->after, last.ptr, last.len) != 0) j->oom = 1;
    after.ptr = j->after.data;
    after.len = j->after.len;
    report(L, j, "sections", 0);
    still_open(L, h);
    if (n < PAGE) break;
  }
  if (mode == 1) gs(j, yajl_gen_array_close(j->g));
  lls_buf_free(&cur);
  check_job(L, j);
}

/* ------------------------------------------------------------ counting */

/* The number of records the export will write, for progress (only
 * computed when there is a progress function: with a prefix, or for
 * sections, it costs a pass over keys or section rows). */
static int64_t count_total(lua_State *L, xjob *j, lls_handle *h, lls_str prefix, int sections) {
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
      if (h->vt->kv->scan(h->b, prefix, after, now, PAGE, 1, &j->rows, &err) != 0)
        lls_raise(L, &err, h->vt->name);
      size_t n = j->rows.count;
      total += (int64_t)n;
      if (n < PAGE) break;
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
      if (h->vt->xport->sec_dump(h->b, after, after_ord, PAGE, &j->rows, &err) != 0)
        lls_raise(L, &err, h->vt->name);
      size_t n = j->rows.count;
      total += (int64_t)n;
      if (n < PAGE) break;
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

/* ---------------------------------------------------------- the document */

static void write_header(lua_State *L, xjob *j, lls_handle *h) {
  lls_error err;
  char when[40];
  int64_t now = lls_now_us();
  time_t secs = (time_t)(now / 1000000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  size_t n = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(when + n, sizeof when - n, ".%06dZ", (int)(now % 1000000));
  const char *backend = strcmp(h->vt->name, "postgres") == 0 ? "postgresql" : h->vt->name;

  gs(j, yajl_gen_map_open(j->g));
  g_key(j, "version");
  g_cstr(j, LLS_XPORT_VERSION);
  g_key(j, "exported_at");
  g_cstr(j, when);
  g_key(j, "source_backend");
  g_cstr(j, backend);
  g_key(j, "tenant_id");
  g_cstr(j, j->tenant);
  g_key(j, "migrations");
  gs(j, yajl_gen_array_open(j->g));
  lls_rows_reset(&j->rows);
  if (h->vt->migrations(h->b, &j->rows, &err) != 0) lls_raise(L, &err, h->vt->name);
  for (size_t i = 0; i < j->rows.count; i++) {
    lls_str k = lls_row_key(&j->rows, i);
    g_str(j, k.ptr, k.len);
  }
  gs(j, yajl_gen_array_close(j->g));
  g_key(j, "data");
  gs(j, yajl_gen_map_open(j->g));
}

/* The protected part of a run: (job, handle, prefix|nil, names|nil,
 * sections, progress|nil). */
static int export_body(lua_State *L) {
  xjob *j = lua_touserdata(L, 1);
  lls_handle *h = lua_touserdata(L, 2);
  lls_str prefix = {"", 0};
  if (!lua_isnil(L, 3)) prefix.ptr = lua_tolstring(L, 3, &prefix.len);
  int names = lua_isnil(L, 4) ? 0 : 4;
  int sections = lua_toboolean(L, 5);
  j->progress = lua_isnil(L, 6) ? 0 : 6;
  j->tenant = h->tenant;
  double t0 = lls_xclock();

  if (h->vt->xport->kv_dump == NULL)
    return lls_raisef(L, LLS_EINVALID, "backend %s cannot export", h->vt->name);
  list_collections(L, j, h, names);
  j->total = j->progress ? count_total(L, j, h, prefix, sections) : -1;
  report(L, j, "kv_store", 1);
  write_header(L, j, h);
  /* a progress call at the end of each phase too, so a bar shows it */
  export_kv(L, j, h, prefix);
  report(L, j, "kv_store", 1);
  still_open(L, h);
  export_collection_list(j);
  export_vectors(L, j, h);
  report(L, j, "vector_embeddings", 1);
  still_open(L, h);
  if (sections) {
    export_sections(L, j, h);
    report(L, j, "sections", 1);
    still_open(L, h);
  }
  gs(j, yajl_gen_map_close(j->g)); /* data */
  gs(j, yajl_gen_map_close(j->g)); /* the document */
  if (j->f != NULL) print_cb(j, "\n", 1);
  flush_out(j);
  check_job(L, j);
  j->st.seconds = lls_xclock() - t0;
  if (j->progress) {
    j->total = j->done;
    report(L, j, "done", 1);
  }
  return 0;
}

/* ------------------------------------------------------ the Lua object */

typedef struct exporter {
  int closed;
} exporter;

/* The exporter at idx and its open store (pushed on the stack). */
static lls_handle *check_exporter(lua_State *L, int idx) {
  exporter *e = luaL_checkudata(L, idx, LLS_EXPORTER_MT);
  if (e->closed) lls_raisef(L, LLS_ECLOSED, "exporter is closed");
  lua_getiuservalue(L, idx, 1);
  return lls_check_handle(L, -1);
}

static const char *const OPT_FIELDS[] = {"collections", "prefix", "sections", "progress", NULL};

/* Reads the options table at arg, pushing (prefix|nil, names|nil,
 * sections, progress|nil). */
static void push_options(lua_State *L, int arg) {
  int has = !lua_isnoneornil(L, arg);
  if (has) {
    luaL_checktype(L, arg, LUA_TTABLE);
    lls_check_fields(L, arg, arg, OPT_FIELDS, NULL, 0);
  }
  /* prefix */
  if (has && lua_getfield(L, arg, "prefix") != LUA_TNIL) {
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_argerror(L, arg, "option 'prefix': string expected");
    size_t len;
    const char *p = lua_tolstring(L, -1, &len);
    if (len > LLS_XPORT_MAX_KEY || lls_utf8_bad_at((const unsigned char *)p, len) != len)
      luaL_argerror(L, arg, "option 'prefix' must be UTF-8 text without NUL bytes, at most "
                            "1024 bytes");
  } else if (!has) {
    lua_pushnil(L);
  }
  /* collections */
  if (has && lua_getfield(L, arg, "collections") != LUA_TNIL) {
    if (!lua_istable(L, -1)) luaL_argerror(L, arg, "option 'collections': array of names "
                                                   "expected");
    size_t n = (size_t)lua_rawlen(L, -1);
    for (size_t i = 1; i <= n; i++) {
      if (lua_rawgeti(L, -1, (lua_Integer)i) != LUA_TSTRING)
        luaL_argerror(L, arg, lua_pushfstring(L, "option 'collections': name %d is not a "
                                                 "string", (int)i));
      lua_pop(L, 1);
    }
  } else if (!has) {
    lua_pushnil(L);
  }
  /* sections */
  int sections = 1;
  if (has && lua_getfield(L, arg, "sections") != LUA_TNIL) {
    if (!lua_isboolean(L, -1)) luaL_argerror(L, arg, "option 'sections': boolean expected");
    sections = lua_toboolean(L, -1);
  }
  if (has) lua_pop(L, 1);
  lua_pushboolean(L, sections);
  /* progress */
  if (has && lua_getfield(L, arg, "progress") != LUA_TNIL) {
    if (!lua_isfunction(L, -1)) luaL_argerror(L, arg, "option 'progress': function expected");
  } else if (!has) {
    lua_pushnil(L);
  }
}

static xjob *new_job(lua_State *L) {
  xjob *j = lua_newuserdatauv(L, sizeof *j, 0);
  memset(j, 0, sizeof *j);
  if (luaL_newmetatable(L, LLS_EXPORT_JOB_MT)) {
    lua_pushcfunction(L, job_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  j->g = yajl_gen_alloc(NULL);
  if (j->g == NULL) luaL_error(L, "out of memory");
  /* compact output; strings are checked (keys and ids come from the
   * store, but a bad byte must not produce an unreadable file) */
  yajl_gen_config(j->g, yajl_gen_validate_utf8, 1);
  yajl_gen_config(j->g, yajl_gen_print_callback, (yajl_print_t)print_cb, (void *)j);
  return j;
}

/* Runs the export; `file` = to_file (path at argument 2). Leaves the stats
 * table on the stack (to_string: the document below it). */
static int run_export(lua_State *L, int file) {
  lua_settop(L, file ? 3 : 2); /* the arguments keep their places below */
  lls_handle *h = check_exporter(L, 1);
  int hidx = lua_gettop(L);
  const char *path = file ? luaL_checkstring(L, 2) : NULL;
  int optarg = file ? 3 : 2;
  xjob *j = new_job(L);
  int jidx = lua_gettop(L);
  push_options(L, optarg); /* checked before the file is touched */
  int oidx = lua_gettop(L) - 3;
  if (file) {
    j->path = malloc(strlen(path) + 1);
    if (j->path == NULL) return luaL_error(L, "out of memory");
    strcpy(j->path, path);
    j->f = fopen(path, "wb");
    if (j->f == NULL)
      return lls_raisef(L, LLS_EIO, "cannot open '%s' for writing: %s", path, strerror(errno));
    /* a partial file is removed on failure, but never something that is
     * not a plain file (a FIFO, /dev/stdout) */
    struct stat sb;
    j->remove_on_fail = fstat(fileno(j->f), &sb) == 0 && S_ISREG(sb.st_mode);
  }
  lls_error err;
  int depth = h->txdepth;
  /* Outside a transaction: a read-only snapshot, so every page comes from
   * the same moment and writers are not held up meanwhile. */
  int rc = depth == 0 && h->vt->begin_read ? h->vt->begin_read(h->b, &err)
                                           : h->vt->begin(h->b, depth, &err);
  if (rc != 0) {
    job_release(j);
    return lls_raise(L, &err, h->vt->name);
  }
  h->txdepth = depth + 1;
  lua_pushcfunction(L, export_body);
  lua_pushvalue(L, jidx);
  lua_pushvalue(L, hidx);
  for (int i = 0; i < 4; i++) lua_pushvalue(L, oidx + i);
  int status = lua_pcall(L, 6, 0, 0);
  if (h->b == NULL) { /* the progress function closed the store (and so rolled back) */
    job_release(j);
    if (status != LUA_OK) return lua_error(L);
    return lls_raisef(L, LLS_ECLOSED, "store was closed during the export");
  }
  h->txdepth = depth;
  if (status != LUA_OK) {
    lls_error rerr;
    h->vt->rollback(h->b, depth, &rerr); /* best effort: the first error wins */
    job_release(j);
    return lua_error(L);
  }
  if (h->vt->commit(h->b, depth, &err) != 0) {
    lls_error rerr;
    h->vt->rollback(h->b, depth, &rerr);
    job_release(j);
    return lls_raise(L, &err, h->vt->name);
  }
  if (j->f != NULL) {
    FILE *f = j->f;
    j->f = NULL;
    if (fclose(f) != 0) {
      int e = errno;
      job_release(j);
      return lls_raisef(L, LLS_EIO, "cannot write '%s': %s", path, strerror(e));
    }
  } else {
    lua_pushlstring(L, j->out.data ? j->out.data : "", j->out.len);
  }
  j->remove_on_fail = 0;
  lls_xstats_push(L, &j->st);
  job_release(j);
  return 1;
}

/** exp:to_file(path [, opts]) --> stats
 * Streams the export into path (created or truncated; removed again if the
 * export fails). opts: collections = { names } (default all), prefix = KV
 * key prefix (default all), sections = false to leave out passthrough
 * sections, progress = function(done, total, phase) called every 1000
 * records and at the end (phase "kv_store", "vector_embeddings",
 * "sections", "done"). stats: see storage.exporter.
 * Raises "closed", "io" (cannot write), "not_found" (unknown collection). */
static int exp_to_file(lua_State *L) { return run_export(L, 1); }

/** exp:to_string([opts]) --> json, stats (options as for to_file) */
static int exp_to_string(lua_State *L) {
  run_export(L, 0);
  return 2;
}

/** exp:close() -- idempotent; also __close and __gc. Later calls raise "closed". */
static int exp_close(lua_State *L) {
  exporter *e = luaL_checkudata(L, 1, LLS_EXPORTER_MT);
  e->closed = 1;
  lua_pushnil(L);
  lua_setiuservalue(L, 1, 1); /* lets the store be collected */
  return 0;
}

static int exp_tostring(lua_State *L) {
  exporter *e = luaL_checkudata(L, 1, LLS_EXPORTER_MT);
  lua_getiuservalue(L, 1, 1);
  lls_handle *h = luaL_testudata(L, -1, LLS_HANDLE_MT);
  if (e->closed || h == NULL)
    lua_pushliteral(L, "llmspell.storage.Exporter (closed)");
  else if (h->b == NULL)
    lua_pushliteral(L, "llmspell.storage.Exporter (store closed)");
  else
    lua_pushfstring(L, "llmspell.storage.Exporter (%s %s, tenant %s)", h->vt->name,
                    h->vt->location(h->b), h->tenant);
  return 1;
}

/** storage.exporter(db) --> exporter ("llmspell.storage.Exporter").
 * Raises "closed" when db is closed. */
static int new_exporter(lua_State *L) {
  lls_check_handle(L, 1);
  exporter *e = lua_newuserdatauv(L, sizeof *e, 1);
  e->closed = 0;
  luaL_setmetatable(L, LLS_EXPORTER_MT);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  return 1;
}

void lls_open_export(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"to_file", exp_to_file},
      {"to_string", exp_to_string},
      {"close", exp_close},
      {NULL, NULL},
  };
  static const luaL_Reg meta[] = {
      {"__gc", exp_close},
      {"__close", exp_close},
      {"__tostring", exp_tostring},
      {NULL, NULL},
  };
  luaL_newmetatable(L, LLS_EXPORTER_MT);
  luaL_setfuncs(L, meta, 0);
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_pushcfunction(L, new_exporter);
  lua_setfield(L, -2, "exporter");
}
