/*
 * workflows.c -- db:workflows(), the workflow-state component
 * (COMPONENTS.md "Workflow states", docs/workflows.md), and its export
 * section "workflow_states".
 *
 * The status machine (backend/workflows.h) is enforced by the backends'
 * write statements; this file checks arguments, keeps a new workflow from
 * being created already completed (a new workflow starts pending), and
 * says in the error which move was refused.
 */
#include "lua/workflows.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/workflows.h"
#include "base/clock.h"
#include "base/limits.h"
#include "lua/args.h"
#include "lua/class.h"
#include "lua/component.h"
#include "lua/error.h"
#include "value/json.h"

/* Statuses, and where each may move besides staying (for messages; the
 * rule itself is LLS_WF_MOVE_OK). */
static const char *const STATUSES[] = {"pending", "running", "completed", "failed",
                                       "cancelled", NULL};
static const char *const MOVES[] = {"running, failed or cancelled",
                                    "completed, failed or cancelled", NULL, NULL, NULL};
#define STATUS_LIST "pending, running, completed, failed, cancelled"

/* Index of s in STATUSES, or -1. */
static int status_index(lls_str s) {
  for (int i = 0; STATUSES[i] != NULL; i++)
    if (strlen(STATUSES[i]) == s.len && memcmp(STATUSES[i], s.ptr, s.len) == 0) return i;
  return -1;
}

/* Ids and names in messages: at most this many bytes. */
#define QUOTE(s) (int)((s).len > 200 ? 200 : (s).len), (s).ptr

static int wf_count(lls_backend *cb, int64_t now, int64_t *n, lls_error *err) {
  (void)now;
  return cb->vt->workflows->count(cb, n, err);
}

static const lls_component_class CLS = {{"workflows", lls_component_owned_close, NULL},
                                        "llmspell.storage.Workflows", "workflows", wf_count};

/* ------------------------------------------------------ argument checks */

static lls_str check_text(lua_State *L, int idx, int arg, const char *what, size_t min) {
  lls_str s;
  if (lua_type(L, idx) != LUA_TSTRING)
    luaL_argerror(L, arg, lua_pushfstring(L, "%s: string expected, got %s", what,
                                          luaL_typename(L, idx)));
  s.ptr = lua_tolstring(L, idx, &s.len);
  lls_check_text(L, arg, s, min, LLS_MAX_ID, what);
  return s;
}

static lls_str check_id(lua_State *L, int arg) {
  return check_text(L, arg, arg, "workflow_id", 1);
}

static lls_str check_status(lua_State *L, int idx, int arg) {
  lls_str s = {NULL, 0};
  if (lua_type(L, idx) == LUA_TSTRING) s.ptr = lua_tolstring(L, idx, &s.len);
  if (s.ptr == NULL)
    luaL_argerror(L, arg, lua_pushfstring(L, "status must be one of " STATUS_LIST " (got %s)",
                                          luaL_typename(L, idx)));
  if (status_index(s) < 0)
    luaL_argerror(L, arg, lua_pushfstring(L, "status must be one of " STATUS_LIST " (got '%s')",
                                          lua_tostring(L, idx)));
  return s;
}

/* Raises `invalid` for the refused move of workflow id from `from` to `to`. */
static int refuse(lua_State *L, const lls_handle *h, lls_str id, lls_str from, lls_str to,
                  int is_new) {
  int i = status_index(from);
  const char *moves = i >= 0 ? MOVES[i] : NULL;
  return lls_raisef(L, h->vt->name, LLS_EINVALID,
                    "%sworkflow '%.*s' cannot move from %.*s to %.*s (%.*s %s%s)",
                    is_new ? "new " : "", QUOTE(id), (int)from.len, from.ptr, (int)to.len,
                    to.ptr, (int)from.len, from.ptr, moves ? "moves to " : "is final",
                    moves ? moves : "");
}

/* ------------------------------------------------------------- results */

