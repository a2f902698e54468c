/*
 * export_job.h -- one run of storage.exporter's to_file/to_string: what it
 * allocates, the generator calls the writers use, progress and failure.
 * A run lives in a userdata (lls_xjob_new) whose __gc frees it, so a Lua
 * error anywhere leaves nothing behind.
 */
#ifndef LLS_LUA_EXPORT_JOB_H
#define LLS_LUA_EXPORT_JOB_H

#include <stdio.h>
#include <string.h>

#include <yajl/yajl_gen.h>

#include "lua/store.h"
#include "lua/xport.h"

#define LLS_EXPORT_PAGE 1000 /* rows per backend read; also the progress step */

/* One run of to_file / to_string: everything it allocates. */
typedef struct lls_xjob {
  yajl_gen g;
  yajl_gen_status gst; /* first generator failure */
  FILE *f;             /* to_file: the output */
  luaL_Stream *stream; /* to_file(handle): the caller's file (f is its FILE):
                        * written, flushed, never closed nor removed */
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
  int only;            /* stack index of the array of section names to
                        * write (option sections = {...}), 0 = all */
  int64_t done, total, reported;
  const char *tenant;
  const char *backend; /* the store's backend name, for the errors the run raises */
} lls_xjob;

/* Pushes a new run (a userdata) with its generator set up. */
lls_xjob *lls_xjob_new(lua_State *L);

/* Frees everything the run holds; a partial output file is removed
 * unless remove_on_fail was cleared. Idempotent. */
void lls_xjob_release(lls_xjob *j);

/* Writes the buffered output to the file (to_file only). */
void lls_xjob_flush(lls_xjob *j);

/* yajl's print callback: into the buffer, written out as it fills. */
void lls_xjob_print(void *ctx, const char *s, size_t n);

/* The state of the run as an error in err (0 when fine). */
int lls_xjob_error(lls_xjob *j, lls_error *err);

/* Raises the run's error, if any. */
void lls_xjob_check(lua_State *L, lls_xjob *j);

/* Re-encodes stored JSON text canonically and writes it; the decoded
 * value goes to *keep when asked (the caller frees it). Fails with a
 * message naming `what`. */
int lls_xjob_json(lls_xjob *j, lls_str text, const char *what, lls_value **keep, lls_error *err);

/* Writes bytes as a base64 JSON string. */
void lls_xjob_b64(lls_xjob *j, lls_str bytes);

/* Calls the progress function every LLS_EXPORT_PAGE records (force: now). */
void lls_xjob_report(lua_State *L, lls_xjob *j, const char *phase, int force);

/* Raises when the progress function closed the store under us. */
void lls_xjob_still_open(lua_State *L, lls_handle *h);

/* 1 when section name (len bytes) is to be written: every one unless the
 * caller named some (j->only). */
int lls_xjob_wants(lua_State *L, const lls_xjob *j, const char *name, size_t len);

/* The generator calls, small enough to inline: a failure is kept in
 * j->gst and reported by lls_xjob_error. */
static inline void gs(lls_xjob *j, yajl_gen_status st) {
  if (st != yajl_gen_status_ok && j->gst == yajl_gen_status_ok) j->gst = st;
}

static inline void g_key(lls_xjob *j, const char *k) {
  gs(j, yajl_gen_string(j->g, (const unsigned char *)k, strlen(k)));
}

static inline void g_str(lls_xjob *j, const char *p, size_t n) {
  gs(j, yajl_gen_string(j->g, (const unsigned char *)p, n));
}

static inline void g_cstr(lls_xjob *j, const char *s) { g_key(j, s); }

static inline void g_int(lls_xjob *j, int64_t v) { gs(j, yajl_gen_integer(j->g, (long long)v)); }

/* Writes p[0..n), already JSON text, as one value: yajl_gen_number
 * prints its argument as given, with the separators the position needs. */
static inline void g_raw(lls_xjob *j, const char *p, size_t n) {
  gs(j, yajl_gen_number(j->g, p, n));
}

#endif
