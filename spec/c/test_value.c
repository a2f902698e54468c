/*
 * test_value.c -- standalone test of csrc/value.c and csrc/json.c.
 *
 *   cc -std=c11 -D_POSIX_C_SOURCE=200809L -O1 -g -fsanitize=address,undefined \
 *      -Icsrc csrc/value.c csrc/json.c csrc/buf.c spec/c/test_value.c -lyajl -lm
 *   ./a.out
 *
 * Prints a summary and exits non-zero on the first failure.
 * spec/filter_c_spec.lua builds and runs it.
 */
#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "value/value.h"
#include "value/json.h"

#include "check.h"

/* Deterministic randomness: splitmix64. */
static uint64_t rng_state = 0x1234567;
static uint64_t rnd(void) {
  uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
static size_t rndn(size_t n) { return (size_t)(rnd() % n); }

/* ------------------------------------------------------------ helpers */

/* Equality that also requires the same type and bit-identical floats
 * (so -0.0 != 0.0 and 1 != 1.0), unlike lls_value_equal. */
static int strict_equal(const lls_value *a, const lls_value *b) {
  if (a->type != b->type) return 0;
  switch (a->type) {
  case LLS_VNULL: return 1;
  case LLS_VBOOL: return a->u.b == b->u.b;
  case LLS_VINT: return a->u.i == b->u.i;
  case LLS_VFLOAT: return memcmp(&a->u.f, &b->u.f, sizeof(double)) == 0;
  case LLS_VSTRING:
    return a->u.s.len == b->u.s.len && memcmp(a->u.s.ptr, b->u.s.ptr, a->u.s.len) == 0 &&
           a->u.s.ptr[a->u.s.len] == '\0';
  case LLS_VARRAY:
    if (a->u.a.n != b->u.a.n) return 0;
    for (size_t i = 0; i < a->u.a.n; i++)
      if (!strict_equal(a->u.a.items[i], b->u.a.items[i])) return 0;
    return 1;
  case LLS_VOBJECT:
    if (a->u.o.n != b->u.o.n) return 0;
    for (size_t i = 0; i < a->u.o.n; i++) {
      const lls_member *x = &a->u.o.members[i], *y = &b->u.o.members[i];
      if (x->klen != y->klen || memcmp(x->key, y->key, x->klen) != 0) return 0;
      if (!strict_equal(x->value, y->value)) return 0;
    }
    return 1;
  }
  return 0;
}

/* Members strictly increasing in byte order, at every level. */
static int sorted_everywhere(const lls_value *v) {
  if (v->type == LLS_VARRAY) {
    for (size_t i = 0; i < v->u.a.n; i++)
      if (!sorted_everywhere(v->u.a.items[i])) return 0;
  } else if (v->type == LLS_VOBJECT) {
    for (size_t i = 0; i < v->u.o.n; i++) {
      const lls_member *m = &v->u.o.members[i];
      if (m->key[m->klen] != '\0') return 0;
      if (i > 0) {
        const lls_member *p = &v->u.o.members[i - 1];
        size_t n = p->klen < m->klen ? p->klen : m->klen;
        int c = memcmp(p->key, m->key, n);
        if (c > 0 || (c == 0 && p->klen >= m->klen)) return 0;
      }
      if (!sorted_everywhere(m->value)) return 0;
    }
  }
  return 1;
}

static char g_err[512];

/* Decodes text (NUL-terminated) or fails the test. */
static lls_value *dec_ok(const char *text, int line) {
  lls_value *v = lls_json_decode(text, strlen(text), g_err, sizeof g_err);
  if (v == NULL) failf(__FILE__, line, "decode of %s failed: %s", text, g_err);
  return v;
}
#define DEC(text) dec_ok(text, __LINE__)

/* Encodes v into a fresh NUL-terminated string (caller frees) or fails. */
static char *enc_ok(const lls_value *v, int line) {
  lls_buf b = {0};
  if (lls_json_encode(v, &b, g_err, sizeof g_err) != 0)
    failf(__FILE__, line, "encode failed: %s", g_err);
  if (lls_buf_append(&b, "", 1) != 0) failf(__FILE__, line, "oom");
  return b.data;
}
#define ENC(v) enc_ok(v, __LINE__)

/* decode(text) must fail; err must contain `want` (may be NULL). */
static void dec_bad(const char *text, size_t len, const char *want, int line) {
  g_err[0] = '\0';
  lls_value *v = lls_json_decode(text, len, g_err, sizeof g_err);
  g_checks++;
  if (v != NULL) {
    lls_value_free(v);
    failf(__FILE__, line, "decode of malformed input %.*s succeeded", (int)len, text);
  }
  g_checks++;
  if (strncmp(g_err, "invalid JSON at byte ", 21) != 0 && strcmp(g_err, "out of memory") != 0)
    failf(__FILE__, line, "unexpected message format: %s", g_err);
  g_checks++;
  if (want != NULL && strstr(g_err, want) == NULL)
    failf(__FILE__, line, "message for %.*s: got \"%s\", want \"%s\"", (int)len, text, g_err,
          want);
}
#define BAD(text, want) dec_bad(text, strlen(text), want, __LINE__)
#define BADN(text, len, want) dec_bad(text, len, want, __LINE__)

/* JSON text -> value -> JSON text must give `want` exactly. */
static void canon(const char *text, const char *want, int line) {
  lls_value *v = dec_ok(text, line);
  char *out = enc_ok(v, line);
  g_checks++;
  if (strcmp(out, want) != 0)
    failf(__FILE__, line, "%s encoded back as %s, want %s", text, out, want);
  /* and the canonical text is a fixed point */
  lls_value *w = dec_ok(out, line);
  g_checks++;
  if (!strict_equal(v, w)) failf(__FILE__, line, "%s does not read back the same", out);
  lls_value_free(v);
  lls_value_free(w);
  free(out);
}
#define CANON(text, want) canon(text, want, __LINE__)

/* ----------------------------------------------------------- value API */

static void test_api(void) {
  lls_value *o = lls_value_object();
  CHECK(o != NULL && o->type == LLS_VOBJECT && o->u.o.n == 0, "object");
  CHECK(lls_value_set(o, "b", 1, lls_value_int(2)) == 0, "set b");
  CHECK(lls_value_set(o, "a", 1, lls_value_int(1)) == 0, "set a");
  CHECK(lls_value_set(o, "c", 1, lls_value_string("x\0y", 3)) == 0, "set c");
  CHECK(lls_value_set(o, "", 0, lls_value_null()) == 0, "empty key");
  CHECK(lls_value_set(o, "ab", 2, lls_value_bool(7)) == 0, "set ab");
  CHECK(o->u.o.n == 5 && sorted_everywhere(o), "sorted after out-of-order sets");
  CHECK(strcmp(o->u.o.members[0].key, "") == 0 && strcmp(o->u.o.members[2].key, "ab") == 0,
        "byte order with prefixes");
  /* replacing keeps one member */
  CHECK(lls_value_set(o, "a", 1, lls_value_float(1.5)) == 0, "replace");
  CHECK(o->u.o.n == 5, "replace does not add");
  const lls_value *a = lls_value_get(o, "a", 1);
  CHECK(a != NULL && a->type == LLS_VFLOAT && a->u.f == 1.5, "get replaced");
  const lls_value *ab = lls_value_get(o, "ab", 2);
  CHECK(ab != NULL && ab->type == LLS_VBOOL && ab->u.b == 1, "bool normalised to 1");
  const lls_value *c = lls_value_get(o, "c", 1);
  CHECK(c != NULL && c->u.s.len == 3 && memcmp(c->u.s.ptr, "x\0y", 4) == 0,
        "string with NUL kept, terminated");
  CHECK(lls_value_get(o, "zz", 2) == NULL, "missing key");
  CHECK(lls_value_get(o, "abz", 2) == ab && lls_value_get(o, "abz", 3) == NULL, "length matters");
  CHECK(lls_value_get(c, "a", 1) == NULL && lls_value_get(NULL, "a", 1) == NULL,
        "get on non-object");
  /* NUL in a key and NULL values are refused without leaking */
  CHECK(lls_value_set(o, "a\0b", 3, lls_value_int(1)) == -1, "NUL key refused");
  CHECK(lls_value_set(o, "q", 1, NULL) == -1, "NULL value refused");
  CHECK(lls_value_set((lls_value *)c, "q", 1, lls_value_int(1)) == -1, "set on a string refused");
  CHECK(o->u.o.n == 5, "refusals change nothing");

  /* arrays and paths */
  lls_value *arr = lls_value_array();
  for (int i = 0; i < 1000; i++) CHECK(lls_value_push(arr, lls_value_int(i)) == 0, "push");
  CHECK(arr->u.a.n == 1000 && arr->u.a.items[999]->u.i == 999, "1000 pushes");
  CHECK(lls_value_push(arr, NULL) == -1, "push NULL refused");
  CHECK(lls_value_push(o, lls_value_int(1)) == -1, "push on object refused");
  lls_value *inner = lls_value_object();
  lls_value *deep = lls_value_object();
  CHECK(lls_value_set(deep, "name", 4, lls_value_string("ann", 3)) == 0, "deep");
  CHECK(lls_value_set(inner, "author", 6, deep) == 0, "inner");
  CHECK(lls_value_set(o, "doc", 3, inner) == 0, "doc");
  CHECK(lls_value_set(o, "list", 4, arr) == 0, "list");
  const lls_value *p = lls_value_path(o, "doc.author.name", 15);
  CHECK(p != NULL && p->type == LLS_VSTRING && strcmp(p->u.s.ptr, "ann") == 0, "path");
  CHECK(lls_value_path(o, "doc.author", 10) == deep, "path to object");
  CHECK(lls_value_path(o, "doc.author.name.x", 17) == NULL, "path through a string");
  CHECK(lls_value_path(o, "doc.nobody.name", 15) == NULL, "path through a missing key");
  CHECK(lls_value_path(o, "list.1", 6) == NULL, "paths do not index arrays");
  CHECK(lls_value_path(o, "a", 1) == a, "one-segment path");
  CHECK(lls_value_path(o, "doc.author.name", 10) == deep, "path length respected");

  /* copy, equality, bytes */
  lls_value *cp = lls_value_copy(o);
  CHECK(cp != NULL && cp != o && strict_equal(cp, o) && lls_value_equal(cp, o), "deep copy");
  CHECK(sorted_everywhere(cp), "copy sorted");
  CHECK(lls_value_push((lls_value *)lls_value_get(cp, "list", 4), lls_value_int(5)) == 0,
        "push onto a copied array");
  CHECK(!lls_value_equal(cp, o), "arrays of different length differ");
  CHECK(lls_value_set(cp, "zzz", 3, lls_value_int(1)) == 0, "set on a copied object");
  size_t bytes = lls_value_bytes(o);
  CHECK(bytes > 1000 * sizeof(lls_value) && bytes < 100000, "bytes plausible: %zu", bytes);
  CHECK(lls_value_bytes(NULL) == 0, "bytes of NULL");
  lls_value_free(cp);
  lls_value_free(o);
  lls_value_free(NULL);

  /* many keys in random order stay sorted and findable */
  lls_value *big = lls_value_object();
  enum { NKEYS = 4000 };
  for (int i = 0; i < NKEYS; i++) {
    char k[32];
    int kn = snprintf(k, sizeof k, "k%llu", (unsigned long long)(rnd() % 100000));
    CHECK(lls_value_set(big, k, (size_t)kn, lls_value_int(i)) == 0, "big set");
  }
  CHECK(sorted_everywhere(big), "big object sorted");
  for (size_t i = 0; i < big->u.o.n; i++) {
    const lls_member *m = &big->u.o.members[i];
    CHECK(lls_value_get(big, m->key, m->klen) == m->value, "big get");
  }
  lls_value_free(big);
}

static void test_equal_compare(void) {
  const double two53 = 9007199254740992.0;
  const int64_t i53 = INT64_C(9007199254740992);
  struct {
    lls_value *a, *b;
    int comparable, cmp, equal;
  } cases[] = {
      {lls_value_int(1), lls_value_float(1.0), 1, 0, 1},
      {lls_value_int(1), lls_value_float(1.5), 1, -1, 0},
      {lls_value_int(2), lls_value_float(1.5), 1, 1, 0},
      {lls_value_int(-1), lls_value_float(-1.5), 1, 1, 0},
      {lls_value_int(-2), lls_value_float(-1.5), 1, -1, 0},
      {lls_value_int(0), lls_value_float(-0.0), 1, 0, 1},
      {lls_value_int(i53 + 1), lls_value_float(two53), 1, 1, 0},
      {lls_value_int(i53), lls_value_float(two53), 1, 0, 1},
      {lls_value_int(i53 - 1), lls_value_float(two53), 1, -1, 0},
      {lls_value_float(two53), lls_value_int(i53 + 1), 1, -1, 0},
      {lls_value_int(INT64_MAX), lls_value_float(9223372036854775808.0), 1, -1, 0},
      {lls_value_int(INT64_MAX), lls_value_float(9223372036854774784.0), 1, 1, 0},
      {lls_value_int(INT64_MIN), lls_value_float(-9223372036854775808.0), 1, 0, 1},
      {lls_value_int(INT64_MIN + 1), lls_value_float(-9223372036854775808.0), 1, 1, 0},
      {lls_value_int(INT64_MIN), lls_value_float(-9223372036854777856.0), 1, 1, 0},
      {lls_value_int(INT64_MIN), lls_value_float(-1e300), 1, 1, 0},
      {lls_value_int(INT64_MAX), lls_value_float(1e300), 1, -1, 0},
      {lls_value_int(5), lls_value_int(7), 1, -1, 0},
      {lls_value_int(INT64_MIN), lls_value_int(INT64_MAX), 1, -1, 0},
      {lls_value_float(0.1), lls_value_float(0.2), 1, -1, 0},
      {lls_value_float(0.0), lls_value_float(-0.0), 1, 0, 1},
      {lls_value_string("a", 1), lls_value_string("b", 1), 1, -1, 0},
      {lls_value_string("ab", 2), lls_value_string("a", 1), 1, 1, 0},
      {lls_value_string("", 0), lls_value_string("", 0), 1, 0, 1},
      {lls_value_string("\xc3\xa9", 2), lls_value_string("z", 1), 1, 1, 0},
      {lls_value_string("a\0b", 3), lls_value_string("a\0c", 3), 1, -1, 0},
      {lls_value_string("1", 1), lls_value_int(1), 0, 0, 0},
      {lls_value_bool(1), lls_value_bool(1), 0, 0, 1},
      {lls_value_bool(1), lls_value_bool(0), 0, 0, 0},
      {lls_value_bool(1), lls_value_int(1), 0, 0, 0},
      {lls_value_null(), lls_value_null(), 0, 0, 1},
      {lls_value_null(), lls_value_bool(0), 0, 0, 0},
      {lls_value_array(), lls_value_object(), 0, 0, 0},
      {lls_value_array(), lls_value_array(), 0, 0, 1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int cmp = 99;
    int comparable = lls_value_compare(cases[i].a, cases[i].b, &cmp);
    CHECK(comparable == cases[i].comparable, "case %zu: comparable %d", i, comparable);
    if (comparable) CHECK(cmp == cases[i].cmp, "case %zu: cmp %d want %d", i, cmp, cases[i].cmp);
    CHECK(lls_value_equal(cases[i].a, cases[i].b) == cases[i].equal, "case %zu: equal", i);
    CHECK(lls_value_equal(cases[i].b, cases[i].a) == cases[i].equal, "case %zu: symmetric", i);
    if (comparable) {
      int back = 99;
      CHECK(lls_value_compare(cases[i].b, cases[i].a, &back) && back == -cmp,
            "case %zu: antisymmetric", i);
    }
    lls_value_free(cases[i].a);
    lls_value_free(cases[i].b);
  }
  CHECK(lls_value_compare(NULL, NULL, &(int){0}) == 0, "NULL incomparable");
  CHECK(lls_value_equal(NULL, NULL) == 0, "NULL equals nothing");

  /* deep structural equality: int/float mix inside, keys must match */
  lls_value *x = DEC("{\"a\":[1,2.0,{\"b\":null}],\"c\":\"s\"}");
  lls_value *y = DEC("{\"c\":\"s\",\"a\":[1.0,2,{\"b\":null}]}");
  lls_value *z = DEC("{\"c\":\"s\",\"a\":[1.0,2,{\"B\":null}]}");
  lls_value *w = DEC("{\"c\":\"s\",\"a\":[1.0,2,{\"b\":null}],\"d\":1}");
  CHECK(lls_value_equal(x, y), "deep equal with int/float mix");
  CHECK(!lls_value_equal(x, z), "different key");
  CHECK(!lls_value_equal(x, w), "extra member");
  lls_value_free(x);
  lls_value_free(y);
  lls_value_free(z);
  lls_value_free(w);
}

/* ------------------------------------------------------------- JSON */

static void test_json_numbers(void) {
  lls_value *v = DEC("[9223372036854775807,-9223372036854775808,0,-0,9007199254740993]");
  CHECK(v->u.a.items[0]->type == LLS_VINT && v->u.a.items[0]->u.i == INT64_MAX, "int64 max");
  CHECK(v->u.a.items[1]->type == LLS_VINT && v->u.a.items[1]->u.i == INT64_MIN, "int64 min");
  CHECK(v->u.a.items[2]->type == LLS_VINT && v->u.a.items[2]->u.i == 0, "zero");
  CHECK(v->u.a.items[3]->type == LLS_VINT && v->u.a.items[3]->u.i == 0, "-0 is integer 0");
  CHECK(v->u.a.items[4]->type == LLS_VINT && v->u.a.items[4]->u.i == INT64_C(9007199254740993),
        "2^53 + 1 exact");
  char *s = ENC(v);
  CHECK(strcmp(s, "[9223372036854775807,-9223372036854775808,0,0,9007199254740993]") == 0,
        "ints written exactly: %s", s);
  free(s);
  lls_value_free(v);

  /* beyond int64: floats, not errors */
  v = DEC("[9223372036854775808,-9223372036854775809,123456789012345678901234567890]");
  CHECK(v->u.a.items[0]->type == LLS_VFLOAT && v->u.a.items[0]->u.f == 9223372036854775808.0,
        "2^63 becomes a float");
  CHECK(v->u.a.items[1]->type == LLS_VFLOAT && v->u.a.items[1]->u.f == -9223372036854775808.0,
        "-2^63-1 becomes a float");
  CHECK(v->u.a.items[2]->type == LLS_VFLOAT && v->u.a.items[2]->u.f == 1.2345678901234568e29,
        "30 digits");
  lls_value_free(v);

  v = DEC("[1.0,1e2,1E2,-2.5e-3,0.1,1e-400,2.2250738585072014e-308,4.9e-324]");
  for (size_t i = 0; i < v->u.a.n; i++)
    CHECK(v->u.a.items[i]->type == LLS_VFLOAT, "item %zu is a float", i);
  CHECK(v->u.a.items[0]->u.f == 1.0 && v->u.a.items[1]->u.f == 100.0, "1.0, 1e2");
  CHECK(v->u.a.items[4]->u.f == 0.1, "0.1 exact");
  CHECK(v->u.a.items[5]->u.f == 0.0, "underflow to 0");
  CHECK(v->u.a.items[7]->u.f == 4.9406564584124654e-324, "denormal");
  lls_value_free(v);

  /* canonical float text: shortest that round-trips, always float-looking */
  CANON("[1.0,0.1,1e300,-0.0,0.0,100.0,1e20,1e21,123456789.0]",
        "[1.0,0.1,1e+300,-0.0,0.0,100.0,1e+20,1e+21,123456789.0]");
  CANON("[0.30000000000000004,1.7976931348623157e308,5e-324,-2.5e-3]",
        "[0.30000000000000004,1.7976931348623157e+308,4.94065645841247e-324,-0.0025]");
  CANON("[9007199254740993.0,3.141592653589793,2.718281828459045]",
        "[9007199254740992.0,3.141592653589793,2.718281828459045]");
  v = DEC("-0.0");
  CHECK(v->type == LLS_VFLOAT && v->u.f == 0.0 && signbit(v->u.f), "-0.0 keeps its sign");
  lls_value_free(v);

  /* floats that are whole numbers stay floats through a round trip */
  lls_value *f = lls_value_float(3.0);
  s = ENC(f);
  CHECK(strcmp(s, "3.0") == 0, "3.0: %s", s);
  lls_value *back = DEC(s);
  CHECK(back->type == LLS_VFLOAT && back->u.f == 3.0, "3.0 reads back as a float");
  free(s);
  lls_value_free(back);
  lls_value_free(f);

  /* random finite doubles round-trip bit for bit */
  for (int i = 0; i < 20000; i++) {
    uint64_t bits = rnd();
    double d;
    memcpy(&d, &bits, sizeof d);
    if (!isfinite(d)) continue;
    lls_value *x = lls_value_float(d);
    s = ENC(x);
    lls_value *y = DEC(s);
    CHECK(strict_equal(x, y), "double %a via %s", d, s);
    CHECK(strpbrk(s, ".eE") != NULL, "float text %s looks like a float", s);
    free(s);
    lls_value_free(x);
    lls_value_free(y);
  }
  /* random int64 round-trip exactly */
  for (int i = 0; i < 20000; i++) {
    int64_t n = (int64_t)rnd() >> rndn(64);
    lls_value *x = lls_value_int(n);
    s = ENC(x);
    lls_value *y = DEC(s);
    CHECK(strict_equal(x, y), "int %lld via %s", (long long)n, s);
    free(s);
    lls_value_free(x);
    lls_value_free(y);
  }

  /* NaN and infinities are refused, naming the path */
  lls_value *o = DEC("{\"a\":{\"b\":[1,2]}}");
  lls_value *arr = (lls_value *)lls_value_path(o, "a.b", 3);
  CHECK(lls_value_push(arr, lls_value_float(NAN)) == 0, "push NaN");
  lls_buf b = {0};
  CHECK(lls_json_encode(o, &b, g_err, sizeof g_err) == -1, "NaN refused");
  CHECK(strcmp(g_err, "$.a.b[3]: NaN and infinity cannot be written as JSON") == 0, "msg: %s",
        g_err);
  arr->u.a.items[2]->u.f = -INFINITY;
  CHECK(lls_json_encode(o, &b, g_err, sizeof g_err) == -1, "-inf refused");
  CHECK(b.len == 0, "nothing written on failure");
  lls_buf_free(&b);
  lls_value_free(o);
  BAD("[1e400]", "number out of range");
  BAD("-1e400", "number out of range");
}

static void test_json_strings(void) {
  /* escapes both ways; "/" stays unescaped; control characters as \u00XX */
  CANON("\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u0001\\u001f e\"",
        "\"a\\\"b\\\\c/d\\b\\f\\n\\r\\t\\u0001\\u001F e\"");
  /* unicode: raw and escaped forms read the same, written raw */
  CANON("\"\\u00e9\\u4e2d\\ud83d\\ude00\"", "\"\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80\"");
  CANON("\"\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80\"", "\"\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80\"");
  CANON("\"\\uD83D\\uDE00\\uFFFF\\u0080\"", "\"\xf0\x9f\x98\x80\xef\xbf\xbf\xc2\x80\"");
  CANON("{\"\\u00e9t\\u00e9\":\"\\u00e9\"}", "{\"\xc3\xa9t\xc3\xa9\":\"\xc3\xa9\"}");
  /* a NUL inside a string survives */
  lls_value *v = DEC("\"a\\u0000b\"");
  CHECK(v->type == LLS_VSTRING && v->u.s.len == 3 && memcmp(v->u.s.ptr, "a\0b", 3) == 0,
        "NUL in a string");
  char *s = ENC(v);
  CHECK(strcmp(s, "\"a\\u0000b\"") == 0, "NUL written as \\u0000: %s", s);
  free(s);
  lls_value_free(v);
  CANON("\"\"", "\"\"");

  /* invalid UTF-8 is refused on the way out, naming the path */
  lls_value *o = lls_value_object();
  lls_value *tags = lls_value_array();
  CHECK(lls_value_push(tags, lls_value_string("ok", 2)) == 0, "tag");
  CHECK(lls_value_push(tags, lls_value_string("bad\xff", 4)) == 0, "tag");
  CHECK(lls_value_set(o, "tags", 4, tags) == 0, "tags");
  lls_buf b = {0};
  CHECK(lls_buf_append(&b, "keep", 4) == 0, "prefix");
  CHECK(lls_json_encode(o, &b, g_err, sizeof g_err) == -1, "bad UTF-8 refused");
  CHECK(strcmp(g_err, "$.tags[2]: string is not valid UTF-8") == 0, "msg: %s", g_err);
  CHECK(b.len == 4 && memcmp(b.data, "keep", 4) == 0, "buffer left as it was");
  const char *bad[] = {"\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe4\xb8", "\x80",
                       "\xf8\x88\x80\x80\x80", "\xe0\x80\xaf", "\xf0\x80\x80\xaf"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    tags->u.a.items[1]->u.s.len = 0; /* reuse the slot: swap in the bad bytes */
    lls_value_free(tags->u.a.items[1]);
    tags->u.a.items[1] = lls_value_string(bad[i], strlen(bad[i]));
    CHECK(lls_json_encode(o, &b, g_err, sizeof g_err) == -1, "bad UTF-8 %zu refused", i);
  }
  lls_value_free(tags->u.a.items[1]);
  tags->u.a.items[1] = lls_value_string("\xf4\x8f\xbf\xbf", 4); /* U+10FFFF is fine */
  CHECK(lls_json_encode(o, &b, g_err, sizeof g_err) == 0, "U+10FFFF accepted: %s", g_err);
  lls_buf_free(&b);
  /* an invalid key too */
  CHECK(lls_value_set(o, "k\xfe", 2, lls_value_int(1)) == 0, "bad key set");
  CHECK(lls_json_encode(o, &b, g_err, sizeof g_err) == -1, "bad key refused");
  CHECK(strstr(g_err, "key is not valid UTF-8") != NULL, "msg: %s", g_err);
  lls_buf_free(&b);
  lls_value_free(o);

  /* ... and on the way in */
  BAD("\"\xff\"", "UTF");
  BAD("\"\xc0\x80\"", "UTF");          /* overlong NUL */
  BAD("\"\xed\xa0\x80\"", "UTF");      /* raw surrogate */
  BAD("\"\xf4\x90\x80\x80\"", "UTF");  /* past U+10FFFF */
  BAD("\"\xe0\x80\xaf\"", "UTF");      /* overlong '/' */
  BAD("{\"\xc3\":1}", "UTF");
  BAD("\"\\ud800\"", "surrogate");       /* lone high */
  BAD("\"\\udc00\"", "surrogate");       /* lone low */
  BAD("\"\\ud800\\u0041\"", "surrogate"); /* high then not-low */
  BAD("\"\\ud800x\"", "surrogate");
  BAD("[\"ok\",\"\\ude00\\ud83d\"]", "surrogate"); /* reversed pair */
  BAD("{\"a\\u0000b\":1}", "NUL");
  BAD("\"\\x41\"", NULL);
  BAD("\"\\u00g1\"", NULL);
  BAD("\"a\nb\"", NULL); /* raw control character */
  /* an escaped backslash before "u" is not an escape */
  CANON("\"\\\\ud800\"", "\"\\\\ud800\"");
  /* whitespace is space, tab, LF and CR only (RFC 8259): yajl also takes
   * form feed and vertical tab */
  BAD("[1,\f2]", "at byte 4: a form feed outside a string");
  BAD("\v[1]", "at byte 1: a vertical tab outside a string");
  BAD("{\"a\":1}\f", "form feed");
  BAD("{\"a\"\v:1}", "vertical tab");
  BAD("[1,,2]\f", "parse error"); /* yajl's own error comes first */
  CANON(" \t\n\r[1, \"\\f\\u000b\"]\r\n", "[1,\"\\f\\u000B\"]");
}

static void test_json_structure(void) {
  /* deterministic: members sorted whatever the input order, no spaces */
  CANON(" { \"b\" : [ true , false , null ] ,\n\t\"a\" : 1 ,"
        " \"c\" : { \"e\" : {} , \"d\" : [] } } ",
        "{\"a\":1,\"b\":[true,false,null],\"c\":{\"d\":[],\"e\":{}}}");
  CANON("[]", "[]");
  CANON("{}", "{}");
  CANON("null", "null");
  CANON("true", "true");
  CANON("\"x\"", "\"x\"");
  CANON("-12", "-12");
  CANON("{\"\":1,\"a\":2,\"A\":3,\"ab\":4,\"\xc3\xa9\":5,\"b\":6}",
        "{\"\":1,\"A\":3,\"a\":2,\"ab\":4,\"b\":6,\"\xc3\xa9\":5}");
  /* duplicate keys: the last one wins */
  CANON("{\"a\":1,\"a\":2}", "{\"a\":2}");
  CANON("{\"b\":1,\"a\":[1],\"b\":{\"x\":1},\"a\":3,\"b\":\"last\"}", "{\"a\":3,\"b\":\"last\"}");
  /* encoding an object built out of order is sorted too */
  lls_value *o = lls_value_object();
  const char *keys[] = {"zeta", "alpha", "mu", "beta", "alp"};
  for (int i = 0; i < 5; i++)
    CHECK(lls_value_set(o, keys[i], strlen(keys[i]), lls_value_int(i)) == 0, "set");
  char *s = ENC(o);
  CHECK(strcmp(s, "{\"alp\":4,\"alpha\":1,\"beta\":3,\"mu\":2,\"zeta\":0}") == 0, "%s", s);
  free(s);
  lls_value_free(o);

  /* depth: 128 levels read and write, 129 do not, either way (yajl's
   * generator alone stops at 127: json.c splits the writing) */
  char deep[600];
  for (int d = LLS_MAX_DEPTH - 2; d <= LLS_MAX_DEPTH + 2; d++) {
    int n = 0;
    for (int i = 0; i < d; i++) deep[n++] = '[';
    for (int i = 0; i < d; i++) deep[n++] = ']';
    deep[n] = '\0';
    lls_value *v = lls_json_decode(deep, (size_t)n, g_err, sizeof g_err);
    if (d <= LLS_MAX_DEPTH) {
      CHECK(v != NULL, "depth %d accepted: %s", d, g_err);
      s = ENC(v);
      CHECK(strcmp(s, deep) == 0, "depth %d written back", d);
      free(s);
      /* one more level on the outside cannot be written */
      lls_value *outer = lls_value_array();
      CHECK(lls_value_push(outer, v) == 0, "wrap");
      lls_buf b = {0};
      int rc = lls_json_encode(outer, &b, g_err, sizeof g_err);
      CHECK((d + 1 <= LLS_MAX_DEPTH) == (rc == 0), "depth %d on encode", d + 1);
      if (rc != 0) CHECK(strstr(g_err, "nested too deeply") != NULL, "msg: %s", g_err);
      lls_buf_free(&b);
      lls_value_free(outer);
    } else {
      CHECK(v == NULL, "depth %d refused", d);
      CHECK(strstr(g_err, "nested deeper than 128 levels") != NULL, "msg: %s", g_err);
    }
  }
  /* objects and arrays mixed, with members around the deep part, written
   * byte for byte across the generator splits (levels 64 and 128) */
  {
    static const char *const open_[2] = {"{\"a\":\"s\",\"b\":", "[1,"};
    static const char *const close_[2] = {",\"c\":0.5}", ",2]"};
    lls_buf text = {0};
    for (int i = 0; i < LLS_MAX_DEPTH; i++) lls_buf_append(&text, open_[i % 2], strlen(open_[i % 2]));
    lls_buf_append(&text, "null", 4);
    for (int i = LLS_MAX_DEPTH; i-- > 0;)
      lls_buf_append(&text, close_[i % 2], strlen(close_[i % 2]));
    lls_value *v = lls_json_decode(text.data, text.len, g_err, sizeof g_err);
    CHECK(v != NULL, "mixed 128 levels: %s", g_err);
    lls_buf out = {0};
    CHECK(lls_json_encode(v, &out, g_err, sizeof g_err) == 0, "mixed encode: %s", g_err);
    CHECK(out.len == text.len && memcmp(out.data, text.data, text.len) == 0,
          "mixed written back: %.*s", (int)(out.len < 200 ? out.len : 200), out.data);
    /* a bad string deep down is refused, named by its path, nothing written */
    lls_value *at = v;
    for (int i = 0; i < LLS_MAX_DEPTH - 2; i++)
      at = i % 2 ? at->u.a.items[1] : (lls_value *)lls_value_get(at, "b", 1);
    CHECK(at->type == LLS_VOBJECT, "level 127 is an object");
    CHECK(lls_value_set(at, "b", 1, lls_value_string("\xff", 1)) == 0, "bad string set");
    out.len = 0;
    CHECK(lls_json_encode(v, &out, g_err, sizeof g_err) != 0, "bad string refused");
    CHECK(strncmp(g_err, "$.b[2].b[2]", 11) == 0 &&
              strstr(g_err, "...: string is not valid UTF-8") != NULL,
          "bad string msg: %s", g_err);
    CHECK(out.len == 0, "nothing half written");
    lls_buf_free(&out);
    lls_buf_free(&text);
    lls_value_free(v);
  }
  /* a value builder holds a record around its value: 129 levels */
  {
    lls_vbuild *b = lls_vbuild_new();
    CHECK(b != NULL, "vbuild");
    for (int i = 0; i < LLS_MAX_DEPTH + 1; i++) CHECK(lls_vbuild_start_array(b), "open %d", i);
    CHECK(!lls_vbuild_start_array(b), "level 130 refused");
    CHECK(strstr(lls_vbuild_error(b), "nested deeper than 128 levels") != NULL, "msg: %s",
          lls_vbuild_error(b));
    lls_vbuild_reset(b);
    for (int i = 0; i < LLS_MAX_DEPTH + 1; i++) CHECK(lls_vbuild_start_array(b), "again %d", i);
    for (int i = 0; i < LLS_MAX_DEPTH + 1; i++) CHECK(lls_vbuild_end_array(b), "close %d", i);
    lls_value *v = lls_vbuild_take(b);
    CHECK(v != NULL && v->type == LLS_VARRAY, "129 levels built");
    lls_value_free(v);
    lls_vbuild_free(b);
  }
  /* objects count as levels too, and a very deep input fails cleanly */
  {
    size_t n = 0, cap = 200000;
    char *t = malloc(cap);
    while (n + 6 < cap / 2) n += (size_t)sprintf(t + n, "{\"a\":");
    BADN(t, n, "nested deeper than 128 levels");
    free(t);
  }

  /* malformed inputs */
  BAD("", "premature EOF");
  BAD("   ", "premature EOF");
  BAD("{", NULL);
  BAD("[1,2", NULL);
  BAD("{\"a\":1", NULL);
  BAD("{\"a\":", NULL);
  BAD("{\"a\"}", NULL);
  BAD("{\"a\":}", NULL);
  BAD("[1,]", NULL);
  BAD("[,1]", NULL);
  BAD("{,}", NULL);
  BAD("{\"a\":1,}", NULL);
  BAD("{1:2}", NULL);
  BAD("\"abc", NULL);
  BAD("tru", NULL);
  BAD("nul", NULL);
  BAD("01", NULL);
  BAD("1.", NULL);
  BAD(".5", NULL);
  BAD("+1", NULL);
  BAD("1e", NULL);
  BAD("NaN", NULL);
  BAD("Infinity", NULL);
  BAD("-Infinity", NULL);
  BAD("'a'", NULL);
  BAD("{a:1}", NULL);
  BAD("[1] x", "trailing garbage");
  BAD("{} {}", "trailing garbage");
  BAD("1 2", "trailing garbage");
  BAD("[1]]", NULL);
  BAD("/* c */ 1", NULL);
  BAD("[1] // c", NULL);
  BADN("[1,\0 2]", 6, NULL);
  BADN("1\0", 2, NULL);
  /* whitespace around a value is fine */
  lls_value *v = DEC(" \n\t[1]\r\n ");
  CHECK(v->type == LLS_VARRAY && v->u.a.n == 1, "whitespace");
  lls_value_free(v);
  /* truncations of a valid document all fail cleanly */
  const char *doc = "{\"a\":[1,2.5,\"x\\u00e9\",{\"b\":null,\"c\":true}],\"d\":-7}";
  for (size_t i = 0; i < strlen(doc); i++) {
    lls_value *t = lls_json_decode(doc, i, g_err, sizeof g_err);
    /* the only valid prefixes of this object are none at all */
    CHECK(t == NULL, "prefix of length %zu refused", i);
  }
  v = DEC(doc);
  lls_value_free(v);
  /* NULL text with length 0 */
  CHECK(lls_json_decode(NULL, 0, g_err, sizeof g_err) == NULL, "NULL text refused");
  /* err may be NULL */
  CHECK(lls_json_decode("[", 1, NULL, 0) == NULL, "NULL err buffer");

  /* a large object in reverse key order decodes fast and sorted */
  {
    size_t cap = 8 << 20, n = 0;
    char *t = malloc(cap);
    t[n++] = '{';
    for (int i = 199999; i >= 0; i--) n += (size_t)sprintf(t + n, "\"k%06d\":%d,", i, i);
    t[n - 1] = '}';
    clock_t c0 = clock();
    lls_value *big = lls_json_decode(t, n, g_err, sizeof g_err);
    double secs = (double)(clock() - c0) / CLOCKS_PER_SEC;
    CHECK(big != NULL && big->u.o.n == 200000, "200k keys: %s", g_err);
    CHECK(sorted_everywhere(big), "200k keys sorted");
    CHECK(lls_value_get(big, "k000000", 7)->u.i == 0, "first");
    CHECK(secs < 5.0, "200k reverse-ordered keys took %.2fs", secs);
    lls_value_free(big);
    free(t);
  }
}

/* Random valid UTF-8 text, with control characters, NULs and escapes. */
static lls_value *rand_string(int allow_nul) {
  char buf[64];
  size_t n = 0, want = rndn(12);
  for (size_t i = 0; i < want; i++) {
    switch (rndn(6)) {
    case 0: buf[n++] = (char)('a' + rndn(26)); break;
    case 1: buf[n++] = "\"\\/\b\f\n\r\t\x01\x1f\x7f ."[rndn(13)]; break;
    case 2:
      if (allow_nul) buf[n++] = '\0';
      else buf[n++] = 'z';
      break;
    case 3: memcpy(buf + n, "\xc3\xa9", 2), n += 2; break;
    case 4: memcpy(buf + n, "\xe2\x82\xac", 3), n += 3; break;
    default: memcpy(buf + n, "\xf0\x9f\x98\x80", 4), n += 4; break;
    }
  }
  return lls_value_string(buf, n);
}

static lls_value *rand_value(int depth) {
  static const int64_t ints[] = {0, 1, -1, INT64_MAX, INT64_MIN, INT64_C(9007199254740993)};
  static const double floats[] = {0.0, -0.0, 0.1, 1.0, -2.5, 1e300, 5e-324, 9007199254740992.0};
  int kind = (int)rndn(depth >= 5 ? 7 : 9);
  switch (kind) {
  case 0: return lls_value_null();
  case 1: return lls_value_bool((int)rndn(2));
  case 2: return lls_value_int(ints[rndn(6)]);
  case 3: return lls_value_int((int64_t)rnd() >> rndn(64));
  case 4: return lls_value_float(floats[rndn(8)]);
  case 5: {
    double d;
    do {
      uint64_t bits = rnd();
      memcpy(&d, &bits, sizeof d);
    } while (!isfinite(d));
    return lls_value_float(d);
  }
  case 6: return rand_string(1);
  case 7: {
    lls_value *a = lls_value_array();
    size_t n = rndn(5);
    for (size_t i = 0; i < n; i++) lls_value_push(a, rand_value(depth + 1));
    return a;
  }
  default: {
    lls_value *o = lls_value_object();
    size_t n = rndn(6);
    for (size_t i = 0; i < n; i++) {
      lls_value *k = rand_string(0);
      lls_value_set(o, k->u.s.ptr, k->u.s.len, rand_value(depth + 1));
      lls_value_free(k);
    }
    return o;
  }
  }
}

static void test_json_random(void) {
  for (int i = 0; i < 3000; i++) {
    lls_value *v = rand_value(0);
    char *s = ENC(v);
    lls_value *w = DEC(s);
    CHECK(strict_equal(v, w), "random value %d via %s", i, s);
    CHECK(sorted_everywhere(w), "random value %d sorted", i);
    char *s2 = ENC(w);
    CHECK(strcmp(s, s2) == 0, "re-encoding is identical: %s vs %s", s, s2);
    lls_value *c = lls_value_copy(w);
    char *s3 = ENC(c);
    CHECK(strcmp(s, s3) == 0, "copy encodes the same");
    CHECK(strchr(s, ' ') == NULL || strchr(s, '"') != NULL, "no spaces outside strings");
    free(s);
    free(s2);
    free(s3);
    lls_value_free(v);
    lls_value_free(w);
    lls_value_free(c);
  }
}

/* With a locale whose decimal point is ',' (if the system has one), text
 * stays JSON. */
static void test_locale(void) {
  const char *names[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8", "de_DE"};
  const char *got = NULL;
  for (size_t i = 0; i < sizeof names / sizeof names[0] && got == NULL; i++)
    if (setlocale(LC_NUMERIC, names[i]) != NULL) got = names[i];
  if (got == NULL) {
    printf("locale check skipped (no locale with a ',' decimal point installed)\n");
    return;
  }
  char probe[16];
  snprintf(probe, sizeof probe, "%.1f", 0.5);
  CHECK(strcmp(probe, "0,5") == 0, "locale %s in effect: %s", got, probe);
  CANON("[0.5,1e-7,2.0]", "[0.5,1e-07,2.0]");
  setlocale(LC_NUMERIC, "C");
  printf("locale check ran under %s\n", got);
}

int main(void) {
  test_api();
  test_equal_compare();
  test_json_numbers();
  test_json_strings();
  test_json_structure();
  test_json_random();
  test_locale();
  printf("ok: %d checks passed\n", g_checks);
  return 0;
}
