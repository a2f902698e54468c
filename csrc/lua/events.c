/*
 * events.c -- db:events(), the event log (COMPONENTS.md "Event log",
 * docs/events.md): an append-only, per-tenant log of typed events with
 * sequence numbers, queried by type glob, time range, correlation id and
 * sequence. Its export section is events_section.c.
 *
 * Sequences are handed out by the backends (backend/events.h); this file
 * checks arguments (a whole batch before anything is written) and shapes
 * results.
 */
#include "lua/events.h"

#include <stdint.h>
#include <string.h>

#include "backend/events.h"
#include "base/clock.h"
#include "base/limits.h"
#include "lua/args.h"
#include "lua/class.h"
#include "lua/component.h"
#include "lua/error.h"
#include "lua/events_section.h"
#include "lua/luavalue.h"
#include "value/json.h"

static const lls_component_class CLS = {{"events", lls_component_owned_close, NULL},
                                        "llmspell.storage.Events", "events", lls_events_count};

/* Events per page of iter and the most one append_batch takes. */
#define PAGE 256
#define MAX_BATCH LLS_MAX_BATCH

/* ------------------------------------------------------ reading events */

/* One event of a batch while it is read: its strings are Lua strings
 * held by the caller's tables, except data (and a generated id), which
 * are bytes of the handle's scratch buffer at these offsets (the buffer
 * moves as it grows, so pointers are set once all are read). */
typedef struct ev_slot {
  lls_event e;
  size_t data_off, data_len, id_off; /* id_off SIZE_MAX: id given */
} ev_slot;

/* Field k of the table at tbl, without metamethods (a value an __index
 * made up would not outlive the call), pushed. Returns its type. */
static int raw_field(lua_State *L, int tbl, const char *k) {
  lua_pushstring(L, k);
  return lua_rawget(L, tbl);
}

/* What errors call field k of a batch's event index (index 0: a lone
 * event, "k"; else "events[index].k"), pushed. Only built on failure:
 * formatting it for every field of every event costs more than the rest
 * of reading it. */
static const char *name_of(lua_State *L, int index, const char *k) {
  return index > 0 ? lua_pushfstring(L, "events[%d].%s", index, k) : lua_pushstring(L, k);
}

/* The string at the top (popped), checked as min..max bytes of UTF-8;
 * ptr NULL when it is nil. Field k of event index (name_of) in errors. */
static lls_str pop_text(lua_State *L, int arg, int index, const char *k, size_t min,
                        size_t max) {
  lls_str s = {NULL, 0};
  int t = lua_type(L, -1);
  if (t != LUA_TNIL) {
    if (t != LUA_TSTRING)
      luaL_argerror(L, arg, lua_pushfstring(L, "%s: string expected, got %s",
                                            name_of(L, index, k), luaL_typename(L, -1)));
    s.ptr = lua_tolstring(L, -1, &s.len);
    if (!lls_text_ok(s, min, max)) lls_check_text(L, arg, s, min, max, name_of(L, index, k));
  }
  lua_pop(L, 1); /* the string stays alive in its table */
  return s;
}

/* Appends the value at the top (popped) as JSON to out; raises naming
 * the data of event index when it cannot be stored. nil is JSON null. */
static void pop_data(lua_State *L, int arg, int index, lls_buf *out) {
  char msg[256];
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    if (lls_buf_append(out, "null", 4) != 0) luaL_error(L, "out of memory");
    return;
  }
  lls_value *v = lls_lua_to_value(L, -1, "data", msg, sizeof msg); /* refuses NUL in strings */
  if (v == NULL) /* msg starts with "data" (or a path below it) */
    luaL_argerror(L, arg, lua_pushfstring(L, "%s%s", index > 0 ? lua_pushfstring(L,
                                          "events[%d].", index) : "", msg));
  int rc = lls_json_encode(v, out, msg, sizeof msg);
  lls_value_free(v);
  if (rc != 0) luaL_argerror(L, arg, lua_pushfstring(L, "%s: %s", name_of(L, index, "data"), msg));
  lua_pop(L, 1);
}

/* The event table at tbl into *s; index > 0: element index of a batch,
 * named "events[index]." in messages. Data, and the id when one is made,
 * go to out. */
