/*
 * test_filter.c -- standalone test of csrc/filter.c (on csrc/value.c and,
 * to write specs and metadata as text, csrc/json.c).
 *
 *   cc -std=c11 -D_POSIX_C_SOURCE=200809L -O1 -g -fsanitize=address,undefined \
 *      -Icsrc csrc/filter.c csrc/value.c csrc/json.c csrc/buf.c \
 *      spec/c/test_filter.c -lyajl -lpthread -lm
 *   ./a.out
 *
 * Every operator by hand, error messages with their paths, then random
 * filters over random metadata checked against a brute-force reference
 * evaluator written here independently of filter.c and value.c's
 * comparisons, and the same filters evaluated from several threads.
 * Exits non-zero on the first failure. spec/filter_c_spec.lua runs it.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "value/filter.h"
#include "value/json.h"
#include "value/value.h"

#include "check.h"

static uint64_t rng_state = 0xF11735;
static uint64_t rnd(void) {
  uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
static size_t rndn(size_t n) { return (size_t)(rnd() % n); }

static lls_value *json(const char *text, int line) {
  char err[256];
  lls_value *v = lls_json_decode(text, strlen(text), err, sizeof err);
  if (v == NULL) failf(__FILE__, line, "bad test JSON %s: %s", text, err);
  return v;
}

/* For failure messages: v as JSON (static buffer, one at a time). */
static const char *show(const lls_value *v) {
  static char out[4096];
  if (v == NULL) return "(none)";
  lls_buf b = {0};
  char err[128];
  if (lls_json_encode(v, &b, err, sizeof err) != 0) snprintf(out, sizeof out, "<%s>", err);
  else snprintf(out, sizeof out, "%.*s", (int)b.len, b.data);
  lls_buf_free(&b);
  return out;
}

/* -------------------------------------------------------- hand checks */

static const char *MD = "{\"year\":2024,\"score\":0.5,\"title\":\"abc\",\"draft\":false,"
                        "\"tags\":[\"x\",\"y\",3],\"author\":{\"name\":\"ann\",\"age\":41},"
                        "\"nothing\":null,\"big\":9007199254740993,"
                        "\"bigf\":9007199254740992.0,\"odd\":{\"$gt\":1},\"list\":[[1,2],3]}";

static void expect(const char *spec, const char *md, int want, int line) {
  char err[256];
  lls_value *s = json(spec, line);
  lls_value *m = md != NULL ? json(md, line) : NULL;
  lls_filter *f = lls_filter_compile(s, err, sizeof err);
  if (f == NULL) failf(__FILE__, line, "compile %s: %s", spec, err);
  lls_value_free(s); /* the filter must not depend on the spec */
  int got = lls_filter_match(f, m);
  g_checks++;
  if (got != want) failf(__FILE__, line, "%s on %s: got %d, want %d", spec, md, got, want);
  lls_filter_free(f);
  lls_value_free(m);
}
#define MATCH(spec) expect(spec, MD, 1, __LINE__)
#define NOMATCH(spec) expect(spec, MD, 0, __LINE__)

