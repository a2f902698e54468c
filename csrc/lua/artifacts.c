/*
 * artifacts.c -- db:artifacts(): the Artifacts object (put, put_file, get,
 * open, info, list, delete, stats) over the backend's artifact op table
 * (backend/artifacts.h), and the "artifacts" export section.
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
#include "base/b64.h"
#include "base/clock.h"
#include "base/compress.h"
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
/* Rows per round trip of list() and of an export's artifacts. */
#define LIST_PAGE 256
/* Content rows per page of an export (each is read whole into memory). */
#define CONTENT_PAGE 16
/* How much of a file put_file reads at a time when hashing it. */
#define READ_BLOCK ((size_t)1 << 20)

static const char *const TYPES[] = {"code", "data", "image", "document", "binary", NULL};

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

static int type_ok(lls_str s) {
  for (int i = 0; TYPES[i]; i++)
    if (strlen(TYPES[i]) == s.len && memcmp(TYPES[i], s.ptr, s.len) == 0) return 1;
  return 0;
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
  if (!type_ok(a->type))
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
      {"delete", a_delete}, {"stats", a_stats},     {NULL, NULL},
  };
  lls_component_define(L, &CLS, methods);
  lls_open_artifact_reader(L);
}

/* ------------------------------------------------------- export section */

/* Sets key to v in rec; 0, or -1 (out of memory: v is freed). */
static int put(lls_value *rec, const char *key, lls_value *v) {
  return lls_value_set(rec, key, strlen(key), v);
}

static lls_value *str_value(lls_str s) {
  return s.ptr == NULL ? lls_value_null() : lls_value_string(s.ptr, s.len);
}

/* Reads content c whole into data (decoded, checked against its hash). */
static int read_content(lls_backend *cb, const lls_content_row *c, lls_buf *data,
                        lls_buf *chunk, lls_error *err) {
  lls_str hash = {c->hash, LLS_SHA256_HEX - 1};
  data->len = 0;
  for (int64_t i = 0; i < c->chunk_count; i++) {
    int found;
    if (cb->vt->artifacts->read_chunk(cb, hash, i, chunk, &found, err) != 0) return -1;
    if (!found)
      return lls_error_set(err, LLS_EINTEGRITY, "artifact content %s: chunk %lld is missing",
                           c->hash, (long long)i);
    if (lls_buf_append(data, chunk->data, chunk->len) != 0) return lls_error_oom(err);
  }
  char got[LLS_SHA256_HEX];
  if (lls_sha256_hex(data->len ? data->data : "", data->len, got) != 0)
    return lls_error_oom(err);
  if ((int64_t)data->len != c->size_bytes || memcmp(got, c->hash, LLS_SHA256_HEX) != 0)
    return lls_error_set(err, LLS_EINTEGRITY,
                         "artifact content %s: its stored bytes do not match its SHA-256",
                         c->hash);
  return 0;
}

/* One content row as rs-llmspell's record, data as the original bytes
 * (is_compressed false: the form every reader takes). */
static int dump_content_row(lls_backend *cb, const lls_content_row *c, lls_section_emit emit,
                            void *ud, lls_buf *data, lls_buf *chunk, lls_buf *b64,
                            lls_error *err) {
  if (read_content(cb, c, data, chunk, err) != 0) return -1;
  b64->len = 0;
  if (lls_b64_quoted(b64, data->data ? data->data : "", data->len) != 0)
    return lls_error_oom(err);
  lls_value *rec = lls_value_object();
  if (rec == NULL) return lls_error_oom(err);
  int rc = put(rec, "content_hash", lls_value_string(c->hash, LLS_SHA256_HEX - 1)) ||
           put(rec, "created_at", lls_value_int(c->created_at)) ||
           put(rec, "data", lls_value_string(b64->data + 1, b64->len - 2)) ||
           put(rec, "is_compressed", lls_value_bool(0)) ||
           put(rec, "last_accessed_at", lls_value_int(c->last_accessed_at)) ||
           put(rec, "original_size_bytes", lls_value_int(c->size_bytes)) ||
           put(rec, "reference_count", lls_value_int(c->reference_count)) ||
           put(rec, "size_bytes", lls_value_int(c->size_bytes)) ||
           put(rec, "storage_type", lls_value_string("bytea", 5)) ||
           put(rec, "tenant_id", lls_value_string(c->tenant, strlen(c->tenant)));
  if (rc != 0) {
    lls_value_free(rec);
    return lls_error_oom(err);
  }
  rc = emit(ud, rec, err);
  lls_value_free(rec);
  return rc;
}

