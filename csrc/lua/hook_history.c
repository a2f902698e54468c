/*
 * hook_history.c -- db:hook_history(), the audit trail of hook executions
 * (COMPONENTS.md "Hook history", docs/hook_history.md). Its export section
 * is hook_history_section.c, which also owns the context's stored form.
 *
 * This file checks arguments, compresses a context on the way in and
 * decompresses it on the way out (the backends keep the bytes as given,
 * backend/hook_history.h), and shapes results. Rows are copied out of the
 * backend's result before anything that may raise runs.
 */
#include "lua/hook_history.h"

#include <stdint.h>
#include <string.h>

#include "backend/hook_history.h"
#include "base/clock.h"
#include "base/limits.h"
#include "lua/args.h"
#include "lua/class.h"
#include "lua/component.h"
#include "lua/error.h"
#include "lua/hook_history_section.h"
#include "lua/luavalue.h"
#include "value/json.h"

static const lls_component_class CLS = {{"hook_history", lls_component_owned_close, NULL},
                                        "llmspell.storage.HookHistory", "hook_history",
                                        lls_hook_history_count};

/* ------------------------------------------------------------- scratch */

#define SCRATCH_MT "llmspell.storage.hook_history_call"

/* What one call allocates; freed by its __gc when a raise cuts the call
 * short, and at the end otherwise. */
typedef struct scratch {
  lls_buf ctx, result, meta, tags, rows, plain;
} scratch;

static void scratch_free(scratch *s) {
  lls_buf_free(&s->ctx), lls_buf_free(&s->result), lls_buf_free(&s->meta);
  lls_buf_free(&s->tags), lls_buf_free(&s->rows), lls_buf_free(&s->plain);
}

static int scratch_gc(lua_State *L) {
  scratch_free(lua_touserdata(L, 1));
  return 0;
}

/* Pushes a new scratch (it stays on the stack for the call). */
static scratch *new_scratch(lua_State *L) {
  return lls_class_scratch(L, SCRATCH_MT, sizeof(scratch), scratch_gc);
}

/* ------------------------------------------------------ argument checks */

/* Field k of the table at arg, a text of min..max bytes; def when nil. */
static lls_str opt_text(lua_State *L, int arg, const char *k, size_t min, size_t max,
                        lls_str def) {
  lls_str s = def;
  int t = lua_getfield(L, arg, k);
  if (t != LUA_TNIL) {
    if (t != LUA_TSTRING)
      luaL_argerror(L, arg, lua_pushfstring(L, "option '%s': string expected, got %s", k,
                                            luaL_typename(L, -1)));
    s.ptr = lua_tolstring(L, -1, &s.len); /* the table keeps it alive */
    lls_check_text(L, arg, s, min, max, lua_pushfstring(L, "option '%s'", k));
  }
  lua_pop(L, 1);
  return s;
}

/* Field k of the table at arg, an id of 1..LLS_MAX_ID bytes; a new UUID
 * v4 (written to uuid) when nil. */
static lls_str opt_id(lua_State *L, int arg, const char *k, char uuid[37]) {
  lls_str s = opt_text(L, arg, k, 1, LLS_MAX_ID, (lls_str){NULL, 0});
  if (s.ptr != NULL) return s;
  lls_component_uuid(L, uuid);
  return (lls_str){uuid, 36};
}

/* Field `tags`: an array of texts (1..LLS_MAX_NAME bytes each), as JSON
 * text in out. */
