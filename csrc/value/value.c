/*
 * value.c -- metadata value trees (see value.h). No Lua, no global state.
 *
 * Arrays and objects carry no capacity field: their capacity is a function
 * of their length (cap_for below), so every allocation of an item or member
 * vector in this file must use cap_for(n) slots. Appending is then amortised
 * O(1), and json.c can build large arrays with lls_value_push alone.
 */
#include "value/value.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The number of slots allocated for a vector holding n elements: 0 for an
 * empty vector, else the smallest power of two >= max(n, 4). */
static size_t cap_for(size_t n) {
  if (n == 0) return 0;
  size_t c = 4;
  while (c < n) c *= 2;
  return c;
}

/* Grows *vec (of elements of size `size`, currently n of them) so that one
 * more fits. 0, or -1 when out of memory or the size would overflow. */
static int grow_for_one(void **vec, size_t n, size_t size) {
  if (n < cap_for(n)) return 0;
  size_t cap = n == 0 ? 4 : n * 2; /* == cap_for(n + 1) when the vector is full */
  if (cap > SIZE_MAX / size) return -1;
  void *p = realloc(*vec, cap * size);
  if (p == NULL) return -1;
  *vec = p;
  return 0;
}

static lls_value *new_value(lls_vtype type) {
  lls_value *v = calloc(1, sizeof *v);
  if (v != NULL) v->type = type;
  return v;
}

lls_value *lls_value_null(void) { return new_value(LLS_VNULL); }

lls_value *lls_value_bool(int b) {
  lls_value *v = new_value(LLS_VBOOL);
  if (v != NULL) v->u.b = b != 0; /* normalised so equality is a plain == */
  return v;
}

lls_value *lls_value_int(int64_t i) {
  lls_value *v = new_value(LLS_VINT);
  if (v != NULL) v->u.i = i;
  return v;
}

lls_value *lls_value_float(double f) {
  lls_value *v = new_value(LLS_VFLOAT);
  if (v != NULL) v->u.f = f;
  return v;
}

lls_value *lls_value_string(const char *p, size_t len) {
  if (len == SIZE_MAX) return NULL;
  lls_value *v = new_value(LLS_VSTRING);
  if (v == NULL) return NULL;
  v->u.s.ptr = malloc(len + 1);
  if (v->u.s.ptr == NULL) {
    free(v);
    return NULL;
  }
  if (len > 0) memcpy(v->u.s.ptr, p, len);
  v->u.s.ptr[len] = '\0';
  v->u.s.len = len;
  return v;
}

lls_value *lls_value_array(void) { return new_value(LLS_VARRAY); }

lls_value *lls_value_object(void) { return new_value(LLS_VOBJECT); }

int lls_value_push(lls_value *array, lls_value *item) {
  if (item == NULL) return -1; /* lets callers pass a failed constructor straight in */
  if (array == NULL || array->type != LLS_VARRAY) {
    lls_value_free(item);
    return -1;
  }
  void *items = array->u.a.items;
  if (grow_for_one(&items, array->u.a.n, sizeof(lls_value *)) != 0) {
    lls_value_free(item);
    return -1;
  }
  array->u.a.items = items;
  array->u.a.items[array->u.a.n++] = item;
  return 0;
}

/* Byte order, then length: the order members are kept in. */
static int key_cmp(const char *a, size_t alen, const char *b, size_t blen) {
  size_t n = alen < blen ? alen : blen;
  int c = n > 0 ? memcmp(a, b, n) : 0;
  if (c != 0) return c;
  return alen < blen ? -1 : alen > blen ? 1 : 0;
}

/* Binary search: the index of key, or (when absent, *found = 0) the index
 * it would be inserted at. */
static size_t find_member(const lls_value *o, const char *key, size_t klen, int *found) {
  size_t lo = 0, hi = o->u.o.n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    const lls_member *m = &o->u.o.members[mid];
    int c = key_cmp(m->key, m->klen, key, klen);
    if (c == 0) {
      *found = 1;
      return mid;
    }
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  *found = 0;
  return lo;
}