static int dump_contents(lls_backend *cb, lls_section_emit emit, void *ud, int64_t *n,
                         lls_error *err) {
  lls_content_rows rows = {0};
  lls_buf data = {0}, chunk = {0}, b64 = {0};
  char after[LLS_SHA256_HEX] = "";
  int rc = 0;
  for (;;) {
    rows.count = 0;
    lls_str cursor = {after, strlen(after)};
    if ((rc = cb->vt->artifacts->dump_content(cb, cursor, CONTENT_PAGE, &rows, err)) != 0) break;
    for (size_t i = 0; rc == 0 && i < rows.count; i++) {
      rc = dump_content_row(cb, &rows.rows[i], emit, ud, &data, &chunk, &b64, err);
      if (rc == 0) (*n)++;
      /* one content's buffers go before the next: each may be large */
      lls_buf_free(&data);
      lls_buf_free(&b64);
    }
    if (rc != 0 || rows.count < CONTENT_PAGE) break;
    memcpy(after, rows.rows[rows.count - 1].hash, LLS_SHA256_HEX);
  }
  lls_content_rows_free(&rows);
  lls_buf_free(&data);
  lls_buf_free(&chunk);
  lls_buf_free(&b64);
  return rc;
}

/* JSON text as a value (metadata, tags) for a record. */
static lls_value *json_value(lls_str json, lls_str id, lls_error *err) {
  char msg[200];
  lls_value *v = lls_json_decode(json.ptr, json.len, msg, sizeof msg);
  if (v == NULL)
    lls_error_set(err, LLS_EINTEGRITY, "artifact '%.*s': stored JSON cannot be read: %s",
                  (int)(id.len > 200 ? 200 : id.len), id.ptr, msg);
  return v;
}

/* One artifacts row as rs-llmspell's record. */
static int dump_artifact_row(const lls_artifact_rows *r, size_t i, lls_section_emit emit,
                             void *ud, lls_error *err) {
  const lls_artifact_row *row = &r->rows[i];
  lls_str id = lls_artifact_rows_get(r, i, LLS_ART_ID);
  lls_value *meta = json_value(lls_artifact_rows_get(r, i, LLS_ART_METADATA), id, err);
  if (meta == NULL) return -1;
  lls_value *tags = json_value(lls_artifact_rows_get(r, i, LLS_ART_TAGS), id, err);
  if (tags == NULL) {
    lls_value_free(meta);
    return -1;
  }
  lls_value *rec = lls_value_object();
  if (rec == NULL) {
    lls_value_free(meta);
    lls_value_free(tags);
    return lls_error_oom(err);
  }
  /* metadata and tags first: lls_value_set frees them when it fails */
  int rc = put(rec, "metadata", meta) || put(rec, "tags", tags) ||
           put(rec, "artifact_id", str_value(id)) ||
           put(rec, "artifact_type", str_value(lls_artifact_rows_get(r, i, LLS_ART_TYPE))) ||
           put(rec, "content_hash", str_value(lls_artifact_rows_get(r, i, LLS_ART_HASH))) ||
           put(rec, "created_at", lls_value_int(row->created_at)) ||
           put(rec, "created_by", str_value(lls_artifact_rows_get(r, i, LLS_ART_CREATED_BY))) ||
           put(rec, "mime_type", str_value(lls_artifact_rows_get(r, i, LLS_ART_MIME))) ||
           put(rec, "name", str_value(lls_artifact_rows_get(r, i, LLS_ART_NAME))) ||
           put(rec, "parent_artifact_id",
               str_value(lls_artifact_rows_get(r, i, LLS_ART_PARENT))) ||
           put(rec, "sequence", lls_value_int(row->sequence)) ||
           put(rec, "session_id", str_value(lls_artifact_rows_get(r, i, LLS_ART_SESSION))) ||
           put(rec, "size_bytes", lls_value_int(row->size_bytes)) ||
           put(rec, "stored_at", lls_value_int(row->stored_at)) ||
           put(rec, "tenant_id", str_value(lls_artifact_rows_get(r, i, LLS_ART_TENANT))) ||
           put(rec, "updated_at", lls_value_int(row->updated_at)) ||
           put(rec, "version", lls_value_int(row->version));
  if (rc != 0) {
    lls_value_free(rec);
    return lls_error_oom(err);
  }
  rc = emit(ud, rec, err);
  lls_value_free(rec);
  return rc;
}