static lls_str opt_tags(lua_State *L, int arg, lls_buf *out) {
  out->len = 0;
  if (lua_getfield(L, arg, "tags") == LUA_TNIL) {
    lua_pop(L, 1);
    return (lls_str){"[]", 2};
  }
  int t = lua_gettop(L);
  if (!lua_istable(L, t))
    luaL_argerror(L, arg, lua_pushfstring(L, "option 'tags': array of strings expected, got %s",
                                          luaL_typename(L, t)));
  lua_Integer n = (lua_Integer)lua_rawlen(L, t), keys = 0;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    keys++;
    lua_pop(L, 1);
  }
  if (keys != n) luaL_argerror(L, arg, "option 'tags': array of strings expected");
  for (lua_Integer i = 1; i <= n; i++) {
    if (lua_rawgeti(L, t, i) != LUA_TSTRING)
      luaL_argerror(L, arg, lua_pushfstring(L, "option 'tags': tag %d is a %s, not a string",
                                            (int)i, luaL_typename(L, -1)));
    lls_str tag;
    tag.ptr = lua_tolstring(L, -1, &tag.len);
    lls_check_text(L, arg, tag, 1, LLS_MAX_NAME,
                   lua_pushfstring(L, "option 'tags': tag %d", (int)i));
    lua_pop(L, 2);
  }
  /* checked: the array (possibly empty) encodes as JSON */
  lls_component_json_arg(L, t, arg, "option 'tags'", out);
  if (n == 0) {
    out->len = 0;
    if (lls_buf_append(out, "[]", 2) != 0) luaL_error(L, "not enough memory");
  }
  lua_pop(L, 1);
  return (lls_str){out->data, out->len};
}

/* Field k of the table at arg, any JSON-like value, as JSON text in out;
 * ptr NULL when nil. */
static lls_str opt_json(lua_State *L, int arg, const char *k, int want_table, lls_buf *out) {
  lls_str s = {NULL, 0};
  int t = lua_getfield(L, arg, k);
  if (t != LUA_TNIL) {
    if (want_table && t != LUA_TTABLE)
      luaL_argerror(L, arg, lua_pushfstring(L, "option '%s': table expected, got %s", k,
                                            luaL_typename(L, -1)));
    int vi = lua_gettop(L);
    lls_component_json_arg(L, vi, arg, lua_pushfstring(L, "option '%s'", k), out);
    lua_pop(L, 1); /* the name */
    s = (lls_str){out->data ? out->data : "", out->len};
  }
  lua_pop(L, 1);
  return s;
}

/* Field `timestamp` of the table at arg (seconds); now when nil. */
static int64_t opt_time(lua_State *L, int arg, const char *k, int64_t def) {
  lua_Number t;
  if (!lls_opt_number(L, arg, k, arg, &t)) return def;
  if (!lls_time_ok(t))
    luaL_argerror(L, arg, lua_pushfstring(L, "option '%s' must be a time (" LLS_TIME_RULE ")",
                                          k));
  return lls_seconds_to_us(t);
}

/* The execution table at arg 2 into *e, its buffers in sc (timestamp now
 * when it has none). */
static void check_exec(lua_State *L, scratch *sc, int64_t now, lls_hook_exec *e,
                       char ids[2][37]) {
  static const char *const fields[] = {
      "execution_id", "hook_id", "hook_type", "correlation_id", "context", "result",
      "timestamp", "duration_ms", "triggering_component", "component_id",
      "modified_operation", "tags", "retention_priority", "contains_sensitive_data",
      "metadata", NULL};
  static const lls_str none = {NULL, 0};
  luaL_checktype(L, 2, LUA_TTABLE);
  lls_check_fields(L, 2, 2, fields, NULL, 0);
  memset(e, 0, sizeof *e);
  e->hook_id = opt_text(L, 2, "hook_id", 1, LLS_MAX_ID, none);
  if (e->hook_id.ptr == NULL) luaL_argerror(L, 2, "option 'hook_id' is required");
  e->hook_type = opt_text(L, 2, "hook_type", 1, LLS_MAX_ID, none);
  if (e->hook_type.ptr == NULL) luaL_argerror(L, 2, "option 'hook_type' is required");
  e->execution_id = opt_id(L, 2, "execution_id", ids[0]);
  e->correlation_id = opt_id(L, 2, "correlation_id", ids[1]);
  e->triggering_component = opt_text(L, 2, "triggering_component", 0, LLS_MAX_ID, none);
  e->component_id = opt_text(L, 2, "component_id", 0, LLS_MAX_ID, none);
  e->timestamp = opt_time(L, 2, "timestamp", now);
  e->duration_ms = lls_opt_int(L, 2, "duration_ms", 2, 0, INT32_MAX, 0);
  e->retention_priority = lls_opt_int(L, 2, "retention_priority", 2, INT32_MIN, INT32_MAX, 0);
  e->modified_operation = lls_opt_bool(L, 2, "modified_operation", 2, 0);
  e->contains_sensitive_data = lls_opt_bool(L, 2, "contains_sensitive_data", 2, 0);
  e->result = opt_json(L, 2, "result", 0, &sc->result);
  e->metadata = opt_json(L, 2, "metadata", 1, &sc->meta);
  if (e->metadata.ptr == NULL) e->metadata = (lls_str){"{}", 2};
  e->tags = opt_tags(L, 2, &sc->tags);
}