static void test_operators(void) {
  MATCH("{}");
  MATCH("[]");
  /* equality, int/float mixed as Lua's == */
  MATCH("{\"year\":2024}");
  MATCH("{\"year\":2024.0}");
  NOMATCH("{\"year\":2023}");
  NOMATCH("{\"year\":\"2024\"}");
  MATCH("{\"title\":\"abc\"}");
  NOMATCH("{\"title\":\"ab\"}");
  MATCH("{\"score\":0.5}");
  MATCH("{\"year\":{\"$eq\":2024}}");
  NOMATCH("{\"year\":{\"$ne\":2024}}");
  MATCH("{\"year\":{\"$ne\":\"2024\"}}");
  MATCH("{\"year\":2024,\"title\":\"abc\"}");
  NOMATCH("{\"year\":2024,\"title\":\"abd\"}");
  /* comparisons */
  MATCH("{\"year\":{\"$gt\":2023}}");
  NOMATCH("{\"year\":{\"$gt\":2024}}");
  MATCH("{\"year\":{\"$gte\":2024}}");
  MATCH("{\"year\":{\"$gt\":2023.5}}");
  MATCH("{\"year\":{\"$lt\":2024.5}}");
  NOMATCH("{\"year\":{\"$lte\":2023.999}}");
  MATCH("{\"year\":{\"$lte\":2024}}");
  NOMATCH("{\"year\":{\"$lt\":2024}}");
  MATCH("{\"year\":{\"$gte\":2020,\"$lt\":2025}}");
  NOMATCH("{\"year\":{\"$gte\":2020,\"$lt\":2024}}");
  NOMATCH("{\"year\":{\"$gt\":\"2000\"}}"); /* number vs string: incomparable */
  NOMATCH("{\"year\":{\"$lt\":\"2000\"}}");
  MATCH("{\"score\":{\"$gt\":0,\"$lt\":1}}");
  MATCH("{\"title\":{\"$gt\":\"ab\"}}");
  NOMATCH("{\"title\":{\"$gt\":\"abc\"}}");
  MATCH("{\"title\":{\"$gte\":\"abc\"}}");
  MATCH("{\"title\":{\"$lt\":\"abd\"}}");
  NOMATCH("{\"title\":{\"$lt\":\"B\"}}"); /* byte order: 'a' > 'B' */
  MATCH("{\"title\":{\"$lt\":\"\\u00e9\"}}");
  NOMATCH("{\"title\":{\"$gt\":1}}");
  /* exact int64/double ordering around 2^53 */
  MATCH("{\"big\":{\"$gt\":9007199254740992.0}}");
  NOMATCH("{\"big\":9007199254740992.0}");
  MATCH("{\"big\":9007199254740993}");
  MATCH("{\"bigf\":{\"$lt\":9007199254740993}}");
  MATCH("{\"bigf\":9007199254740992}");
  NOMATCH("{\"bigf\":{\"$gte\":9007199254740993}}");
  MATCH("{\"big\":{\"$lt\":9223372036854775807}}");
  MATCH("{\"big\":{\"$lt\":9223372036854775808.0}}");
  /* booleans: equality only */
  MATCH("{\"draft\":false}");
  NOMATCH("{\"draft\":true}");
  NOMATCH("{\"draft\":0}");
  MATCH("{\"draft\":{\"$ne\":true}}");
  MATCH("{\"draft\":{\"$eq\":false}}");
  MATCH("{\"draft\":{\"$in\":[true,false]}}");
  /* arrays: any element, or the whole array */
  MATCH("{\"tags\":\"x\"}");
  MATCH("{\"tags\":3}");
  MATCH("{\"tags\":3.0}");
  NOMATCH("{\"tags\":\"z\"}");
  MATCH("{\"tags\":[\"x\",\"y\",3]}");
  NOMATCH("{\"tags\":[\"x\",\"y\"]}");
  NOMATCH("{\"tags\":[\"y\",\"x\",3]}");
  NOMATCH("{\"tags\":{\"$ne\":\"x\"}}");
  MATCH("{\"tags\":{\"$ne\":\"z\"}}");
  MATCH("{\"tags\":{\"$in\":[\"z\",\"y\"]}}");
  NOMATCH("{\"tags\":{\"$nin\":[\"z\",\"y\"]}}");
  NOMATCH("{\"tags\":{\"$in\":[\"z\"]}}");
  MATCH("{\"tags\":{\"$nin\":[\"z\"]}}");
  MATCH("{\"tags\":{\"$in\":[[\"x\",\"y\",3]]}}");
  NOMATCH("{\"tags\":{\"$gt\":\"a\"}}"); /* comparisons do not look into arrays */
  MATCH("{\"list\":[1,2]}");              /* one level only: */
  NOMATCH("{\"list\":1}");
  MATCH("{\"list\":3}");
  /* $in / $nin */
  MATCH("{\"year\":{\"$in\":[2023,2024]}}");
  MATCH("{\"year\":{\"$in\":[\"a\",2024.0]}}");
  NOMATCH("{\"year\":{\"$in\":[2023,\"2024\"]}}");
  NOMATCH("{\"year\":{\"$in\":[]}}");
  MATCH("{\"year\":{\"$nin\":[]}}");
  NOMATCH("{\"year\":{\"$in\":{}}}"); /* an empty Lua table */
  MATCH("{\"year\":{\"$nin\":{}}}");
  NOMATCH("{\"year\":{\"$nin\":[2024.0]}}");
  MATCH("{\"year\":{\"$nin\":[2023]}}");
  /* nested paths and deep equality */
  MATCH("{\"author.name\":\"ann\"}");
  MATCH("{\"author.age\":{\"$gte\":40,\"$lt\":42}}");
  NOMATCH("{\"author.name.first\":\"ann\"}");
  MATCH("{\"author\":{\"name\":\"ann\",\"age\":41}}");
  MATCH("{\"author\":{\"age\":41.0,\"name\":\"ann\"}}");
  NOMATCH("{\"author\":{\"name\":\"ann\"}}");
  MATCH("{\"author\":{\"$eq\":{\"name\":\"ann\",\"age\":41}}}");
  MATCH("{\"author.missing\":{\"$exists\":false}}");
  NOMATCH("{\"tags.x\":{\"$exists\":true}}");
  MATCH("{\"odd\":{\"$eq\":{\"$gt\":1}}}"); /* $eq compares tables literally */
  /* missing fields (MongoDB) */
  NOMATCH("{\"zz\":1}");
  MATCH("{\"zz\":{\"$ne\":1}}");
  MATCH("{\"zz\":{\"$nin\":[1]}}");
  NOMATCH("{\"zz\":{\"$in\":[1]}}");
  NOMATCH("{\"zz\":{\"$gt\":0}}");
  NOMATCH("{\"zz\":{\"$gte\":0}}");
  NOMATCH("{\"zz\":{\"$lt\":0}}");
  NOMATCH("{\"zz\":{\"$lte\":0}}");
  NOMATCH("{\"zz\":{\"$exists\":true}}");
  MATCH("{\"zz\":{\"$exists\":false}}");
  NOMATCH("{\"zz\":null}");
  /* null is a present value */
  MATCH("{\"nothing\":{\"$exists\":true}}");
  MATCH("{\"nothing\":null}");
  NOMATCH("{\"nothing\":{\"$gt\":0}}");
  MATCH("{\"nothing\":{\"$ne\":0}}");
  NOMATCH("{\"year\":null}");
  /* logic */
  MATCH("{\"$and\":[{\"year\":2024},{\"title\":\"abc\"}]}");
  NOMATCH("{\"$and\":[{\"year\":2024},{\"title\":\"x\"}]}");
  MATCH("{\"$or\":[{\"year\":1},{\"title\":\"abc\"}]}");
  NOMATCH("{\"$or\":[{\"year\":1},{\"title\":\"x\"}]}");
  NOMATCH("{\"$not\":{\"year\":2024}}");
  MATCH("{\"$not\":{\"year\":1}}");
  MATCH("{\"$not\":{\"year\":2024,\"title\":\"x\"}}");
  MATCH("{\"year\":2024,\"$or\":[{\"draft\":true},{\"score\":{\"$lt\":1}}]}");
  NOMATCH("{\"year\":2024,\"$not\":{\"score\":0.5}}");
  MATCH("{\"$or\":[{\"$and\":[{\"year\":2024},{\"$not\":{\"draft\":true}}]}]}");
  NOMATCH("{\"$or\":[{\"$and\":[{\"year\":2024},{\"$not\":{\"draft\":false}}]}]}");
  MATCH("{\"$and\":[{}]}");
  MATCH("{\"$or\":[{},{\"year\":1}]}");
  NOMATCH("{\"$not\":{}}");
  NOMATCH("{\"$not\":{},\"year\":2024}");
  MATCH("{\"$or\":[{\"$not\":{}},{\"year\":2024}]}");
  MATCH("{\"$and\":[[]]}");
  /* NULL metadata counts as empty */
  expect("{}", NULL, 1, __LINE__);
  expect("{\"zz\":{\"$ne\":1}}", NULL, 1, __LINE__);
  expect("{\"year\":1}", NULL, 0, __LINE__);
  expect("{\"year\":{\"$exists\":false}}", "{}", 1, __LINE__);
  expect("{\"a\":1}", "[1]", 0, __LINE__); /* metadata that is not an object */
  /* "" is a field name like any other */
  expect("{\"\":1}", "{\"\":1}", 1, __LINE__);
  expect("{\"a.\":1}", "{\"a\":{\"\":1}}", 1, __LINE__);

  /* matches_all, bytes, NULL spec */
  char err[256];
  const char *all[] = {"{}", "[]", "{\"$and\":[{}]}", "{\"$or\":[{},{\"a\":1}]}",
                       "{\"$not\":{\"$not\":{}}}"};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
    lls_value *s = json(all[i], __LINE__);
    lls_filter *f = lls_filter_compile(s, err, sizeof err);
    CHECK(f != NULL && lls_filter_matches_all(f), "%s matches all", all[i]);
    CHECK(lls_filter_bytes(f) > 0, "bytes");
    lls_filter_free(f);
    lls_value_free(s);
  }
  lls_value *s = json("{\"a\":1,\"b.c\":{\"$in\":[1,2,3]}}", __LINE__);
  lls_filter *f = lls_filter_compile(s, err, sizeof err);
  CHECK(f != NULL && !lls_filter_matches_all(f), "not all");
  CHECK(lls_filter_bytes(f) > 3 * sizeof(lls_value), "bytes count operands");
  lls_filter_free(f);
  lls_value_free(s);
  f = lls_filter_compile(NULL, err, sizeof err);
  CHECK(f != NULL && lls_filter_matches_all(f) && lls_filter_match(f, NULL), "NULL spec");
  lls_filter_free(f);
  lls_filter_free(NULL);
}

