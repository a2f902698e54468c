/*
 * graph.c -- db:graph(), semantic memory as a bi-temporal knowledge graph
 * (COMPONENTS.md "Semantic memory", docs/graph.md). Its export section is
 * graph_section.c; the versions, the superseding and the walks are the
 * backends' (backend/graph.h). This file checks arguments, merges
 * updates and shapes results.
 *
 * Results are copied from the backend's rows into the handle's scratch
 * buffer while the backend reads (no Lua call, so nothing can raise
 * mid-read), then pushed as tables.
 */
#include "lua/graph.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "backend/graph.h"
#include "base/clock.h"
#include "base/limits.h"
#include "lua/args.h"
#include "lua/class.h"
#include "lua/component.h"
#include "lua/error.h"
#include "lua/graph_section.h"
#include "lua/luavalue.h"
#include "value/filter.h"
#include "value/json.h"

static const lls_component_class CLS = {{"graph", lls_component_owned_close, NULL},
                                        "llmspell.storage.Graph", "graph", lls_graph_count};

/* The deepest walk traverse takes. */
#define MAX_DEPTH 32

/* ------------------------------------------------------ argument checks */

/* The text at idx (1..max bytes of UTF-8 without NUL) for argument arg. */
static lls_str text_at(lua_State *L, int idx, int arg, const char *what, size_t max) {
  if (lua_type(L, idx) != LUA_TSTRING)
    luaL_argerror(L, arg, lua_pushfstring(L, "%s: string expected, got %s", what,
                                          luaL_typename(L, idx)));
  lls_str s;
  s.ptr = lua_tolstring(L, idx, &s.len);
  lls_check_text(L, arg, s, 1, max, what);
  return s;
}

/* Field k of the table at tbl as text; {NULL, 0} when absent and !required. */
static lls_str text_field(lua_State *L, int tbl, int arg, const char *k, size_t max,
                          int required) {
  lls_str s = {NULL, 0};
  if (lua_getfield(L, tbl, k) == LUA_TNIL) {
    if (required)
      luaL_argerror(L, arg, lua_pushfstring(L, "field '%s' is required", k));
  } else {
    s = text_at(L, -1, arg, k, max);
  }
  lua_pop(L, 1); /* the string stays alive: the caller's table holds it */
  return s;
}

/* Time field k of the table at tbl (seconds) as µs, def when absent. */
static int64_t time_field(lua_State *L, int tbl, int arg, const char *k, int64_t def) {
  lua_Number t;
  if (!lls_opt_number(L, tbl, k, arg, &t)) return def;
  if (!lls_time_ok(t))
    luaL_argerror(L, arg, lua_pushfstring(L, "%s: must be " LLS_TIME_RULE, k));
  return lls_seconds_to_us(t);
}

/* The options table at arg (absent or nil: none), checked against
 * allowed. Returns its index, or 0. */
static int opts_at(lua_State *L, int arg, const char *const *allowed) {
  if (lua_isnoneornil(L, arg)) return 0;
  luaL_checktype(L, arg, LUA_TTABLE);
  lls_check_fields(L, arg, arg, allowed, NULL, 0);
  return arg;
}

/* The properties at idx (nil: {}) as JSON object text in out. */
static void properties_arg(lua_State *L, int idx, int arg, const char *what, lls_buf *out) {
  if (lua_isnoneornil(L, idx)) {
    out->len = 0;
    lls_buf_append(out, "{}", 2);
    return;
  }
  if (!lua_istable(L, idx))
    luaL_argerror(L, arg, lua_pushfstring(L, "%s: table expected, got %s", what,
                                          luaL_typename(L, idx)));
  lls_component_json_arg(L, idx, arg, what, out);
  if (out->len == 2 && memcmp(out->data, "[]", 2) == 0) {
    memcpy(out->data, "{}", 2); /* an empty table has no shape */
  } else if (out->len == 0 || out->data[0] != '{') {
    luaL_argerror(L, arg, lua_pushfstring(L, "%s: table with string keys expected", what));
  }
}

