/*
 * records.c -- storage.records(path [, opts]): the records of an export
 * file, one at a time, for Lua code that reads such files (the migration
 * recipes compare and copy through it).
 *
 * It drives the import's own parser (import_parse.h) with a sink instead
 * of the import's writers, so a file reads exactly as storage.importer
 * would read it: the same checks of the outer structure, the same
 * "version" rule, the same messages with byte offsets. Memory stays
 * bounded: the file is read 64 KiB at a time and only the records of the
 * current chunk wait in a queue.
 *
 * Lua errors: the parser's callbacks never call Lua (the sink only queues
 * C values); Lua is touched between chunks, and every C resource lives in
 * the iterator's userdata, freed by __gc or __close, so a loop that breaks
 * or raises leaves nothing open.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/b64.h"
#include "lua/args.h"
#include "lua/error.h"
#include "lua/import_feed.h"
#include "lua/import_parse.h"
#include "lua/import_rows.h"
#include "lua/luavalue.h"
#include "lua/records.h"

#define LLS_RECORDS_MT "llmspell.storage.Records"
#define CHUNK (64 * 1024)

/* A record waiting to be handed out. */
typedef struct qrec {
  rkind kind;
  char *section;  /* R_SEC: the section's name */
  lls_value *v;
  char *floats;   /* R_VEC with a JSON-array or streamed base64 embedding: the packed floats */
  size_t nfloats; /* bytes */
  int dim;        /* R_VEC: the dimension key it sits under */
  char *bytes;    /* R_KV: the value, decoded as it streamed (has_bytes) */
  size_t nbytes;
  int has_bytes;
  int bad;        /* that value or embedding was not base64 */
} qrec;

typedef struct reader {
  lls_ijob job;
  unsigned char *chunk;
  qrec *q;
  size_t head, n, cap;
  int ended, closed;
  char *path;
} reader;

static void qrec_free(qrec *r) {
  free(r->section);
  free(r->bytes);
  lls_value_free(r->v);
  free(r->floats);
  memset(r, 0, sizeof *r);
}

static void reader_release(reader *r) {
  for (size_t i = r->head; i < r->n; i++) qrec_free(&r->q[i]);
  free(r->q);
  r->q = NULL;
  r->head = r->n = r->cap = 0;
  free(r->chunk);
  r->chunk = NULL;
  free(r->path);
  r->path = NULL;
  lls_ijob_release(&r->job);
  r->closed = 1;
}

/* The parser's sink: queue the record with what the reader needs later. */
static int queue_record(lls_ijob *j, lls_value *v) {
  reader *r = j->sink_ud;
  if (r->n == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 64;
    qrec *q = realloc(r->q, cap * sizeof *q);
    if (q == NULL) {
      lls_value_free(v);
      return lls_ijob_oom(j);
    }
    r->q = q;
    r->cap = cap;
  }
  qrec *e = &r->q[r->n];
  memset(e, 0, sizeof *e);
  e->kind = j->rk;
  e->v = v;
  e->dim = j->dim;
  if (j->rk == R_SEC) {
    e->section = malloc(j->secname.len + 1);
    if (e->section == NULL) {
      qrec_free(e);
      return lls_ijob_oom(j);
    }
    memcpy(e->section, j->secname.data, j->secname.len);
    e->section[j->secname.len] = '\0';
  }
  if (j->rk == R_KV && j->have_value) { /* the decoded bytes move over */
    e->has_bytes = 1;
    e->bad = j->val_bad;
    e->bytes = j->capval.data;
    e->nbytes = j->capval.len;
    j->capval = (lls_buf){0};
    j->have_value = 0;
  }
  if (j->rk == R_VEC && j->have_floats) {
    e->bad = j->emb_b64 && j->emb_bad;
    e->nfloats = j->floats.len;
    e->floats = malloc(e->nfloats ? e->nfloats : 1);
    if (e->floats == NULL) {
      qrec_free(e);
      return lls_ijob_oom(j);
    }
    memcpy(e->floats, j->floats.data, e->nfloats);
  }
  r->n++;
  return 1;
}

static reader *check_reader(lua_State *L, int idx) {
  reader *r = luaL_checkudata(L, idx, LLS_RECORDS_MT);
  if (r->closed) lls_raisef(L, NULL, LLS_ECLOSED, "records reader is closed");
  return r;
}

