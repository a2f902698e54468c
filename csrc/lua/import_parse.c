/*
 * import_parse.c -- the import's parser side (import_parse.h): yajl's
 * callbacks and a state machine over the document's outer structure that
 * hands each record to import_rows.c. import_feed.c feeds yajl.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua/error.h"
#include "lua/import_parse.h"
#include "lua/import_rows.h"

/* ------------------------------------------------------ the state machine */

static int feed(lls_ijob *j, evt t, const char *p, size_t n) {
  lls_vbuild *b = j->vb;
  switch (t) {
  case E_NULL: return lls_vbuild_null(b);
  case E_BOOL: return lls_vbuild_bool(b, (int)n);
  case E_NUMBER: return lls_vbuild_number(b, p, n);
  case E_STRING: return lls_vbuild_string(b, p, n);
  case E_START_MAP: return lls_vbuild_start_map(b);
  case E_KEY: return lls_vbuild_map_key(b, p, n);
  case E_END_MAP: return lls_vbuild_end_map(b);
  case E_START_ARRAY: return lls_vbuild_start_array(b);
  case E_END_ARRAY: return lls_vbuild_end_array(b);
  }
  return 0;
}

/* A key of the record itself (depth 1): "embedding" of a vector may come
 * as an array, read into floats; "value" of a kv entry may have streamed
 * past decoded (import_feed.c), and a second one replaces the first. */
static void rec_key(lls_ijob *j, const char *p, size_t n) {
  if (j->rk == R_VEC && n == 9 && memcmp(p, "embedding", 9) == 0) {
    j->em = EMB_NEXT;
  } else if (j->rk == R_KV && n == 5 && memcmp(p, "value", 5) == 0) {
    lls_ijob_drop_value(j);
    j->val_next = 1;
  }
}

/* An event inside the record being assembled. */
static int rec_event(lls_ijob *j, evt t, const char *p, size_t n) {
  char lb[200];
  j->val_next = 0; /* the event after the key "value" is its value */
  if (j->em == EMB_CAPTURE) {
    if (t == E_NUMBER) {
      char small[64];
      if (n >= sizeof small)
        return lls_ijob_fail(j, LLS_EFORMAT, "%s: embedding number too long",
                             lls_ijob_label(j, lb, sizeof lb));
      memcpy(small, p, n);
      small[n] = '\0';
      float f = strtof(small, NULL); /* the parse runs under the "C" locale */
      if (lls_buf_append(&j->floats, &f, sizeof f) != 0) return lls_ijob_oom(j);
      return 1;
    }
    if (t != E_END_ARRAY)
      return lls_ijob_fail(j, LLS_EFORMAT, "%s: embedding array must hold numbers only",
                   lls_ijob_label(j, lb, sizeof lb));
    j->em = EMB_NONE;
    j->have_floats = 1;
    j->emb_b64 = 0;
    t = E_NULL; /* the record's tree gets a placeholder */
  } else if (j->em == EMB_NEXT) {
    j->em = EMB_NONE;
    if (t == E_START_ARRAY) {
      j->em = EMB_CAPTURE;
      j->floats.len = 0;
      return 1;
    }
  }
  if (t == E_KEY && lls_vbuild_depth(j->vb) == 1) rec_key(j, p, n);
  if (!feed(j, t, p, n))
    return lls_ijob_fail(j, LLS_EFORMAT, "%s: %s", lls_ijob_label(j, lb, sizeof lb),
                         lls_vbuild_error(j->vb));
  if (lls_vbuild_depth(j->vb) > 0) return 1;
  lls_value *v = lls_vbuild_take(j->vb);
  if (v == NULL) return lls_ijob_oom(j);
  j->in_rec = 0;
  int rc;
  if (j->sink != NULL) { /* storage.records: the record goes to the reader */
    rc = j->sink(j, v);
  } else {
    rc = j->rk == R_KV     ? lls_import_take_kv(j, v)
         : j->rk == R_COLL ? lls_import_take_coll(j, v)
         : j->rk == R_VEC  ? lls_import_take_vec(j, v)
                           : lls_import_take_sec(j, v);
    lls_value_free(v);
  }
  j->idx++;
  return rc;
}

static int start_record(lls_ijob *j, rkind k, evt t, const char *p, size_t n) {
  lls_vbuild_reset(j->vb);
  j->in_rec = 1;
  j->rk = k;
  j->em = EMB_NONE;
  j->have_floats = j->emb_b64 = j->emb_bad = 0;
  j->have_value = j->val_bad = j->val_next = 0;
  j->capval.len = 0;
  return rec_event(j, t, p, n);
}

static int is_value_start(evt t) { return t != E_KEY && t != E_END_MAP && t != E_END_ARRAY; }

static int start_skip(lls_ijob *j, evt t) {
  if (t == E_START_MAP || t == E_START_ARRAY) {
    j->skipping = 1;
    j->skip_depth = 1;
  }
  return 1;
}

static int key_is(const char *p, size_t n, const char *lit) {
  return n == strlen(lit) && memcmp(p, lit, n) == 0;
}