/* w from the `at` and `as_of` fields of the options at tbl (0: none). */
static lls_graph_when when_opts(lua_State *L, int tbl, int arg) {
  int64_t now = lls_now_us();
  lls_graph_when w = {now, now};
  if (tbl) {
    w.at = time_field(L, tbl, arg, "at", now);
    w.as_of = time_field(L, tbl, arg, "as_of", now);
  }
  return w;
}

/* The `direction` field of the options at tbl. */
static lls_graph_dir dir_opt(lua_State *L, int tbl, int arg, lls_graph_dir def) {
  static const char *const names[] = {"out", "in", "both", NULL};
  static const lls_graph_dir dirs[] = {LLS_GRAPH_OUT, LLS_GRAPH_IN, LLS_GRAPH_BOTH};
  if (!tbl || lua_getfield(L, tbl, "direction") == LUA_TNIL) {
    if (tbl) lua_pop(L, 1);
    return def;
  }
  const char *s = lua_tostring(L, -1);
  for (int i = 0; s && lua_type(L, -1) == LUA_TSTRING && names[i]; i++)
    if (strcmp(s, names[i]) == 0) {
      lua_pop(L, 1);
      return dirs[i];
    }
  return luaL_argerror(L, arg, "direction: \"out\", \"in\" or \"both\" expected"), def;
}

/* ------------------------------------------------------------- results */

/* One kept row: its times, depth and string lengths; the strings (id,
 * type, name, from, to, properties, parent) follow it. */
typedef struct row_head {
  int64_t t[5];
  int depth;
  size_t len[7];
} row_head;

static int keep(lls_buf *b, const lls_graph_row *v, int depth, lls_str parent,
                lls_error *err) {
  const lls_str s[7] = {v->id, v->type, v->name, v->from, v->to, v->properties, parent};
  row_head h = {{v->valid_from, v->valid_to, v->recorded_at, v->superseded_at, v->created_at},
                depth,
                {0}};
  for (int i = 0; i < 7; i++) h.len[i] = s[i].len;
  if (lls_buf_append(b, &h, sizeof h) != 0) return lls_error_oom(err);
  for (int i = 0; i < 7; i++)
    if (lls_buf_append(b, s[i].ptr, s[i].len) != 0) return lls_error_oom(err);
  return 0;
}

static int keep_row(void *ud, const lls_graph_row *v, lls_error *err) {
  return keep(ud, v, 0, (lls_str){"", 0}, err);
}

static int keep_hop(void *ud, const lls_graph_row *v, int depth, lls_str parent,
                    lls_error *err) {
  return keep(ud, v, depth, parent, err);
}

/* A kept row read back: strings point into the buffer. */
typedef struct kept {
  row_head h;
  lls_str s[7];
} kept;

/* Reads the row at *at of b and moves *at past it; 0 at the end. */
static int next_kept(const lls_buf *b, size_t *at, kept *k) {
  if (*at >= b->len) return 0;
  memcpy(&k->h, b->data + *at, sizeof k->h); /* the buffer does not align it */
  const char *p = b->data + *at + sizeof k->h;
  for (int i = 0; i < 7; i++) {
    k->s[i] = (lls_str){p, k->h.len[i]};
    p += k->h.len[i];
  }
  *at = (size_t)(p - b->data);
  return 1;
}

static void set_str(lua_State *L, const char *k, lls_str s) {
  lua_pushlstring(L, s.ptr, s.len);
  lua_setfield(L, -2, k);
}

/* A time as seconds; an open end as math.huge, so `t < e.valid_to`
 * holds for every t. */
static void set_time(lua_State *L, const char *k, int64_t us) {
  if (us == LLS_GRAPH_OPEN) lua_pushnumber(L, HUGE_VAL);
  else lls_push_time(L, us);
  lua_setfield(L, -2, k);
}

/* Pushes k as an entity (rel = 0) or a relationship table. */
static void push_kept(lua_State *L, const lls_handle *h, const kept *k, int rel) {
  luaL_checkstack(L, 4, "graph");
  lua_createtable(L, 0, 9);
  set_str(L, "id", k->s[0]);
  set_str(L, "type", k->s[1]);
  if (rel) {
    set_str(L, "from", k->s[3]);
    set_str(L, "to", k->s[4]);
  } else {
    set_str(L, "name", k->s[2]);
  }
  lls_component_push_json(L, h, k->s[5], rel ? "relationship properties" : "entity properties");
  lua_setfield(L, -2, "properties");
  static const char *const times[] = {"valid_from", "valid_to", "recorded_at", "superseded_at",
                                      "created_at"};
  for (int i = 0; i < 5; i++) set_time(L, times[i], k->h.t[i]);
}