static int dump_artifacts(lls_backend *cb, lls_section_emit emit, void *ud, int64_t *n,
                          lls_error *err) {
  lls_artifact_rows rows = {0};
  lls_buf after = {0};
  int rc = 0;
  for (;;) {
    lls_artifact_rows_reset(&rows);
    lls_str cursor = {after.data ? after.data : "", after.len};
    if ((rc = cb->vt->artifacts->dump_artifacts(cb, cursor, LIST_PAGE, &rows, err)) != 0) break;
    for (size_t i = 0; rc == 0 && i < rows.count; i++) {
      rc = dump_artifact_row(&rows, i, emit, ud, err);
      if (rc == 0) (*n)++;
    }
    if (rc != 0 || rows.count < LIST_PAGE) break;
    lls_str last = lls_artifact_rows_get(&rows, rows.count - 1, LLS_ART_ID);
    after.len = 0;
    if (lls_buf_append(&after, last.ptr, last.len) != 0) {
      rc = lls_error_oom(err);
      break;
    }
  }
  lls_artifact_rows_free(&rows);
  lls_buf_free(&after);
  return rc;
}

static int section_dump(lls_backend *cb, int part, int64_t now, lls_section_emit emit, void *ud,
                        int64_t *n, lls_error *err) {
  (void)now;
  *n = 0;
  return part == 0 ? dump_contents(cb, emit, ud, n, err) : dump_artifacts(cb, emit, ud, n, err);
}

/* ------------------------------------------------------- import records */

/* Field name of rec, NULL when absent or null. */
static const lls_value *field(const lls_value *rec, const char *name) {
  const lls_value *v = lls_value_get(rec, name, strlen(name));
  return v != NULL && v->type == LLS_VNULL ? NULL : v;
}

/* A format error about record `what` (its id when known). */
static int bad(lls_error *err, const char *part, lls_str id, const char *what) {
  if (id.ptr == NULL)
    return lls_error_set(err, LLS_EFORMAT, "artifacts.%s record: %s", part, what);
  return lls_error_set(err, LLS_EFORMAT, "artifacts.%s record '%.*s': %s", part,
                       (int)(id.len > 200 ? 200 : id.len), id.ptr, what);
}

/* Optional string field; ptr NULL when absent. -1 when not a string. */
static int rec_str(const lls_value *rec, const char *name, lls_str *out) {
  const lls_value *v = field(rec, name);
  *out = (lls_str){NULL, 0};
  if (v == NULL) return 0;
  if (v->type != LLS_VSTRING) return -1;
  *out = (lls_str){v->u.s.ptr, v->u.s.len};
  return 0;
}

/* Optional integer field (microseconds, counts); def when absent. A float
 * with an integral value is taken (JSON writers may add ".0"). */