int lls_value_set(lls_value *object, const char *key, size_t klen, lls_value *v) {
  if (v == NULL) return -1;
  if (object == NULL || object->type != LLS_VOBJECT || klen == SIZE_MAX ||
      (klen > 0 && memchr(key, '\0', klen) != NULL)) {
    lls_value_free(v);
    return -1;
  }
  size_t n = object->u.o.n;
  size_t at;
  int found = 0;
  /* Keys usually arrive sorted (our own JSON, json.c's decoder): append
   * without searching. */
  if (n == 0 || key_cmp(object->u.o.members[n - 1].key, object->u.o.members[n - 1].klen,
                        key, klen) < 0)
    at = n;
  else
    at = find_member(object, key, klen, &found);
  if (found) {
    lls_value_free(object->u.o.members[at].value);
    object->u.o.members[at].value = v;
    return 0;
  }
  char *k = malloc(klen + 1);
  void *members = object->u.o.members;
  if (k == NULL || grow_for_one(&members, n, sizeof(lls_member)) != 0) {
    free(k);
    lls_value_free(v);
    return -1;
  }
  object->u.o.members = members;
  if (klen > 0) memcpy(k, key, klen);
  k[klen] = '\0';
  lls_member *m = object->u.o.members;
  if (at < n) memmove(&m[at + 1], &m[at], (n - at) * sizeof *m);
  m[at].key = k;
  m[at].klen = klen;
  m[at].value = v;
  object->u.o.n = n + 1;
  return 0;
}

const lls_value *lls_value_get(const lls_value *object, const char *key, size_t klen) {
  if (object == NULL || object->type != LLS_VOBJECT) return NULL;
  int found;
  size_t at = find_member(object, key, klen, &found);
  return found ? object->u.o.members[at].value : NULL;
}

const lls_value *lls_value_path(const lls_value *root, const char *path, size_t len) {
  const lls_value *cur = root;
  size_t start = 0;
  for (;;) {
    const char *dot = len > start ? memchr(path + start, '.', len - start) : NULL;
    size_t end = dot != NULL ? (size_t)(dot - path) : len;
    cur = lls_value_get(cur, path + start, end - start);
    if (cur == NULL || dot == NULL) return cur;
    start = end + 1;
  }
}

lls_value *lls_value_copy(const lls_value *v) {
  if (v == NULL) return NULL;
  switch (v->type) {
  case LLS_VNULL: return lls_value_null();
  case LLS_VBOOL: return lls_value_bool(v->u.b);
  case LLS_VINT: return lls_value_int(v->u.i);
  case LLS_VFLOAT: return lls_value_float(v->u.f);
  case LLS_VSTRING: return lls_value_string(v->u.s.ptr, v->u.s.len);
  case LLS_VARRAY: {
    lls_value *c = lls_value_array();
    if (c == NULL) return NULL;
    size_t n = v->u.a.n;
    if (n > 0) {
      /* allocated once at cap_for(n), as the capacity rule requires */
      c->u.a.items = malloc(cap_for(n) * sizeof(lls_value *));
      if (c->u.a.items == NULL) {
        free(c);
        return NULL;
      }
      for (size_t i = 0; i < n; i++) {
        lls_value *item = lls_value_copy(v->u.a.items[i]);
        if (item == NULL) {
          lls_value_free(c);
          return NULL;
        }
        c->u.a.items[c->u.a.n++] = item;
      }
    }
    return c;
  }
  case LLS_VOBJECT: {
    lls_value *c = lls_value_object();
    if (c == NULL) return NULL;
    size_t n = v->u.o.n;
    if (n > 0) {
      c->u.o.members = malloc(cap_for(n) * sizeof(lls_member));
      if (c->u.o.members == NULL) {
        free(c);
        return NULL;
      }
      for (size_t i = 0; i < n; i++) {
        const lls_member *m = &v->u.o.members[i];
        char *k = malloc(m->klen + 1);
        lls_value *item = k != NULL ? lls_value_copy(m->value) : NULL;
        if (item == NULL) {
          free(k);
          lls_value_free(c);
          return NULL;
        }
        memcpy(k, m->key, m->klen + 1);
        c->u.o.members[i].key = k;
        c->u.o.members[i].klen = m->klen;
        c->u.o.members[i].value = item;
        c->u.o.n = i + 1;
      }
    }
    return c;
  }
  }
  return NULL;
}

/* 2^63 as a double: the first double beyond INT64_MAX. */
#define TWO63 9223372036854775808.0

/* Exact comparison of an integer with a finite double (no rounding of i
 * to double: 2^53 + 1 must compare greater than 2^53.0). */
static int cmp_int_float(int64_t i, double f) {
  if (f >= TWO63) return -1;
  if (f < -TWO63) return 1;
  double fl = floor(f); /* in [-2^63, 2^63): converts to int64 exactly */
  int64_t fi = (int64_t)fl;
  if (i < fi) return -1;
  if (i > fi) return 1;
  return f > fl ? -1 : 0;
}