/* Pushes every row kept in h->scratch as an array of tables. */
static int push_all(lua_State *L, lls_handle *h, int rel) {
  lua_newtable(L);
  size_t at = 0;
  kept k;
  for (lua_Integer i = 1; next_kept(&h->scratch, &at, &k); i++) {
    push_kept(L, h, &k, rel);
    lua_rawseti(L, -2, i);
  }
  return 1;
}

/* ------------------------------------------------------------ entities */

/* The fields add_entity and add_relationship share, from the table at 2:
 * id (a new UUID v4 in uuid when absent), valid_from (default now) and
 * properties (JSON text in h->scratch). */
static void add_fields(lua_State *L, lls_handle *h, lls_graph_row *v, char uuid[37],
                       int64_t now) {
  v->id = text_field(L, 2, 2, "id", LLS_MAX_ID, 0);
  if (v->id.ptr == NULL) {
    lls_component_uuid(L, uuid);
    v->id = (lls_str){uuid, 36};
  }
  v->valid_from = time_field(L, 2, 2, "valid_from", now);
  lua_getfield(L, 2, "properties");
  properties_arg(L, -1, 2, "properties", &h->scratch);
  v->properties = (lls_str){h->scratch.data, h->scratch.len};
}

/** g:add_entity{id=, type=, name=, properties=, valid_from=} --> id
 * A new entity (id: a UUID v4 when omitted), valid from valid_from
 * (default now). Raises `conflict` when the entity has a current version. */
static int gr_add_entity(lua_State *L) {
  static const char *const fields[] = {"id", "type", "name", "properties", "valid_from", NULL};
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  luaL_checktype(L, 2, LUA_TTABLE);
  lls_check_fields(L, 2, 2, fields, NULL, 0);
  char uuid[37];
  lls_graph_row e = {0};
  int64_t now = lls_now_us();
  add_fields(L, h, &e, uuid, now);
  e.type = text_field(L, 2, 2, "type", LLS_MAX_NAME, 1);
  e.name = text_field(L, 2, 2, "name", LLS_MAX_KEY, 1);
  lls_error err;
  if (cb->vt->graph->add_entity(cb, &e, now, &err) != 0) return lls_raise(L, &err, h->vt->name);
  lua_pushlstring(L, e.id.ptr, e.id.len);
  return 1;
}

/* An update's changes: merged into the open version's properties. */
typedef struct revision {
  const lls_value *changes; /* an object */
  lls_str type, name;       /* ptr NULL: kept */
  lls_buf out;              /* the new properties' JSON */
} revision;

static int revise(void *ud, const lls_graph_row *cur, lls_graph_row *next, lls_error *err) {
  revision *r = ud;
  char msg[200];
  lls_value *props = lls_json_decode(cur->properties.ptr, cur->properties.len, msg, sizeof msg);
  if (props == NULL || props->type != LLS_VOBJECT) {
    lls_value_free(props);
    return lls_error_set(err, LLS_EINTEGRITY, "entity '%.*s': stored properties unreadable",
                         (int)(cur->id.len > 200 ? 200 : cur->id.len), cur->id.ptr);
  }
  for (size_t i = 0; i < r->changes->u.o.n; i++) {
    const lls_member *m = &r->changes->u.o.members[i];
    if (lls_value_set(props, m->key, m->klen, lls_value_copy(m->value)) != 0) {
      lls_value_free(props);
      return lls_error_oom(err);
    }
  }
  r->out.len = 0;
  int rc = lls_json_encode(props, &r->out, msg, sizeof msg);
  lls_value_free(props);
  if (rc != 0) return lls_error_set(err, LLS_EINVALID, "properties: %s", msg);
  next->properties = (lls_str){r->out.data, r->out.len};
  if (r->type.ptr) next->type = r->type;
  if (r->name.ptr) next->name = r->name;
  return 0;
}