/* Field `context` of the table at 2: bytes (any), packed into sc->ctx. */
static void check_context(lua_State *L, scratch *sc, lls_hook_exec *e) {
  size_t n = 0;
  const char *p = "";
  int t = lua_getfield(L, 2, "context");
  if (t != LUA_TNIL) {
    if (t != LUA_TSTRING)
      luaL_argerror(L, 2, lua_pushfstring(L, "option 'context': string expected, got %s",
                                          luaL_typename(L, -1)));
    p = lua_tolstring(L, -1, &n);
    if (n > LLS_MAX_HOOK_CONTEXT)
      luaL_argerror(L, 2, lua_pushfstring(L, "option 'context' is %I bytes, at most %I allowed",
                                          (lua_Integer)n, (lua_Integer)LLS_MAX_HOOK_CONTEXT));
  }
  if (lls_hook_pack(p, n, &sc->ctx) != 0) luaL_error(L, "not enough memory");
  lua_pop(L, 1);
  e->context = (lls_str){sc->ctx.data ? sc->ctx.data : "", sc->ctx.len};
  e->context_size = (int64_t)n;
}

/* ------------------------------------------------------------- results */

/* The strings of a row, in the order keep_row copies them. */
enum { S_ID, S_EXEC, S_HOOK, S_TYPE, S_CORR, S_CTX, S_RESULT, S_TRIG, S_COMP, S_TAGS, S_META, NSTR };

/* A row copied into a buffer while the backend reads it: this header,
 * then the strings' bytes. An absent string has length SIZE_MAX. */
typedef struct row_head {
  int64_t timestamp, created_at, duration_ms, retention_priority, context_size;
  int modified_operation, contains_sensitive_data;
  size_t len[NSTR];
} row_head;

static int keep_row(void *ud, const lls_hook_exec *e, lls_error *err) {
  lls_buf *b = ud;
  const lls_str s[NSTR] = {e->id,      e->execution_id, e->hook_id,
                           e->hook_type, e->correlation_id, e->context,
                           e->result,  e->triggering_component, e->component_id,
                           e->tags,    e->metadata};
  row_head h = {e->timestamp, e->created_at, e->duration_ms, e->retention_priority,
                e->context_size, e->modified_operation, e->contains_sensitive_data, {0}};
  for (int i = 0; i < NSTR; i++) h.len[i] = s[i].ptr ? s[i].len : SIZE_MAX;
  if (lls_buf_append(b, (const char *)&h, sizeof h) != 0) return lls_error_oom(err);
  for (int i = 0; i < NSTR; i++)
    if (s[i].ptr && lls_buf_append(b, s[i].ptr, s[i].len) != 0) return lls_error_oom(err);
  return 0;
}

static void set_str(lua_State *L, const char *k, const char *p, size_t n) {
  if (n == SIZE_MAX) return; /* absent: the field stays nil */
  lua_pushlstring(L, p, n);
  lua_setfield(L, -2, k);
}

static void set_int(lua_State *L, const char *k, int64_t v) {
  lua_pushinteger(L, (lua_Integer)v);
  lua_setfield(L, -2, k);
}

static void set_time(lua_State *L, const char *k, int64_t us) {
  lls_push_time(L, us);
  lua_setfield(L, -2, k);
}