static int is_number(const lls_value *v) {
  return v->type == LLS_VINT || v->type == LLS_VFLOAT;
}

/* Numbers compared exactly across int/float. Floats are finite by
 * contract; a NaN that slipped in compares equal to nothing. */
static int cmp_numbers(const lls_value *a, const lls_value *b, int *cmp) {
  if (a->type == LLS_VINT && b->type == LLS_VINT) {
    *cmp = (a->u.i > b->u.i) - (a->u.i < b->u.i);
    return 1;
  }
  if (a->type == LLS_VINT) {
    if (isnan(b->u.f)) return 0;
    *cmp = cmp_int_float(a->u.i, b->u.f);
    return 1;
  }
  if (b->type == LLS_VINT) {
    if (isnan(a->u.f)) return 0;
    *cmp = -cmp_int_float(b->u.i, a->u.f);
    return 1;
  }
  if (isnan(a->u.f) || isnan(b->u.f)) return 0;
  *cmp = (a->u.f > b->u.f) - (a->u.f < b->u.f);
  return 1;
}

int lls_value_compare(const lls_value *a, const lls_value *b, int *cmp) {
  if (a == NULL || b == NULL) return 0;
  if (is_number(a) && is_number(b)) return cmp_numbers(a, b, cmp);
  if (a->type == LLS_VSTRING && b->type == LLS_VSTRING) {
    int c = key_cmp(a->u.s.ptr, a->u.s.len, b->u.s.ptr, b->u.s.len);
    *cmp = (c > 0) - (c < 0);
    return 1;
  }
  return 0;
}

int lls_value_equal(const lls_value *a, const lls_value *b) {
  if (a == b) return a != NULL;
  if (a == NULL || b == NULL) return 0;
  if (is_number(a) && is_number(b)) {
    int c;
    return cmp_numbers(a, b, &c) && c == 0;
  }
  if (a->type != b->type) return 0;
  switch (a->type) {
  case LLS_VNULL: return 1;
  case LLS_VBOOL: return (a->u.b != 0) == (b->u.b != 0);
  case LLS_VSTRING:
    return a->u.s.len == b->u.s.len &&
           (a->u.s.len == 0 || memcmp(a->u.s.ptr, b->u.s.ptr, a->u.s.len) == 0);
  case LLS_VARRAY:
    if (a->u.a.n != b->u.a.n) return 0;
    for (size_t i = 0; i < a->u.a.n; i++)
      if (!lls_value_equal(a->u.a.items[i], b->u.a.items[i])) return 0;
    return 1;
  case LLS_VOBJECT:
    /* members are sorted and unique, so equal objects pair up in order */
    if (a->u.o.n != b->u.o.n) return 0;
    for (size_t i = 0; i < a->u.o.n; i++) {
      const lls_member *x = &a->u.o.members[i], *y = &b->u.o.members[i];
      if (key_cmp(x->key, x->klen, y->key, y->klen) != 0) return 0;
      if (!lls_value_equal(x->value, y->value)) return 0;
    }
    return 1;
  default: return 0; /* numbers were handled above */
  }
}

void lls_value_free(lls_value *v) {
  if (v == NULL) return;
  switch (v->type) {
  case LLS_VSTRING: free(v->u.s.ptr); break;
  case LLS_VARRAY:
    for (size_t i = 0; i < v->u.a.n; i++) lls_value_free(v->u.a.items[i]);
    free(v->u.a.items);
    break;
  case LLS_VOBJECT:
    for (size_t i = 0; i < v->u.o.n; i++) {
      free(v->u.o.members[i].key);
      lls_value_free(v->u.o.members[i].value);
    }
    free(v->u.o.members);
    break;
  default: break;
  }
  free(v);
}

size_t lls_value_bytes(const lls_value *v) {
  if (v == NULL) return 0;
  size_t n = sizeof *v;
  switch (v->type) {
  case LLS_VSTRING: n += v->u.s.len + 1; break;
  case LLS_VARRAY:
    n += cap_for(v->u.a.n) * sizeof(lls_value *);
    for (size_t i = 0; i < v->u.a.n; i++) n += lls_value_bytes(v->u.a.items[i]);
    break;
  case LLS_VOBJECT:
    n += cap_for(v->u.o.n) * sizeof(lls_member);
    for (size_t i = 0; i < v->u.o.n; i++)
      n += v->u.o.members[i].klen + 1 + lls_value_bytes(v->u.o.members[i].value);
    break;
  default: break;
  }
  return n;
}