/** g:update_entity(id, changes [, {valid_from=, name=, type=}]) --> true
 * A new version: changes (a table, or nil for none) merged into the current properties,
 * name and type replaced when given, valid from valid_from (default now).
 * The version it replaces is closed in valid and transaction time. */
static int gr_update_entity(lua_State *L) {
  static const char *const fields[] = {"valid_from", "name", "type", NULL};
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  lls_str id = text_at(L, 2, 2, "id", LLS_MAX_ID);
  int o = opts_at(L, 4, fields);
  int64_t now = lls_now_us();
  revision r = {NULL, {NULL, 0}, {NULL, 0}, {NULL, 0, 0}};
  int64_t valid_from = o ? time_field(L, o, 4, "valid_from", now) : now;
  if (o) {
    r.type = text_field(L, o, 4, "type", LLS_MAX_NAME, 0);
    r.name = text_field(L, o, 4, "name", LLS_MAX_KEY, 0);
  }
  /* checked as properties are, then kept as a tree for the merge */
  properties_arg(L, 3, 3, "changes", &h->scratch);
  char msg[200];
  lls_value *changes = lls_json_decode(h->scratch.data, h->scratch.len, msg, sizeof msg);
  if (changes == NULL) return luaL_error(L, "graph: out of memory");
  r.changes = changes;
  lls_error err;
  int rc = cb->vt->graph->update_entity(cb, id, valid_from, now, revise, &r, &err);
  lls_value_free(changes);
  lls_buf_free(&r.out);
  if (rc != 0) return lls_raise(L, &err, h->vt->name);
  lua_pushboolean(L, 1);
  return 1;
}

/** g:get_entity(id [, {at=, as_of=}]) --> entity or nil
 * The version valid at `at` as the store believed it at `as_of` (both
 * default now): {id=, type=, name=, properties=, valid_from=, valid_to=,
 * recorded_at=, superseded_at=, created_at=}; open ends are math.huge. */
static int gr_get_entity(lua_State *L) {
  static const char *const fields[] = {"at", "as_of", NULL};
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  lls_str id = text_at(L, 2, 2, "id", LLS_MAX_ID);
  lls_graph_when w = when_opts(L, opts_at(L, 3, fields), 3);
  lls_error err;
  h->scratch.len = 0;
  if (cb->vt->graph->get_entity(cb, id, w, keep_row, &h->scratch, &err) != 0)
    return lls_raise(L, &err, h->vt->name);
  size_t at = 0;
  kept k;
  if (!next_kept(&h->scratch, &at, &k)) {
    lua_pushnil(L);
    return 1;
  }
  push_kept(L, h, &k, 0);
  return 1;
}

/* The body of delete_entity and delete_relationship. */
static int delete_one(lua_State *L, int rel) {
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  lls_str id = text_at(L, 2, 2, "id", LLS_MAX_ID);
  int existed;
  lls_error err;
  int rc = rel ? cb->vt->graph->delete_relationship(cb, id, lls_now_us(), &existed, &err)
               : cb->vt->graph->delete_entity(cb, id, lls_now_us(), &existed, &err);
  if (rc != 0) return lls_raise(L, &err, h->vt->name);
  lua_pushboolean(L, existed);
  return 1;
}

/** g:delete_entity(id) --> true if it had a current version
 * Closes the entity and every relationship from or to it at now; the
 * history stays readable with `at` / `as_of`. */
static int gr_delete_entity(lua_State *L) { return delete_one(L, 0); }

/* ------------------------------------------------------- relationships */

/** g:add_relationship{id=, from=, to=, type=, properties=, valid_from=} --> id
 * Both ends must exist at valid_from (`not_found` names the missing one). */
static int gr_add_relationship(lua_State *L) {
  static const char *const fields[] = {"id",         "from",       "to", "type",
                                       "properties", "valid_from", NULL};
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  luaL_checktype(L, 2, LUA_TTABLE);
  lls_check_fields(L, 2, 2, fields, NULL, 0);
  char uuid[37];
  lls_graph_row r = {0};
  int64_t now = lls_now_us();
  r.from = text_field(L, 2, 2, "from", LLS_MAX_ID, 1);
  r.to = text_field(L, 2, 2, "to", LLS_MAX_ID, 1);
  r.type = text_field(L, 2, 2, "type", LLS_MAX_NAME, 1);
  add_fields(L, h, &r, uuid, now);
  lls_error err;
  if (cb->vt->graph->add_relationship(cb, &r, now, &err) != 0)
    return lls_raise(L, &err, h->vt->name);
  lua_pushlstring(L, r.id.ptr, r.id.len);
  return 1;
}

