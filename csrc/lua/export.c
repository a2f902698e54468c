/*
 * export.c -- storage.exporter(db): writes a store as the versioned JSON
 * document of DESIGN.md's "Export format" (version "1.0", the field names
 * of rs-llmspell's ExportFormat). This file holds the Lua object and the
 * run; export_rows.c writes the data, export_job.c owns a run's resources.
 *
 * The document is streamed: yajl's generator prints into a 256 KiB buffer
 * that is written out whenever it fills, and the data is read a page at a
 * time (vt->xport->kv_dump, vt->xport->vec_dump, the component codecs of
 * sections.h, vt->xport->sec_dump), so memory stays bounded
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

#include "base/clock.h"
#include "base/limits.h"
#include "base/utf8.h"
#include "lua/args.h"
#include "lua/error.h"
#include "lua/export.h"
#include "lua/export_components.h"
#include "lua/export_rows.h"
#include "lua/store.h"

#define LLS_EXPORTER_MT "llmspell.storage.Exporter"

/* ---------------------------------------------------------- the document */

static void write_header(lua_State *L, lls_xjob *j, lls_handle *h) {
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
  lls_xjob *j = lua_touserdata(L, 1);
  lls_handle *h = lua_touserdata(L, 2);
  lls_str prefix = {"", 0};
  if (!lua_isnil(L, 3)) prefix.ptr = lua_tolstring(L, 3, &prefix.len);
  int names = lua_isnil(L, 4) ? 0 : 4;
  int sections = lua_toboolean(L, 5);
  j->only = lua_istable(L, 5) ? 5 : 0;
  j->progress = lua_isnil(L, 6) ? 0 : 6;
  j->tenant = h->tenant;
  j->backend = h->vt->name;
  double t0 = lls_xclock();

  if (h->vt->xport->kv_dump == NULL)
    return lls_raisef(L, h->vt->name, LLS_EINVALID, "backend %s cannot export", h->vt->name);
  lls_export_list_collections(L, j, h, names);
  j->total = j->progress ? lls_export_count_total(L, j, h, prefix, sections) : -1;
  if (j->progress && sections) j->total += lls_export_count_components(L, j, h);
  lls_xjob_report(L, j, "kv_store", 1);
  write_header(L, j, h);
  /* a progress call at the end of each phase too, so a bar shows it */
  lls_export_kv(L, j, h, prefix);
  lls_xjob_report(L, j, "kv_store", 1);
  lls_xjob_still_open(L, h);
  lls_export_collection_list(j);
  lls_export_vectors(L, j, h);
  lls_xjob_report(L, j, "vector_embeddings", 1);
  lls_xjob_still_open(L, h);
  if (sections) {
    lls_export_components(L, j, h);
    lls_export_sections(L, j, h);
    lls_xjob_report(L, j, "sections", 1);
    lls_xjob_still_open(L, h);
  }
  gs(j, yajl_gen_map_close(j->g)); /* data */
  gs(j, yajl_gen_map_close(j->g)); /* the document */
  if (j->f != NULL) lls_xjob_print(j, "\n", 1);
  lls_xjob_flush(j);
  lls_xjob_check(L, j);
  j->st.seconds = lls_xclock() - t0;
  if (j->progress) {
    j->total = j->done;
    lls_xjob_report(L, j, "done", 1);
  }
  return 0;
}

/* ------------------------------------------------------ the Lua object */

typedef struct exporter {
  int closed;
  const char *backend; /* the store's backend name (static), for errors after close */
} exporter;

/* The exporter at idx and its open store (pushed on the stack). */
static lls_handle *check_exporter(lua_State *L, int idx) {
  exporter *e = luaL_checkudata(L, idx, LLS_EXPORTER_MT);
  if (e->closed) lls_raisef(L, e->backend, LLS_ECLOSED, "exporter is closed");
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
    if (len > LLS_MAX_KEY || lls_utf8_bad_at((const unsigned char *)p, len) != len)
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
      lls_str nm;
      nm.ptr = lua_tolstring(L, -1, &nm.len);
      char why[300];
      if (lls_name_problem(nm, why, sizeof why) != NULL)
        luaL_argerror(L, arg, lua_pushfstring(L, "option 'collections': entry %d: %s", (int)i,
                                              why));
      lua_pop(L, 1);
    }
  } else if (!has) {
    lua_pushnil(L);
  }
  /* sections: a boolean, or the names of the sections to write */
  if (has && lua_getfield(L, arg, "sections") != LUA_TNIL) {
    if (lua_istable(L, -1)) {
      for (lua_Integer i = 1, n = (lua_Integer)lua_rawlen(L, -1); i <= n; i++)
        if (lua_rawgeti(L, -1, i) != LUA_TSTRING)
          luaL_argerror(L, arg, lua_pushfstring(L, "option 'sections': name %d is not a string",
                                                (int)i));
        else
          lua_pop(L, 1);
    } else if (!lua_isboolean(L, -1)) {
      luaL_argerror(L, arg, "option 'sections': boolean or array of section names expected");
    }
  } else {
    if (has) lua_pop(L, 1);
    lua_pushboolean(L, 1);
  }
  /* progress */
  if (has && lua_getfield(L, arg, "progress") != LUA_TNIL) {
    if (!lua_isfunction(L, -1)) luaL_argerror(L, arg, "option 'progress': function expected");
  } else if (!has) {
    lua_pushnil(L);
  }
}

