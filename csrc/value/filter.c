/*
 * filter.c -- metadata filters (see filter.h for the language).
 *
 * A spec is compiled into a flat tree: nodes in one array, child lists in
 * another, dotted field paths pre-split into (offset, length) segments of
 * one name arena, operands deep-copied. Matching walks only that tree and
 * never writes, so one compiled filter serves many search threads.
 */
#include "value/filter.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { N_TRUE, N_FALSE, N_AND, N_OR, N_NOT, N_COND };

enum { OP_EQ, OP_NE, OP_GT, OP_GTE, OP_LT, OP_LTE, OP_IN, OP_NIN, OP_EXISTS };

static const struct {
  const char *name;
  int op;
} operators[] = {
    {"$eq", OP_EQ}, {"$ne", OP_NE},   {"$gt", OP_GT},   {"$gte", OP_GTE},       {"$lt", OP_LT},
    {"$lte", OP_LTE}, {"$in", OP_IN}, {"$nin", OP_NIN}, {"$exists", OP_EXISTS},
};

#define FIELD_OPERATORS "$eq $ne $gt $gte $lt $lte $in $nin $exists"

typedef struct fseg {
  uint32_t off, len; /* into names */
} fseg;

typedef struct fnode {
  uint8_t kind;     /* N_* */
  uint8_t op;       /* N_COND: OP_* */
  uint8_t exists;   /* OP_EXISTS: the operand */
  uint32_t first;   /* N_AND/N_OR/N_NOT: into kids; N_COND: into segs */
  uint32_t count;   /* how many kids / segments */
  lls_value *operand; /* N_COND: owned copy (NULL for $exists) */
} fnode;

struct lls_filter {
  fnode *nodes;
  size_t nnodes, capnodes;
  uint32_t *kids;
  size_t nkids, capkids;
  fseg *segs;
  size_t nsegs, capsegs;
  lls_buf names;
  uint32_t root;
};

/* ----------------------------------------------------------- compiling */

typedef struct compiler {
  lls_filter *f;
  lls_buf path; /* "filter.a.$or[2]": the part being compiled, for messages */
  char *err;
  size_t errlen;
} compiler;

/* Reports an error at the current path (plus an optional suffix). Always
 * returns -1. */
static int fail(compiler *c, const char *fmt, ...) {
  if (c->err == NULL || c->errlen == 0) return -1;
  int n = snprintf(c->err, c->errlen, "%.*s: ", (int)c->path.len,
                   c->path.data != NULL ? c->path.data : "");
  if (n >= 0 && (size_t)n < c->errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
    va_end(ap);
  }
  return -1;
}

static int oom(compiler *c) {
  if (c->err != NULL && c->errlen > 0) snprintf(c->err, c->errlen, "out of memory");
  return -1;
}

/* Extends the path; returns the old length for path_pop. (size_t)-1 when
 * out of memory. */
static size_t path_push(compiler *c, const char *fmt, ...) {
  size_t old = c->path.len;
  char piece[64];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(piece, sizeof piece, fmt, ap);
  va_end(ap);
  if (n < 0 || lls_buf_append(&c->path, piece, (size_t)n < sizeof piece ? (size_t)n
                                                                         : sizeof piece - 1))
    return (size_t)-1;
  return old;
}

static size_t path_push_key(compiler *c, const char *key, size_t klen) {
  size_t old = c->path.len;
  if (lls_buf_append(&c->path, ".", 1) != 0) return (size_t)-1;
  for (size_t i = 0; i < klen; i++) {
    /* keep messages printable */
    char ch = (unsigned char)key[i] < 0x20 ? '?' : key[i];
    if (lls_buf_append(&c->path, &ch, 1) != 0) return (size_t)-1;
  }
  return old;
}

static void path_pop(compiler *c, size_t old) { c->path.len = old; }