/** g:delete_relationship(id) --> true if it had a current version */
static int gr_delete_relationship(lua_State *L) { return delete_one(L, 1); }

/** g:relationships(id [, {direction="both", type=, at=, as_of=}]) --> array
 * of {id=, from=, to=, type=, properties=, valid_from=, ...} */
static int gr_relationships(lua_State *L) {
  static const char *const fields[] = {"direction", "type", "at", "as_of", NULL};
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  lls_str id = text_at(L, 2, 2, "id", LLS_MAX_ID);
  int o = opts_at(L, 3, fields);
  lls_graph_dir dir = dir_opt(L, o, 3, LLS_GRAPH_BOTH);
  lls_str type = o ? text_field(L, o, 3, "type", LLS_MAX_NAME, 0) : (lls_str){NULL, 0};
  lls_graph_when w = when_opts(L, o, 3);
  lls_error err;
  h->scratch.len = 0;
  if (cb->vt->graph->relationships(cb, id, dir, type, w, keep_row, &h->scratch, &err) != 0)
    return lls_raise(L, &err, h->vt->name);
  return push_all(L, h, 1);
}

/* Runs a walk from the id at 2 with the options at 3 into h->scratch. */
static void walk(lua_State *L, lls_handle *h, lls_backend *cb, int related) {
  static const char *const fields[] = {"direction", "type", "depth", "at", "as_of", NULL};
  static const char *const rfields[] = {"direction", "type", "at", "as_of", NULL};
  lls_str start = text_at(L, 2, 2, "id", LLS_MAX_ID);
  int o = opts_at(L, 3, related ? rfields : fields);
  lls_graph_dir dir = dir_opt(L, o, 3, related ? LLS_GRAPH_BOTH : LLS_GRAPH_OUT);
  lls_str type = o ? text_field(L, o, 3, "type", LLS_MAX_NAME, 0) : (lls_str){NULL, 0};
  int depth = o && !related ? lls_opt_int(L, o, "depth", 3, 1, MAX_DEPTH, 1) : 1;
  lls_graph_when w = when_opts(L, o, 3);
  lls_error err;
  h->scratch.len = 0;
  if (cb->vt->graph->traverse(cb, start, dir, type, depth, w, keep_hop, &h->scratch, &err) != 0)
    lls_raise(L, &err, h->vt->name);
}

/** g:related(id [, {direction="both", type=, at=, as_of=}]) --> array of
 * the entities one relationship away, each once, by id */
static int gr_related(lua_State *L) {
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  walk(L, h, cb, 1);
  return push_all(L, h, 0);
}

/** g:traverse(start [, {direction="out", type=, depth=1, at=, as_of=}]) -->
 * array of {entity=, depth=, path={start, ..., entity id}}
 * Each entity reachable within depth hops (at most 32), once, at its
 * smallest depth, nearest first; the start itself is not listed. Runs in
 * the engine (one recursive query); cycles are safe. */
static int gr_traverse(lua_State *L) {
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  walk(L, h, cb, 0);
  lua_newtable(L); /* the result */
  lua_newtable(L); /* id -> path */
  lua_createtable(L, 1, 0);
  lua_pushvalue(L, 2);
  lua_rawseti(L, -2, 1);
  lua_pushvalue(L, 2);
  lua_insert(L, -2);
  lua_rawset(L, -3); /* paths[start] = {start} */
  int paths = lua_gettop(L), out = paths - 1;
  size_t at = 0;
  kept k;
  for (lua_Integer i = 1; next_kept(&h->scratch, &at, &k); i++) {
    luaL_checkstack(L, 6, "graph:traverse");
    lua_createtable(L, 0, 3);
    push_kept(L, h, &k, 0);
    lua_setfield(L, -2, "entity");
    lua_pushinteger(L, k.h.depth);
    lua_setfield(L, -2, "depth");
    /* the path: the parent's (known, being one hop nearer) plus this id */
    lua_createtable(L, k.h.depth + 1, 0);
    lua_pushlstring(L, k.s[6].ptr, k.s[6].len);
    lua_Integer n = 0;
    if (lua_rawget(L, paths) == LUA_TTABLE) {
      n = (lua_Integer)lua_rawlen(L, -1);
      for (lua_Integer j = 1; j <= n; j++) {
        lua_rawgeti(L, -1, j);
        lua_rawseti(L, -3, j);
      }
    }
    lua_pop(L, 1);
    lua_pushlstring(L, k.s[0].ptr, k.s[0].len);
    lua_rawseti(L, -2, n + 1);
    lua_pushlstring(L, k.s[0].ptr, k.s[0].len);
    lua_pushvalue(L, -2);
    lua_rawset(L, paths);
    lua_setfield(L, -2, "path");
    lua_rawseti(L, out, i);
  }
  lua_settop(L, out);
  return 1;
}