static void expect_error(const char *spec, const char *want, int line) {
  char err[256];
  lls_value *s = json(spec, line);
  strcpy(err, "(unset)");
  lls_filter *f = lls_filter_compile(s, err, sizeof err);
  lls_value_free(s);
  g_checks++;
  if (f != NULL) {
    lls_filter_free(f);
    failf(__FILE__, line, "%s compiled, want error %s", spec, want);
  }
  g_checks++;
  if (strcmp(err, want) != 0) failf(__FILE__, line, "%s:\n got  %s\n want %s", spec, err, want);
}
#define ERR(spec, want) expect_error(spec, want, __LINE__)

static void test_errors(void) {
  ERR("{\"year\":{\"$gtx\":1}}",
      "filter.year.$gtx: unknown operator (expected $eq $ne $gt $gte $lt $lte $in $nin $exists)");
  ERR("{\"year\":{\"$and\":[{\"a\":1}]}}",
      "filter.year.$and: unknown operator (expected $eq $ne $gt $gte $lt $lte $in $nin $exists)");
  ERR("{\"$or\":[{\"a\":1},2]}", "filter.$or[2]: table expected, got number");
  ERR("{\"$or\":[[1]]}", "filter.$or[1]: table of conditions expected, got array");
  ERR("{\"a\":{\"$in\":3}}", "filter.a.$in: array expected, got number");
  ERR("{\"a\":{\"$nin\":{\"x\":1}}}", "filter.a.$nin: array expected, got table");
  ERR("{\"a\":{\"$gt\":true}}", "filter.a.$gt: number or string expected, got boolean");
  ERR("{\"a\":{\"$gte\":[1]}}", "filter.a.$gte: number or string expected, got array");
  ERR("{\"a\":{\"$lt\":null}}", "filter.a.$lt: number or string expected, got null");
  ERR("{\"a\":{\"$lte\":{\"b\":1}}}", "filter.a.$lte: number or string expected, got table");
  ERR("{\"a\":{\"$exists\":1}}", "filter.a.$exists: boolean expected, got number");
  ERR("{\"$and\":[]}", "filter.$and: non-empty array of filters expected");
  ERR("{\"$or\":{}}", "filter.$or: non-empty array of filters expected");
  ERR("{\"$and\":{\"a\":1}}", "filter.$and: array of filters expected, got table");
  ERR("{\"$or\":\"a\"}", "filter.$or: array of filters expected, got string");
  ERR("{\"$not\":5}", "filter.$not: table expected, got number");
  ERR("{\"$not\":[{\"a\":1}]}", "filter.$not: table of conditions expected, got array");
  ERR("{\"a\":{\"$gt\":1,\"b\":2}}",
      "filter.a: cannot mix operators and plain keys in one table ($gt and b)");
  ERR("{\"$foo\":1}", "filter.$foo: unknown operator (expected $and $or $not, or a field name)");
  ERR("{\"$AND\":[{}]}",
      "filter.$AND: unknown operator (expected $and $or $not, or a field name)");
  ERR("3", "filter: table expected, got number");
  ERR("\"x\"", "filter: table expected, got string");
  ERR("[1]", "filter: table of conditions expected, got array");
  ERR("{\"author.name\":{\"$gt\":{}}}",
      "filter.author.name.$gt: number or string expected, got table");
  ERR("{\"$and\":[{\"x\":1},{\"$or\":[{\"y\":{\"$lt\":null}}]}]}",
      "filter.$and[2].$or[1].y.$lt: number or string expected, got null");
  ERR("{\"$not\":{\"$or\":[{},{\"z\":{\"$in\":true}}]}}",
      "filter.$not.$or[2].z.$in: array expected, got boolean");
  ERR("{\"a\":1,\"b\":{\"$exists\":\"yes\"}}", "filter.b.$exists: boolean expected, got string");

  /* a short buffer truncates; a NULL one is allowed */
  lls_value *s = json("{\"year\":{\"$gtx\":1}}", __LINE__);
  char small[12];
  CHECK(lls_filter_compile(s, small, sizeof small) == NULL, "error");
  CHECK(strcmp(small, "filter.year") == 0, "truncated: %s", small);
  CHECK(lls_filter_compile(s, NULL, 0) == NULL, "NULL err");
  lls_value_free(s);
}