static void set_bool(lua_State *L, const char *k, int v) {
  lua_pushboolean(L, v);
  lua_setfield(L, -2, k);
}

/* Pushes the JSON column json (what names it) as a Lua value: "{}" and
 * "[]", what most rows hold in tags and metadata, without a parse. */
static void push_json(lua_State *L, const lls_handle *h, lls_str json, const char *what) {
  int object = json.len == 2 && memcmp(json.ptr, "{}", 2) == 0;
  if (object || (json.len == 2 && memcmp(json.ptr, "[]", 2) == 0)) {
    lls_value empty = {object ? LLS_VOBJECT : LLS_VARRAY, {0}};
    lls_push_json(L, &empty); /* an array as the parse would mark it */
    return;
  }
  lls_component_push_json(L, h, json, what);
}

/* Pushes one kept row (h and its strings at p) as a table; the context
 * is decompressed through sc->plain, a damaged one raising `integrity`. */
static void push_row(lua_State *L, const lls_handle *h, scratch *sc, const row_head *r,
                     const char *p) {
  const char *at[NSTR];
  for (int i = 0; i < NSTR; i++) {
    at[i] = p;
    if (r->len[i] != SIZE_MAX) p += r->len[i];
  }
  lls_str stored = {at[S_CTX], r->len[S_CTX]};
  int64_t size;
  int rc = lls_hook_unpack(stored, r->context_size, &sc->plain, &size);
  if (rc == -2) luaL_error(L, "not enough memory");
  if (rc != 0)
    lls_raisef(L, h->vt->name, LLS_EINTEGRITY,
               "hook execution '%.*s': its stored context is damaged (it does not decompress"
               " to its context_size, %lld bytes)",
               (int)(r->len[S_EXEC] > 100 ? 100 : r->len[S_EXEC]), at[S_EXEC],
               (long long)r->context_size);
  luaL_checkstack(L, 4, "hook history row");
  lua_createtable(L, 0, 20);
  static const char *const names[NSTR] = {"id", "execution_id", "hook_id", "hook_type",
                                          "correlation_id", NULL, NULL, "triggering_component",
                                          "component_id", NULL, NULL};
  for (int i = 0; i < NSTR; i++)
    if (names[i] != NULL) set_str(L, names[i], at[i], r->len[i]);
  lua_pushlstring(L, sc->plain.data ? sc->plain.data : "", sc->plain.len);
  lua_setfield(L, -2, "context");
  if (r->len[S_RESULT] != SIZE_MAX) {
    push_json(L, h, (lls_str){at[S_RESULT], r->len[S_RESULT]}, "hook result");
    lua_setfield(L, -2, "result");
  }
  push_json(L, h, (lls_str){at[S_TAGS], r->len[S_TAGS]}, "hook tags");
  lua_setfield(L, -2, "tags");
  push_json(L, h, (lls_str){at[S_META], r->len[S_META]}, "hook metadata");
  lua_setfield(L, -2, "metadata");
  set_time(L, "timestamp", r->timestamp);
  set_time(L, "created_at", r->created_at);
  set_int(L, "duration_ms", r->duration_ms);
  set_int(L, "retention_priority", r->retention_priority);
  set_int(L, "context_size", r->context_size);
  set_int(L, "stored_size", (int64_t)r->len[S_CTX]);
  set_bool(L, "modified_operation", r->modified_operation);
  set_bool(L, "contains_sensitive_data", r->contains_sensitive_data);
}

/* Pushes the rows keep_row wrote into sc->rows as an array. */
static void push_rows(lua_State *L, const lls_handle *h, scratch *sc) {
  lua_newtable(L);
  lua_Integer i = 0;
  const lls_buf *b = &sc->rows;
  for (size_t at = 0; at < b->len;) {
    row_head r;
    memcpy(&r, b->data + at, sizeof r); /* the buffer does not align it */
    at += sizeof r;
    push_row(L, h, sc, &r, b->data + at);
    lua_rawseti(L, -2, ++i);
    for (int k = 0; k < NSTR; k++)
      if (r.len[k] != SIZE_MAX) at += r.len[k];
  }
}