static void set_time(lua_State *L, const char *k, int set, int64_t us) {
  if (!set) return;
  lls_push_time(L, us);
  lua_setfield(L, -2, k);
}

/* Pushes w as load returns it. */
static void push_workflow(lua_State *L, const lls_handle *h, const lls_workflow *w) {
  lua_createtable(L, 0, 9);
  lua_pushlstring(L, w->workflow_id.ptr, w->workflow_id.len);
  lua_setfield(L, -2, "workflow_id");
  lua_pushlstring(L, w->name.ptr, w->name.len);
  lua_setfield(L, -2, "name");
  lua_pushlstring(L, w->status.ptr, w->status.len);
  lua_setfield(L, -2, "status");
  lua_pushinteger(L, w->current_step);
  lua_setfield(L, -2, "current_step");
  lls_component_push_json(L, h, w->data, "data");
  lua_setfield(L, -2, "data");
  set_time(L, "started_at", w->has_started, w->started_at);
  set_time(L, "completed_at", w->has_completed, w->completed_at);
  set_time(L, "last_updated", 1, w->last_updated);
  set_time(L, "created_at", 1, w->created_at);
}

/* JSON text of one call's data argument, freed with its userdata (so a
 * raise in between leaks nothing). */
static int json_buf_gc(lua_State *L) {
  lls_buf_free(lua_touserdata(L, 1));
  return 0;
}

/* The save behind w:save (saving: may create) and w:set_status: raises
 * for a refused move, a missing workflow or a backend failure; pushes the
 * row. */
static int save(lua_State *L, lls_handle *h, lls_backend *cb, lls_str id,
                const lls_workflow_change *c, int saving) {
  /* a new workflow starts pending, which cannot move to completed */
  int completed = c->status.ptr && status_index(c->status) == 2;
  lls_workflow w;
  lls_workflow_outcome outcome;
  lls_error err;
  if (cb->vt->workflows->save(cb, id, c, saving && !completed, lls_now_us(), &h->scratch, &w,
                              &outcome, &err) != 0)
    return lls_raise(L, &err, h->vt->name);
  if (outcome == LLS_WF_REFUSED) return refuse(L, h, id, w.status, c->status, 0);
  if (outcome == LLS_WF_MISSING && saving)
    return refuse(L, h, id, (lls_str){"pending", 7}, c->status, 1);
  if (outcome == LLS_WF_MISSING)
    return lls_raisef(L, h->vt->name, LLS_ENOTFOUND, "workflow '%.*s' not found", QUOTE(id));
  push_workflow(L, h, &w);
  return 1;
}

/* --------------------------------------------------------- the methods */

/** w:save(workflow_id, {name=, status=, current_step=, data=}) --> workflow
 * Creates the workflow (a UUID when workflow_id is nil) or changes the
 * fields given; a status follows the machine. */
static int wf_save(lua_State *L) {
  static const char *const fields[] = {"name", "status", "current_step", "data", NULL};
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  char uuid[37];
  lls_str id;
  if (lua_isnoneornil(L, 2)) {
    lls_component_uuid(L, uuid);
    id = (lls_str){uuid, strlen(uuid)};
  } else {
    id = check_id(L, 2);
  }
  lls_workflow_change c = {{NULL, 0}, {NULL, 0}, {NULL, 0}, 0, 0};
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    lls_check_fields(L, 3, 3, fields, NULL, 0);
    if (lua_getfield(L, 3, "name") != LUA_TNIL) c.name = check_text(L, -1, 3, "name", 0);
    if (lua_getfield(L, 3, "status") != LUA_TNIL) c.status = check_status(L, -1, 3);
    if (lua_getfield(L, 3, "current_step") != LUA_TNIL) {
      c.has_step = 1;
      c.current_step = lls_int_at(L, -1, "current_step", 3, 0, INT32_MAX);
    }
    if (lua_getfield(L, 3, "data") != LUA_TNIL) {
      lls_buf *json = lls_class_scratch(L, "llmspell.storage.workflow_json", sizeof *json,
                                        json_buf_gc);
      lls_component_json_arg(L, -2, 3, "data", json);
      c.data = (lls_str){json->data ? json->data : "", json->len};
    }
  }
  return save(L, h, cb, id, &c, 1);
}