/* ------------------------------------------------ reference evaluator */

/* Exact int64 vs double order without value.c's method: rounding to double
 * is monotonic, so a strict inequality after rounding is the true one;
 * when they round equal, f is a whole number within [-2^63, 2^63]. */
static int ref_cmp_int_float(int64_t i, double f) {
  double d = (double)i;
  if (d < f) return -1;
  if (d > f) return 1;
  if (f >= 9223372036854775808.0) return -1;
  int64_t fi = (int64_t)f;
  return (i > fi) - (i < fi);
}

static int ref_isnum(const lls_value *v) { return v->type == LLS_VINT || v->type == LLS_VFLOAT; }

static int ref_numcmp(const lls_value *a, const lls_value *b) {
  if (a->type == LLS_VINT && b->type == LLS_VINT) return (a->u.i > b->u.i) - (a->u.i < b->u.i);
  if (a->type == LLS_VINT) return ref_cmp_int_float(a->u.i, b->u.f);
  if (b->type == LLS_VINT) return -ref_cmp_int_float(b->u.i, a->u.f);
  return (a->u.f > b->u.f) - (a->u.f < b->u.f);
}

static int ref_strcmp(const lls_value *a, const lls_value *b) {
  size_t i = 0;
  for (; i < a->u.s.len && i < b->u.s.len; i++) {
    unsigned char x = (unsigned char)a->u.s.ptr[i], y = (unsigned char)b->u.s.ptr[i];
    if (x != y) return x < y ? -1 : 1;
  }
  return (a->u.s.len > i) - (b->u.s.len > i);
}

