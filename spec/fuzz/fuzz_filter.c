/*
 * fuzz_filter.c -- the filter compiler (csrc/value/filter.c) on JSON text.
 *
 * Input: a filter as JSON, then optionally NUL-separated JSON metadata
 * objects to match it against (besides a few built in). The filter is
 * decoded with lls_json_decode and compiled; when it compiles, every
 * metadata object is matched and the answers are checked against filters
 * that must agree: {"$not": f} is the negation, {"$and": [f]} and
 * {"$or": [f]} the same, f read back from its own JSON the same, and a
 * filter that matches everything matches every object.
 */
#include <string.h>

#include "fuzz.h"
#include "value/filter.h"
#include "value/json.h"

/* Metadata that every compiled filter meets, so a filter alone (no
 * metadata in the input) still reaches the evaluator's paths. */
static const char *const BUILTIN[] = {
    "{}",
    "{\"category\":\"docs\",\"year\":2024,\"score\":0.5,\"draft\":false}",
    "{\"tags\":[\"a\",\"b\",1,2.5,null,[1,2]],\"n\":null,\"author\":{\"name\":\"x\",\"age\":30}}",
    "{\"year\":9007199254740993,\"f\":9007199254740992.0,\"s\":\"\\u00e9\",\"e\":[],\"o\":{}}",
    "{\"a\":{\"b\":{\"c\":[{\"d\":1}]}},\"a.b\":true,\"$eq\":1,\"\":\"empty key\"}",
};

#define NBUILTIN (sizeof BUILTIN / sizeof BUILTIN[0])
#define MAX_META 16

/* spec wrapped as {op: spec} or, with as_array, {op: [spec]}; NULL when
 * out of memory. */
static lls_value *wrap(const lls_value *spec, const char *op, int as_array) {
  lls_value *obj = lls_value_object(), *inner = lls_value_copy(spec);
  if (!obj || !inner) goto oom;
  if (as_array) {
    lls_value *arr = lls_value_array();
    if (!arr || lls_value_push(arr, inner) != 0) {
      lls_value_free(arr);
      goto oom;
    }
    inner = arr;
  }
  if (lls_value_set(obj, op, strlen(op), inner) != 0) {
    inner = NULL;
    goto oom;
  }
  return obj;
oom:
  lls_value_free(obj);
  lls_value_free(inner);
  return NULL;
}

/* Compiles spec; NULL when it does not compile (the message must then
 * say where, from the root "filter"). */
static lls_filter *compile(const lls_value *spec) {
  char err[256] = "";
  lls_filter *f = lls_filter_compile(spec, err, sizeof err);
  if (!f) FUZZ_CHECK(strncmp(err, "filter", 6) == 0 || strcmp(err, "out of memory") == 0,
                     "a compile error names no path");
  return f;
}

/* Checks the filters that must agree with f on metadata m. */
static void check_agreement(const lls_filter *f, const lls_filter *const peers[4],
                            const lls_value *m) {
  int r = lls_filter_match(f, m);
  FUZZ_CHECK(r == 0 || r == 1, "match is not 0 or 1");
  if (lls_filter_matches_all(f)) FUZZ_CHECK(r == 1, "a match-all filter rejected metadata");
  if (peers[0]) FUZZ_CHECK(lls_filter_match(peers[0], m) == !r, "$not f is not the negation");
  if (peers[1]) FUZZ_CHECK(lls_filter_match(peers[1], m) == r, "$and [f] differs from f");
  if (peers[2]) FUZZ_CHECK(lls_filter_match(peers[2], m) == r, "$or [f] differs from f");
  if (peers[3]) FUZZ_CHECK(lls_filter_match(peers[3], m) == r, "f from its JSON differs");
}

/* The spec read back from its own JSON (which must encode), or NULL. */
static lls_value *reread(const lls_value *spec) {
  lls_buf out = {0};
  char err[256];
  int rc = lls_json_encode(spec, &out, err, sizeof err);
  FUZZ_CHECK(rc == 0 || strstr(err, "out of memory"), "a decoded filter does not encode");
  lls_value *v = rc == 0 ? lls_json_decode(out.data, out.len, err, sizeof err) : NULL;
  FUZZ_CHECK(rc != 0 || v || strstr(err, "out of memory"), "encoded JSON does not decode");
  lls_buf_free(&out);
  return v;
}

/* Decodes the NUL-separated metadata objects after the filter into
 * metas[], then the built-in ones; returns how many. */
static size_t read_metas(const char *p, const char *end, lls_value **metas) {
  size_t n = 0;
  char err[256];
  while (p < end && n < MAX_META) {
    const char *z = memchr(p, '\0', (size_t)(end - p));
    const char *stop = z ? z : end;
    lls_value *m = lls_json_decode(p, (size_t)(stop - p), err, sizeof err);
    if (m && m->type == LLS_VOBJECT)
      metas[n++] = m;
    else
      lls_value_free(m);
    p = z ? z + 1 : end;
  }
  for (size_t i = 0; i < NBUILTIN; i++) {
    lls_value *m = lls_json_decode(BUILTIN[i], strlen(BUILTIN[i]), err, sizeof err);
    FUZZ_CHECK(m != NULL, "a built-in metadata object does not decode");
    metas[n++] = m;
  }
  return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *text = (const char *)data, *end = text + size;
  const char *z = memchr(text, '\0', size);
  char err[256];
  lls_value *spec = lls_json_decode(text, z ? (size_t)(z - text) : size, err, sizeof err);
  if (!spec) return 0;
  lls_filter *f = compile(spec);
  if (f) {
    (void)lls_filter_bytes(f);
    lls_value *wrapped[4] = {wrap(spec, "$not", 0), wrap(spec, "$and", 1),
                             wrap(spec, "$or", 1), reread(spec)};
    lls_filter *peers[4];
    for (int i = 0; i < 4; i++) {
      peers[i] = wrapped[i] ? compile(wrapped[i]) : NULL;
      /* wrapping adds a level: the wrapped form must compile when f does */
      FUZZ_CHECK(!wrapped[i] || peers[i], "f compiles but a wrapped f does not");
    }
    lls_value *metas[MAX_META + NBUILTIN];
    size_t n = read_metas(z ? z + 1 : end, end, metas);
    for (size_t i = 0; i < n; i++) {
      check_agreement(f, (const lls_filter *const *)peers, metas[i]);
      if (i == n - NBUILTIN) /* BUILTIN[0], the empty object */
        FUZZ_CHECK(lls_filter_match(f, NULL) == lls_filter_match(f, metas[i]),
                   "NULL metadata does not count as an empty object");
      lls_value_free(metas[i]);
    }
    for (int i = 0; i < 4; i++) {
      lls_filter_free(peers[i]);
      lls_value_free(wrapped[i]);
    }
    lls_filter_free(f);
  }
  lls_value_free(spec);
  return 0;
}
