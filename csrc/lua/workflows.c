/*
 * workflows.c -- db:workflows(), the workflow-state component
 * (COMPONENTS.md "Workflow states", docs/workflows.md); its export
 * section is workflows_section.c.
 *
 * The status machine (backend/workflows.h) is enforced by the backends'
 * write statements; this file checks arguments, keeps a new workflow from
 * being created already completed (a new workflow starts pending), and
 * says in the error which move was refused.
 */
#include "lua/workflows.h"

#include <stdint.h>
#include <string.h>

#include "backend/workflows.h"
#include "base/clock.h"
#include "base/limits.h"
#include "lua/args.h"
#include "lua/class.h"
#include "lua/component.h"
#include "lua/error.h"
#include "lua/workflows_section.h"

/* Where each status may move besides staying, by LLS_WF_* index, for
 * messages (the rule itself is LLS_WF_MOVE_OK). */
static const char *const MOVES[] = {"running, failed or cancelled",
                                    "completed, failed or cancelled", NULL, NULL, NULL};

/* Ids and names in messages: at most this many bytes. */
#define QUOTE(s) (int)((s).len > 200 ? 200 : (s).len), (s).ptr

static const lls_component_class CLS = {{"workflows", lls_component_owned_close, NULL},
                                        "llmspell.storage.Workflows", "workflows",
                                        lls_workflows_count};

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
    luaL_argerror(L, arg, lua_pushfstring(L, "status must be one of " LLS_WF_STATUS_LIST
                                          " (got %s)", luaL_typename(L, idx)));
  if (lls_workflow_status(s) < 0)
    luaL_argerror(L, arg, lua_pushfstring(L, "status must be one of " LLS_WF_STATUS_LIST
                                          " (got '%s')", lua_tostring(L, idx)));
  return s;
}

/* Raises `invalid` for the refused move of workflow id from `from` to `to`. */
static int refuse(lua_State *L, const lls_handle *h, lls_str id, lls_str from, lls_str to,
                  int is_new) {
  int i = lls_workflow_status(from);
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
  int completed = c->status.ptr && lls_workflow_status(c->status) == LLS_WF_COMPLETED;
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
  return lls_component_push_ids(L, h);
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

/** w:count() --> the number of the tenant's workflows */
static int wf_count(lua_State *L) {
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  int64_t n;
  lls_error err;
  if (cb->vt->workflows->count(cb, &n, &err) != 0) return lls_raise(L, &err, h->vt->name);
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

/** db:workflows() --> the store's workflow-state component */
static int db_workflows(lua_State *L) { return lls_component_get(L, &CLS); }

const luaL_Reg lls_workflows_db_methods[] = {{"workflows", db_workflows}, {NULL, NULL}};

void lls_open_workflows(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"save", wf_save},     {"set_status", wf_set_status}, {"load", wf_load},
      {"list", wf_list},     {"delete", wf_delete},         {"count", wf_count},
      {NULL, NULL},
  };
  lls_component_define(L, &CLS, methods);
}