/* Linear lookup, independent of the sorted order. */
static const lls_value *ref_get(const lls_value *o, const char *k, size_t klen) {
  if (o == NULL || o->type != LLS_VOBJECT) return NULL;
  for (size_t i = 0; i < o->u.o.n; i++)
    if (o->u.o.members[i].klen == klen && memcmp(o->u.o.members[i].key, k, klen) == 0)
      return o->u.o.members[i].value;
  return NULL;
}

static int ref_equal(const lls_value *a, const lls_value *b) {
  if (ref_isnum(a) && ref_isnum(b)) return ref_numcmp(a, b) == 0;
  if (a->type != b->type) return 0;
  switch (a->type) {
  case LLS_VNULL: return 1;
  case LLS_VBOOL: return !a->u.b == !b->u.b;
  case LLS_VSTRING: return ref_strcmp(a, b) == 0;
  case LLS_VARRAY:
    if (a->u.a.n != b->u.a.n) return 0;
    for (size_t i = 0; i < a->u.a.n; i++)
      if (!ref_equal(a->u.a.items[i], b->u.a.items[i])) return 0;
    return 1;
  case LLS_VOBJECT:
    if (a->u.o.n != b->u.o.n) return 0;
    for (size_t i = 0; i < a->u.o.n; i++) {
      const lls_value *other = ref_get(b, a->u.o.members[i].key, a->u.o.members[i].klen);
      if (other == NULL || !ref_equal(a->u.o.members[i].value, other)) return 0;
    }
    return 1;
  default: return 0;
  }
}

static const lls_value *ref_path(const lls_value *md, const char *key) {
  const lls_value *cur = md;
  const char *p = key;
  for (;;) {
    const char *dot = strchr(p, '.');
    size_t n = dot ? (size_t)(dot - p) : strlen(p);
    cur = ref_get(cur, p, n);
    if (cur == NULL || dot == NULL) return cur;
    p = dot + 1;
  }
}

static int ref_eq(const lls_value *field, const lls_value *x) {
  if (field == NULL) return 0;
  if (ref_equal(field, x)) return 1;
  if (field->type == LLS_VARRAY)
    for (size_t i = 0; i < field->u.a.n; i++)
      if (ref_equal(field->u.a.items[i], x)) return 1;
  return 0;
}

static int ref_in(const lls_value *field, const lls_value *list) {
  if (list->type != LLS_VARRAY) return 0; /* {} as an empty list */
  for (size_t i = 0; i < list->u.a.n; i++)
    if (ref_eq(field, list->u.a.items[i])) return 1;
  return 0;
}

/* -1 when incomparable, else the comparison result + 1 shifted to 0..2 */
static int ref_order(const lls_value *field, const lls_value *x) {
  if (field == NULL) return -1;
  if (ref_isnum(field) && ref_isnum(x)) return ref_numcmp(field, x) + 1;
  if (field->type == LLS_VSTRING && x->type == LLS_VSTRING) return ref_strcmp(field, x) + 1;
  return -1;
}

static const char *ref_ops[] = {"$eq", "$ne", "$gt",  "$gte",   "$lt",
                                "$lte", "$in", "$nin", "$exists"};
/* How often each operator came out false / true in the reference, so the
 * random test can show it exercised both outcomes of every operator. */
static long ref_outcomes[9][2];

static int ref_op1(const char *op, const lls_value *x, const lls_value *field);

static int ref_op(const char *op, const lls_value *x, const lls_value *field) {
  int r = ref_op1(op, x, field);
  for (int i = 0; i < 9; i++)
    if (strcmp(op, ref_ops[i]) == 0) ref_outcomes[i][r]++;
  return r;
}

static int ref_op1(const char *op, const lls_value *x, const lls_value *field) {
  if (strcmp(op, "$eq") == 0) return ref_eq(field, x);
  if (strcmp(op, "$ne") == 0) return !ref_eq(field, x);
  if (strcmp(op, "$in") == 0) return ref_in(field, x);
  if (strcmp(op, "$nin") == 0) return !ref_in(field, x);
  if (strcmp(op, "$exists") == 0) return (field != NULL) == (x->u.b != 0);
  int o = ref_order(field, x);
  if (o < 0) return 0;
  if (strcmp(op, "$gt") == 0) return o == 2;
  if (strcmp(op, "$gte") == 0) return o >= 1;
  if (strcmp(op, "$lt") == 0) return o == 0;
  if (strcmp(op, "$lte") == 0) return o <= 1;
  failf(__FILE__, __LINE__, "reference: unknown op %s", op);
  return 0;
}