static void read_event(lua_State *L, int tbl, int arg, int index, lls_buf *out, int64_t now,
                       ev_slot *s) {
  static const char *const fields[] = {"id", "type", "data", "correlation_id", "language",
                                       "timestamp", NULL};
  if (!lua_istable(L, tbl) && index > 0)
    luaL_argerror(L, arg, lua_pushfstring(L, "events[%d]: table expected, got %s", index,
                                          luaL_typename(L, tbl)));
  if (!lua_istable(L, tbl))
    luaL_argerror(L, arg, lua_pushfstring(L, "event: table expected, got %s",
                                          luaL_typename(L, tbl)));
  lls_check_fields(L, tbl, arg, fields, index > 0 ? "events[%d]: " : NULL, index);
  raw_field(L, tbl, "type");
  s->e.type = pop_text(L, arg, index, "type", 1, LLS_MAX_NAME);
  if (s->e.type.ptr == NULL)
    luaL_argerror(L, arg, lua_pushfstring(L, "%s is missing", name_of(L, index, "type")));
  raw_field(L, tbl, "id");
  s->e.id = pop_text(L, arg, index, "id", 1, LLS_MAX_ID);
  raw_field(L, tbl, "correlation_id");
  s->e.correlation_id = pop_text(L, arg, index, "correlation_id", 1, LLS_MAX_ID);
  raw_field(L, tbl, "language");
  s->e.language = pop_text(L, arg, index, "language", 1, LLS_MAX_NAME);
  if (s->e.language.ptr == NULL) s->e.language = (lls_str){"lua", 3};
  s->e.timestamp = now;
  int tt = raw_field(L, tbl, "timestamp");
  if (tt != LUA_TNIL) {
    lua_Number t = tt == LUA_TNUMBER ? lua_tonumber(L, -1)
                                     : lls_number_at(L, -1, name_of(L, index, "timestamp"), arg);
    int64_t us = lls_seconds_to_us(t);
    if (!lls_time_ok(t) || us < LLS_EVENT_MIN_US || us >= LLS_EVENT_MAX_US)
      luaL_argerror(L, arg, lua_pushfstring(L, "%s must be seconds since the epoch within"
                                            " years 1..9999 (UTC)",
                                            name_of(L, index, "timestamp")));
    s->e.timestamp = us;
  }
  lua_pop(L, 1);
  raw_field(L, tbl, "data");
  s->data_off = out->len;
  pop_data(L, arg, index, out);
  s->data_len = out->len - s->data_off;
  s->id_off = SIZE_MAX;
  if (s->e.id.ptr == NULL) {
    char uuid[37];
    lls_component_uuid(L, uuid);
    s->id_off = out->len;
    if (lls_buf_append(out, uuid, 36) != 0) luaL_error(L, "out of memory");
  }
}

/* Points each slot's data (and made id) into the finished buffer. */
static void fix_slots(ev_slot *s, size_t n, const lls_buf *out) {
  for (size_t i = 0; i < n; i++) {
    s[i].e.data = (lls_str){out->data + s[i].data_off, s[i].data_len};
    if (s[i].id_off != SIZE_MAX) s[i].e.id = (lls_str){out->data + s[i].id_off, 36};
  }
}

/* Appends slots' events (array of n lls_event-first slots) as one batch;
 * returns the first sequence. */
static int64_t append(lua_State *L, lls_handle *h, lls_backend *cb, ev_slot *s, size_t n) {
  fix_slots(s, n, &h->scratch);
  /* the op table takes an array of lls_event: compact the slots in place */
  lls_event *ev = (lls_event *)(void *)s;
  for (size_t i = 0; i < n; i++) memmove(&ev[i], &s[i].e, sizeof ev[i]);
  int64_t first;
  lls_error err;
  int rc = cb->vt->events->append(cb, ev, n, &first, &err);
  h->scratch.len = 0;
  if (rc != 0) lls_raise(L, &err, h->vt->name);
  return first;
}

/* --------------------------------------------------------- the writes */

/** e:append{type=, data=, id=, correlation_id=, language="lua", timestamp=now}
 * --> the event's sequence number */
static int ev_append(lua_State *L) {
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  ev_slot s;
  memset(&s, 0, sizeof s);
  h->scratch.len = 0;
  read_event(L, 2, 2, 0, &h->scratch, lls_now_us(), &s);
  lua_pushinteger(L, (lua_Integer)append(L, h, cb, &s, 1));
  return 1;
}

/** e:append_batch{event, ...} --> array of their sequence numbers, which
 * follow each other. All or nothing: one bad event raises (naming it)
 * before anything is written. */