/* --------------------------------------------------------- the methods */

/** h:record{hook_id=, hook_type=, execution_id=, correlation_id=, context=,
 * result=, timestamp=, duration_ms=, triggering_component=, component_id=,
 * modified_operation=, tags=, retention_priority=,
 * contains_sensitive_data=, metadata=} --> execution_id
 * The context is stored lz4-compressed; `conflict` when the execution_id
 * is taken. */
static int hk_record(lua_State *L) {
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  scratch *sc = new_scratch(L);
  lls_hook_exec e;
  char ids[2][37], rowid[37];
  int64_t now = lls_now_us();
  check_exec(L, sc, now, &e, ids);
  check_context(L, sc, &e);
  lls_component_uuid(L, rowid);
  e.id = (lls_str){rowid, 36};
  e.created_at = now;
  int written;
  lls_error err;
  if (cb->vt->hook_history->put(cb, &e, LLS_CONFLICT_ERROR, &written, &err) != 0)
    return lls_raise(L, &err, h->vt->name);
  lua_pushlstring(L, e.execution_id.ptr, e.execution_id.len);
  scratch_free(sc);
  return 1;
}

/* Argument arg: a text of 1..LLS_MAX_ID bytes (what names it). */
static lls_str check_id(lua_State *L, int arg, const char *what) {
  lls_str s;
  if (lua_type(L, arg) != LUA_TSTRING)
    luaL_argerror(L, arg, lua_pushfstring(L, "%s: string expected, got %s", what,
                                          luaL_typename(L, arg)));
  s.ptr = lua_tolstring(L, arg, &s.len);
  lls_check_text(L, arg, s, 1, LLS_MAX_ID, what);
  return s;
}

/** h:get(execution_id) --> the execution's table, or nil */
static int hk_get(lua_State *L) {
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  lls_str id = check_id(L, 2, "execution_id");
  scratch *sc = new_scratch(L);
  int found;
  lls_error err;
  if (cb->vt->hook_history->get(cb, id, keep_row, &sc->rows, &found, &err) != 0)
    return lls_raise(L, &err, h->vt->name);
  if (!found) {
    lua_pushnil(L);
    return 1;
  }
  push_rows(L, h, sc);
  lua_rawgeti(L, -1, 1);
  scratch_free(sc);
  return 1;
}

/* The body of by_correlation / by_hook / by_type(key, [{limit=}]). */
static int list_by(lua_State *L, lls_hook_by by, const char *what) {
  static const char *const fields[] = {"limit", NULL};
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  lls_str key = check_id(L, 2, what);
  long limit = 0;
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    lls_check_fields(L, 3, 3, fields, NULL, 0);
    limit = lls_opt_int(L, 3, "limit", 3, 1, INT32_MAX, 0);
  }
  scratch *sc = new_scratch(L);
  lls_error err;
  if (cb->vt->hook_history->list(cb, by, key, (size_t)limit, keep_row, &sc->rows, &err) != 0)
    return lls_raise(L, &err, h->vt->name);
  push_rows(L, h, sc);
  scratch_free(sc);
  return 1;
}

/** h:by_correlation(correlation_id [, {limit=}]) --> executions, newest first */
static int hk_by_correlation(lua_State *L) {
  return list_by(L, LLS_HOOK_BY_CORRELATION, "correlation_id");
}

/** h:by_hook(hook_id [, {limit=}]) --> executions, newest first */
static int hk_by_hook(lua_State *L) { return list_by(L, LLS_HOOK_BY_HOOK, "hook_id"); }

/** h:by_type(hook_type [, {limit=}]) --> executions, newest first */
static int hk_by_type(lua_State *L) { return list_by(L, LLS_HOOK_BY_TYPE, "hook_type"); }

/** h:archive{before=, max_priority=0} --> the number of executions removed:
 * those older than before whose retention_priority is at most
 * max_priority */