/** w:set_status(workflow_id, status) --> workflow
 * Moves the workflow as the machine allows: `invalid` otherwise,
 * `not_found` when there is none. */
static int wf_set_status(lua_State *L) {
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  lls_str id = check_id(L, 2);
  lls_workflow_change c = {{NULL, 0}, check_status(L, 3, 3), {NULL, 0}, 0, 0};
  return save(L, h, cb, id, &c, 0);
}

/** w:load(workflow_id) --> {workflow_id=, name=, status=, current_step=, data=,
 * started_at=, completed_at=, last_updated=, created_at=} | nil */
static int wf_load(lua_State *L) {
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  lls_str id = check_id(L, 2);
  lls_workflow w;
  int found;
  lls_error err;
  if (cb->vt->workflows->load(cb, id, &h->scratch, &w, &found, &err) != 0)
    return lls_raise(L, &err, h->vt->name);
  if (found)
    push_workflow(L, h, &w);
  else
    lua_pushnil(L);
  return 1;
}

/** w:list([{status=}]) --> array of workflow ids, last updated first */
static int wf_list(lua_State *L) {
  static const char *const fields[] = {"status", NULL};
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  lls_str status = {NULL, 0};
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lls_check_fields(L, 2, 2, fields, NULL, 0);
    if (lua_getfield(L, 2, "status") != LUA_TNIL) status = check_status(L, -1, 2);
  }
  lls_error err;
  lls_rows_reset(&h->rows);
  if (cb->vt->workflows->list(cb, status, &h->rows, &err) != 0)
    return lls_raise(L, &err, h->vt->name);
  lua_createtable(L, (int)h->rows.count, 0);
  for (size_t i = 0; i < h->rows.count; i++) {
    lls_str k = lls_row_key(&h->rows, i);
    lua_pushlstring(L, k.ptr, k.len);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lls_rows_reset(&h->rows);
  return 1;
}

/** w:delete(workflow_id) --> true if it existed */
static int wf_delete(lua_State *L) {
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  lls_str id = check_id(L, 2);
  int existed;
  lls_error err;
  if (cb->vt->workflows->del(cb, id, &existed, &err) != 0)
    return lls_raise(L, &err, h->vt->name);
  lua_pushboolean(L, existed);
  return 1;
}

/** db:workflows() --> the store's workflow-state component */
static int db_workflows(lua_State *L) { return lls_component_get(L, &CLS); }

const luaL_Reg lls_workflows_db_methods[] = {{"workflows", db_workflows}, {NULL, NULL}};

void lls_open_workflows(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"save", wf_save},     {"set_status", wf_set_status}, {"load", wf_load},
      {"list", wf_list},     {"delete", wf_delete},         {NULL, NULL},
  };
  lls_component_define(L, &CLS, methods);
}

/* ------------------------------------------- the export section */

/* Rows per dump page. */
#define PAGE 256

/* Adds member k = v to o (taking v; a NULL v is out of memory). */
static int put(lls_value *o, const char *k, lls_value *v) {
  return lls_value_set(o, k, strlen(k), v);
}

static lls_value *str_value(lls_str s) { return lls_value_string(s.ptr, s.len); }

static lls_value *time_value(int set, int64_t us) {
  return set ? lls_value_int(us) : lls_value_null();
}

typedef struct dump_ctx {
  lls_section_emit emit;
  void *ud;
  lls_buf last; /* the last id sent: where the next page starts */
} dump_ctx;

