/*
 * agent_states.c -- db:agent_states() (COMPONENTS.md "Agent state"): one
 * snapshot of state per agent id, saved as JSON text (a table) or as the
 * bytes of a string, with a SHA-256 checksum of the stored bytes that is
 * checked on every read that returns state (load here, export in
 * agent_states_section.c), and a data_version the backend's one-statement
 * upsert keeps exact under concurrent savers.
 *
 * The checksum is computed and verified in the core, once for every
 * backend: the backends (backend/agent_states.h) only store and return
 * bytes.
 */
#include "lua/agent_states.h"

#include <stdint.h>
#include <string.h>

#include "backend/agent_states.h"
#include "base/clock.h"
#include "base/limits.h"
#include "base/sha256.h"
#include "lua/agent_states_section.h"
#include "lua/args.h"
#include "lua/component.h"
#include "lua/error.h"

#define AGENT_STATES_MT "llmspell.storage.AgentStates"

static int count_rows(lls_backend *cb, int64_t now, int64_t *n, lls_error *err) {
  (void)now;
  return cb->vt->agent_states->count(cb, n, err);
}

static const lls_component_class CLS = {
    {"agent_states", lls_component_owned_close, NULL}, AGENT_STATES_MT, "agent_states",
    count_rows};

/* ------------------------------------------------------ argument checks */

static lls_str check_text_arg(lua_State *L, int idx, int arg, size_t max, const char *what) {
  if (lua_type(L, idx) != LUA_TSTRING)
    luaL_argerror(L, arg, lua_pushfstring(L, "string %s expected, got %s", what,
                                          luaL_typename(L, idx)));
  lls_str s;
  s.ptr = lua_tolstring(L, idx, &s.len);
  lls_check_text(L, arg, s, 1, max, what);
  return s;
}

static lls_str check_id(lua_State *L, int arg) {
  return check_text_arg(L, arg, arg, LLS_MAX_ID, "agent_id");
}

/* -------------------------------------------------------------- methods */

/** g:save(agent_id, state [, {agent_type=, schema_version=}])
 * --> {data_version=, checksum=}. state: a table (stored as JSON) or a
 * string (stored as its bytes). agent_type / schema_version: kept from the
 * stored row when not given ("unknown" / 1 for a new one). */
static int as_save(lua_State *L) {
  static const char *const allowed[] = {"agent_type", "schema_version", NULL};
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  lls_agent_state st;
  memset(&st, 0, sizeof st);
  st.agent_id = check_id(L, 2);
  int t = lua_type(L, 3);
  if (t == LUA_TTABLE) {
    /* h->scratch outlives a raise; nothing else uses it during the call */
    lls_component_json_arg(L, 3, 3, "state", &h->scratch);
    st.state_data.ptr = h->scratch.data ? h->scratch.data : "";
    st.state_data.len = h->scratch.len;
    st.is_json = 1;
  } else if (t == LUA_TSTRING) {
    st.state_data.ptr = lua_tolstring(L, 3, &st.state_data.len);
  } else {
    luaL_argerror(L, 3, lua_pushfstring(L, "table or string state expected, got %s",
                                        luaL_typename(L, 3)));
  }
  if (!lua_isnoneornil(L, 4)) {
    luaL_checktype(L, 4, LUA_TTABLE);
    lls_check_fields(L, 4, 4, allowed, NULL, 0);
    /* the string stays alive in the options table after the pop */
    if (lua_getfield(L, 4, "agent_type") != LUA_TNIL)
      st.agent_type = check_text_arg(L, -1, 4, LLS_MAX_NAME, "agent_type");
    lua_pop(L, 1);
    st.schema_version = lls_opt_int(L, 4, "schema_version", 4, 1, INT32_MAX, 0);
  }
  char sid[37], hex[LLS_SHA256_HEX];
  lls_component_uuid(L, sid);
  st.state_id.ptr = sid;
  st.state_id.len = 36;
  if (lls_sha256_hex(st.state_data.ptr, st.state_data.len, hex) != 0)
    return luaL_error(L, "SHA-256 failed");
  st.checksum.ptr = hex;
  st.checksum.len = LLS_SHA256_HEX - 1;
  int64_t version = 0;
  lls_error err;
  if (cb->vt->agent_states->save(cb, &st, lls_now_us(), &version, &err) != 0)
    return lls_raise(L, &err, h->vt->name);
  lua_createtable(L, 0, 2);
  lua_pushinteger(L, (lua_Integer)version);
  lua_setfield(L, -2, "data_version");
  lua_pushstring(L, hex);
  lua_setfield(L, -2, "checksum");
  return 1;
}

/* A loaded row, copied out of the backend into a buffer the handle owns
 * (so the pushes after it, which may raise, leak nothing). */
enum { H_TYPE, H_DATA, H_SUM, H_SID, H_PARTS };

typedef struct held {
  lls_buf *buf;
  size_t off[H_PARTS], len[H_PARTS];
  int is_json;
  int64_t schema_version, data_version, created_at, updated_at;
} held;