/* Reads and parses chunks until a record is queued or the file ends. */
static void fill(lua_State *L, reader *r) {
  lls_ijob *j = &r->job;
  while (r->head == r->n && !r->ended) {
    r->head = r->n = 0;
    size_t n = fread(r->chunk, 1, CHUNK, j->f);
    if (n == 0) {
      if (ferror(j->f))
        lls_raisef(L, NULL, LLS_EIO, "cannot read '%s': %s", r->path, strerror(errno));
      r->ended = 1;
      lls_import_feed_end(L, j);
      break;
    }
    lls_import_feed(L, j, r->chunk, n);
  }
}

/* Replaces field `name` of the table on top with the bytes of base64 s. */
static void set_decoded(lua_State *L, reader *r, const char *name, const lls_value *s,
                        const char *what) {
  lls_buf *b = &r->job.tmp;
  b->len = 0;
  int rc = s != NULL && s->type == LLS_VSTRING ? lls_b64_decode(b, s->u.s.ptr, s->u.s.len) : -1;
  if (rc == -2) luaL_error(L, "out of memory");
  if (rc != 0)
    lls_raisef(L, NULL, LLS_EFORMAT, "%s: %s is not base64 (in '%s')", what, name, r->path);
  lua_pushlstring(L, b->data ? b->data : "", b->len);
  lua_setfield(L, -2, name);
}

/* The value of a kv record as bytes: decoded as it streamed, or now. */
static void set_value(lua_State *L, reader *r, const qrec *e) {
  if (!e->has_bytes) {
    set_decoded(L, r, "value", lls_value_get(e->v, "value", 5), "kv_store");
    return;
  }
  if (e->bad) lls_raisef(L, NULL, LLS_EFORMAT, "kv_store: value is not base64 (in '%s')", r->path);
  lua_pushlstring(L, e->bytes != NULL ? e->bytes : "", e->nbytes);
  lua_setfield(L, -2, "value");
}

/* The embedding of a vector record as packed float32 bytes. */
static void set_embedding(lua_State *L, reader *r, const qrec *e) {
  const lls_value *ev = lls_value_get(e->v, "embedding", 9);
  if (e->bad)
    lls_raisef(L, NULL, LLS_EFORMAT, "vector_embeddings: embedding is not base64 (in '%s')", r->path);
  if (e->floats != NULL) {
    lua_pushlstring(L, e->floats, e->nfloats);
  } else if (ev != NULL && ev->type == LLS_VSTRING && ev->u.s.len > 0 &&
             ev->u.s.ptr[0] == '[') {
    int64_t got = lls_import_pgvector(&r->job, ev->u.s.ptr, ev->u.s.len);
    if (got == -2) luaL_error(L, "out of memory");
    if (got < 0)
      lls_raisef(L, NULL, LLS_EFORMAT,
                 "vector_embeddings: embedding is not pgvector text (in '%s')",
                 r->path);
    lua_pushlstring(L, r->job.floats.data ? r->job.floats.data : "", r->job.floats.len);
  } else {
    set_decoded(L, r, "embedding", ev, "vector_embeddings");
    return;
  }
  lua_setfield(L, -2, "embedding");
}

/* 1 when the caller asked for this section (opts.sections, uservalue 1). */
static int wanted(lua_State *L, int self, const char *section) {
  if (lua_getiuservalue(L, self, 1) != LUA_TTABLE) {
    lua_pop(L, 1);
    return 1;
  }
  lua_getfield(L, -1, section);
  int yes = lua_toboolean(L, -1);
  lua_pop(L, 2);
  return yes;
}

static const char *section_of(const qrec *e) {
  switch (e->kind) {
  case R_KV: return "kv_store";
  case R_COLL: return "vector_collections";
  case R_VEC: return "vector_embeddings";
  case R_SEC: return e->section;
  }
  return "?";
}

/* The iterator: (reader) --> section, record | nil at the end. */
static int records_next(lua_State *L) {
  reader *r = check_reader(L, 1);
  for (;;) {
    fill(L, r);
    if (r->head == r->n) return 0;
    qrec *e = &r->q[r->head];
    const char *section = section_of(e);
    if (!wanted(L, 1, section)) {
      qrec_free(e);
      r->head++;
      continue;
    }
    lua_pushstring(L, section);
    lls_push_value(L, e->v);
    if (e->kind == R_KV) {
      set_value(L, r, e);
    } else if (e->kind == R_VEC) {
      set_embedding(L, r, e);
      lua_pushinteger(L, e->dim);
      lua_setfield(L, -2, "dimension");
    }
    qrec_free(e);
    r->head++;
    return 2;
  }
}