/* ------------------------------------------------------------- queries */

/* query's sink: keeps the rows whose properties pass the filter, until
 * limit of them. */
typedef struct query_ctx {
  lls_buf *buf;
  const lls_filter *filter; /* NULL: all */
  size_t limit, n;          /* limit 0: none */
} query_ctx;

static int keep_match(void *ud, const lls_graph_row *v, lls_error *err) {
  query_ctx *q = ud;
  if (q->filter) {
    char msg[200];
    lls_value *p = lls_json_decode(v->properties.ptr, v->properties.len, msg, sizeof msg);
    if (p == NULL)
      return lls_error_set(err, LLS_EINTEGRITY, "entity '%.*s': stored properties unreadable",
                           (int)(v->id.len > 200 ? 200 : v->id.len), v->id.ptr);
    int match = lls_filter_match(q->filter, p);
    lls_value_free(p);
    if (!match) return 0;
  }
  if (keep(q->buf, v, 0, (lls_str){"", 0}, err) != 0) return -1;
  return q->limit && ++q->n >= q->limit ? 1 : 0;
}

/* A {from, to} range field k of the options at tbl (either end nil:
 * open), to *lo / *hi; 0 when the field is absent. */
static int range_field(lua_State *L, int tbl, int arg, const char *k, int64_t *lo,
                       int64_t *hi) {
  if (lua_getfield(L, tbl, k) == LUA_TNIL) {
    lua_pop(L, 1);
    return 0;
  }
  if (!lua_istable(L, -1))
    luaL_argerror(L, arg, lua_pushfstring(L, "%s: {from, to} expected", k));
  int64_t *end[2] = {lo, hi};
  for (int i = 0; i < 2; i++) {
    int t = lua_rawgeti(L, -1, i + 1);
    if (t == LUA_TNIL) {
      lua_pop(L, 1);
      continue;
    }
    lua_Number x = lua_tonumber(L, -1);
    if (t != LUA_TNUMBER || !lls_time_ok(x))
      luaL_argerror(L, arg, lua_pushfstring(L, "%s: times must be " LLS_TIME_RULE
                                               " (nil leaves an end open)", k));
    *end[i] = lls_seconds_to_us(x);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  if (*lo > *hi) luaL_argerror(L, arg, lua_pushfstring(L, "%s: from is after to", k));
  return 1;
}

/* The filter userdata's finaliser: a raise frees the compiled filter. */
static int filter_gc(lua_State *L) {
  lls_filter **f = lua_touserdata(L, 1);
  lls_filter_free(*f);
  *f = NULL;
  return 0;
}

/* Compiles the filter table at vi, owned by a userdata left on the stack. */
static lls_filter *compile_filter(lua_State *L, int vi, int arg) {
  char err[300];
  if (!lua_istable(L, vi))
    luaL_argerror(L, arg, lua_pushfstring(L, "properties: filter table expected, got %s",
                                          luaL_typename(L, vi)));
  lls_value *spec = lls_lua_to_value(L, vi, "properties", err, sizeof err);
  if (spec == NULL) luaL_argerror(L, arg, err);
  lls_filter **slot = lls_class_scratch(L, "llmspell.storage.graph_filter", sizeof *slot,
                                        filter_gc);
  *slot = lls_filter_compile(spec, err, sizeof err);
  lls_value_free(spec);
  if (*slot == NULL) luaL_argerror(L, arg, lua_pushfstring(L, "properties: %s", err));
  return *slot;
}

/** g:query{type=, name=, properties=filter, valid={from, to},
 * recorded={from, to}, limit=} --> array of entity versions
 * Default: the versions valid now as believed now. valid / recorded
 * select versions whose range overlaps [from, to] (nil: open). type and
 * name use indexes; properties is a collection filter over the rows they
 * select. By id, then recorded_at. */
static int gr_query(lua_State *L) {
  static const char *const fields[] = {"type",  "name",     "properties", "valid",
                                       "recorded", "limit", NULL};
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  int o = opts_at(L, 2, fields);
  int64_t now = lls_now_us();
  lls_graph_query q = {{NULL, 0}, {NULL, 0}, now, now, now, now};
  query_ctx c = {&h->scratch, NULL, 0, 0};
  if (o) {
    q.type = text_field(L, o, 2, "type", LLS_MAX_NAME, 0);
    q.name = text_field(L, o, 2, "name", LLS_MAX_KEY, 0);
    /* an open end: -infinity / infinity on PostgreSQL */
    int64_t lo = INT64_MIN, hi = LLS_GRAPH_OPEN;
    if (range_field(L, o, 2, "valid", &lo, &hi)) q.valid_lo = lo, q.valid_hi = hi;
    lo = INT64_MIN, hi = LLS_GRAPH_OPEN;
    if (range_field(L, o, 2, "recorded", &lo, &hi)) q.recorded_lo = lo, q.recorded_hi = hi;
    c.limit = (size_t)lls_opt_int(L, o, "limit", 2, 1, INT32_MAX, 0);
    if (lua_getfield(L, o, "properties") != LUA_TNIL) {
      c.filter = compile_filter(L, lua_gettop(L), 2);
      if (lls_filter_matches_all(c.filter)) c.filter = NULL;
    }
  }
  lls_error err;
  h->scratch.len = 0;
  if (cb->vt->graph->query(cb, &q, keep_match, &c, &err) != 0)
    return lls_raise(L, &err, h->vt->name);
  return push_all(L, h, 0);
}

/* ---------------------------------------------------------------- upkeep */

/** g:purge_before(t) --> the number of versions removed
 * Removes the versions superseded before t (seconds): history older than
 * t can no longer be read with as_of. Current versions stay. */
static int gr_purge_before(lua_State *L) {
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  lua_Number t = luaL_checknumber(L, 2);
  if (!lls_time_ok(t)) luaL_argerror(L, 2, "t: must be " LLS_TIME_RULE);
  int64_t n;
  lls_error err;
  if (cb->vt->graph->purge_before(cb, lls_seconds_to_us(t), &n, &err) != 0)
    return lls_raise(L, &err, h->vt->name);
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

/** g:stats() --> {entity_versions=, relationship_versions=} */
static int gr_stats(lua_State *L) {
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  static const char *const keys[] = {"entity_versions", "relationship_versions"};
  lua_createtable(L, 0, 2);
  for (int part = 0; part < 2; part++) {
    int64_t n;
    lls_error err;
    if (cb->vt->graph->count(cb, part, &n, &err) != 0) return lls_raise(L, &err, h->vt->name);
    lua_pushinteger(L, (lua_Integer)n);
    lua_setfield(L, -2, keys[part]);
  }
  return 1;
}

/** db:graph() --> the store's knowledge-graph component */
static int db_graph(lua_State *L) { return lls_component_get(L, &CLS); }

const luaL_Reg lls_graph_db_methods[] = {{"graph", db_graph}, {NULL, NULL}};

void lls_open_graph(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"add_entity", gr_add_entity},
      {"update_entity", gr_update_entity},
      {"get_entity", gr_get_entity},
      {"delete_entity", gr_delete_entity},
      {"add_relationship", gr_add_relationship},
      {"delete_relationship", gr_delete_relationship},
      {"relationships", gr_relationships},
      {"related", gr_related},
      {"traverse", gr_traverse},
      {"query", gr_query},
      {"purge_before", gr_purge_before},
      {"stats", gr_stats},
      {NULL, NULL},
  };
  lls_component_define(L, &CLS, methods);
}