static int hold_row(void *ud, const lls_agent_state *st, lls_error *err) {
  held *k = ud;
  const lls_str parts[H_PARTS] = {st->agent_type, st->state_data, st->checksum, st->state_id};
  k->buf->len = 0;
  for (int i = 0; i < H_PARTS; i++) {
    k->off[i] = k->buf->len;
    k->len[i] = parts[i].len;
    if (lls_buf_append(k->buf, parts[i].ptr, parts[i].len) != 0) return lls_error_oom(err);
  }
  k->is_json = st->is_json;
  k->schema_version = st->schema_version;
  k->data_version = st->data_version;
  k->created_at = st->created_at;
  k->updated_at = st->updated_at;
  return 0;
}

static lls_str held_part(const held *k, int i) {
  lls_str s = {k->buf->data ? k->buf->data + k->off[i] : "", k->len[i]};
  return s;
}

/* Pushes the info table load() returns beside the state. */
static void push_info(lua_State *L, const held *k) {
  lua_createtable(L, 0, 7);
  lls_str s = held_part(k, H_TYPE);
  lua_pushlstring(L, s.ptr, s.len);
  lua_setfield(L, -2, "agent_type");
  lua_pushinteger(L, (lua_Integer)k->data_version);
  lua_setfield(L, -2, "data_version");
  lua_pushinteger(L, (lua_Integer)k->schema_version);
  lua_setfield(L, -2, "schema_version");
  s = held_part(k, H_SUM);
  lua_pushlstring(L, s.ptr, s.len);
  lua_setfield(L, -2, "checksum");
  s = held_part(k, H_SID);
  lua_pushlstring(L, s.ptr, s.len);
  lua_setfield(L, -2, "state_id");
  lls_push_time(L, k->created_at);
  lua_setfield(L, -2, "created_at");
  lls_push_time(L, k->updated_at);
  lua_setfield(L, -2, "updated_at");
}

/** g:load(agent_id) --> state, {agent_type=, data_version=, schema_version=,
 * checksum=, state_id=, created_at=, updated_at=} | nil. The checksum is
 * verified first: a mismatch raises `integrity`, never a damaged state. */
static int as_load(lua_State *L) {
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  lls_str id = check_id(L, 2);
  held k;
  memset(&k, 0, sizeof k);
  k.buf = &h->scratch;
  int found = 0;
  lls_error err;
  if (cb->vt->agent_states->load(cb, id, hold_row, &k, &found, &err) != 0)
    return lls_raise(L, &err, h->vt->name);
  if (!found) {
    lua_pushnil(L);
    return 1;
  }
  lls_agent_state st;
  memset(&st, 0, sizeof st);
  st.agent_id = id;
  st.state_data = held_part(&k, H_DATA);
  st.checksum = held_part(&k, H_SUM);
  if (lls_agent_state_verify(&st, &err) != 0) return lls_raise(L, &err, h->vt->name);
  if (k.is_json)
    lls_component_push_json(L, h, st.state_data, "agent state");
  else
    lua_pushlstring(L, st.state_data.ptr, st.state_data.len);
  push_info(L, &k);
  return 2;
}

/** g:list([{agent_type=, after=, limit=}]) --> array of agent ids in byte
 * order: those of one agent_type when given (an index range), after the
 * id `after`, at most `limit`. */
static int as_list(lua_State *L) {
  static const char *const allowed[] = {"agent_type", "after", "limit", NULL};
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  lls_str type = {NULL, 0}, after = {NULL, 0};
  size_t limit = 0;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lls_check_fields(L, 2, 2, allowed, NULL, 0);
    if (lua_getfield(L, 2, "agent_type") != LUA_TNIL)
      type = check_text_arg(L, -1, 2, LLS_MAX_NAME, "agent_type");
    if (lua_getfield(L, 2, "after") != LUA_TNIL)
      after = check_text_arg(L, -1, 2, LLS_MAX_ID, "after");
    lua_pop(L, 2);
    limit = (size_t)lls_opt_int(L, 2, "limit", 2, 1, INT32_MAX, 0);
  }
  lls_error err;
  lls_rows_reset(&h->rows);
  if (cb->vt->agent_states->list(cb, type, after, limit, &h->rows, &err) != 0)
    return lls_raise(L, &err, h->vt->name);
  return lls_component_push_ids(L, h);
}

/** g:delete(agent_id) --> true if the agent had a state */
static int as_delete(lua_State *L) {
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  lls_str id = check_id(L, 2);
  int existed = 0;
  lls_error err;
  if (cb->vt->agent_states->del(cb, id, &existed, &err) != 0)
    return lls_raise(L, &err, h->vt->name);
  lua_pushboolean(L, existed);
  return 1;
}

/** g:count() --> the number of agents with a state */
static int as_count(lua_State *L) {
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  int64_t n = 0;
  lls_error err;
  if (cb->vt->agent_states->count(cb, &n, &err) != 0) return lls_raise(L, &err, h->vt->name);
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

/** db:agent_states() --> the store's agent state component (the same
 * object while it is referenced) */
static int db_agent_states(lua_State *L) { return lls_component_get(L, &CLS); }

const luaL_Reg lls_agent_states_db_methods[] = {
    {"agent_states", db_agent_states},
    {NULL, NULL},
};

void lls_open_agent_states(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"save", as_save},     {"load", as_load},   {"list", as_list},
      {"delete", as_delete}, {"count", as_count}, {NULL, NULL},
  };
  lls_component_define(L, &CLS, methods);
}

