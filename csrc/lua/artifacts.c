/*
 * artifacts.c -- db:artifacts(): the Artifacts object (put, put_file, get,
 * open, info, list, delete, stats) over the backend's artifact op table
 * (backend/artifacts.h); the "artifacts" export section is in
 * artifacts_section.c.
 *
 * Each method checks every argument before its backend call, so a bad
 * argument raises before anything is written, and converts results to Lua
 * only after the call returned (a Lua error never interrupts a backend
 * mid-call). Memory a raise must not leak (JSON texts, row sets, decoded
 * chunks, an open file) lives in a per-call scratch userdata, freed at the
 * end of the call or by the collector after an error.
 *
 * Content is hashed here (SHA-256 of the original bytes, what rs-llmspell
 * computes) before the backend sees it: put_file reads its file twice, once
 * to hash it and, only when the content is new to the tenant, once to
 * store it chunk by chunk; a duplicate costs a hash and an increment.
 * Reads check the hash again (get, and the reader at its end).
 */
#include "lua/artifacts.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backend/artifacts.h"
#include "base/clock.h"
#include "base/limits.h"
#include "base/sha256.h"
#include "lua/args.h"
#include "lua/artifact_reader.h"
#include "lua/class.h"
#include "lua/component.h"
#include "lua/error.h"
#include "value/json.h"

#define ARTIFACTS_MT "llmspell.storage.Artifacts"
#define SCRATCH_MT "llmspell.storage.artifact_call"
/* Rows per round trip of list(). */
#define LIST_PAGE 256
/* How much of a file put_file reads at a time when hashing it. */
#define READ_BLOCK ((size_t)1 << 20)

static int count_artifacts(lls_backend *cb, int64_t now, int64_t *n, lls_error *err) {
  return cb->vt->artifacts->count(cb, now, n, err);
}

static const lls_component_class CLS = {{"artifacts", lls_component_owned_close, NULL},
                                        ARTIFACTS_MT, "artifacts", count_artifacts};

/* ------------------------------------------------------------- scratch */

/* What one call allocates. */
typedef struct scratch {
  lls_buf meta, tags, chunk, file;
  lls_artifact_rows rows;
  lls_artifact_src src;
  FILE *fp;
  lls_sha256 *sha;
} scratch;

static void scratch_free(scratch *s) {
  lls_buf_free(&s->meta);
  lls_buf_free(&s->tags);
  lls_buf_free(&s->chunk);
  lls_buf_free(&s->file);
  lls_artifact_rows_free(&s->rows);
  lls_artifact_src_free(&s->src);
  if (s->fp != NULL) fclose(s->fp);
  s->fp = NULL;
  lls_sha256_free(s->sha);
  s->sha = NULL;
}

static int scratch_gc(lua_State *L) {
  scratch_free(lua_touserdata(L, 1));
  return 0;
}

/* Pushes a new scratch (at the top of the stack). */
static scratch *new_scratch(lua_State *L) {
  return lls_class_scratch(L, SCRATCH_MT, sizeof(scratch), scratch_gc);
}

/* Frees the scratch and raises err (whose memory may be in it). */
static int fail(lua_State *L, scratch *s, const lls_handle *h, const lls_error *err) {
  lls_error copy = *err;
  scratch_free(s);
  return lls_raise(L, &copy, h->vt->name);
}

/* ------------------------------------------------------ argument checks */

/* A string argument (what names it) of min..max bytes of UTF-8 text. */
static lls_str text_arg(lua_State *L, int arg, size_t max, const char *what) {
  lls_str s;
  if (lua_type(L, arg) != LUA_TSTRING)
    luaL_argerror(L, arg, lua_pushfstring(L, "%s: string expected, got %s", what,
                                          luaL_typename(L, arg)));
  s.ptr = lua_tolstring(L, arg, &s.len);
  lls_check_text(L, arg, s, 1, max, what);
  return s;
}

static lls_str check_session(lua_State *L, int arg) {
  return text_arg(L, arg, LLS_MAX_ID, "session id");
}

static lls_str check_artifact_id(lua_State *L, int arg) {
  return text_arg(L, arg, LLS_MAX_ARTIFACT_ID, "artifact id");
}