static int rec_int(const lls_value *rec, const char *name, int64_t def, int64_t *out) {
  const lls_value *v = field(rec, name);
  *out = def;
  if (v == NULL) return 0;
  if (v->type == LLS_VINT) {
    *out = v->u.i;
    return 0;
  }
  if (v->type == LLS_VFLOAT && v->u.f < 9.2e18 && v->u.f > -9.2e18 &&
      v->u.f == (double)(int64_t)v->u.f) {
    *out = (int64_t)v->u.f;
    return 0;
  }
  return -1;
}

/* A content hash: 64 hex digits, kept lowercase in out. */
static int hash_ok(lls_str s, char out[LLS_SHA256_HEX]) {
  if (s.ptr == NULL || s.len != LLS_SHA256_HEX - 1) return 0;
  for (size_t i = 0; i < s.len; i++) {
    char c = s.ptr[i];
    if (c >= 'A' && c <= 'F') c = (char)(c - 'A' + 'a');
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return 0;
    out[i] = c;
  }
  out[s.len] = '\0';
  return 1;
}

/* rs-llmspell's compressed form: a 4-byte little-endian original size,
 * then one LZ4 block. */
static int unpack_compressed(const lls_buf *in, lls_buf *out) {
  if (in->len < 4) return -1;
  const unsigned char *p = (const unsigned char *)in->data;
  uint32_t raw = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                 (uint32_t)p[3] << 24;
  if (raw > LLS_LZ4_MAX_INPUT) return -1;
  out->len = 0;
  if (lls_buf_reserve(out, raw ? raw : 1) != 0) return -2;
  if (raw == 0) return in->len == 4 || (in->len == 5 && p[4] == 0) ? 0 : -1;
  if (lls_lz4_decompress(in->data + 4, in->len - 4, out->data, raw) != 0) return -1;
  out->len = raw;
  return 0;
}

static int load_content(lls_backend *cb, const lls_value *rec, lls_conflict on_conflict,
                        int64_t now, int *written, lls_error *err) {
  static const char *part = "content";
  lls_content_row c;
  memset(&c, 0, sizeof c);
  lls_str h, data, none = {NULL, 0};
  if (rec_str(rec, "content_hash", &h) != 0 || !hash_ok(h, c.hash))
    return bad(err, part, none, "content_hash must be a SHA-256: 64 hex digits");
  lls_str id = {c.hash, LLS_SHA256_HEX - 1};
  if (rec_str(rec, "data", &data) != 0) return bad(err, part, id, "data must be a string");
  if (data.ptr == NULL)
    return bad(err, part, id,
               "data is missing (content rs-llmspell kept as a large object is exported "
               "without its bytes)");
  const lls_value *z = field(rec, "is_compressed");
  if (z != NULL && z->type != LLS_VBOOL)
    return bad(err, part, id, "is_compressed must be true or false");
  if (rec_int(rec, "created_at", now, &c.created_at) != 0 ||
      rec_int(rec, "last_accessed_at", c.created_at, &c.last_accessed_at) != 0)
    return bad(err, part, id, "created_at and last_accessed_at must be integer microseconds");
  int64_t ignored;
  if (rec_int(rec, "reference_count", 0, &ignored) != 0 ||
      rec_int(rec, "size_bytes", 0, &ignored) != 0 ||
      rec_int(rec, "original_size_bytes", 0, &ignored) != 0)
    return bad(err, part, id, "reference_count and the sizes must be integers");
  lls_buf raw = {0}, plain = {0};
  const lls_buf *bytes = &raw;
  int rc = lls_b64_decode(&raw, data.ptr, data.len);
  if (rc == -1) {
    rc = bad(err, part, id, "data is not base64");
    goto done;
  }
  if (rc != 0) {
    rc = lls_error_oom(err);
    goto done;
  }
  if (z != NULL && z->u.b) {
    rc = unpack_compressed(&raw, &plain);
    if (rc != 0) {
      rc = rc == -2 ? lls_error_oom(err)
                    : bad(err, part, id, "data is not a size-prefixed LZ4 block"
                                         " (is_compressed is true)");
      goto done;
    }
    bytes = &plain;
  }
  char got[LLS_SHA256_HEX];
  const char *p = bytes->len ? bytes->data : "";
  if (lls_sha256_hex(p, bytes->len, got) != 0) {
    rc = lls_error_oom(err);
    goto done;
  }
  if (memcmp(got, c.hash, LLS_SHA256_HEX) != 0) {
    rc = bad(err, part, id, "content_hash is not the SHA-256 of data");
    goto done;
  }
  lls_artifact_src src;
  lls_artifact_src_mem(&src, p, bytes->len, c.hash);
  rc = cb->vt->artifacts->load_content(cb, &c, &src, on_conflict, now, written, err);
  lls_artifact_src_free(&src);
done:
  lls_buf_free(&raw);
  lls_buf_free(&plain);
  return rc;
}