/* In the top object: "version", "data", anything else skipped. */
static int ev_top(lls_ijob *j, evt t, const char *p, size_t n) {
  if (t == E_KEY) {
    j->ex = key_is(p, n, "version") ? X_VERSION : key_is(p, n, "data") ? X_DATA : X_SKIP;
    return 1;
  }
  if (t == E_END_MAP) {
    j->ps = P_END;
    return 1;
  }
  if (j->ex == X_VERSION) {
    j->version_seen = 1;
    if (t != E_STRING)
      return lls_ijob_fail(j, LLS_EVERSION, "\"version\" must be a string (\"%s\")",
                           LLS_XPORT_VERSION);
    if (!key_is(p, n, LLS_XPORT_VERSION))
      return lls_ijob_fail(j, LLS_EVERSION, "unsupported export format version \"%.*s\" "
                           "(this library reads \"%s\")", (int)(n > 40 ? 40 : n), p,
                           LLS_XPORT_VERSION);
    return 1;
  }
  if (j->ex == X_DATA) {
    if (t == E_NULL) return 1;
    if (t != E_START_MAP) return lls_ijob_fail(j, LLS_EFORMAT, "\"data\" is not an object");
    j->ps = P_DATA;
    return 1;
  }
  return start_skip(j, t);
}

/* A key of "data": which section comes next. */
static int ev_data_key(lls_ijob *j, const char *p, size_t n) {
  if (key_is(p, n, "kv_store")) {
    j->ex = X_KV;
  } else if (key_is(p, n, "vector_collections")) {
    j->ex = X_COLLS;
  } else if (key_is(p, n, "vector_embeddings")) {
    j->ex = X_VMAP;
  } else {
    j->ex = X_SEC;
    j->secname.len = 0;
    if (lls_buf_append(&j->secname, p, n) != 0 || lls_buf_append(&j->secname, "", 1) != 0)
      return lls_ijob_oom(j);
    j->secname.len = n;
  }
  return 1;
}

/* Opens the array of a known section: state ps, records counted from 0. */
static int open_array(lls_ijob *j, evt t, pstate ps, const char *phase, const char *what) {
  if (t != E_START_ARRAY) return lls_ijob_fail(j, LLS_EFORMAT, "%s is not an array", what);
  j->ps = ps;
  j->idx = 0;
  j->phase = phase;
  return 1;
}

/* In "data": its keys and the start of each section's value. */
static int ev_data(lls_ijob *j, evt t, const char *p, size_t n) {
  if (t == E_KEY) return ev_data_key(j, p, n);
  if (t == E_END_MAP) {
    j->ps = P_TOP;
    return 1;
  }
  if (t == E_NULL) return 1; /* an absent section (rs-llmspell writes None as null) */
  if (j->ex == X_KV) return open_array(j, t, P_KV, "kv_store", "data.kv_store");
  if (j->ex == X_COLLS)
    return open_array(j, t, P_COLLS, "vector_embeddings", "data.vector_collections");
  if (j->ex == X_VMAP) {
    if (t != E_START_MAP)
      return lls_ijob_fail(j, LLS_EFORMAT, "data.vector_embeddings is not an object");
    j->ps = P_VMAP;
    j->phase = "vector_embeddings";
    return 1;
  }
  if (j->sink == NULL && !lls_import_begin_section(j)) return 0;
  j->phase = "sections";
  j->idx = 0;
  if (j->codec != NULL && j->codec->parts != NULL && t == E_START_MAP) {
    /* a component's object of arrays (artifacts): each array streams */
    j->ps = P_CPARTS;
    j->cpart = -1;
    return 1;
  }
  if (t == E_START_ARRAY) {
    j->ps = P_SEC;
    j->sec_single = 0;
    return 1;
  }
  j->sec_single = 1;
  return start_record(j, R_SEC, t, p, n);
}

/* In "vector_embeddings": a dimension key, then its array. */
static int ev_vmap(lls_ijob *j, evt t, const char *p, size_t n) {
  if (t == E_KEY) {
    int d = 0;
    size_t k = 0;
    while (k < n && k < 5 && p[k] >= '0' && p[k] <= '9') d = d * 10 + (p[k++] - '0');
    if (n == 0 || k != n || d < 1 || d > LLS_MAX_DIM || p[0] == '0')
      return lls_ijob_fail(j, LLS_EFORMAT, "vector_embeddings: key \"%.*s\" is not a "
                           "dimension (1..%d)", (int)(n > 40 ? 40 : n), p, LLS_MAX_DIM);
    j->dim = d;
    snprintf(j->dimkey, sizeof j->dimkey, "%d", d);
    return 1;
  }
  if (t == E_END_MAP) {
    j->ps = P_DATA;
    return 1;
  }
  if (t == E_NULL) return 1;
  if (t != E_START_ARRAY)
    return lls_ijob_fail(j, LLS_EFORMAT, "vector_embeddings.%s is not an array", j->dimkey);
  j->ps = P_VEC;
  j->idx = 0;
  return 1;
}

/* In a component section's object of arrays: a part's name, then its
 * array (a member the component does not know is skipped). */
