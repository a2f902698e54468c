/*
 * import_job.c -- one run of an import (import_job.h): its failure,
 * recorded for after the parse because yajl's callbacks must not raise,
 * and the release of everything it holds.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua/import_job.h"

int lls_ijob_fail(lls_ijob *j, lls_code code, const char *fmt, ...) {
  if (j->failed) return 0;
  va_list ap;
  va_start(ap, fmt);
  j->err.code = code;
  j->err.sqlstate[0] = '\0';
  j->err.sqlite_code = 0;
  vsnprintf(j->err.message, sizeof j->err.message, fmt, ap);
  va_end(ap);
  j->failed = 1;
  return 0;
}

/* A backend failure, kept as the backend reported it. */
int lls_ijob_fail_backend(lls_ijob *j, const lls_error *err) {
  if (!j->failed) {
    j->err = *err;
    j->failed = 1;
  }
  return 0;
}

int lls_ijob_oom(lls_ijob *j) { return lls_ijob_fail(j, LLS_EIO, "out of memory"); }

/* The current record's name for messages: "kv_store[3]",
 * "vector_embeddings.768[12]", "sessions[0]", "knowledge_graph". */
const char *lls_ijob_label(lls_ijob *j, char *buf, size_t cap) {
  switch (j->rk) {
  case R_KV: snprintf(buf, cap, "kv_store[%lld]", (long long)j->idx); break;
  case R_COLL: snprintf(buf, cap, "vector_collections[%lld]", (long long)j->idx); break;
  case R_VEC:
    snprintf(buf, cap, "vector_embeddings.%s[%lld]", j->dimkey, (long long)j->idx);
    break;
  case R_SEC:
    if (j->sec_single)
      snprintf(buf, cap, "%.*s", (int)(j->secname.len > 100 ? 100 : j->secname.len),
               j->secname.data);
    else
      snprintf(buf, cap, "%.*s[%lld]", (int)(j->secname.len > 100 ? 100 : j->secname.len),
               j->secname.data, (long long)j->idx);
    break;
  }
  return buf;
}

lls_buf *lls_ijob_value_buf(lls_ijob *j) { return j->sink != NULL ? &j->capval : &j->kvarena; }

void lls_ijob_drop_value(lls_ijob *j) {
  if (!j->have_value) return;
  lls_ijob_value_buf(j)->len = j->val_off;
  j->have_value = 0;
}

void lls_ijob_release(lls_ijob *j) {
  if (j->y != NULL) yajl_free(j->y);
  j->y = NULL;
  lls_vbuild_free(j->vb);
  j->vb = NULL;
  if (j->f != NULL && j->stream == NULL) fclose(j->f);
  j->f = NULL;
  j->stream = NULL;
  if (j->cloc != (locale_t)0) freelocale(j->cloc);
  j->cloc = (locale_t)0;
  free(j->chunk);
  j->chunk = NULL;
  lls_buf_free(&j->secname);
  lls_buf_free(&j->held);
  lls_buf_free(&j->capval);
  lls_buf_free(&j->floats);
  lls_buf_free(&j->tmp);
  free(j->kv);
  free(j->kvrecs);
  lls_buf_free(&j->kvarena);
  lls_hidx_free(&j->kvseen);
  free(j->vs);
  free(j->vrows);
  free(j->vids);
  free(j->vpresent);
  lls_buf_free(&j->varena);
  lls_hidx_free(&j->vseen);
  free(j->ss);
  free(j->snames);
  free(j->sjson);
  free(j->sords);
  lls_buf_free(&j->sarena);
  free(j->colls);
  lls_hidx_free(&j->cidx);
  lls_xstats_free(&j->st);
  j->kv = NULL, j->kvrecs = NULL, j->vs = NULL, j->vrows = NULL, j->vids = NULL;
  j->vpresent = NULL, j->ss = NULL, j->snames = NULL, j->sjson = NULL, j->sords = NULL;
  j->colls = NULL;
}

const char *lls_ijob_backend(const lls_ijob *j) {
  return j->h != NULL ? j->h->vt->name : NULL;
}