static int hk_archive(lua_State *L) {
  static const char *const fields[] = {"before", "max_priority", NULL};
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  luaL_checktype(L, 2, LUA_TTABLE);
  lls_check_fields(L, 2, 2, fields, NULL, 0);
  lua_Number t;
  if (!lls_opt_number(L, 2, "before", 2, &t))
    luaL_argerror(L, 2, "option 'before' is required");
  if (!lls_time_ok(t))
    luaL_argerror(L, 2, "option 'before' must be a time (" LLS_TIME_RULE ")");
  long max = lls_opt_int(L, 2, "max_priority", 2, INT32_MIN, INT32_MAX, 0);
  int64_t removed;
  lls_error err;
  if (cb->vt->hook_history->archive(cb, lls_seconds_to_us(t), max, &removed, &err) != 0)
    return lls_raise(L, &err, h->vt->name);
  lua_pushinteger(L, (lua_Integer)removed);
  return 1;
}

/* stats' groups, copied as they come: by_type, count, name length, name. */
typedef struct group_head {
  int by_type;
  int64_t n;
  size_t len;
} group_head;

static int keep_group(void *ud, int by_type, lls_str name, int64_t n, lls_error *err) {
  group_head g = {by_type, n, name.len};
  if (lls_buf_append(ud, (const char *)&g, sizeof g) != 0 ||
      lls_buf_append(ud, name.ptr, name.len) != 0)
    return lls_error_oom(err);
  return 0;
}

/** h:stats() --> {executions=, bytes=, compressed_bytes=, avg_duration_ms=,
 * oldest=, newest=, by_hook = {[hook_id] = n}, by_type = {[hook_type] = n}}
 * (bytes: the contexts' original sizes; oldest/newest nil when empty) */
static int hk_stats(lua_State *L) {
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  scratch *sc = new_scratch(L);
  lls_hook_totals t;
  lls_error err;
  if (cb->vt->hook_history->stats(cb, &t, keep_group, &sc->rows, &err) != 0)
    return lls_raise(L, &err, h->vt->name);
  lua_createtable(L, 0, 8);
  set_int(L, "executions", t.executions);
  set_int(L, "bytes", t.bytes);
  set_int(L, "compressed_bytes", t.compressed_bytes);
  lua_pushnumber(L, (lua_Number)t.avg_duration_ms);
  lua_setfield(L, -2, "avg_duration_ms");
  if (t.executions > 0) {
    set_time(L, "oldest", t.oldest);
    set_time(L, "newest", t.newest);
  }
  lua_newtable(L); /* by_hook */
  lua_newtable(L); /* by_type */
  for (size_t at = 0; at < sc->rows.len;) {
    group_head g;
    memcpy(&g, sc->rows.data + at, sizeof g);
    at += sizeof g;
    lua_pushlstring(L, sc->rows.data + at, g.len);
    lua_pushinteger(L, (lua_Integer)g.n);
    lua_rawset(L, g.by_type ? -3 : -4);
    at += g.len;
  }
  lua_setfield(L, -3, "by_type");
  lua_setfield(L, -2, "by_hook");
  scratch_free(sc);
  return 1;
}

/** h:count() --> the number of the tenant's hook executions */
static int hk_count(lua_State *L) {
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  int64_t n;
  lls_error err;
  if (cb->vt->hook_history->count(cb, &n, &err) != 0) return lls_raise(L, &err, h->vt->name);
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

/** db:hook_history() --> the store's hook-history component */
static int db_hook_history(lua_State *L) { return lls_component_get(L, &CLS); }

const luaL_Reg lls_hook_history_db_methods[] = {{"hook_history", db_hook_history},
                                                {NULL, NULL}};

void lls_open_hook_history(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"record", hk_record},   {"get", hk_get},         {"by_correlation", hk_by_correlation},
      {"by_hook", hk_by_hook}, {"by_type", hk_by_type}, {"archive", hk_archive},
      {"stats", hk_stats},     {"count", hk_count},     {NULL, NULL},
  };
  lls_component_define(L, &CLS, methods);
}