static int ev_append_batch(lua_State *L) {
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  luaL_checktype(L, 2, LUA_TTABLE);
  size_t n = (size_t)lua_rawlen(L, 2);
  if (n == 0) {
    lua_newtable(L);
    return 1;
  }
  if (n > MAX_BATCH)
    luaL_argerror(L, 2, lua_pushfstring(L, "events: at most %d per batch, got %I", MAX_BATCH,
                                        (lua_Integer)n));
  ev_slot *s = lua_newuserdatauv(L, n * sizeof *s, 0); /* collected on error */
  memset(s, 0, n * sizeof *s);
  h->scratch.len = 0;
  int64_t now = lls_now_us();
  for (size_t i = 0; i < n; i++) {
    lua_rawgeti(L, 2, (lua_Integer)i + 1);
    read_event(L, lua_gettop(L), 2, (int)i + 1, &h->scratch, now, &s[i]);
    lua_pop(L, 1);
  }
  int64_t first = append(L, h, cb, s, n);
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    lua_pushinteger(L, (lua_Integer)(first + (int64_t)i));
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

/** e:cleanup_before(t) --> how many events older than t were removed */
static int ev_cleanup_before(lua_State *L) {
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  lua_Number t = luaL_checknumber(L, 2);
  if (!lls_time_ok(t)) luaL_argerror(L, 2, "t: " LLS_TIME_RULE);
  int64_t us = lls_seconds_to_us(t), n;
  if (us < LLS_EVENT_MIN_US) us = LLS_EVENT_MIN_US;
  if (us > LLS_EVENT_MAX_US) us = LLS_EVENT_MAX_US;
  lls_error err;
  if (cb->vt->events->cleanup(cb, us, &n, &err) != 0) return lls_raise(L, &err, h->vt->name);
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

/* -------------------------------------------------------------- queries */

/* A query's texts live in the iterator's state, so they are copied. */
typedef struct ev_iter {
  lls_event_query q;
  size_t left;   /* events still wanted (SIZE_MAX: no limit) */
  int done;
  char text[2 * LLS_MAX_ID + LLS_MAX_NAME + 4];
} ev_iter;

/* The options at idx (a table or nil) into *q; texts borrowed from it. */
static void read_query(lua_State *L, int idx, lls_event_query *q) {
  static const char *const fields[] = {"type", "from", "to", "correlation_id",
                                       "after_sequence", "limit", "order", NULL};
  memset(q, 0, sizeof *q);
  q->from = LLS_EVENT_MIN_US, q->to = LLS_EVENT_MAX_US;
  q->after = 0, q->before = INT64_MAX;
  if (lua_isnoneornil(L, idx)) return;
  luaL_checktype(L, idx, LUA_TTABLE);
  lls_check_fields(L, idx, idx, fields, NULL, 0);
  raw_field(L, idx, "type");
  q->type = pop_text(L, idx, 0, "type", 1, LLS_MAX_NAME);
  raw_field(L, idx, "correlation_id");
  q->correlation_id = pop_text(L, idx, 0, "correlation_id", 1, LLS_MAX_ID);
  const char *const bound[] = {"from", "to"};
  int64_t *out[] = {&q->from, &q->to};
  for (int i = 0; i < 2; i++) {
    lua_Number t;
    if (!lls_opt_number(L, idx, bound[i], idx, &t)) continue;
    if (!lls_time_ok(t))
      luaL_argerror(L, idx, lua_pushfstring(L, "%s: " LLS_TIME_RULE, bound[i]));
    int64_t us = lls_seconds_to_us(t);
    *out[i] = us < LLS_EVENT_MIN_US ? LLS_EVENT_MIN_US : us > LLS_EVENT_MAX_US ? LLS_EVENT_MAX_US
                                                                              : us;
  }
  if (raw_field(L, idx, "after_sequence") != LUA_TNIL) {
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0)
      luaL_argerror(L, idx, "after_sequence must be an integer >= 0");
    q->after = (int64_t)lua_tointeger(L, -1);
  }
  lua_pop(L, 1);
  q->limit = (size_t)lls_opt_int(L, idx, "limit", idx, 1, INT32_MAX, 0);
  raw_field(L, idx, "order");
  lls_str order = pop_text(L, idx, 0, "order", 1, 8);
  if (order.ptr && strcmp(order.ptr, "asc") != 0 && strcmp(order.ptr, "desc") != 0)
    luaL_argerror(L, idx, "order must be \"asc\" or \"desc\"");
  q->desc = order.ptr && order.ptr[0] == 'd';
  if (q->type.ptr) {
    size_t k = strcspn(q->type.ptr, "*?");
    q->glob = k < q->type.len;
    q->prefix = (lls_str){q->type.ptr, k};
  }
}

/* The rows of one query, packed into a buffer while the backend reads
 * them (nothing that may raise runs meanwhile), then pushed. */
typedef struct row_head {
  int64_t sequence, timestamp;
  size_t id, type, corr, lang, data; /* lengths */
  int has_corr;
} row_head;

static int keep_row(void *ud, const lls_event *e, lls_error *err) {
  lls_buf *b = ud;
  row_head h = {e->sequence,    e->timestamp,     e->id.len,
                e->type.len,    e->correlation_id.len, e->language.len,
                e->data.len,    e->correlation_id.ptr != NULL};
  if (lls_buf_append(b, (const char *)&h, sizeof h) != 0 ||
      lls_buf_append(b, e->id.ptr, e->id.len) != 0 ||
      lls_buf_append(b, e->type.ptr, e->type.len) != 0 ||
      lls_buf_append(b, e->correlation_id.ptr ? e->correlation_id.ptr : "", h.corr) != 0 ||
      lls_buf_append(b, e->language.ptr, e->language.len) != 0 ||
      lls_buf_append(b, e->data.ptr, e->data.len) != 0)
    return lls_error_oom(err);
  return 0;
}

static void set_str(lua_State *L, const char *k, const char *p, size_t n) {
  lua_pushlstring(L, p, n);
  lua_setfield(L, -2, k);
}

/* Pushes the rows keep_row wrote into b (a copy: pushing data may raise,
 * and b is the handle's) as an array of event tables; *last = the last
 * row's sequence. Returns the row count. */
static size_t push_rows(lua_State *L, lls_handle *h, const lls_buf *b, int64_t *last) {
  lua_newtable(L);
  lua_Integer i = 0;
  for (size_t at = 0; at < b->len;) {
    row_head r;
    memcpy(&r, b->data + at, sizeof r); /* the buffer does not align it */
    const char *s = b->data + at + sizeof r;
    luaL_checkstack(L, 4, "events:query");
    lua_createtable(L, 0, 7);
    set_str(L, "id", s, r.id);
    set_str(L, "type", s + r.id, r.type);
    if (r.has_corr) set_str(L, "correlation_id", s + r.id + r.type, r.corr);
    set_str(L, "language", s + r.id + r.type + r.corr, r.lang);
    lls_component_push_json(L, h, (lls_str){s + r.id + r.type + r.corr + r.lang, r.data},
                            "event data");
    lua_setfield(L, -2, "data");
    lls_push_time(L, r.timestamp);
    lua_setfield(L, -2, "timestamp");
    lua_pushinteger(L, (lua_Integer)r.sequence);
    lua_setfield(L, -2, "sequence");
    lua_rawseti(L, -2, ++i);
    *last = r.sequence;
    at += sizeof r + r.id + r.type + r.corr + r.lang + r.data;
  }
  return (size_t)i;
}

/* Runs q and pushes its rows (see push_rows). The packed rows stay in the
 * handle's scratch buffer, which the next call empties, also when pushing
 * raises. */
static size_t run_query(lua_State *L, lls_handle *h, lls_backend *cb, const lls_event_query *q,
                        int64_t *last) {
  lls_error err;
  h->scratch.len = 0;
  if (cb->vt->events->query(cb, q, keep_row, &h->scratch, &err) != 0)
    lls_raise(L, &err, h->vt->name);
  size_t n = push_rows(L, h, &h->scratch, last);
  h->scratch.len = 0;
  return n;
}

/** e:query{type=, from=, to=, correlation_id=, after_sequence=, limit=,
 * order="asc"} --> array of events {id=, type=, data=, correlation_id=,
 * language=, timestamp=, sequence=} in sequence order */
static int ev_query(lua_State *L) {
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  lls_event_query q;
  read_query(L, 2, &q);
  int64_t last;
  run_query(L, h, cb, &q, &last);
  return 1;
}

/* The iterator: upvalue 1 the component, 2 the ev_iter state, 3 the
 * current page, 4 the position in it. */
static int iter_next(lua_State *L) {
  ev_iter *it = lua_touserdata(L, lua_upvalueindex(2));
  lua_Integer pos = lua_tointeger(L, lua_upvalueindex(4));
  if (lua_rawgeti(L, lua_upvalueindex(3), pos) != LUA_TNIL) {
    lua_pushinteger(L, pos + 1);
    lua_replace(L, lua_upvalueindex(4));
    return 1;
  }
  lua_pop(L, 1);
  if (it->done || it->left == 0) return 0;
  lua_pushvalue(L, lua_upvalueindex(1));
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, lua_gettop(L), &CLS, &cb);
  it->q.limit = it->left < PAGE ? it->left : PAGE;
  int64_t last = 0;
  size_t n = run_query(L, h, cb, &it->q, &last);
  if (it->left != SIZE_MAX) it->left -= n;
  if (n < it->q.limit) it->done = 1;
  if (it->q.desc)
    it->q.before = last;
  else
    it->q.after = last;
  if (n == 0) return 0;
  lua_rawgeti(L, -1, 1);
  lua_pushvalue(L, -2);
  lua_replace(L, lua_upvalueindex(3));
  lua_pushinteger(L, 2);
  lua_replace(L, lua_upvalueindex(4));
  return 1;
}