static const char *type_name(const lls_value *v) {
  switch (v->type) {
  case LLS_VNULL: return "null";
  case LLS_VBOOL: return "boolean";
  case LLS_VINT:
  case LLS_VFLOAT: return "number";
  case LLS_VSTRING: return "string";
  case LLS_VARRAY: return "array";
  case LLS_VOBJECT: return "table";
  }
  return "value";
}

static int is_empty_table(const lls_value *v) {
  return (v->type == LLS_VARRAY && v->u.a.n == 0) || (v->type == LLS_VOBJECT && v->u.o.n == 0);
}

/* Appends a node; its index in *idx. */
static int add_node(compiler *c, int kind, uint32_t *idx) {
  lls_filter *f = c->f;
  if (f->nnodes >= UINT32_MAX) return oom(c);
  if (f->nnodes == f->capnodes) {
    size_t cap = f->capnodes ? f->capnodes * 2 : 8;
    fnode *p = realloc(f->nodes, cap * sizeof *p);
    if (p == NULL) return oom(c);
    f->nodes = p;
    f->capnodes = cap;
  }
  memset(&f->nodes[f->nnodes], 0, sizeof f->nodes[0]);
  f->nodes[f->nnodes].kind = (uint8_t)kind;
  *idx = (uint32_t)f->nnodes++;
  return 0;
}

/* Joins child nodes under an AND or OR node, simplifying constant
 * children away so an always-true filter becomes one N_TRUE root. */
static int join(compiler *c, int kind, const uint32_t *kid, size_t n, uint32_t *idx) {
  lls_filter *f = c->f;
  int absorbing = kind == N_AND ? N_FALSE : N_TRUE; /* decides the result alone */
  int neutral = kind == N_AND ? N_TRUE : N_FALSE;   /* changes nothing */
  size_t kept = 0, last = 0;
  for (size_t i = 0; i < n; i++) {
    int k = f->nodes[kid[i]].kind;
    if (k == absorbing) return add_node(c, absorbing, idx);
    if (k != neutral) {
      kept++;
      last = i;
    }
  }
  if (kept == 0) return add_node(c, neutral, idx);
  if (kept == 1) {
    *idx = kid[last];
    return 0;
  }
  if (f->nkids + kept > f->capkids) {
    size_t cap = f->capkids ? f->capkids : 8;
    while (cap < f->nkids + kept) cap *= 2;
    uint32_t *p = realloc(f->kids, cap * sizeof *p);
    if (p == NULL) return oom(c);
    f->kids = p;
    f->capkids = cap;
  }
  if (add_node(c, kind, idx) != 0) return -1;
  f->nodes[*idx].first = (uint32_t)f->nkids;
  f->nodes[*idx].count = (uint32_t)kept;
  for (size_t i = 0; i < n; i++)
    if (f->nodes[kid[i]].kind != neutral) f->kids[f->nkids++] = kid[i];
  return 0;
}

static int negate(compiler *c, uint32_t kid, uint32_t *idx) {
  int k = c->f->nodes[kid].kind;
  if (k == N_TRUE || k == N_FALSE) return add_node(c, k == N_TRUE ? N_FALSE : N_TRUE, idx);
  if (add_node(c, N_NOT, idx) != 0) return -1;
  c->f->nodes[*idx].first = kid;
  c->f->nodes[*idx].count = 1;
  return 0;
}

/* Stores a dotted field name as pre-split segments: (first, count).
 * Both are set on every path, failures included: GCC at -O1/-Os loses
 * track of which early returns leave them unset and warns in the caller. */