/* Sets text field f of row from record field name (NULL when absent):
 * a string of 1..max bytes of UTF-8, or def when absent (ptr NULL: none). */
static int take_text(lls_artifact_rows *r, lls_artifact_row *row, int f, const lls_value *rec,
                     const char *name, size_t max, lls_str def, lls_str id, lls_error *err) {
  lls_str s;
  char what[96];
  if (rec_str(rec, name, &s) != 0) {
    snprintf(what, sizeof what, "%s must be a string", name);
    return bad(err, "artifacts", id, what);
  }
  if (s.ptr == NULL) s = def;
  if (s.ptr != NULL && !lls_text_ok(s, 1, max)) {
    snprintf(what, sizeof what, "%s must be 1..%zu bytes of UTF-8 text without NUL bytes",
             name, max);
    return bad(err, "artifacts", id, what);
  }
  if (lls_artifact_rows_set(r, row, f, s.ptr, s.len) != 0) return lls_error_oom(err);
  return 0;
}

/* Sets JSON field f of row from record field name (def when absent). */
static int take_json(lls_artifact_rows *r, lls_artifact_row *row, int f, const lls_value *v,
                     const char *def, lls_buf *tmp, lls_str id, lls_error *err) {
  char msg[160];
  tmp->len = 0;
  if (v == NULL) {
    if (lls_buf_append(tmp, def, strlen(def)) != 0) return lls_error_oom(err);
  } else if (lls_json_encode(v, tmp, msg, sizeof msg) != 0) {
    return bad(err, "artifacts", id, msg);
  }
  if (lls_artifact_rows_set(r, row, f, tmp->data, tmp->len) != 0) return lls_error_oom(err);
  return 0;
}