static int ref_match(const lls_value *spec, const lls_value *md) {
  if (spec->type == LLS_VARRAY) return 1; /* [] = {} */
  for (size_t i = 0; i < spec->u.o.n; i++) {
    const char *k = spec->u.o.members[i].key;
    const lls_value *v = spec->u.o.members[i].value;
    int ok = 1;
    if (strcmp(k, "$and") == 0) {
      for (size_t j = 0; j < v->u.a.n && ok; j++) ok = ref_match(v->u.a.items[j], md);
    } else if (strcmp(k, "$or") == 0) {
      ok = 0;
      for (size_t j = 0; j < v->u.a.n && !ok; j++) ok = ref_match(v->u.a.items[j], md);
    } else if (strcmp(k, "$not") == 0) {
      ok = !ref_match(v, md);
    } else {
      const lls_value *field = ref_path(md, k);
      if (v->type == LLS_VOBJECT && v->u.o.n > 0 && v->u.o.members[0].key[0] == '$') {
        for (size_t j = 0; j < v->u.o.n && ok; j++)
          ok = ref_op(v->u.o.members[j].key, v->u.o.members[j].value, field);
      } else {
        ok = ref_op("$eq", v, field);
      }
    }
    if (!ok) return 0;
  }
  return 1;
}

/* ----------------------------------------------------- random inputs */

static lls_value *rand_scalar(void) {
  static const int64_t ints[] = {0,
                                 1,
                                 -1,
                                 2,
                                 3,
                                 10,
                                 INT64_C(9007199254740992),
                                 INT64_C(9007199254740993),
                                 INT64_C(9007199254740991),
                                 INT64_MAX,
                                 INT64_MIN,
                                 INT64_MIN + 1};
  static const double floats[] = {0.0,
                                  -0.0,
                                  0.5,
                                  1.0,
                                  1.5,
                                  2.0,
                                  2.5,
                                  3.0,
                                  9007199254740992.0,
                                  9007199254740994.0,
                                  9223372036854775808.0,
                                  -9223372036854775808.0,
                                  9223372036854774784.0,
                                  -1e300,
                                  1e300};
  static const char *strs[] = {"", "a", "b", "ab", "B", "\xc3\xa9", "a\xc3\xa9", "10"};
  switch (rndn(10)) {
  case 0: return lls_value_null();
  case 1: return lls_value_bool((int)rndn(2));
  case 2:
  case 3: return lls_value_int(ints[rndn(sizeof ints / sizeof ints[0])]);
  case 4: return lls_value_int((int64_t)rndn(7) - 3);
  case 5:
  case 6: return lls_value_float(floats[rndn(sizeof floats / sizeof floats[0])]);
  default: {
    const char *s = strs[rndn(sizeof strs / sizeof strs[0])];
    return lls_value_string(s, strlen(s));
  }
  }
}

static lls_value *rand_field_value(void) {
  if (rndn(6) == 0) {
    lls_value *a = lls_value_array();
    size_t n = rndn(4);
    for (size_t i = 0; i < n; i++) lls_value_push(a, rand_scalar());
    return a;
  }
  return rand_scalar();
}

static lls_value *rand_metadata(void) {
  lls_value *md = lls_value_object();
  static const char *fields[] = {"a", "b", "c"};
  for (int i = 0; i < 3; i++)
    if (rndn(4) != 0) lls_value_set(md, fields[i], 1, rand_field_value());
  if (rndn(4) != 0) {
    lls_value *n = lls_value_object();
    if (rndn(4) != 0) lls_value_set(n, "x", 1, rand_field_value());
    if (rndn(2) != 0) lls_value_set(n, "y", 1, rand_field_value());
    lls_value_set(md, "n", 1, n);
  } else if (rndn(3) == 0) {
    lls_value_set(md, "n", 1, rand_scalar()); /* "n.x" then runs into a scalar */
  }
  return md;
}

static lls_value *rand_operand(const char *op) {
  if (strcmp(op, "$exists") == 0) return lls_value_bool((int)rndn(2));
  if (strcmp(op, "$in") == 0 || strcmp(op, "$nin") == 0) {
    lls_value *a = lls_value_array();
    size_t n = rndn(5);
    for (size_t i = 0; i < n; i++) lls_value_push(a, rand_field_value());
    return a;
  }
  if (strcmp(op, "$eq") == 0 || strcmp(op, "$ne") == 0) return rand_field_value();
  lls_value *v;
  do {
    v = rand_scalar();
    if (v->type == LLS_VINT || v->type == LLS_VFLOAT || v->type == LLS_VSTRING) return v;
    lls_value_free(v);
  } while (1);
}

