/*
 * import.c -- storage.importer(db): reads a document in the "Export
 * format" (export.c writes it; rs-llmspell's files are read too) into a
 * store, all or nothing.
 *
 * Streaming: yajl's event parser is fed 64 KiB at a time, through a
 * strict lexical pass that also hands yajl long tokens whole and decodes
 * big base64 values as they stream (import_feed.c); a state machine
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
 *
 * This file holds the Lua object and the run; import_parse.c follows the
 * document, import_rows.c checks and writes records, import_job.c owns a
 * run's resources and failure.
 */
#include <errno.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/clock.h"
#include "lua/args.h"
#include "lua/error.h"
#include "lua/import.h"
#include "lua/import_feed.h"
#include "lua/import_parse.h"
#include "lua/import_rows.h"
#include "lua/store.h"

#define LLS_IMPORTER_MT "llmspell.storage.Importer"
#define LLS_IMPORT_JOB_MT "llmspell.storage.ImportJob"
#define CHUNK (64 * 1024)
#define DEFAULT_BATCH 1000
#define PROGRESS_EVERY 1000

static int job_gc(lua_State *L) {
  lls_ijob_release(luaL_checkudata(L, 1, LLS_IMPORT_JOB_MT));
  return 0;
}

static void report(lua_State *L, lls_ijob *j, int fn, const char *phase, int force) {
  if (!fn) return;
  if (!force && j->done - j->reported < PROGRESS_EVERY && phase == j->reported_phase) return;
  j->reported = j->done;
  j->reported_phase = phase;
  lls_xprogress(L, fn, j->done, -1, phase, 1, (int64_t)(j->read_off), j->bytes_total);
  if (j->h->b == NULL)
    lls_raisef(L, j->h->vt->name, LLS_ECLOSED, "store was closed during the import");
}