/* The output of to_file: argument 2, a path (created or truncated) or an
 * open Lua file handle (io.stdout: written where it stands, left open).
 * Returns the name for messages. */
static const char *open_output(lua_State *L, lls_xjob *j, const char *backend) {
  luaL_Stream *s = luaL_testudata(L, 2, LUA_FILEHANDLE);
  if (s != NULL) {
    if (s->closef == NULL) luaL_argerror(L, 2, "the file handle is closed");
    j->stream = s;
    j->f = s->f;
    return "the output file handle";
  }
  const char *path = lua_tostring(L, 2); /* a string: run_export checked */
  j->path = malloc(strlen(path) + 1);
  if (j->path == NULL) luaL_error(L, "out of memory");
  strcpy(j->path, path);
  j->f = fopen(path, "wb");
  if (j->f == NULL)
    lls_raisef(L, backend, LLS_EIO, "cannot open '%s' for writing: %s", path, strerror(errno));
  /* a partial file is removed on failure, but never something that is
   * not a plain file (a FIFO, /dev/stdout) */
  struct stat sb;
  j->remove_on_fail = fstat(fileno(j->f), &sb) == 0 && S_ISREG(sb.st_mode);
  return path;
}

/* Ends the output: a path's file is closed, a caller's handle flushed.
 * Returns 0, or the errno of the failure. */
static int close_output(lls_xjob *j) {
  FILE *f = j->f;
  j->f = NULL;
  if (j->stream == NULL) return fclose(f) != 0 ? (errno ? errno : EIO) : 0;
  if (j->stream->closef == NULL) return EBADF;
  return fflush(f) != 0 || ferror(f) ? (errno ? errno : EIO) : 0;
}

/* Runs the export; `file` = to_file (path or handle at argument 2). Leaves
 * the stats table on the stack (to_string: the document below it). */
static int run_export(lua_State *L, int file) {
  lua_settop(L, file ? 3 : 2); /* the arguments keep their places below */
  lls_handle *h = check_exporter(L, 1);
  int hidx = lua_gettop(L);
  if (file && !luaL_testudata(L, 2, LUA_FILEHANDLE) && !lua_isstring(L, 2))
    luaL_typeerror(L, 2, "path (string) or file handle");
  int optarg = file ? 3 : 2;
  lls_xjob *j = lls_xjob_new(L);
  int jidx = lua_gettop(L);
  push_options(L, optarg); /* checked before the file is touched */
  int oidx = lua_gettop(L) - 3;
  const char *path = file ? open_output(L, j, h->vt->name) : NULL;
  lls_error err;
  int depth = h->txdepth;
  /* Outside a transaction: a read-only snapshot, so every page comes from
   * the same moment and writers are not held up meanwhile. */
  int rc = depth == 0 && h->vt->begin_read ? h->vt->begin_read(h->b, &err)
                                           : h->vt->begin(h->b, depth, &err);
  if (rc != 0) {
    lls_xjob_release(j);
    return lls_raise(L, &err, h->vt->name);
  }
  h->txdepth = depth + 1;
  lua_pushcfunction(L, export_body);
  lua_pushvalue(L, jidx);
  lua_pushvalue(L, hidx);
  for (int i = 0; i < 4; i++) lua_pushvalue(L, oidx + i);
  int status = lua_pcall(L, 6, 0, 0);
  if (h->b == NULL) { /* the progress function closed the store (and so rolled back) */
    lls_xjob_release(j);
    if (status != LUA_OK) return lls_rethrow(L);
    return lls_raisef(L, h->vt->name, LLS_ECLOSED, "store was closed during the export");
  }
  h->txdepth = depth;
  if (status != LUA_OK) {
    lls_error rerr;
    h->vt->rollback(h->b, depth, &rerr); /* best effort: the first error wins */
    lls_xjob_release(j);
    return lls_rethrow(L);
  }
  if (h->vt->commit(h->b, depth, &err) != 0) {
    lls_error rerr;
    h->vt->rollback(h->b, depth, &rerr);
    lls_xjob_release(j);
    return lls_raise(L, &err, h->vt->name);
  }
  if (j->f != NULL) {
    int e = close_output(j);
    if (e != 0) {
      lls_xjob_release(j);
      return lls_raisef(L, h->vt->name, LLS_EIO, "cannot write '%s': %s", path, strerror(e));
    }
  } else {
    lua_pushlstring(L, j->out.data ? j->out.data : "", j->out.len);
  }
  j->remove_on_fail = 0;
  lls_xstats_push(L, &j->st);
  lls_xjob_release(j);
  return 1;
}

/** exp:to_file(path | file [, opts]) --> stats
 * Streams the export into path (created or truncated; removed again if the
 * export fails), or into an open Lua file handle (io.stdout: written at
 * its position, flushed, left open; nothing is removed). opts:
 * collections = { names } (default all), prefix = KV key prefix (default
 * all), sections = false to leave out the component sections (sessions,
 * artifacts, ..., event_log) and the passthrough sections, or an array of
 * section names to write only those,
 * progress = function(done, total, phase) called every 1000
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
  lls_handle *h = lls_check_handle(L, 1);
  exporter *e = lua_newuserdatauv(L, sizeof *e, 1);
  e->closed = 0;
  e->backend = h->vt->name;
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