static lls_value *rand_filter(int depth) {
  static const char *fields[] = {"a", "b", "c", "n.x", "n.y", "zz", "n", "n.x.q"};
  static const char *ops[] = {"$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin",
                              "$exists"};
  lls_value *f = lls_value_object();
  size_t members = 1 + (rndn(3) == 0); /* few conjuncts, or nothing matches */
  for (size_t m = 0; m < members; m++) {
    size_t pick = rndn(10);
    if (depth < 3 && pick < 2) {
      const char *k = rndn(2) ? "$and" : "$or";
      lls_value *list = lls_value_array();
      size_t n = 1 + rndn(3);
      for (size_t i = 0; i < n; i++) lls_value_push(list, rand_filter(depth + 1));
      lls_value_set(f, k, strlen(k), list);
    } else if (depth < 3 && pick == 2) {
      lls_value_set(f, "$not", 4, rand_filter(depth + 1));
    } else {
      const char *field = fields[rndn(sizeof fields / sizeof fields[0])];
      if (rndn(3) == 0) {
        lls_value_set(f, field, strlen(field), rand_field_value());
      } else {
        lls_value *opsobj = lls_value_object();
        size_t n = 1 + (rndn(3) == 0);
        for (size_t i = 0; i < n; i++) {
          const char *op = ops[rndn(sizeof ops / sizeof ops[0])];
          lls_value_set(opsobj, op, strlen(op), rand_operand(op));
        }
        lls_value_set(f, field, strlen(field), opsobj);
      }
    }
  }
  return f;
}

/* ------------------------------------------------------ random checks */

enum { NFILTERS = 1500, NMETA = 300 };

typedef struct shared {
  lls_filter **filters;
  lls_value **metas;
  unsigned char *want; /* NFILTERS x NMETA */
  int mismatches;
} shared;

static void *worker(void *arg) {
  shared *s = arg;
  int bad = 0;
  for (int r = 0; r < 2; r++)
    for (size_t i = 0; i < NFILTERS; i++)
      for (size_t j = 0; j < NMETA; j++)
        if (lls_filter_match(s->filters[i], s->metas[j]) != s->want[i * NMETA + j]) bad++;
  return (void *)(intptr_t)bad;
}

static void test_random(void) {
  lls_value **specs = malloc(NFILTERS * sizeof *specs);
  lls_filter **filters = malloc(NFILTERS * sizeof *filters);
  lls_value **metas = malloc(NMETA * sizeof *metas);
  unsigned char *want = malloc((size_t)NFILTERS * NMETA);
  char err[256];
  for (size_t j = 0; j < NMETA; j++) metas[j] = rand_metadata();
  size_t matched = 0, total = 0, always = 0, never = 0;
  for (size_t i = 0; i < NFILTERS; i++) {
    specs[i] = rand_filter(0);
    filters[i] = lls_filter_compile(specs[i], err, sizeof err);
    CHECK(filters[i] != NULL, "random filter %s: %s", show(specs[i]), err);
    size_t hits = 0;
    for (size_t j = 0; j < NMETA; j++) {
      int ref = ref_match(specs[i], metas[j]);
      int got = lls_filter_match(filters[i], metas[j]);
      if (got != ref) {
        char spec_text[4096];
        snprintf(spec_text, sizeof spec_text, "%s", show(specs[i]));
        failf(__FILE__, __LINE__, "filter %s on %s: got %d, reference %d", spec_text,
              show(metas[j]), got, ref);
      }
      g_checks++;
      want[i * NMETA + j] = (unsigned char)got;
      hits += (size_t)got;
    }
    matched += hits;
    total += NMETA;
    always += hits == NMETA;
    never += hits == 0;
  }
  printf("random: %d filters x %d metadata, %.1f%% matches, %zu match all, %zu none\n",
         NFILTERS, NMETA, 100.0 * (double)matched / (double)total, always, never);
  /* a meaningful mix: every operator seen both true and false often */
  CHECK(matched > total / 20 && matched < total * 19 / 20, "match rate");
  CHECK(always < NFILTERS / 4 && never < NFILTERS * 3 / 4, "mixed filters");
  for (int i = 0; i < 9; i++) {
    printf("  %-8s false %6ld  true %6ld\n", ref_ops[i], ref_outcomes[i][0],
           ref_outcomes[i][1]);
    CHECK(ref_outcomes[i][0] > 200 && ref_outcomes[i][1] > 200, "%s outcomes", ref_ops[i]);
  }

  /* the same filters from four threads at once give the same answers */
  shared s = {filters, metas, want, 0};
  pthread_t th[4];
  for (int t = 0; t < 4; t++) CHECK(pthread_create(&th[t], NULL, worker, &s) == 0, "thread");
  for (int t = 0; t < 4; t++) {
    void *r;
    pthread_join(th[t], &r);
    CHECK((intptr_t)r == 0, "thread %d: %ld mismatches", t, (long)(intptr_t)r);
  }

  for (size_t i = 0; i < NFILTERS; i++) {
    lls_filter_free(filters[i]);
    lls_value_free(specs[i]);
  }
  for (size_t j = 0; j < NMETA; j++) lls_value_free(metas[j]);
  free(specs);
  free(filters);
  free(metas);
  free(want);
}

/* Pure comparison operators against the reference over many number pairs
 * near the int64/double boundaries. */