static int add_field(compiler *c, const char *key, size_t klen, uint32_t *first,
                     uint32_t *count) {
  lls_filter *f = c->f;
  *first = 0;
  *count = 0;
  size_t base = f->names.len;
  if (klen >= UINT32_MAX || base > UINT32_MAX - klen - 1) return oom(c);
  /* NUL-terminated, which also keeps names.data non-NULL for "" fields */
  if (lls_buf_append(&f->names, key, klen) != 0 || lls_buf_append(&f->names, "", 1) != 0)
    return oom(c);
  *first = (uint32_t)f->nsegs;
  size_t start = 0;
  for (;;) {
    const char *dot = klen > start ? memchr(key + start, '.', klen - start) : NULL;
    size_t end = dot != NULL ? (size_t)(dot - key) : klen;
    if (f->nsegs == f->capsegs) {
      size_t cap = f->capsegs ? f->capsegs * 2 : 8;
      fseg *p = realloc(f->segs, cap * sizeof *p);
      if (p == NULL) return oom(c);
      f->segs = p;
      f->capsegs = cap;
    }
    f->segs[f->nsegs].off = (uint32_t)(base + start);
    f->segs[f->nsegs].len = (uint32_t)(end - start);
    f->nsegs++;
    (*count)++;
    if (dot == NULL) return 0;
    start = end + 1;
  }
}

/* One condition node on a field; takes the operand by copy. */
static int add_cond(compiler *c, const char *key, size_t klen, int op, const lls_value *operand,
                    uint32_t *idx) {
  uint32_t first, count;
  if (add_field(c, key, klen, &first, &count) != 0) return -1;
  lls_value *copy = NULL;
  if (op == OP_IN || op == OP_NIN) {
    /* an empty Lua table may arrive as an empty object: same as [] */
    copy = operand->type == LLS_VARRAY ? lls_value_copy(operand) : lls_value_array();
    if (copy == NULL) return oom(c);
  } else if (op != OP_EXISTS) {
    if ((copy = lls_value_copy(operand)) == NULL) return oom(c);
  }
  if (add_node(c, N_COND, idx) != 0) {
    lls_value_free(copy);
    return -1;
  }
  fnode *n = &c->f->nodes[*idx];
  n->op = (uint8_t)op;
  n->first = first;
  n->count = count;
  n->operand = copy;
  n->exists = op == OP_EXISTS && operand->u.b != 0;
  return 0;
}

/* Checks one operator's operand; the current path ends in the operator. */
static int check_operand(compiler *c, int op, const lls_value *v) {
  switch (op) {
  case OP_GT:
  case OP_GTE:
  case OP_LT:
  case OP_LTE:
    if (v->type != LLS_VINT && v->type != LLS_VFLOAT && v->type != LLS_VSTRING)
      return fail(c, "number or string expected, got %s", type_name(v));
    return 0;
  case OP_IN:
  case OP_NIN:
    if (v->type != LLS_VARRAY && !is_empty_table(v))
      return fail(c, "array expected, got %s", type_name(v));
    return 0;
  case OP_EXISTS:
    if (v->type != LLS_VBOOL) return fail(c, "boolean expected, got %s", type_name(v));
    return 0;
  default: return 0; /* $eq / $ne take any value */
  }
}

/* field = { ["$op"] = operand, ... }: every operator ANDed. The current
 * path ends in the field. */
static int compile_operators(compiler *c, const char *key, size_t klen, const lls_value *ops,
                             uint32_t *idx) {
  size_t n = ops->u.o.n;
  const lls_member *plain = NULL, *oper = NULL;
  for (size_t i = 0; i < n; i++) {
    const lls_member *m = &ops->u.o.members[i];
    if (m->klen > 0 && m->key[0] == '$') {
      if (oper == NULL) oper = m;
    } else if (plain == NULL) {
      plain = m;
    }
  }
  if (plain != NULL)
    return fail(c, "cannot mix operators and plain keys in one table (%.40s and %.40s)",
                oper->key, plain->key);
  uint32_t *kid = malloc(n * sizeof *kid);
  if (kid == NULL) return oom(c);
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    const lls_member *m = &ops->u.o.members[i];
    size_t old = path_push_key(c, m->key, m->klen);
    if (old == (size_t)-1) {
      rc = oom(c);
      break;
    }
    int op = -1;
    for (size_t k = 0; k < sizeof operators / sizeof operators[0]; k++)
      if (strcmp(operators[k].name, m->key) == 0) op = operators[k].op;
    if (op < 0) rc = fail(c, "unknown operator (expected " FIELD_OPERATORS ")");
    else if ((rc = check_operand(c, op, m->value)) == 0)
      rc = add_cond(c, key, klen, op, m->value, &kid[i]);
    path_pop(c, old);
  }
  if (rc == 0) rc = join(c, N_AND, kid, n, idx);
  free(kid);
  return rc;
}