static int ev_cparts(lls_ijob *j, evt t, const char *p, size_t n) {
  if (t == E_KEY) {
    j->cpart = -2;
    for (int i = 0; j->codec->parts[i] != NULL; i++)
      if (key_is(p, n, j->codec->parts[i])) j->cpart = i;
    return 1;
  }
  if (t == E_END_MAP) {
    j->ps = P_DATA;
    return 1;
  }
  if (j->cpart == -2 || t == E_NULL) return start_skip(j, t);
  if (t != E_START_ARRAY)
    return lls_ijob_fail(j, LLS_EFORMAT, "data.%s.%s is not an array", j->codec->name,
                         j->codec->parts[j->cpart]);
  j->ps = P_CPART;
  j->idx = 0;
  return 1;
}

/* In an array of records: each element starts one; the end returns to
 * the enclosing state. */
static int ev_records(lls_ijob *j, evt t, const char *p, size_t n) {
  static const struct {
    rkind k;
    pstate back;
  } of[] = {[P_KV] = {R_KV, P_DATA}, [P_COLLS] = {R_COLL, P_DATA},
            [P_VEC] = {R_VEC, P_VMAP}, [P_SEC] = {R_SEC, P_DATA},
            [P_CPART] = {R_SEC, P_CPARTS}};
  if (t == E_END_ARRAY) {
    j->ps = of[j->ps].back;
    return 1;
  }
  if (j->ps == P_SEC || j->ps == P_CPART) {
    if (!is_value_start(t)) return lls_ijob_fail(j, LLS_EFORMAT, "malformed section");
  } else if (t != E_START_MAP) {
    if (j->ps == P_VEC)
      return lls_ijob_fail(j, LLS_EFORMAT, "vector_embeddings.%s[%lld] is not an object",
                           j->dimkey, (long long)j->idx);
    return lls_ijob_fail(j, LLS_EFORMAT, "%s[%lld] is not an object",
                         j->ps == P_KV ? "kv_store" : "vector_collections", (long long)j->idx);
  }
  return start_record(j, of[j->ps].k, t, p, n);
}

static int event(lls_ijob *j, evt t, const char *p, size_t n) {
  if (j->failed) return 0;
  if (j->skipping) {
    if (t == E_START_MAP || t == E_START_ARRAY) j->skip_depth++;
    else if ((t == E_END_MAP || t == E_END_ARRAY) && --j->skip_depth == 0) j->skipping = 0;
    return 1;
  }
  if (j->in_rec) return rec_event(j, t, p, n);
  switch (j->ps) {
  case P_START:
    if (t != E_START_MAP)
      return lls_ijob_fail(j, LLS_EFORMAT, "the document is not a JSON object (not an export "
                           "file?)");
    j->ps = P_TOP;
    return 1;
  case P_TOP: return ev_top(j, t, p, n);
  case P_DATA: return ev_data(j, t, p, n);
  case P_VMAP: return ev_vmap(j, t, p, n);
  case P_KV:
  case P_COLLS:
  case P_VEC:
  case P_SEC:
  case P_CPART: return ev_records(j, t, p, n);
  case P_CPARTS: return ev_cparts(j, t, p, n);
  case P_END: break;
  }
  return lls_ijob_fail(j, LLS_EFORMAT, "data after the end of the document");
}

/* yajl's callbacks: each one an event. */
static int y_null(void *ctx) { return event(ctx, E_NULL, NULL, 0); }
static int y_bool(void *ctx, int b) { return event(ctx, E_BOOL, NULL, (size_t)(b != 0)); }
static int y_number(void *ctx, const char *s, size_t len) {
  return event(ctx, E_NUMBER, s, len);
}
static int y_string(void *ctx, const unsigned char *s, size_t len) {
  return event(ctx, E_STRING, (const char *)s, len);
}
static int y_start_map(void *ctx) { return event(ctx, E_START_MAP, NULL, 0); }
static int y_key(void *ctx, const unsigned char *s, size_t len) {
  return event(ctx, E_KEY, (const char *)s, len);
}
static int y_end_map(void *ctx) { return event(ctx, E_END_MAP, NULL, 0); }
static int y_start_array(void *ctx) { return event(ctx, E_START_ARRAY, NULL, 0); }
static int y_end_array(void *ctx) { return event(ctx, E_END_ARRAY, NULL, 0); }

const yajl_callbacks lls_import_callbacks = {
    y_null,     y_bool,     NULL,      NULL,          y_number,    y_string,
    y_start_map, y_key,     y_end_map, y_start_array, y_end_array,
};

/* ------------------------------------------------------------ failures */

/* Raises the recorded failure; format errors say where in the input. */
int lls_import_raise(lua_State *L, lls_ijob *j, uint64_t at) {
  if (j->err.code == LLS_EFORMAT) {
    size_t len = strlen(j->err.message);
    snprintf(j->err.message + len, sizeof j->err.message - len, " (at byte %llu)",
             (unsigned long long)at);
  }
  return lls_raise(L, &j->err, lls_ijob_backend(j));
}