static void test_random_numbers(void) {
  static const char *ops[] = {"$gt", "$gte", "$lt", "$lte", "$eq", "$ne"};
  char err[256];
  for (int i = 0; i < 20000; i++) {
    lls_value *x, *y;
    for (int k = 0; k < 2; k++) {
      lls_value *v;
      uint64_t r = rnd();
      switch (rndn(4)) {
      case 0: v = lls_value_int((int64_t)r >> rndn(64)); break;
      case 1: {
        /* a double near an int64 power of two, or a whole-number float */
        int e = (int)rndn(64);
        double d = (double)((int64_t)1 << (e < 63 ? e : 62)) * (rndn(2) ? 1 : 2);
        d += (double)((int)rndn(5) - 2);
        v = lls_value_float(rndn(2) ? d : -d);
        break;
      }
      case 2: {
        int e = (int)rndn(63);
        int64_t b = (int64_t)1 << e;
        v = lls_value_int((rndn(2) ? b : -b) + (int64_t)rndn(5) - 2);
        break;
      }
      default: v = lls_value_float((double)((int64_t)r >> rndn(64)) + 0.5 * (double)rndn(2));
      }
      if (k == 0) x = v;
      else y = v;
    }
    const char *op = ops[rndn(6)];
    lls_value *spec = lls_value_object();
    lls_value *opo = lls_value_object();
    lls_value_set(opo, op, strlen(op), y);
    lls_value_set(spec, "v", 1, opo);
    lls_value *md = lls_value_object();
    lls_value_set(md, "v", 1, x);
    lls_filter *f = lls_filter_compile(spec, err, sizeof err);
    CHECK(f != NULL, "compile: %s", err);
    int got = lls_filter_match(f, md), ref = ref_match(spec, md);
    if (got != ref) {
      char a[4096];
      snprintf(a, sizeof a, "%s", show(spec));
      failf(__FILE__, __LINE__, "%s on %s: got %d, reference %d", a, show(md), got, ref);
    }
    g_checks++;
    lls_filter_free(f);
    lls_value_free(spec);
    lls_value_free(md);
  }
}

/* ------------------------------------------------- 128 levels deep */

typedef struct deep_job {
  const lls_filter *f;
  const lls_value *md;
  int got;
} deep_job;

static void *deep_match(void *arg) {
  deep_job *j = arg;
  j->got = lls_filter_match(j->f, j->md);
  return NULL;
}

/* Compiles spec and matches it against md on a thread with a small stack
 * (64 KiB): recursion at LLS_MAX_DEPTH levels must fit in little. */
static void expect_deep(const char *spec, const lls_value *md, int want, const char *what) {
  char err[256];
  lls_value *s = json(spec, __LINE__);
  lls_filter *f = lls_filter_compile(s, err, sizeof err);
  lls_value_free(s);
  CHECK(f != NULL, "%s: compile: %s", what, err);
  deep_job j = {f, md, -1};
  pthread_attr_t attr;
  pthread_t tid;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  CHECK(pthread_create(&tid, &attr, deep_match, &j) == 0, "%s: thread", what);
  pthread_join(tid, NULL);
  pthread_attr_destroy(&attr);
  CHECK(j.got == want, "%s: got %d, want %d", what, j.got, want);
  lls_filter_free(f);
}

/* Appends a C string (with its NUL when it is ""). */
static void add(lls_buf *b, const char *s) {
  CHECK(lls_buf_append(b, s, *s ? strlen(s) : 1) == 0, "append");
}

static void test_deep(void) {
  /* metadata: {"x":{"x":...{"y":1}...}}, 128 objects */
  lls_buf md = {0}, sp = {0};
  for (int i = 0; i + 1 < LLS_MAX_DEPTH; i++) add(&md, "{\"x\":");
  add(&md, "{\"y\":1");
  for (int i = 0; i < LLS_MAX_DEPTH; i++) add(&md, "}");
  add(&md, "");
  lls_value *m = json(md.data, __LINE__);
  /* a dotted path 128 segments long */
  add(&sp, "{\"");
  for (int i = 0; i + 1 < LLS_MAX_DEPTH; i++) add(&sp, "x.");
  add(&sp, "y\":1}");
  add(&sp, "");
  expect_deep(sp.data, m, 1, "128-segment path");
  /* equality with a 127-level operand: the filter is 128 levels */
  expect_deep(md.data, m, 1, "equality 127 levels deep"); /* {"x": <m.x>} */
  sp.len = 0;
  /* {"$not":{"$not":...{"x.x":{"$exists":true}}}}: 126 $not, 128 levels */
  for (int i = 0; i < LLS_MAX_DEPTH - 2; i++) add(&sp, "{\"$not\":");
  add(&sp, "{\"x.x\":{\"$exists\":true}}");
  for (int i = 0; i < LLS_MAX_DEPTH - 2; i++) add(&sp, "}");
  add(&sp, "");
  expect_deep(sp.data, m, 1, "126 $not");
  lls_buf_free(&sp);
  lls_buf_free(&md);
  lls_value_free(m);
}

int main(void) {
  test_deep();
  test_operators();
  test_errors();
  test_random_numbers();
  test_random();
  printf("ok: %d checks passed\n", g_checks);
  return 0;
}