/* String option `name` of the table at arg (1..max bytes); def when nil.
 * The string stays alive in the options table. */
static lls_str opt_text(lua_State *L, int arg, const char *name, size_t max, lls_str def) {
  lls_str s = def;
  int t = lua_getfield(L, arg, name);
  if (t != LUA_TNIL) {
    if (t != LUA_TSTRING)
      luaL_argerror(L, arg, lua_pushfstring(L, "option '%s': string expected, got %s", name,
                                            luaL_typename(L, -1)));
    s.ptr = lua_tolstring(L, -1, &s.len);
    lls_check_text(L, arg, s, 1, max, lua_pushfstring(L, "option '%s'", name));
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return s;
}

/* Option `tags`: an array of strings, as JSON text in sc->tags. */
static void opt_tags(lua_State *L, int arg, scratch *sc) {
  sc->tags.len = 0;
  if (lua_getfield(L, arg, "tags") == LUA_TNIL) {
    lua_pop(L, 1);
    lls_buf_append(&sc->tags, "[]", 2);
    return;
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
    lls_check_text(L, arg, tag, 1, LLS_MAX_NAME, lua_pushfstring(L, "option 'tags': tag %d",
                                                                 (int)i));
    lua_pop(L, 2);
  }
  /* checked: nothing below raises until the tree is freed */
  lls_value *a = lls_value_array();
  int bad = a == NULL;
  for (lua_Integer i = 1; !bad && i <= n; i++) {
    lua_rawgeti(L, t, i);
    size_t len;
    const char *p = lua_tolstring(L, -1, &len);
    bad = lls_value_push(a, lls_value_string(p, len)) != 0;
    lua_pop(L, 1);
  }
  char msg[128];
  if (!bad) bad = lls_json_encode(a, &sc->tags, msg, sizeof msg) != 0;
  lls_value_free(a);
  lua_pop(L, 1);
  if (bad) luaL_error(L, "not enough memory");
}

/* The options of put/put_file at arg (may be absent) into *a; default_name
 * when no name is given. */
static void check_opts(lua_State *L, int arg, scratch *sc, lls_artifact_new *a,
                       lls_str default_name) {
  static const char *const allowed[] = {"name", "type", "mime_type", "metadata", "tags",
                                        "created_by", NULL};
  static const lls_str none = {NULL, 0};
  a->name = default_name;
  a->type = (lls_str){"binary", 6};
  a->mime_type = (lls_str){"application/octet-stream", 24};
  a->created_by = none;
  a->metadata = (lls_str){"{}", 2};
  a->tags = (lls_str){"[]", 2};
  if (lua_isnoneornil(L, arg)) return;
  luaL_checktype(L, arg, LUA_TTABLE);
  lls_check_fields(L, arg, arg, allowed, NULL, 0);
  a->name = opt_text(L, arg, "name", LLS_MAX_ARTIFACT_NAME, a->name);
  a->type = opt_text(L, arg, "type", LLS_MAX_NAME, a->type);
  if (!lls_artifact_type_ok(a->type))
    luaL_argerror(L, arg, lua_pushfstring(L, "option 'type' must be one of " LLS_ARTIFACT_TYPES
                                          " (got '%s')", a->type.ptr));
  a->mime_type = opt_text(L, arg, "mime_type", LLS_MAX_NAME, a->mime_type);
  a->created_by = opt_text(L, arg, "created_by", LLS_MAX_ID, none);
  int t = lua_getfield(L, arg, "metadata");
  if (t != LUA_TNIL) {
    if (t != LUA_TTABLE)
      luaL_argerror(L, arg, lua_pushfstring(L, "option 'metadata': table expected, got %s",
                                            luaL_typename(L, -1)));
    lls_component_json_arg(L, lua_gettop(L), arg, "metadata", &sc->meta);
    a->metadata = (lls_str){sc->meta.data ? sc->meta.data : "", sc->meta.len};
  }
  lua_pop(L, 1);
  opt_tags(L, arg, sc);
  a->tags = (lls_str){sc->tags.data, sc->tags.len};
}

/* ----------------------------------------------------------- results */

static void set_time(lua_State *L, const char *name, int64_t us) {
  lls_push_time(L, us);
  lua_setfield(L, -2, name);
}

static void set_str(lua_State *L, const char *name, lls_str s) {
  if (s.ptr == NULL) return; /* NULL: the field stays nil */
  lua_pushlstring(L, s.ptr, s.len);
  lua_setfield(L, -2, name);
}

static void set_int(lua_State *L, const char *name, int64_t v) {
  lua_pushinteger(L, (lua_Integer)v);
  lua_setfield(L, -2, name);
}

/* Pushes the info table of row i. */
static void push_info(lua_State *L, const lls_handle *h, const lls_artifact_rows *r, size_t i) {
  const lls_artifact_row *row = &r->rows[i];
  luaL_checkstack(L, 4, "artifact info");
  lua_createtable(L, 0, 20);
  set_str(L, "artifact_id", lls_artifact_rows_get(r, i, LLS_ART_ID));
  set_str(L, "session_id", lls_artifact_rows_get(r, i, LLS_ART_SESSION));
  set_int(L, "sequence", row->sequence);
  set_str(L, "content_hash", lls_artifact_rows_get(r, i, LLS_ART_HASH));
  set_str(L, "name", lls_artifact_rows_get(r, i, LLS_ART_NAME));
  set_str(L, "type", lls_artifact_rows_get(r, i, LLS_ART_TYPE));
  set_str(L, "mime_type", lls_artifact_rows_get(r, i, LLS_ART_MIME));
  set_int(L, "size", row->size_bytes);
  lls_component_push_json(L, h, lls_artifact_rows_get(r, i, LLS_ART_METADATA),
                          "artifact metadata");
  lua_setfield(L, -2, "metadata");
  lls_component_push_json(L, h, lls_artifact_rows_get(r, i, LLS_ART_TAGS), "artifact tags");
  lua_setfield(L, -2, "tags");
  set_str(L, "created_by", lls_artifact_rows_get(r, i, LLS_ART_CREATED_BY));
  set_time(L, "created_at", row->created_at);
  set_int(L, "version", row->version);
  set_str(L, "parent_artifact_id", lls_artifact_rows_get(r, i, LLS_ART_PARENT));
  set_time(L, "stored_at", row->stored_at);
  set_time(L, "updated_at", row->updated_at);
  if (row->chunk_count >= 0) {
    lua_pushboolean(L, row->is_compressed);
    lua_setfield(L, -2, "is_compressed");
    set_int(L, "stored_size", row->stored_bytes);
  }
}

/* Raises `integrity` for an artifact whose content row is missing. */
static int no_content(lua_State *L, scratch *sc, const lls_handle *h) {
  lls_error err;
  lls_str id = lls_artifact_rows_get(&sc->rows, 0, LLS_ART_ID);
  lls_error_set(&err, LLS_EINTEGRITY, "artifact '%.*s' has no stored content (%.*s)",
                (int)(id.len > 200 ? 200 : id.len), id.ptr, LLS_SHA256_HEX - 1,
                lls_artifact_rows_get(&sc->rows, 0, LLS_ART_HASH).ptr);
  return fail(L, sc, h, &err);
}

/* --------------------------------------------------------- the methods */

/* The put both methods end in: pushes {artifact_id=, content_hash=,
 * size=, deduplicated=, sequence=}. */
static int do_put(lua_State *L, lls_handle *h, lls_backend *cb, scratch *sc,
                  const lls_artifact_new *a) {
  int64_t seq;
  int dedup;
  lls_error err;
  if (cb->vt->artifacts->put(cb, a, &sc->src, lls_now_us(), &seq, &dedup, &err) != 0)
    return fail(L, sc, h, &err);
  luaL_checkstack(L, 4, "artifact put");
  luaL_Buffer b; /* "<session_id>:<sequence>:<content_hash>", as the backend stored it */
  luaL_buffinit(L, &b);
  luaL_addlstring(&b, a->session_id.ptr, a->session_id.len);
  lua_pushfstring(L, ":%I:%s", (lua_Integer)seq, sc->src.hash);
  luaL_addvalue(&b);
  luaL_pushresult(&b);
  lua_createtable(L, 0, 5);
  lua_insert(L, -2);
  lua_setfield(L, -2, "artifact_id");
  lua_pushstring(L, sc->src.hash);
  lua_setfield(L, -2, "content_hash");
  set_int(L, "size", sc->src.size);
  lua_pushboolean(L, dedup);
  lua_setfield(L, -2, "deduplicated");
  set_int(L, "sequence", seq);
  scratch_free(sc);
  return 1;
}

/** a:put(session_id, content [, {name=, type=, mime_type=, metadata=, tags=,
 * created_by=}]) --> {artifact_id=, content_hash=, size=, deduplicated=,
 * sequence=}; `not_found` when the session does not exist or has expired */
static int a_put(lua_State *L) {
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  lls_artifact_new a;
  a.session_id = check_session(L, 2);
  if (lua_type(L, 3) != LUA_TSTRING)
    luaL_argerror(L, 3, lua_pushfstring(L, "string content expected, got %s",
                                        luaL_typename(L, 3)));
  size_t n;
  const char *content = lua_tolstring(L, 3, &n);
  lua_settop(L, 4); /* the scratch goes above the options */
  scratch *sc = new_scratch(L);
  check_opts(L, 4, sc, &a, (lls_str){"unnamed", 7});
  char hash[LLS_SHA256_HEX];
  if (lls_sha256_hex(content, n, hash) != 0) luaL_error(L, "SHA-256 failed");
  lls_artifact_src_mem(&sc->src, content, n, hash);
  return do_put(L, h, cb, sc, &a);
}

/* The last component of a path, for put_file's default name. */
static lls_str base_name(lls_str path) {
  size_t i = path.len;
  while (i > 0 && path.ptr[i - 1] != '/') i--;
  lls_str s = {path.ptr + i, path.len - i};
  return s.len > 0 && s.len <= LLS_MAX_ARTIFACT_NAME ? s : (lls_str){"unnamed", 7};
}

/* Opens path for put_file into sc->fp; raises io / not_found / invalid. */
static void open_file(lua_State *L, const lls_handle *h, scratch *sc, const char *path) {
  sc->fp = fopen(path, "rb");
  if (sc->fp == NULL) {
    int e = errno;
    lls_raisef(L, h->vt->name, e == ENOENT ? LLS_ENOTFOUND : LLS_EIO, "cannot open '%s': %s",
               path, strerror(e));
  }
  struct stat st;
  if (fstat(fileno(sc->fp), &st) != 0 || !S_ISREG(st.st_mode))
    lls_raisef(L, h->vt->name, LLS_EINVALID,
               "put_file needs a regular file (it reads it twice): '%s' is not one", path);
}

/** a:put_file(session_id, path [, opts as put's; name defaults to the
 * file's name]) --> as put. The file is streamed: hashed first, then, when
 * the content is new, stored chunk by chunk (never held whole in memory);
 * `invalid` when it changes in between. */
static int a_put_file(lua_State *L) {
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  lls_artifact_new a;
  a.session_id = check_session(L, 2);
  if (lua_type(L, 3) != LUA_TSTRING)
    luaL_argerror(L, 3, lua_pushfstring(L, "string path expected, got %s",
                                        luaL_typename(L, 3)));
  lls_str path;
  path.ptr = lua_tolstring(L, 3, &path.len);
  if (strlen(path.ptr) != path.len || path.len == 0)
    luaL_argerror(L, 3, "path must be a non-empty string without NUL bytes");
  lua_settop(L, 4); /* the scratch goes above the options */
  scratch *sc = new_scratch(L);
  check_opts(L, 4, sc, &a, base_name(path));
  open_file(L, h, sc, path.ptr);
  /* first pass: the hash and the size */
  sc->sha = lls_sha256_new();
  if (sc->sha == NULL || lls_buf_reserve(&sc->file, READ_BLOCK) != 0)
    luaL_error(L, "not enough memory");
  int64_t size = 0;
  size_t got;
  while ((got = fread(sc->file.data, 1, READ_BLOCK, sc->fp)) > 0) {
    if (lls_sha256_update(sc->sha, sc->file.data, got) != 0) luaL_error(L, "SHA-256 failed");
    size += (int64_t)got;
  }
  lls_error err;
  if (ferror(sc->fp)) {
    lls_error_set(&err, LLS_EIO, "reading '%s' failed", path.ptr);
    return fail(L, sc, h, &err);
  }
  char hash[LLS_SHA256_HEX];
  if (lls_sha256_final(sc->sha, hash) != 0) luaL_error(L, "SHA-256 failed");
  lls_buf_free(&sc->file);
  rewind(sc->fp);
  if (lls_artifact_src_file(&sc->src, sc->fp, size, hash, &err) != 0) return fail(L, sc, h, &err);
  return do_put(L, h, cb, sc, &a);
}

/** a:get(artifact_id) --> content, info | nil (no such artifact). The
 * content is checked against its hash (`integrity` when it fails). */
static int a_get(lua_State *L) {
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  lls_str id = check_artifact_id(L, 2);
  scratch *sc = new_scratch(L);
  lls_error err;
  if (cb->vt->artifacts->info(cb, id, &sc->rows, &sc->chunk, &err) != 0)
    return fail(L, sc, h, &err);
  if (sc->rows.count == 0) {
    scratch_free(sc);
    lua_pushnil(L);
    return 1;
  }
  const lls_artifact_row *row = &sc->rows.rows[0];
  if (row->chunk_count < 0) return no_content(L, sc, h);
  lls_str hash = lls_artifact_rows_get(&sc->rows, 0, LLS_ART_HASH);
  sc->sha = lls_sha256_new();
  if (sc->sha == NULL) luaL_error(L, "not enough memory");
  luaL_Buffer b;
  luaL_buffinitsize(L, &b, (size_t)(row->size_bytes > 0 ? row->size_bytes : 0));
  int64_t total = 0;
  for (int64_t i = 0; i < row->chunk_count; i++) {
    if (i > 0) {
      int found;
      if (cb->vt->artifacts->read_chunk(cb, hash, i, &sc->chunk, &found, &err) != 0)
        return fail(L, sc, h, &err);
      if (!found) {
        lls_error_set(&err, LLS_ENOTFOUND,
                      "artifact '%.*s': its content was deleted while it was being read",
                      (int)(id.len > 200 ? 200 : id.len), id.ptr);
        return fail(L, sc, h, &err);
      }
    }
    if (lls_sha256_update(sc->sha, sc->chunk.data, sc->chunk.len) != 0)
      luaL_error(L, "not enough memory");
    luaL_addlstring(&b, sc->chunk.data, sc->chunk.len);
    total += (int64_t)sc->chunk.len;
  }
  char got[LLS_SHA256_HEX];
  if (lls_sha256_final(sc->sha, got) != 0) luaL_error(L, "not enough memory");
  if (total != row->size_bytes || hash.len != LLS_SHA256_HEX - 1 ||
      memcmp(got, hash.ptr, hash.len) != 0) {
    lls_error_set(&err, LLS_EINTEGRITY,
                  "artifact '%.*s': its stored content does not match its SHA-256 %.*s",
                  (int)(id.len > 200 ? 200 : id.len), id.ptr, (int)hash.len, hash.ptr);
    return fail(L, sc, h, &err);
  }
  luaL_pushresult(&b);
  push_info(L, h, &sc->rows, 0);
  scratch_free(sc);
  return 2;
}

/** a:open(artifact_id) --> reader with :read(n | "a"), :close() (also
 * <close>), holding one chunk in memory; `not_found` when there is no such
 * artifact. */
static int a_open(lua_State *L) {
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  lls_str id = check_artifact_id(L, 2);
  scratch *sc = new_scratch(L);
  lls_error err;
  if (cb->vt->artifacts->info(cb, id, &sc->rows, &sc->chunk, &err) != 0)
    return fail(L, sc, h, &err);
  if (sc->rows.count == 0) {
    lls_error_set(&err, LLS_ENOTFOUND, "artifact '%.*s' does not exist",
                  (int)(id.len > 200 ? 200 : id.len), id.ptr);
    return fail(L, sc, h, &err);
  }
  if (sc->rows.rows[0].chunk_count < 0) return no_content(L, sc, h);
  lls_artifact_reader_push(L, 1, &CLS, h, &sc->rows, &sc->chunk);
  scratch_free(sc);
  return 1;
}

/** a:info(artifact_id) --> {artifact_id=, session_id=, sequence=,
 * content_hash=, name=, type=, mime_type=, size=, metadata=, tags=,
 * created_by=, created_at=, version=, parent_artifact_id=, stored_at=,
 * updated_at=, is_compressed=, stored_size=} | nil */
static int a_info(lua_State *L) {
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  lls_str id = check_artifact_id(L, 2);
  scratch *sc = new_scratch(L);
  lls_error err;
  if (cb->vt->artifacts->info(cb, id, &sc->rows, NULL, &err) != 0) return fail(L, sc, h, &err);
  if (sc->rows.count == 0)
    lua_pushnil(L);
  else
    push_info(L, h, &sc->rows, 0);
  scratch_free(sc);
  return 1;
}

/** a:list(session_id) --> array of info tables, in sequence order */
static int a_list(lua_State *L) {
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  lls_str session = check_session(L, 2);
  scratch *sc = new_scratch(L);
  lua_newtable(L);
  lua_Integer n = 0;
  int64_t after = -1;
  for (;;) {
    lls_error err;
    lls_artifact_rows_reset(&sc->rows);
    if (cb->vt->artifacts->list(cb, session, after, LIST_PAGE, &sc->rows, &err) != 0)
      return fail(L, sc, h, &err);
    for (size_t i = 0; i < sc->rows.count; i++) {
      push_info(L, h, &sc->rows, i);
      lua_rawseti(L, -2, ++n);
    }
    if (sc->rows.count < LIST_PAGE) break;
    after = sc->rows.rows[sc->rows.count - 1].sequence;
  }
  scratch_free(sc);
  return 1;
}

/** a:delete(artifact_id) --> true if it existed. Its session's
 * artifact_count and its content's reference count go down; content no
 * artifact refers to any more is deleted. */
static int a_delete(lua_State *L) {
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  lls_str id = check_artifact_id(L, 2);
  int existed;
  lls_error err;
  if (cb->vt->artifacts->del(cb, id, lls_now_us(), &existed, &err) != 0)
    return lls_raise(L, &err, h->vt->name);
  lua_pushboolean(L, existed);
  return 1;
}

/** a:stats([session_id]) --> {artifacts=, unique_contents=, bytes=,
 * stored_bytes=} over the session's artifacts, or the tenant's */
static int a_stats(lua_State *L) {
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  lls_str session = {NULL, 0};
  if (!lua_isnoneornil(L, 2)) session = check_session(L, 2);
  lls_artifact_stats st;
  lls_error err;
  if (cb->vt->artifacts->stats(cb, session, &st, &err) != 0)
    return lls_raise(L, &err, h->vt->name);
  lua_createtable(L, 0, 4);
  set_int(L, "artifacts", st.artifacts);
  set_int(L, "unique_contents", st.unique_contents);
  set_int(L, "bytes", st.bytes);
  set_int(L, "stored_bytes", st.stored_bytes);
  return 1;
}

/** a:count() --> the number of the tenant's artifacts */
static int a_count(lua_State *L) {
  lls_backend *cb;
  lls_handle *h = lls_component_check(L, 1, &CLS, &cb);
  int64_t n;
  lls_error err;
  if (count_artifacts(cb, lls_now_us(), &n, &err) != 0) return lls_raise(L, &err, h->vt->name);
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

/** db:artifacts() --> the store's Artifacts object (the same one each call) */
static int db_artifacts(lua_State *L) { return lls_component_get(L, &CLS); }

const luaL_Reg lls_artifacts_db_methods[] = {
    {"artifacts", db_artifacts},
    {NULL, NULL},
};

void lls_open_artifacts(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"put", a_put},     {"put_file", a_put_file}, {"get", a_get},
      {"open", a_open},   {"info", a_info},         {"list", a_list},
      {"delete", a_delete}, {"stats", a_stats},     {"count", a_count},
      {NULL, NULL},
  };
  lls_component_define(L, &CLS, methods);
  lls_open_artifact_reader(L);
}