/* One row as rs-llmspell's WorkflowStateExport, to the exporter. */
static int dump_row(void *ud, const lls_workflow *w, lls_error *err) {
  dump_ctx *d = ud;
  char msg[256];
  lls_value *data = lls_json_decode(w->data.ptr, w->data.len, msg, sizeof msg);
  if (data == NULL)
    return lls_error_set(err, LLS_EINTEGRITY, "workflow '%.*s': stored data cannot be read: %s",
                         QUOTE(w->workflow_id), msg);
  lls_value *rec = lls_value_object();
  if (rec == NULL) {
    lls_value_free(data);
    return lls_error_oom(err);
  }
  /* each put takes its value, also when an earlier one failed */
  int rc = put(rec, "tenant_id", str_value(w->tenant_id)) |
           put(rec, "workflow_id", str_value(w->workflow_id)) |
           put(rec, "workflow_name", str_value(w->name)) | put(rec, "state_data", data) |
           put(rec, "current_step", lls_value_int(w->current_step)) |
           put(rec, "status", str_value(w->status)) |
           put(rec, "started_at", time_value(w->has_started, w->started_at)) |
           put(rec, "completed_at", time_value(w->has_completed, w->completed_at)) |
           put(rec, "last_updated", lls_value_int(w->last_updated)) |
           put(rec, "created_at", lls_value_int(w->created_at));
  d->last.len = 0;
  if (rc != 0 || lls_buf_append(&d->last, w->workflow_id.ptr, w->workflow_id.len) != 0) {
    lls_value_free(rec);
    return lls_error_oom(err);
  }
  rc = d->emit(d->ud, rec, err);
  lls_value_free(rec);
  return rc;
}

/* Every workflow of the tenant in workflow_id order, a page at a time. */
static int section_dump(lls_backend *cb, int part, int64_t now, lls_section_emit emit, void *ud,
                        int64_t *n, lls_error *err) {
  (void)part, (void)now;
  dump_ctx d = {emit, ud, {NULL, 0, 0}};
  lls_buf after = {NULL, 0, 0};
  int rc = 0;
  *n = 0;
  for (;;) {
    size_t got;
    lls_str from = {after.data ? after.data : "", after.len};
    rc = cb->vt->workflows->dump(cb, from, PAGE, dump_row, &d, &got, err);
    *n += (int64_t)got;
    if (rc != 0 || got < PAGE) break;
    lls_buf tmp = after; /* the page's last id becomes the next start */
    after = d.last;
    d.last = tmp;
  }
  lls_buf_free(&after);
  lls_buf_free(&d.last);
  return rc;
}

/* Import errors name the record by its id once it is known. */
static int bad(lls_error *err, lls_str id, const char *fmt, const char *field) {
  char what[300];
  snprintf(what, sizeof what, fmt, field);
  if (id.ptr == NULL) return lls_error_set(err, LLS_EFORMAT, "workflow_states record: %s", what);
  return lls_error_set(err, LLS_EFORMAT, "workflow_states record '%.*s': %s", QUOTE(id), what);
}

/* A text member (absent or null: *out stays NULL). */
static int rec_text(const lls_value *rec, const char *k, size_t min, lls_str id, lls_str *out,
                    lls_error *err) {
  const lls_value *v = lls_value_get(rec, k, strlen(k));
  if (v == NULL || v->type == LLS_VNULL) return 0;
  if (v->type != LLS_VSTRING) return bad(err, id, "%s must be a string", k);
  lls_str s = {v->u.s.ptr, v->u.s.len};
  if (!lls_text_ok(s, min, LLS_MAX_ID))
    return bad(err, id, "%s must be UTF-8 text without NUL of at most 512 bytes", k);
  *out = s;
  return 0;
}

/* An integer member in [lo, hi]; *set = 0 when absent or null. */
static int rec_int(const lls_value *rec, const char *k, int64_t lo, int64_t hi, lls_str id,
                   int *set, int64_t *out, lls_error *err) {
  const lls_value *v = lls_value_get(rec, k, strlen(k));
  *set = v != NULL && v->type != LLS_VNULL;
  if (!*set) return 0;
  if (v->type != LLS_VINT || v->u.i < lo || v->u.i > hi)
    return bad(err, id, "%s must be an integer in range", k);
  *out = v->u.i;
  return 0;
}