/* Copies s into the state's text area at *at. */
static lls_str keep_text(ev_iter *it, size_t *at, lls_str s) {
  if (s.ptr == NULL) return s;
  memcpy(it->text + *at, s.ptr, s.len);
  it->text[*at + s.len] = '\0';
  lls_str out = {it->text + *at, s.len};
  *at += s.len + 1;
  return out;
}

/** e:iter{...} --> iterator over the events query{...} would return,
 * read a page at a time: `for ev in e:iter{type = "agent.*"} do ... end` */
static int ev_iter_new(lua_State *L) {
  lls_backend *cb;
  lls_component_check(L, 1, &CLS, &cb);
  lls_event_query q;
  read_query(L, 2, &q);
  lua_pushvalue(L, 1);
  ev_iter *it = lua_newuserdatauv(L, sizeof *it, 0);
  memset(it, 0, sizeof *it);
  it->q = q;
  it->left = q.limit ? q.limit : SIZE_MAX;
  size_t at = 0;
  it->q.type = keep_text(it, &at, q.type);
  it->q.prefix = (lls_str){it->q.type.ptr, q.prefix.len};
  it->q.correlation_id = keep_text(it, &at, q.correlation_id);
  lua_newtable(L);
  lua_pushinteger(L, 1);
  lua_pushcclosure(L, iter_next, 4);
  return 1;
}

