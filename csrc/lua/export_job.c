/*
 * export_job.c -- one run of an export (export_job.h): the resources it
 * holds, the JSON generator printing into a buffer that is written out
 * as it fills, and the first failure of any of them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/b64.h"
#include "lua/error.h"
#include "lua/export_job.h"
#include "value/json.h"

#define LLS_EXPORT_JOB_MT "llmspell.storage.ExportJob"
#define FLUSH_AT (256 * 1024)   /* file output is written in pieces of this size */

void lls_xjob_release(lls_xjob *j) {
  if (j->g != NULL) yajl_gen_free(j->g);
  j->g = NULL;
  if (j->f != NULL && j->stream == NULL) fclose(j->f);
  j->f = NULL;
  j->stream = NULL;
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
  lls_xjob_release(luaL_checkudata(L, 1, LLS_EXPORT_JOB_MT));
  return 0;
}

void lls_xjob_flush(lls_xjob *j) {
  if (j->f == NULL || j->out.len == 0 || j->werr) return;
  /* a progress function may close the caller's handle: its FILE is gone */
  if (j->stream != NULL && j->stream->closef == NULL) {
    j->werr = EBADF;
    return;
  }
  if (fwrite(j->out.data, 1, j->out.len, j->f) != j->out.len) j->werr = errno ? errno : EIO;
  j->out.len = 0;
}

/* yajl's print callback: into the buffer, written out as it fills. */
void lls_xjob_print(void *ctx, const char *s, size_t n) {
  lls_xjob *j = ctx;
  if (j->oom || j->werr) return;
  if (lls_buf_append(&j->out, s, n) != 0) {
    j->oom = 1;
    return;
  }
  j->st.bytes += (int64_t)n;
  if (j->f != NULL && j->out.len >= FLUSH_AT) lls_xjob_flush(j);
}

/* The state of the job as an error (0 when fine). */
int lls_xjob_error(lls_xjob *j, lls_error *err) {
  if (j->oom) return lls_error_set(err, LLS_EIO, "out of memory");
  if (j->werr)
    return lls_error_set(err, LLS_EIO, "cannot write '%s': %s",
                         j->path ? j->path : "the output file handle",
                         strerror(j->werr));
  if (j->gst != yajl_gen_status_ok)
    return lls_error_set(err, LLS_EFORMAT, "JSON generator failed (status %d): a stored "
                         "string is not valid UTF-8", (int)j->gst);
  return 0;
}

void lls_xjob_check(lua_State *L, lls_xjob *j) {
  lls_error err;
  if (lls_xjob_error(j, &err) != 0) lls_raise(L, &err, j->backend);
}

/* Re-encodes stored JSON text canonically into j->rec and writes it; the
 * decoded value goes to *keep when asked (the caller frees it). Fails
 * with a message naming `what`. */
int lls_xjob_json(lls_xjob *j, lls_str text, const char *what, lls_value **keep, lls_error *err) {
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

void lls_xjob_b64(lls_xjob *j, lls_str bytes) {
  j->rec.len = 0;
  if (lls_b64_quoted(&j->rec, bytes.ptr, bytes.len) != 0) {
    j->oom = 1;
    return;
  }
  g_raw(j, j->rec.data, j->rec.len);
}
void lls_xjob_report(lua_State *L, lls_xjob *j, const char *phase, int force) {
  if (!j->progress || (!force && j->done - j->reported < LLS_EXPORT_PAGE)) return;
  j->reported = j->done;
  lls_xprogress(L, j->progress, j->done, j->total > j->done ? j->total : j->done, phase, 0, 0, 0);
}

/* Raises when the progress function closed the store under us. */
void lls_xjob_still_open(lua_State *L, lls_handle *h) {
  if (h->b == NULL) lls_raisef(L, h->vt->name, LLS_ECLOSED, "store was closed during the export");
}

int lls_xjob_wants(lua_State *L, const lls_xjob *j, const char *name, size_t len) {
  if (j->only == 0) return 1;
  for (lua_Integer i = 1, n = (lua_Integer)lua_rawlen(L, j->only); i <= n; i++) {
    size_t sl;
    lua_rawgeti(L, j->only, i);
    const char *s = lua_tolstring(L, -1, &sl);
    int hit = s != NULL && sl == len && memcmp(s, name, len) == 0;
    lua_pop(L, 1);
    if (hit) return 1;
  }
  return 0;
}

lls_xjob *lls_xjob_new(lua_State *L) {
  lls_xjob *j = lua_newuserdatauv(L, sizeof *j, 0);
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
  yajl_gen_config(j->g, yajl_gen_print_callback, (yajl_print_t)lls_xjob_print, (void *)j);
  return j;
}