/* 1 when a string of v (at any depth) holds a NUL byte: data takes what
 * the Lua API takes, and PostgreSQL's jsonb cannot hold "\u0000". */
static int has_nul(const lls_value *v) {
  switch (v->type) {
  case LLS_VSTRING: return v->u.s.len > 0 && memchr(v->u.s.ptr, '\0', v->u.s.len) != NULL;
  case LLS_VARRAY:
    for (size_t i = 0; i < v->u.a.n; i++)
      if (has_nul(v->u.a.items[i])) return 1;
    return 0;
  case LLS_VOBJECT:
    for (size_t i = 0; i < v->u.o.n; i++)
      if (has_nul(v->u.o.members[i].value)) return 1;
    return 0;
  default: return 0;
  }
}

/* Reads rs-llmspell's record (its short form too: only workflow_id is
 * required; status "pending", current_step 0, state_data {}, name = the
 * id, missing times: unset, or now for last_updated / created_at). */
static int section_load(lls_backend *cb, int part, const lls_value *rec, lls_conflict on_conflict,
                        int64_t now, int *written, lls_error *err) {
  (void)part;
  const int64_t tmax = (int64_t)(LLS_MAX_TIME_S * 1e6);
  lls_str none = {NULL, 0};
  lls_workflow w = {0};
  int set;
  int64_t x;
  if (rec->type != LLS_VOBJECT) return bad(err, none, "%s", "not an object");
  if (rec_text(rec, "workflow_id", 1, none, &w.workflow_id, err) != 0) return -1;
  if (w.workflow_id.ptr == NULL) return bad(err, none, "%s is missing", "workflow_id");
  lls_str id = w.workflow_id;
  w.name = id;
  w.status = (lls_str){"pending", 7};
  if (rec_text(rec, "workflow_name", 0, id, &w.name, err) != 0 ||
      rec_text(rec, "status", 1, id, &w.status, err) != 0)
    return -1;
  if (w.name.ptr == NULL) w.name = id;
  if (w.status.ptr == NULL) w.status = (lls_str){"pending", 7};
  if (status_index(w.status) < 0)
    return bad(err, id, "%s must be one of " STATUS_LIST, "status");
  if (rec_int(rec, "current_step", 0, INT32_MAX, id, &set, &x, err) != 0) return -1;
  w.current_step = set ? (int)x : 0;
  if (rec_int(rec, "started_at", -tmax, tmax, id, &w.has_started, &w.started_at, err) != 0 ||
      rec_int(rec, "completed_at", -tmax, tmax, id, &w.has_completed, &w.completed_at, err))
    return -1;
  int has_updated, has_created;
  if (rec_int(rec, "last_updated", -tmax, tmax, id, &has_updated, &w.last_updated, err) != 0 ||
      rec_int(rec, "created_at", -tmax, tmax, id, &has_created, &w.created_at, err) != 0)
    return -1;
  if (!has_created) w.created_at = has_updated ? w.last_updated : now;
  if (!has_updated) w.last_updated = has_created ? w.created_at : now;
  const lls_value *data = lls_value_get(rec, "state_data", 10);
  if (data != NULL && has_nul(data))
    return bad(err, id, "%s must not hold NUL (\\u0000) in its strings", "state_data");
  lls_buf json = {NULL, 0, 0};
  char msg[256];
  if (data == NULL) {
    w.data = (lls_str){"{}", 2};
  } else if (lls_json_encode(data, &json, msg, sizeof msg) != 0) {
    lls_buf_free(&json);
    return bad(err, id, "state_data: %s", msg);
  } else {
    w.data = (lls_str){json.data, json.len};
  }
  int rc = cb->vt->workflows->put(cb, &w, on_conflict, written, err);
  lls_buf_free(&json);
  return rc;
}

const lls_section_codec lls_workflows_section = {"workflow_states", NULL, section_dump,
                                                 section_load, wf_count};