/* ---------------------------------------------------------------- stats */

static int keep_type(void *ud, lls_str type, int64_t n, lls_error *err) {
  lls_buf *b = ud;
  if (lls_buf_append(b, (const char *)&n, sizeof n) != 0 ||
      lls_buf_append(b, (const char *)&type.len, sizeof type.len) != 0 ||
      lls_buf_append(b, type.ptr, type.len) != 0)
    return lls_error_oom(err);
  return 0;
}

static void set_int(lua_State *L, const char *k, int64_t v) {
  lua_pushinteger(L, (lua_Integer)v);
  lua_setfield(L, -2, k);
}

/** e:stats() --> {events=, bytes=, oldest=, newest=, by_type={[type]=n}}
 * (oldest and newest: timestamps, nil without events; bytes: the stored
 * data's size as the backend keeps it) */
static int ev_stats(lua_State *L) {
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  lls_event_stats st;
  lls_error err;
  h->scratch.len = 0;
  if (cb->vt->events->stats(cb, &st, keep_type, &h->scratch, &err) != 0)
    return lls_raise(L, &err, h->vt->name);
  lua_createtable(L, 0, 5);
  set_int(L, "events", st.events);
  set_int(L, "bytes", st.bytes);
  if (st.events > 0) {
    lls_push_time(L, st.oldest);
    lua_setfield(L, -2, "oldest");
    lls_push_time(L, st.newest);
    lua_setfield(L, -2, "newest");
  }
  lua_newtable(L);
  for (size_t at = 0; at < h->scratch.len;) {
    int64_t n;
    size_t len;
    memcpy(&n, h->scratch.data + at, sizeof n);
    memcpy(&len, h->scratch.data + at + sizeof n, sizeof len);
    lua_pushlstring(L, h->scratch.data + at + sizeof n + sizeof len, len);
    lua_pushinteger(L, (lua_Integer)n);
    lua_rawset(L, -3);
    at += sizeof n + sizeof len + len;
  }
  lua_setfield(L, -2, "by_type");
  h->scratch.len = 0;
  return 1;
}

/** e:count() --> the number of the tenant's events */
static int ev_count(lua_State *L) {
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  int64_t n;
  lls_error err;
  if (cb->vt->events->count(cb, &n, &err) != 0) return lls_raise(L, &err, h->vt->name);
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

/** db:events() --> the store's event log */
static int db_events(lua_State *L) { return lls_component_get(L, &CLS); }

const luaL_Reg lls_events_db_methods[] = {{"events", db_events}, {NULL, NULL}};

void lls_open_events(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"append", ev_append},   {"append_batch", ev_append_batch},
      {"query", ev_query},     {"iter", ev_iter_new},
      {"stats", ev_stats},     {"count", ev_count},
      {"cleanup_before", ev_cleanup_before}, {NULL, NULL},
  };
  lls_component_define(L, &CLS, methods);
}