/* Next piece of input into *p; 0 at the end. */
static size_t next_chunk(lua_State *L, lls_ijob *j, const unsigned char **p) {
  if (j->f != NULL) {
    /* a progress function may close the caller's handle: its FILE is gone */
    if (j->stream != NULL && j->stream->closef == NULL)
      lls_raisef(L, j->h->vt->name, LLS_EIO,
                 "cannot read the import file: the file handle was closed");
    size_t n = fread(j->chunk, 1, CHUNK, j->f);
    if (n == 0 && ferror(j->f))
      lls_raisef(L, j->h->vt->name, LLS_EIO, "cannot read the import file: %s",
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
  lls_ijob *j = lua_touserdata(L, 1);
  int fn = lua_isnil(L, 2) ? 0 : 2;
  double t0 = lls_xclock();
  j->phase = "kv_store";
  for (;;) {
    const unsigned char *buf;
    size_t n = next_chunk(L, j, &buf);
    if (n == 0) break;
    lls_import_feed(L, j, buf, n);
    report(L, j, fn, j->phase, 0);
  }
  lls_import_feed_end(L, j);
  if (!lls_import_flush_all(j)) return lls_import_raise(L, j, j->read_off);
  j->st.seconds = lls_xclock() - t0;
  report(L, j, fn, "done", 1);
  return 0;
}

/* ------------------------------------------------------ the Lua object */

typedef struct importer {
  int closed;
  const char *backend; /* the store's backend name (static), for errors after close */
} importer;

static lls_handle *check_importer(lua_State *L, int idx) {
  importer *im = luaL_checkudata(L, idx, LLS_IMPORTER_MT);
  if (im->closed) lls_raisef(L, im->backend, LLS_ECLOSED, "importer is closed");
  lua_getiuservalue(L, idx, 1);
  return lls_check_handle(L, -1);
}

static const char *const OPT_FIELDS[] = {"on_conflict", "dry_run", "batch_size", "progress",
                                         NULL};

/* Reads the options at arg into j; pushes the progress function (or nil). */
static void read_options(lua_State *L, int arg, lls_ijob *j) {
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
    if (!isint || n < 1 || n > LLS_MAX_BATCH)
      luaL_argerror(L, arg, lua_pushfstring(L, "option 'batch_size' must be an integer in "
                                               "[1, %d]", LLS_MAX_BATCH));
    j->batch_size = (size_t)n;
  }
  lua_pop(L, 1);
  if (lua_getfield(L, arg, "progress") != LUA_TNIL && !lua_isfunction(L, -1))
    luaL_argerror(L, arg, "option 'progress': function expected");
}

static lls_ijob *new_job(lua_State *L) {
  lls_ijob *j = lua_newuserdatauv(L, sizeof *j, 0);
  memset(j, 0, sizeof *j);
  j->bytes_total = -1;
  if (luaL_newmetatable(L, LLS_IMPORT_JOB_MT)) {
    lua_pushcfunction(L, job_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  j->vb = lls_vbuild_new();
  j->y = yajl_alloc(&lls_import_callbacks, NULL, j);
  if (j->vb == NULL || j->y == NULL) luaL_error(L, "out of memory");
  /* yajl's defaults are what JSON wants (strings checked, no comments,
   * one value, no trailing garbage) */
  j->cloc = newlocale(LC_ALL_MASK, "C", (locale_t)0);
  lls_import_feed_init(j);
  return j;
}

/* from_file (file = 1) / from_string: leaves the stats table on the stack. */
static int run_import(lua_State *L, int file) {
  lua_settop(L, 3); /* the arguments keep their places below */
  lls_handle *h = check_importer(L, 1);
  int hidx = lua_gettop(L);
  size_t slen = 0;
  luaL_Stream *stream = file ? luaL_testudata(L, 2, LUA_FILEHANDLE) : NULL;
  if (stream != NULL && stream->closef == NULL) luaL_argerror(L, 2, "the file handle is closed");
  if (file && stream == NULL && !lua_isstring(L, 2))
    luaL_typeerror(L, 2, "path (string) or file handle");
  const char *src = stream != NULL ? NULL : luaL_checklstring(L, 2, &slen);
  lls_ijob *j = new_job(L);
  int jidx = lua_gettop(L);
  read_options(L, 3, j);
  int pidx = lua_gettop(L);
  j->h = h;
  j->now = lls_now_us();
  if (file) {
    j->chunk = malloc(CHUNK);
    if (j->chunk == NULL) return luaL_error(L, "out of memory");
    j->stream = stream;
    j->f = stream != NULL ? stream->f : fopen(src, "rb");
    if (j->f == NULL)
      return lls_raisef(L, h->vt->name, LLS_EIO, "cannot open '%s': %s", src, strerror(errno));
    struct stat sb;
    if (fstat(fileno(j->f), &sb) == 0 && S_ISREG(sb.st_mode)) {
      long at = stream != NULL ? ftell(j->f) : 0; /* a handle is read from where it is */
      j->bytes_total = at >= 0 && at <= sb.st_size ? sb.st_size - at : -1;
    }
  } else {
    j->text = src; /* argument 2 keeps it alive */
    j->text_len = slen;
    j->bytes_total = (int64_t)slen;
  }
  lls_error err;
  int depth = h->txdepth;
  if (!j->dry_run) {
    if (h->vt->begin(h->b, depth, &err) != 0) {
      lls_ijob_release(j);
      return lls_raise(L, &err, h->vt->name);
    }
    h->txdepth = depth + 1;
  }
  lua_pushcfunction(L, import_body);
  lua_pushvalue(L, jidx);
  lua_pushvalue(L, pidx);
  int status = lua_pcall(L, 2, 0, 0);
  if (h->b == NULL) { /* the progress function closed the store (and so rolled back) */
    lls_ijob_release(j);
    if (status != LUA_OK) return lls_rethrow(L);
    return lls_raisef(L, h->vt->name, LLS_ECLOSED, "store was closed during the import");
  }
  if (!j->dry_run) {
    h->txdepth = depth;
    int rc = status == LUA_OK ? h->vt->commit(h->b, depth, &err) : 0;
    if (status != LUA_OK || rc != 0) {
      lls_error rerr;
      h->vt->rollback(h->b, depth, &rerr); /* best effort: the first error wins */
      lls_store_invalidate(L, hidx);
      lls_ijob_release(j);
      if (status != LUA_OK) return lls_rethrow(L);
      return lls_raise(L, &err, h->vt->name);
    }
    /* open collection objects reload on next use and see the new rows */
    lls_store_invalidate(L, hidx);
  } else if (status != LUA_OK) {
    lls_ijob_release(j);
    return lls_rethrow(L);
  }
  lls_xstats_push(L, &j->st);
  lls_ijob_release(j);
  return 1;
}

/** imp:from_file(path | file [, opts]) --> stats
 * Imports the document in path, or read from an open Lua file handle
 * (io.stdin: from where it stands, in pieces; left open), all or nothing.
 * opts: on_conflict =
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
  lls_handle *h = lls_check_handle(L, 1);
  importer *im = lua_newuserdatauv(L, sizeof *im, 1);
  im->closed = 0;
  im->backend = h->vt->name;
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