static int compile_filter(compiler *c, const lls_value *spec, uint32_t *idx);

/* $and / $or: a non-empty array of filters. The path ends in the operator. */
static int compile_list(compiler *c, int kind, const lls_value *list, uint32_t *idx) {
  if (is_empty_table(list)) return fail(c, "non-empty array of filters expected");
  if (list->type != LLS_VARRAY)
    return fail(c, "array of filters expected, got %s", type_name(list));
  size_t n = list->u.a.n;
  uint32_t *kid = malloc(n * sizeof *kid);
  if (kid == NULL) return oom(c);
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    size_t old = path_push(c, "[%zu]", i + 1);
    if (old == (size_t)-1) {
      rc = oom(c);
      break;
    }
    rc = compile_filter(c, list->u.a.items[i], &kid[i]);
    path_pop(c, old);
  }
  if (rc == 0) rc = join(c, kind, kid, n, idx);
  free(kid);
  return rc;
}

/* One member of a filter object. */
static int compile_member(compiler *c, const lls_member *m, uint32_t *idx) {
  size_t old = path_push_key(c, m->key, m->klen);
  if (old == (size_t)-1) return oom(c);
  int rc;
  if (m->klen > 0 && m->key[0] == '$') {
    if (strcmp(m->key, "$and") == 0) {
      rc = compile_list(c, N_AND, m->value, idx);
    } else if (strcmp(m->key, "$or") == 0) {
      rc = compile_list(c, N_OR, m->value, idx);
    } else if (strcmp(m->key, "$not") == 0) {
      uint32_t kid;
      rc = compile_filter(c, m->value, &kid);
      if (rc == 0) rc = negate(c, kid, idx);
    } else {
      rc = fail(c, "unknown operator (expected $and $or $not, or a field name)");
    }
  } else {
    const lls_value *v = m->value;
    /* an object with '$' keys holds operators; any other value (objects
     * without operators included) is compared for equality */
    int has_ops = 0;
    if (v->type == LLS_VOBJECT)
      for (size_t i = 0; i < v->u.o.n && !has_ops; i++)
        has_ops = v->u.o.members[i].klen > 0 && v->u.o.members[i].key[0] == '$';
    if (has_ops) rc = compile_operators(c, m->key, m->klen, v, idx);
    else rc = add_cond(c, m->key, m->klen, OP_EQ, v, idx);
  }
  path_pop(c, old);
  return rc;
}

static int compile_filter(compiler *c, const lls_value *spec, uint32_t *idx) {
  if (spec == NULL || is_empty_table(spec)) return add_node(c, N_TRUE, idx);
  if (spec->type == LLS_VARRAY) return fail(c, "table of conditions expected, got array");
  if (spec->type != LLS_VOBJECT) return fail(c, "table expected, got %s", type_name(spec));
  size_t n = spec->u.o.n;
  uint32_t *kid = malloc(n * sizeof *kid);
  if (kid == NULL) return oom(c);
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++)
    rc = compile_member(c, &spec->u.o.members[i], &kid[i]);
  if (rc == 0) rc = join(c, N_AND, kid, n, idx);
  free(kid);
  return rc;
}

lls_filter *lls_filter_compile(const lls_value *spec, char *err, size_t errlen) {
  lls_filter *f = calloc(1, sizeof *f);
  if (f == NULL) {
    if (err != NULL && errlen > 0) snprintf(err, errlen, "out of memory");
    return NULL;
  }
  compiler c = {f, {NULL, 0, 0}, err, errlen};
  int rc = lls_buf_append(&c.path, "filter", 6) != 0 ? oom(&c) : 0;
  if (rc == 0) rc = compile_filter(&c, spec, &f->root);
  lls_buf_free(&c.path);
  if (rc != 0) {
    lls_filter_free(f);
    return NULL;
  }
  return f;
}

