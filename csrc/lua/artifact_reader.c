/*
 * artifact_reader.c -- the artifact reader (artifact_reader.h): read(n)
 * fetches chunks one at a time through the artifact op table, so a reader
 * holds one decoded chunk (at most LLS_ARTIFACT_CHUNK bytes) whatever the
 * artifact's size. Content is immutable (its id is its hash), so chunks
 * read in separate calls belong together; content deleted meanwhile is
 * `not_found`. The bytes are hashed as they are fetched: a content whose
 * chunks do not add up to its SHA-256 raises `integrity` before the last
 * chunk is handed out, and on every read after that.
 */
#include "lua/artifact_reader.h"

#include <stdlib.h>
#include <string.h>

#include "base/limits.h"
#include "lua/class.h"
#include "lua/error.h"

#define READER_MT "llmspell.storage.ArtifactReader"

typedef struct reader {
  const lls_component_class *cls;
  const char *backend; /* the store's backend name, for errors */
  int closed;
  int damaged;         /* the content failed its check: every read raises */
  char id[LLS_MAX_ARTIFACT_ID + 1];
  char hash[LLS_SHA256_HEX];
  int64_t size;        /* bytes of the artifact */
  int64_t chunks;      /* chunks of its content */
  int64_t next;        /* the next chunk to fetch */
  int64_t total;       /* bytes of the chunks fetched */
  int64_t delivered;   /* bytes handed out */
  lls_buf buf;         /* the current chunk, decoded */
  size_t pos;          /* how much of it was handed out */
  lls_sha256 *sha;
} reader;

static void release(reader *r) {
  lls_buf_free(&r->buf);
  r->pos = 0;
  lls_sha256_free(r->sha);
  r->sha = NULL;
}

static int damaged(lua_State *L, reader *r) {
  r->damaged = 1;
  return lls_raisef(L, r->backend, LLS_EINTEGRITY,
                    "artifact '%s': its stored content does not match its SHA-256 %s "
                    "(%lld of %lld bytes read back)",
                    r->id, r->hash, (long long)r->total, (long long)r->size);
}

/* Takes in the chunk just decoded into r->buf: hashes it and, after the
 * last one, checks size and hash. */
static void took_chunk(lua_State *L, reader *r) {
  r->pos = 0;
  r->next++;
  r->total += (int64_t)r->buf.len;
  if (r->total > r->size) damaged(L, r);
  if (lls_sha256_update(r->sha, r->buf.data, r->buf.len) != 0)
    luaL_error(L, "not enough memory");
  if (r->next < r->chunks) return;
  char got[LLS_SHA256_HEX];
  if (lls_sha256_final(r->sha, got) != 0) luaL_error(L, "not enough memory");
  lls_sha256_free(r->sha);
  r->sha = NULL;
  if (r->total != r->size || memcmp(got, r->hash, LLS_SHA256_HEX) != 0) damaged(L, r);
}

/* Fetches the next chunk into r->buf. */
static void fetch(lua_State *L, reader *r, lls_backend *cb) {
  lls_error err;
  int found;
  lls_str hash = {r->hash, LLS_SHA256_HEX - 1};
  if (cb->vt->artifacts->read_chunk(cb, hash, r->next, &r->buf, &found, &err) != 0) {
    if (err.code == LLS_EINTEGRITY) r->damaged = 1;
    lls_raise(L, &err, r->backend);
  }
  if (!found)
    lls_raisef(L, r->backend, LLS_ENOTFOUND,
               "artifact '%s': its content was deleted while it was being read", r->id);
  took_chunk(L, r);
}

/* The reader at 1, open, with its store's component backend in *cb. */
static reader *check_open(lua_State *L, lls_backend **cb) {
  reader *r = lls_class_check(L, 1, READER_MT);
  if (r->closed) lls_class_closed(L, "artifact reader", r->backend);
  lua_getiuservalue(L, 1, 1);
  lls_component_check(L, lua_gettop(L), r->cls, cb);
  lua_pop(L, 1);
  if (r->damaged) damaged(L, r);
  return r;
}

/** reader:read(n | "a") --> up to n bytes (fewer only at the end), nil at
 * the end; "a" (or "*a"): everything left ("" at the end). */