static int records_close(lua_State *L) {
  reader *r = luaL_checkudata(L, 1, LLS_RECORDS_MT);
  if (!r->closed) reader_release(r);
  return 0;
}

static int records_tostring(lua_State *L) {
  reader *r = luaL_checkudata(L, 1, LLS_RECORDS_MT);
  if (r->closed)
    lua_pushliteral(L, "llmspell.storage.Records (closed)");
  else
    lua_pushfstring(L, "llmspell.storage.Records (%s, at byte %I)", r->path,
                    (lua_Integer)r->job.offset);
  return 1;
}

static const char *const OPT_FIELDS[] = {"sections", NULL};

/* Reads opts.sections (an array of names) into a set at uservalue 1. */
static void read_sections(lua_State *L, int opts, int self) {
  if (lua_isnoneornil(L, opts)) return;
  luaL_checktype(L, opts, LUA_TTABLE);
  lls_check_fields(L, opts, opts, OPT_FIELDS, NULL, 0);
  if (lua_getfield(L, opts, "sections") == LUA_TNIL) {
    lua_pop(L, 1);
    return;
  }
  if (!lua_istable(L, -1)) luaL_argerror(L, opts, "option 'sections': array of names expected");
  lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
  lua_createtable(L, 0, (int)n);
  for (lua_Integer i = 1; i <= n; i++) {
    if (lua_rawgeti(L, -2, i) != LUA_TSTRING)
      luaL_argerror(L, opts, lua_pushfstring(L, "option 'sections': name %d is not a string",
                                             (int)i));
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
  }
  lua_setiuservalue(L, self, 1);
  lua_pop(L, 1);
}

/** storage.records(path [, opts]) --> iterator, reader, nil, reader
 * For `for section, record in storage.records(path) do ... end`: every
 * record of an export file in file order -- "kv_store" entries (value as
 * bytes), "vector_collections" declarations, "vector_embeddings" rows
 * (embedding as packed little-endian float32 bytes, dimension always set)
 * and the items of passthrough sections (section = their name; a section
 * stored as one value comes as one record). opts.sections = { names }
 * keeps only those sections. The reader is the loop's to-be-closed value:
 * breaking out of the loop closes the file.
 * Raises "io" (cannot open or read), "format" (malformed, truncated, not
 * an export file: the message gives the byte), "version". */
static int records_open(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lua_settop(L, 2);
  reader *r = lua_newuserdatauv(L, sizeof *r, 1);
  memset(r, 0, sizeof *r);
  r->closed = 1; /* until everything is allocated */
  luaL_setmetatable(L, LLS_RECORDS_MT);
  int self = lua_gettop(L);
  read_sections(L, 2, self);
  lls_ijob *j = &r->job;
  j->bytes_total = -1;
  j->sink = queue_record;
  j->sink_ud = r;
  r->closed = 0;
  r->path = malloc(strlen(path) + 1);
  r->chunk = malloc(CHUNK);
  j->vb = lls_vbuild_new();
  j->y = yajl_alloc(&lls_import_callbacks, NULL, j);
  j->cloc = newlocale(LC_ALL_MASK, "C", (locale_t)0);
  lls_import_feed_init(j);
  if (r->path == NULL || r->chunk == NULL || j->vb == NULL || j->y == NULL) {
    reader_release(r);
    return luaL_error(L, "out of memory");
  }
  strcpy(r->path, path);
  j->f = fopen(path, "rb");
  if (j->f == NULL) {
    int e = errno;
    reader_release(r);
    return lls_raisef(L, NULL, LLS_EIO, "cannot read '%s': %s", path, strerror(e));
  }
  lua_pushcfunction(L, records_next);
  lua_pushvalue(L, self);
  lua_pushnil(L);
  lua_pushvalue(L, self);
  return 4;
}

void lls_open_records(lua_State *L) {
  static const luaL_Reg meta[] = {
      {"__gc", records_close},
      {"__close", records_close},
      {"__tostring", records_tostring},
      {NULL, NULL},
  };
  luaL_newmetatable(L, LLS_RECORDS_MT);
  luaL_setfuncs(L, meta, 0);
  lua_pop(L, 1);
  lua_pushcfunction(L, records_open);
  lua_setfield(L, -2, "records");
}