/* ------------------------------------------------------------ matching */

static const lls_value *resolve(const lls_filter *f, const fnode *n, const lls_value *md) {
  const lls_value *cur = md;
  for (uint32_t i = 0; i < n->count && cur != NULL; i++) {
    const fseg *s = &f->segs[n->first + i];
    cur = lls_value_get(cur, f->names.data + s->off, s->len);
  }
  return cur;
}

/* MongoDB equality: the value itself, or for an array any one element. */
static int eq_match(const lls_value *field, const lls_value *x) {
  if (lls_value_equal(field, x)) return 1;
  if (field->type == LLS_VARRAY)
    for (size_t i = 0; i < field->u.a.n; i++)
      if (lls_value_equal(field->u.a.items[i], x)) return 1;
  return 0;
}

static int in_match(const lls_value *field, const lls_value *list) {
  for (size_t i = 0; i < list->u.a.n; i++)
    if (eq_match(field, list->u.a.items[i])) return 1;
  return 0;
}

static int cond_match(const fnode *n, const lls_value *field) {
  int cmp;
  switch (n->op) {
  case OP_EXISTS: return (field != NULL) == (n->exists != 0);
  case OP_EQ: return field != NULL && eq_match(field, n->operand);
  case OP_NE: return field == NULL || !eq_match(field, n->operand);
  case OP_IN: return field != NULL && in_match(field, n->operand);
  case OP_NIN: return field == NULL || !in_match(field, n->operand);
  case OP_GT: return lls_value_compare(field, n->operand, &cmp) && cmp > 0;
  case OP_GTE: return lls_value_compare(field, n->operand, &cmp) && cmp >= 0;
  case OP_LT: return lls_value_compare(field, n->operand, &cmp) && cmp < 0;
  case OP_LTE: return lls_value_compare(field, n->operand, &cmp) && cmp <= 0;
  }
  return 0;
}

static int eval(const lls_filter *f, uint32_t i, const lls_value *md) {
  const fnode *n = &f->nodes[i];
  switch (n->kind) {
  case N_TRUE: return 1;
  case N_FALSE: return 0;
  case N_AND:
    for (uint32_t k = 0; k < n->count; k++)
      if (!eval(f, f->kids[n->first + k], md)) return 0;
    return 1;
  case N_OR:
    for (uint32_t k = 0; k < n->count; k++)
      if (eval(f, f->kids[n->first + k], md)) return 1;
    return 0;
  case N_NOT: return !eval(f, n->first, md);
  case N_COND: return cond_match(n, resolve(f, n, md));
  }
  return 0;
}

int lls_filter_match(const lls_filter *f, const lls_value *metadata) {
  return eval(f, f->root, metadata);
}

int lls_filter_matches_all(const lls_filter *f) { return f->nodes[f->root].kind == N_TRUE; }

size_t lls_filter_bytes(const lls_filter *f) {
  if (f == NULL) return 0;
  size_t n = sizeof *f + f->capnodes * sizeof(fnode) + f->capkids * sizeof(uint32_t) +
             f->capsegs * sizeof(fseg) + f->names.cap;
  for (size_t i = 0; i < f->nnodes; i++) n += lls_value_bytes(f->nodes[i].operand);
  return n;
}

void lls_filter_free(lls_filter *f) {
  if (f == NULL) return;
  /* every node, reachable or simplified away, owns its operand */
  for (size_t i = 0; i < f->nnodes; i++) lls_value_free(f->nodes[i].operand);
  free(f->nodes);
  free(f->kids);
  free(f->segs);
  lls_buf_free(&f->names);
  free(f);
}