static int r_read(lua_State *L) {
  lls_backend *cb;
  reader *r = check_open(L, &cb);
  int64_t left = r->size - r->delivered, want;
  if (lua_type(L, 2) == LUA_TSTRING) {
    const char *f = lua_tostring(L, 2);
    if (strcmp(f, "a") != 0 && strcmp(f, "*a") != 0)
      luaL_argerror(L, 2, "a number of bytes or \"a\" expected");
    want = left;
  } else {
    lua_Integer n = luaL_checkinteger(L, 2);
    luaL_argcheck(L, n >= 0, 2, "the number of bytes must not be negative");
    if (left == 0) {
      lua_pushnil(L);
      return 1;
    }
    want = n < left ? (int64_t)n : left;
  }
  /* A piece inside the current chunk needs no buffer (reads of the chunk
   * size line up with chunks). */
  if (r->pos == r->buf.len && want > 0 && r->next < r->chunks) fetch(L, r, cb);
  if ((size_t)want <= r->buf.len - r->pos) {
    lua_pushlstring(L, r->buf.data + r->pos, (size_t)want);
    r->pos += (size_t)want;
    r->delivered += want;
    return 1;
  }
  luaL_Buffer b;
  luaL_buffinitsize(L, &b, (size_t)want);
  while (want > 0) {
    if (r->pos == r->buf.len) {
      if (r->next >= r->chunks) damaged(L, r); /* fewer bytes than its size */
      fetch(L, r, cb);
      continue;
    }
    size_t k = r->buf.len - r->pos;
    if ((int64_t)k > want) k = (size_t)want;
    luaL_addlstring(&b, r->buf.data + r->pos, k);
    r->pos += k;
    r->delivered += (int64_t)k;
    want -= (int64_t)k;
  }
  luaL_pushresult(&b);
  return 1;
}

/** reader:close() -- idempotent; later reads raise `closed`. Also __close. */
static int r_close(lua_State *L) {
  reader *r = lls_class_check(L, 1, READER_MT);
  r->closed = 1;
  release(r);
  return 0;
}

static int r_gc(lua_State *L) {
  release(lls_class_check(L, 1, READER_MT));
  return 0;
}

/* "llmspell.storage.ArtifactReader (<id>, 1048576 of 209715200 bytes read)" */
static int r_tostring(lua_State *L) {
  reader *r = lls_class_check(L, 1, READER_MT);
  if (r->closed)
    lua_pushfstring(L, "%s (%s, closed)", READER_MT, r->id);
  else
    lua_pushfstring(L, "%s (%s, %I of %I bytes read)", READER_MT, r->id,
                    (lua_Integer)r->delivered, (lua_Integer)r->size);
  return 1;
}

void lls_artifact_reader_push(lua_State *L, int comp, const lls_component_class *cls,
                              const lls_handle *h, const lls_artifact_rows *rows,
                              lls_buf *first) {
  comp = lua_absindex(L, comp);
  lls_str id = lls_artifact_rows_get(rows, 0, LLS_ART_ID);
  lls_str hash = lls_artifact_rows_get(rows, 0, LLS_ART_HASH);
  reader *r = lls_class_new(L, READER_MT, sizeof *r, 1);
  r->cls = cls;
  r->backend = h->vt->name;
  size_t n = id.len < sizeof r->id ? id.len : sizeof r->id - 1;
  memcpy(r->id, id.ptr, n);
  r->id[n] = '\0';
  n = hash.len < sizeof r->hash ? hash.len : sizeof r->hash - 1;
  memcpy(r->hash, hash.ptr, n);
  r->hash[n] = '\0';
  r->size = rows->rows[0].size_bytes;
  r->chunks = rows->rows[0].chunk_count;
  lua_pushvalue(L, comp);
  lua_setiuservalue(L, -2, 1);
  r->sha = lls_sha256_new();
  if (r->sha == NULL) luaL_error(L, "not enough memory");
  if (r->chunks == 0) {
    /* nothing to fetch: the (empty) content is checked now */
    r->next = -1;
    took_chunk(L, r);
    return;
  }
  /* chunk 0 came with the info query */
  r->buf = *first;
  *first = (lls_buf){0};
  took_chunk(L, r);
}

void lls_open_artifact_reader(lua_State *L) {
  static const luaL_Reg methods[] = {{"read", r_read}, {"close", r_close}, {NULL, NULL}};
  static const luaL_Reg meta[] = {
      {"__close", r_close}, {"__gc", r_gc}, {"__tostring", r_tostring}, {NULL, NULL}};
  const luaL_Reg *const lists[] = {methods, NULL};
  lls_class_define(L, READER_MT, lists, meta);
}