/* Checks an artifacts record into row 0 of r. */
static int read_artifact(const lls_value *rec, int64_t now, lls_artifact_rows *r, lls_buf *tmp,
                         lls_error *err) {
  static const char *part = "artifacts";
  lls_str none = {NULL, 0}, id;
  if (rec_str(rec, "artifact_id", &id) != 0 || id.ptr == NULL ||
      !lls_text_ok(id, 1, LLS_MAX_ARTIFACT_ID))
    return bad(err, part, none, "artifact_id must be 1.." LLS_STR(LLS_MAX_ARTIFACT_ID)
                                " bytes of UTF-8 text without NUL bytes");
  lls_artifact_row *row = lls_artifact_rows_add(r);
  if (row == NULL || lls_artifact_rows_set(r, row, LLS_ART_ID, id.ptr, id.len) != 0)
    return lls_error_oom(err);
  lls_str h;
  char hash[LLS_SHA256_HEX];
  if (rec_str(rec, "content_hash", &h) != 0 || !hash_ok(h, hash))
    return bad(err, part, id, "content_hash must be a SHA-256: 64 hex digits");
  if (lls_artifact_rows_set(r, row, LLS_ART_HASH, hash, LLS_SHA256_HEX - 1) != 0)
    return lls_error_oom(err);
  lls_str type;
  if (rec_str(rec, "artifact_type", &type) != 0 || (type.ptr != NULL && !type_ok(type)))
    return bad(err, part, id, "artifact_type must be one of " LLS_ARTIFACT_TYPES);
  if (type.ptr == NULL) type = (lls_str){"binary", 6};
  if (lls_artifact_rows_set(r, row, LLS_ART_TYPE, type.ptr, type.len) != 0)
    return lls_error_oom(err);
  if (take_text(r, row, LLS_ART_SESSION, rec, "session_id", LLS_MAX_ID, none, id, err) ||
      take_text(r, row, LLS_ART_NAME, rec, "name", LLS_MAX_ARTIFACT_NAME,
                (lls_str){"unnamed", 7}, id, err) ||
      take_text(r, row, LLS_ART_MIME, rec, "mime_type", LLS_MAX_NAME,
                (lls_str){"application/octet-stream", 24}, id, err) ||
      take_text(r, row, LLS_ART_CREATED_BY, rec, "created_by", LLS_MAX_ID, none, id, err) ||
      take_text(r, row, LLS_ART_PARENT, rec, "parent_artifact_id", LLS_MAX_ARTIFACT_ID, none, id,
                err))
    return -1;
  if (lls_artifact_rows_get(r, 0, LLS_ART_SESSION).ptr == NULL)
    return bad(err, part, id, "session_id is missing");
  const lls_value *tags = field(rec, "tags");
  if (tags != NULL) {
    int ok = tags->type == LLS_VARRAY;
    for (size_t k = 0; ok && k < tags->u.a.n; k++)
      ok = tags->u.a.items[k]->type == LLS_VSTRING;
    if (!ok) return bad(err, part, id, "tags must be an array of strings");
  }
  if (take_json(r, row, LLS_ART_METADATA, field(rec, "metadata"), "{}", tmp, id, err) ||
      take_json(r, row, LLS_ART_TAGS, tags, "[]", tmp, id, err))
    return -1;
  row = &r->rows[0];
  if (rec_int(rec, "sequence", -1, &row->sequence) != 0 || row->sequence < 0)
    return bad(err, part, id, "sequence must be a non-negative integer");
  if (rec_int(rec, "size_bytes", -1, &row->size_bytes) != 0 || row->size_bytes < 0)
    return bad(err, part, id, "size_bytes must be a non-negative integer");
  if (rec_int(rec, "version", 1, &row->version) != 0 || row->version < 1 ||
      row->version > 2147483647)
    return bad(err, part, id, "version must be a positive integer");
  if (rec_int(rec, "created_at", now, &row->created_at) != 0 ||
      rec_int(rec, "stored_at", row->created_at, &row->stored_at) != 0 ||
      rec_int(rec, "updated_at", row->stored_at, &row->updated_at) != 0)
    return bad(err, part, id, "created_at, stored_at and updated_at must be integer microseconds");
  return 0;
}

static int section_load(lls_backend *cb, int part, const lls_value *rec, lls_conflict on_conflict,
                        int64_t now, int *written, lls_error *err) {
  *written = 0;
  if (rec->type != LLS_VOBJECT)
    return lls_error_set(err, LLS_EFORMAT, "artifacts.%s record is not an object",
                         part == 0 ? "content" : "artifacts");
  if (part == 0) return load_content(cb, rec, on_conflict, now, written, err);
  lls_artifact_rows r = {0};
  lls_buf tmp = {0};
  int rc = read_artifact(rec, now, &r, &tmp, err);
  if (rc == 0) rc = cb->vt->artifacts->load_artifact(cb, &r, 0, on_conflict, now, written, err);
  lls_artifact_rows_free(&r);
  lls_buf_free(&tmp);
  return rc;
}

/* Records of the section: contents and artifacts. */
static int section_count(lls_backend *cb, int64_t now, int64_t *n, lls_error *err) {
  (void)now;
  lls_artifact_stats st;
  lls_str tenant_wide = {NULL, 0};
  if (cb->vt->artifacts->stats(cb, tenant_wide, &st, err) != 0) return -1;
  *n = st.artifacts + st.unique_contents;
  return 0;
}

static const char *const PARTS[] = {"content", "artifacts", NULL};

const lls_section_codec lls_artifacts_section = {"artifacts", PARTS, section_dump, section_load,
                                                  section_count};
